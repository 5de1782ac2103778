"""Vector search backends: which FAISS index to build for a dictionary of a given size.

| kind | FAISS | use |
|---|---|---|
| ``flat`` | ``IndexFlatIP`` (exact) | up to a few hundred thousand names |
| ``hnsw`` | ``HNSW32,Flat`` graph | millions of names, high recall, no training |
| ``ivf`` | ``IVF{nlist},Flat`` inverted lists | millions of names, trained on a sample |
| ``ivfpq`` | ``IVF{nlist},PQ{m}x4fs`` 4-bit fast-scan codes | tens of millions, least memory |

Options that apply to every kind but ``flat``:

- ``float16=True`` stores vectors as half floats (``SQfp16``), halving memory at a cosine error
  of about 1e-3.
- ``pca=d`` builds the graph or lists on the first ``d`` principal axes (``PCA{d},...``), which
  makes each distance several times cheaper; it needs ``rerank``.
- ``rerank=r`` re-scores the best ``k·r`` candidates with the full stored vectors (``Refine``), so
  the final scores are exact (or float16) inner products.

The IVF kinds find their lists by exact (BLAS) search over the centroids: an HNSW graph there was
both slower and lost recall at 1M × 768. ``auto`` picks ``flat`` up to 200,000 names. Above, for vectors of
fewer than 512 dimensions (MiniLM) it picks ``hnsw`` over float16 vectors; for 512 or more (BERT-base
models) ``ivfpq`` on 256 principal axes with 8·√n lists, ``nprobe`` = lists / 20 and ``rerank=40``
over float16 vectors (``PCA256,IVF16000,PQ64x4fs,Refine(SQfp16)`` at 4M names), which had the best
recall for its speed at 1M and 4M × 768 in ``benchmarks/scale.py`` (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import faiss

Kind = Literal["auto", "flat", "hnsw", "ivf", "ivfpq"]
KINDS = ("auto", "flat", "hnsw", "ivf", "ivfpq")
AUTO_FLAT_LIMIT = 200_000
AUTO_CODES_MIN_DIM = 512
AUTO_RERANK = 40
AUTO_PCA = 256
NLIST_PER_ROOT = 4  # nlist = 4·√n lists
AUTO_NLIST_PER_ROOT = 8  # auto: 8·√n lists
AUTO_PROBE_SHARE = 20  # nprobe = nlist / 20


@dataclass(frozen=True)
class SearchSpec:
    """How the dictionary's vectors are indexed and searched (saved with the index).

    Args:
        kind: ``auto``, ``flat``, ``hnsw``, ``ivf`` or ``ivfpq`` (see the module table).
        float16: store vectors as float16 (``flat``, ``hnsw``, ``ivf``, and ``ivfpq``'s rerank vectors).
        hnsw_m, ef_construction, ef_search: HNSW graph degree and search breadth.
        nlist, nprobe: IVF lists (``None`` = 4·√n) and lists searched per query.
        pq_m: PQ sub-quantisers of 4 bits each (``None`` = dim / 4; must divide the searched dim).
        pca: search on this many principal axes (``None`` = all); needs ``rerank``.
        rerank: re-score ``k·rerank`` candidates with the full stored vectors (0 = off).
    """

    kind: Kind = "auto"
    float16: bool = False
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128
    nlist: int | None = None
    nprobe: int = 32
    pq_m: int | None = None
    pca: int | None = None
    rerank: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"search kind must be one of {KINDS}, not {self.kind!r}")
        if self.rerank < 0:
            raise ValueError(f"rerank must be 0 (off) or a positive factor, not {self.rerank}")
        if self.pca is not None and self.pca < 1:
            raise ValueError(f"pca must be a positive number of axes, not {self.pca}")
        if self.pca and not self.rerank:
            raise ValueError("pca needs rerank (e.g. rerank=10): scores on the principal axes alone are approximate")

    def resolve(self, n: int, dim: int = 0) -> SearchSpec:
        """A concrete spec (no ``auto``) for ``n`` vectors of dimension ``dim``."""
        if self.kind != "auto":
            return self
        if n <= AUTO_FLAT_LIMIT:
            return replace(self, kind="flat")
        if dim >= AUTO_CODES_MIN_DIM:
            nlist = self.nlist or _lists(n, AUTO_NLIST_PER_ROOT)
            return replace(self, kind="ivfpq", float16=True, pca=self.pca or AUTO_PCA, nlist=nlist,
                           rerank=self.rerank or AUTO_RERANK, nprobe=max(self.nprobe, nlist // AUTO_PROBE_SHARE))
        return replace(self, kind="hnsw", float16=True)

    def factory(self, n: int, dim: int) -> str:
        """The FAISS ``index_factory`` string for ``n`` vectors of dimension ``dim``."""
        spec = self.resolve(n, dim)
        storage = "SQfp16" if spec.float16 else "Flat"
        if spec.kind == "flat":
            return storage
        if spec.pca and spec.pca >= dim:
            raise ValueError(f"pca={spec.pca} must be below the dimension {dim}")
        searched = spec.pca or dim
        prefix = f"PCA{spec.pca}," if spec.pca else ""
        nlist = spec.nlist or _lists(n, NLIST_PER_ROOT)
        if spec.kind == "hnsw":
            body = f"HNSW{spec.hnsw_m},{storage}"
        elif spec.kind == "ivf":
            body = f"IVF{nlist},{storage}"
        else:
            pq_m = spec.pq_m or max(1, searched // 4)
            if searched % pq_m:
                raise ValueError(f"pq_m={pq_m} must divide the searched dimension {searched}")
            body = f"IVF{nlist},PQ{pq_m}x4fs"
        return f"{prefix}{body},Refine({storage})" if spec.rerank else prefix + body

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, search: SearchSpec | str) -> SearchSpec:
        """``search`` itself, or the spec of that kind name."""
        return cls(kind=search) if isinstance(search, str) else search


def _lists(n: int, per_root: int) -> int:
    """IVF lists for ``n`` vectors: ``per_root``·√n."""
    return max(1, int(per_root * math.sqrt(n)))


def make_index(spec: SearchSpec, n: int, dim: int) -> faiss.Index:
    """An empty FAISS index (inner product) for ``n`` vectors; IVF kinds still need ``train``."""
    import faiss

    index = faiss.index_factory(dim, spec.factory(n, dim), faiss.METRIC_INNER_PRODUCT)
    if spec.resolve(n, dim).kind == "hnsw":
        _hnsw_of(index).hnsw.efConstruction = spec.ef_construction
    return index


def _hnsw_of(index: faiss.Index) -> faiss.Index:
    """The HNSW index inside optional Refine and PCA wrappers."""
    import faiss

    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        index = faiss.downcast_index(index.base_index)
    if isinstance(index, faiss.IndexPreTransform):
        index = faiss.downcast_index(index.index)
    return index


def training_size(index: faiss.Index, n: int) -> int:
    """How many vectors to train an untrained index on (0 when it needs none)."""
    import faiss

    if index.is_trained:
        return 0
    try:
        return min(n, max(40 * faiss.extract_index_ivf(index).nlist, 10_000))
    except RuntimeError:  # PCA only
        return min(n, 50_000)


def after_fill(index: faiss.Index) -> None:
    """Make stored vectors reconstructable (IVF keeps a direct map from ids to list entries)."""
    import faiss

    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return
    if ivf.direct_map.type == faiss.DirectMap.NoMap:
        ivf.make_direct_map()


def set_search_parameters(index: faiss.Index, spec: SearchSpec) -> None:
    """Apply the spec's query-time settings (efSearch for HNSW, nprobe for IVF, the rerank factor)."""
    import faiss

    params = faiss.ParameterSpace()
    kind = spec.kind
    if kind == "hnsw":
        params.set_index_parameter(index, "efSearch", spec.ef_search)
    elif kind in ("ivf", "ivfpq"):
        params.set_index_parameter(index, "nprobe", spec.nprobe)
    if spec.rerank and isinstance(faiss.downcast_index(index), faiss.IndexRefine):
        faiss.downcast_index(index).k_factor = spec.rerank


def describe(index: faiss.Index) -> str:
    """A short name of the FAISS index class, for ``meta.json`` and ``entitylink info``."""
    import faiss

    return type(faiss.downcast_index(index)).__name__
