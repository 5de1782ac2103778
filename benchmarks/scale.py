"""Search at scale: FAISS index kinds on simulated dictionaries of name embeddings (issue 7).

    python -m benchmarks.scale --sizes 100000 1000000 4000000 --dims 384 768 --queries 10000

Vectors are unit-norm and clustered like real name embeddings (about four names per concept). They
are generated in seeded chunks, so a 4M x 768 run never holds a float32 copy of the whole set: the
exact top-5 (for recall) is computed by streaming over the same chunks. For every size, dimension and
index kind: build seconds, index bytes (serialised), peak RSS, queries/s (all cores), and recall@5 on
the first 1,000 queries against exact search. Writes JSON and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from entitylink._atomic import atomic_write_text
from entitylink.hardware import describe_cpu
from entitylink.search import SearchSpec, after_fill, make_index, set_search_parameters

CHUNK = 100_000
KINDS = {
    "flat fp16 (exact)": SearchSpec(kind="flat", float16=True),
    "hnsw fp16": SearchSpec(kind="hnsw", float16=True),
    "ivf fp16": SearchSpec(kind="ivf", float16=True, nprobe=64),
    "ivfpq": SearchSpec(kind="ivfpq", nprobe=64),
}


def chunk(n: int, dim: int, index: int, centres: np.ndarray) -> np.ndarray:
    rows = min(CHUNK, n - index * CHUNK)
    rng = np.random.default_rng(1000 + index)
    x = centres[rng.integers(0, len(centres), rows)] + 0.35 * rng.normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def queries_for(n_queries: int, centres: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(7)
    x = centres[rng.integers(0, len(centres), n_queries)] + 0.35 * rng.normal(size=(n_queries, centres.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top5(n: int, dim: int, centres: np.ndarray, queries: np.ndarray) -> np.ndarray:
    best_scores = np.full((len(queries), 5), -np.inf, np.float32)
    best_ids = np.zeros((len(queries), 5), np.int64)
    for c in range((n + CHUNK - 1) // CHUNK):
        scores = queries @ chunk(n, dim, c, centres).T
        top = np.argpartition(-scores, 4, axis=1)[:, :5]
        all_scores = np.hstack([best_scores, np.take_along_axis(scores, top, 1)])
        all_ids = np.hstack([best_ids, top + c * CHUNK])
        keep = np.argsort(-all_scores, axis=1)[:, :5]
        best_scores, best_ids = np.take_along_axis(all_scores, keep, 1), np.take_along_axis(all_ids, keep, 1)
    return best_ids


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run(n: int, dim: int, n_queries: int) -> list[dict]:
    centres = np.random.default_rng(dim).normal(size=(max(1, n // 4), dim)).astype(np.float32)
    queries = queries_for(n_queries, centres)
    truth = exact_top5(n, dim, centres, queries[:1000])
    rows = []
    for label, spec in KINDS.items():
        start = time.perf_counter()
        index = make_index(spec, n, dim)
        if not index.is_trained:
            sample = np.vstack([chunk(n, dim, c, centres) for c in range(min(3, (n + CHUNK - 1) // CHUNK))])
            index.train(sample[: max(40 * faiss.extract_index_ivf(index).nlist, 50_000)])
        for c in range((n + CHUNK - 1) // CHUNK):
            index.add(chunk(n, dim, c, centres))
        after_fill(index)
        set_search_parameters(index, spec.resolve(n))
        build = time.perf_counter() - start
        start = time.perf_counter()
        _, found = index.search(queries, 5)
        search = time.perf_counter() - start
        recall = float(np.mean([len(set(t) & set(f)) / 5 for t, f in zip(truth, found[:1000])]))
        rows.append({"n": n, "dim": dim, "index": label, "factory": spec.factory(n, dim),
                     "build_s": round(build, 1), "index_gib": round(faiss.serialize_index(index).nbytes / 2**30, 3),
                     "peak_rss_gib": round(peak_rss_gib(), 2), "queries_per_s": round(len(queries) / search, 1),
                     "recall@5": round(recall, 4)})
        print(json.dumps(rows[-1]), flush=True)
        del index
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[384])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    args = parser.parse_args(argv)
    for label in list(KINDS):
        if label not in args.kinds:
            del KINDS[label]
    rows = [row for n in args.sizes for dim in args.dims for row in run(n, dim, args.queries)]
    record = {"rows": rows, "queries": args.queries, "machine": describe_cpu(), "faiss": faiss.__version__,
              "faiss_threads": faiss.omp_get_max_threads(), "date": time.strftime("%Y-%m-%d")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(record, indent=2))
    print("| n | dim | index | build s | index GiB | peak RSS GiB | queries/s | recall@5 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']:,} | {r['dim']} | {r['index']} | {r['build_s']} | {r['index_gib']} | {r['peak_rss_gib']} | "
              f"{r['queries_per_s']} | {r['recall@5']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
