"""Search at scale: FAISS index kinds on simulated dictionaries of name embeddings (issue 7).

    python -m benchmarks.scale --sizes 100000 1000000 --dims 384 768
    python -m benchmarks.scale --sizes 4000000 --dims 768 --kinds "hnsw pca fp16 rerank"

The vectors come from ``benchmarks/simulate.py`` (clustered and anisotropic like real name embeddings,
calibrated against MiniLM embeddings of MEDIC + HPO), generated chunk by chunk, so a 4M x 768 run never
holds a float32 copy of the whole set; the exact top 5 (for recall) streams over the same chunks. For
every size, dimension and kind the index is built once (seconds, memory it added to the process, bytes
on disk), then searched with each query-time setting: queries/s over all cores (10,000 queries in one
batch, best of 2) and recall@5 of the first 1,000 against exact search.

``--real medic:DIR/medic/medic_06Jul2012.txt hpo`` adds the same table for real embeddings: the
distinct names of those ontologies encoded with the packaged MiniLM, 2,000 of them held out as queries.
That is how the simulation was calibrated.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from benchmarks._record import markdown_table, write_record
from benchmarks.simulate import SimulatedDictionary, recall_at
from entitylink.index.search import SearchSpec, after_fill, make_index, set_search_parameters, training_size

# label -> (spec, query-time settings to try on the one built index). Besides the defaults, the
# variants of IVF-PQ that led to ``auto``'s choice for 512+ dimensions (benchmarks/README.md).
KINDS: dict[str, tuple[SearchSpec, tuple[dict, ...]]] = {
    "flat fp32 (exact)": (SearchSpec(kind="flat"), ({},)),
    "hnsw fp16": (SearchSpec(kind="hnsw", float16=True), tuple({"ef_search": ef} for ef in (64, 128, 256))),
    "hnsw pca fp16 rerank": (SearchSpec(kind="hnsw", float16=True, pca=192, rerank=10),
                             tuple({"ef_search": ef} for ef in (64, 128, 256, 512))
                             + tuple({"ef_search": ef, "rerank": 40} for ef in (128, 256))),
    "ivfpq fp16 rerank": (SearchSpec(kind="ivfpq", float16=True, rerank=40),
                          tuple({"nprobe": n} for n in (64, 128, 256, 512))),
    "ivfpq pca fp16 rerank": (SearchSpec(kind="ivfpq", float16=True, pca=256, rerank=40),
                              tuple({"nprobe": n, "rerank": r} for n in (64, 128, 256, 512) for r in (40, 80, 160))),
    "auto": (SearchSpec(), ({},)),
    "ivfpq pca nlist4000 fp16 rerank": (SearchSpec(kind="ivfpq", float16=True, pca=256, nlist=4000, rerank=40),
                                        tuple({"nprobe": n} for n in (128, 192, 256, 384))),
    "ivfpq pca nlist16000 fp16 rerank": (SearchSpec(kind="ivfpq", float16=True, pca=256, nlist=16000, rerank=40),
                                         tuple({"nprobe": n} for n in (512, 768, 1024, 1536))),
    "ivfpq pca pq32 fp16 rerank": (SearchSpec(kind="ivfpq", float16=True, pca=256, pq_m=32, rerank=40),
                                   tuple({"nprobe": n, "rerank": r} for n in (512, 1024) for r in (20, 40, 80))),
    "ivfpq pq96 fp16 rerank": (SearchSpec(kind="ivfpq", float16=True, pq_m=96, rerank=40),
                               tuple({"nprobe": n, "rerank": r} for n in (256, 512) for r in (20, 40))),
    "ivfpq pca384 fp16 rerank": (SearchSpec(kind="ivfpq", float16=True, pca=384, rerank=40),
                                 tuple({"nprobe": n, "rerank": r} for n in (128, 256) for r in (40, 80))),
}
DEFAULT_KINDS = ("flat fp32 (exact)", "hnsw fp16", "hnsw pca fp16 rerank", "auto")
EXACT_QUERY_LIMIT = 1000


class RealDictionary:
    """MiniLM embeddings of the distinct names of some ontologies, 2,000 of them held out as queries."""

    def __init__(self, specs: list[str]):
        from entitylink import Encoder, Ontology

        names = sorted({name.lower() for spec in specs for name in Ontology.load(spec).names})
        x = Encoder("default").encode(names, show_progress=False).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        order = np.random.default_rng(0).permutation(len(x))
        self._queries, self._base = x[order[:2000]], x[order[2000:]]
        self.n, self.dim = len(self._base), x.shape[1]

    def chunks(self):
        yield self._base

    def sample(self, rows: int) -> np.ndarray:
        return self._base[:rows]

    def queries(self, count: int) -> np.ndarray:
        return self._queries[:count]

    def exact_top(self, queries: np.ndarray, k: int = 5) -> np.ndarray:
        scores = queries @ self._base.T
        return np.argsort(-scores, axis=1)[:, :k]


def rss_gib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def disk_gib(index: faiss.Index) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.faiss"
        faiss.write_index(index, str(path))
        return path.stat().st_size / 2**30


def fitted(spec: SearchSpec, dim: int) -> SearchSpec:
    if spec.pca and spec.pca >= dim:
        return SearchSpec(**{**spec.to_dict(), "pca": dim // 2})
    return spec


def run(data, label: str, queries: np.ndarray, truth: np.ndarray) -> list[dict]:
    spec, settings = KINDS[label]
    spec = fitted(spec, data.dim).resolve(data.n, data.dim)
    before = rss_gib()
    start = time.perf_counter()
    index = make_index(spec, data.n, data.dim)
    n_train = training_size(index, data.n)
    if n_train:
        index.train(data.sample(n_train))
    for x in data.chunks():
        index.add(x)
    after_fill(index)
    build = time.perf_counter() - start
    added = rss_gib() - before
    on_disk = disk_gib(index)
    if spec.kind == "flat":
        queries = queries[:EXACT_QUERY_LIMIT]
    rows = []
    for change in settings:
        set_search_parameters(index, SearchSpec(**{**spec.to_dict(), **change}))
        times = []
        for _ in range(2):
            start = time.perf_counter()
            _, found = index.search(queries, 5)
            times.append(time.perf_counter() - start)
        rows.append({"n": data.n, "dim": data.dim, "index": label, "factory": spec.factory(data.n, data.dim),
                     "setting": " ".join(f"{k}={v}" for k, v in change.items()), "build_s": round(build, 1),
                     "memory_gib": round(added, 2), "disk_gib": round(on_disk, 2),
                     "peak_rss_gib": round(peak_rss_gib(), 2), "queries": len(queries),
                     "queries_per_s": round(len(queries) / min(times)),
                     "recall@5": round(recall_at(truth, found[:1000]), 4)})
        print(json.dumps(rows[-1]), flush=True)
    del index
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[384])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--kinds", nargs="+", default=list(DEFAULT_KINDS), choices=list(KINDS),
                        help=f"index kinds to build (default: {', '.join(DEFAULT_KINDS)})")
    parser.add_argument("--real", nargs="+", metavar="SPEC", help="ontologies whose MiniLM embeddings to run on too")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    args = parser.parse_args(argv)
    datasets = [RealDictionary(args.real)] if args.real else []
    datasets += [SimulatedDictionary(n, dim) for n in args.sizes for dim in args.dims]
    rows: list[dict] = []
    for data in datasets:
        if isinstance(data, RealDictionary):
            source = "real: " + " + ".join(spec.split("/")[-1] for spec in args.real)
        else:
            source = "simulated"
        queries = data.queries(args.queries)
        truth = data.exact_top(queries[:1000])
        for label in args.kinds:
            rows += [{**row, "data": source} for row in run(data, label, queries, truth)]
            write_record(args.out, {"rows": rows, "faiss": faiss.__version__,
                                    "faiss_threads": faiss.omp_get_max_threads()}, argv)
    header = ["data", "n", "dim", "index", "setting", "build s", "memory GiB", "queries/s", "recall@5"]
    print(markdown_table(header, ([r["data"], f"{r['n']:,}", r["dim"], r["factory"], r["setting"], r["build_s"],
                                   r["memory_gib"], f"{r['queries_per_s']:,}", r["recall@5"]] for r in rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
