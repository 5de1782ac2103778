"""The sparse (TF-IDF) half at scale: build time, memory and queries/s at 100k and 1M names (issue 18).

    python -m benchmarks.sparse_scale --sizes 100000 1000000

Names are the distinct MEDIC + HPO names (111k), extended beyond that by appending a word drawn from
their own vocabulary ("... type 3", "... renal"), so n-gram statistics stay those of real names. Queries
are 2,000 of the names with one character changed (a typo). Each size reports, in one process:

- build: fitting the TF-IDF vectoriser and the name matrix (seconds, and the MiB it holds, both the
  matrix and its transpose used by the search);
- search: ``SparseIndex.search`` (top-k sparse product, ``sparse_dot_topn``) at k = 64, queries/s,
  and, at sizes where it fits in memory, the previous way (dense blocks of 512 × n scores + argpartition);
- hybrid: ``HybridIndex.search`` at k = 5 with a pool of 64 over random unit vectors of 384 dimensions
  in an exact FAISS index (the fusion's own cost; the dense search is FAISS's).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._record import markdown_table, write_record
from entitylink import Normalizer, Ontology
from entitylink.index import HybridIndex, SparseIndex


def names_of_size(n: int, data: Path, seed: int = 0) -> list[str]:
    normalizer = Normalizer()
    sources = [Ontology.load("hpo")]
    medic = data / "medic" / "medic_06Jul2012.txt"
    if medic.is_file():
        sources.append(Ontology.load(f"medic:{medic}"))
    base = sorted({normalizer(name) for onto in sources for name in onto.names} - {""})
    words = sorted({w for name in base for w in name.split() if len(w) > 3})
    rng = random.Random(seed)
    names, seen = list(base[:n]), set(base[:n])
    while len(names) < n:
        name = f"{rng.choice(base)} {rng.choice(words)}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def typo(text: str, rng: random.Random) -> str:
    i = rng.randrange(len(text))
    return text[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + text[i + 1 :]


def blocked_search(index: SparseIndex, queries, k: int, block: int = 512):
    """The search before issue 18: dense blocks of scores, then argpartition (a reference for speed)."""
    out = []
    for start in range(0, queries.shape[0], block):
        scores = index.scores(queries[start : start + block])
        out.append(np.argpartition(-scores, k - 1, axis=1)[:, :k])
    return np.vstack(out)


class _RandomDense:
    """Enough of a DictionaryIndex for HybridIndex: random unit vectors in an exact FAISS index."""

    def __init__(self, texts: list[str], dim: int, seed: int = 0):
        import faiss

        rng = np.random.default_rng(seed)
        vectors = rng.standard_normal((len(texts), dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        self.faiss_index = faiss.IndexFlatIP(dim)
        self.faiss_index.add(vectors)
        self.names = self.texts = texts
        self.concept_ids = [f"C{i}" for i in range(len(texts))]
        self.normalizer, self.encoder, self.meta, self.dim = Normalizer(), None, {}, dim
        self.rng = rng

    def __len__(self) -> int:
        return len(self.texts)

    def prepare(self, texts, show_progress=None):
        vectors = self.rng.standard_normal((len(texts), self.dim), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def search(self, vectors, k):
        return self.faiss_index.search(np.ascontiguousarray(vectors), k)

    def vectors(self, positions):
        return self.faiss_index.reconstruct_batch(np.ascontiguousarray(positions, dtype=np.int64))


def mib(matrix) -> float:
    return (matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes) / 2**20


def timed(function, *args, repeats: int = 2):
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - started)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--blocked-up-to", type=int, default=200_000,
                        help="also time the previous dense-block search up to this size")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sparse_scale.json"))
    args = parser.parse_args(argv)
    rows = []
    for n in args.sizes:
        names = names_of_size(n, args.data)
        rng = random.Random(1)
        queries_text = [typo(names[i], rng) for i in rng.sample(range(n), min(args.queries, n))]
        started = time.perf_counter()
        sparse = SparseIndex(names, names, [f"C{i}" for i in range(n)], Normalizer())
        build_s = time.perf_counter() - started
        queries = sparse.prepare(queries_text)
        search_s, (_, positions) = timed(sparse.search, queries, 64)
        row = {"names": n, "build_s": round(build_s, 1),
               "matrix_mib": round(mib(sparse.matrix) + mib(sparse._matrix_t), 1),
               "ngrams": len(sparse.vectorizer.vocabulary_), "nnz_per_name": round(sparse.matrix.nnz / n, 1),
               "search_k64_qps": round(len(queries_text) / search_s)}
        if n <= args.blocked_up_to:
            blocked_s, blocked = timed(blocked_search, sparse, queries, 64, repeats=1)
            row["blocked_k64_qps"] = round(len(queries_text) / blocked_s)
            same = np.mean([set(a) == set(b[b >= 0]) or len(set(a) & set(b)) >= 60
                            for a, b in zip(blocked, positions)])
            row["same_top64_share"] = round(float(same), 3)
        dense = _RandomDense(names, 384)
        hybrid = HybridIndex(dense, sparse, sparse_weight=0.1, pool=64)  # type: ignore[arg-type]
        prepared = hybrid.prepare(queries_text)
        hybrid_s, _ = timed(hybrid.search, prepared, 5)
        dense_s, _ = timed(dense.search, prepared.dense, 64)
        row["hybrid_k5_qps"] = round(len(queries_text) / hybrid_s)
        row["of_which_dense_search_s"] = round(dense_s, 2)
        row["hybrid_s"] = round(hybrid_s, 2)
        rows.append(row)
        print(row, flush=True)
    record = write_record(args.out, {"rows": rows, "queries": args.queries}, argv)
    header = list(rows[0])
    print(markdown_table(header, [[r.get(h, "") for h in header] for r in rows]))
    print(f"wrote {args.out} ({record['machine']['cpu']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
