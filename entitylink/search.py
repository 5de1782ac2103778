"""Vector search backends: which FAISS index to build for a dictionary of a given size.

| kind | FAISS | use |
|---|---|---|
| ``flat`` | ``IndexFlatIP`` (exact) | up to a few hundred thousand names |
| ``hnsw`` | ``HNSW32,Flat`` graph | millions of names, high recall, no training |
| ``ivf`` | ``IVF{nlist},Flat`` inverted lists | millions of names, trained on a sample |
| ``ivfpq`` | ``IVF{nlist},PQ{m}`` product quantisation | tens of millions, least memory, lower recall |

``float16=True`` stores vectors as half floats (``SQfp16``), halving memory at a cosine error
of about 1e-3. ``auto`` picks ``flat`` up to 200,000 names and ``hnsw`` with float16 above.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Literal

import faiss

Kind = Literal["auto", "flat", "hnsw", "ivf", "ivfpq"]
KINDS = ("auto", "flat", "hnsw", "ivf", "ivfpq")
AUTO_FLAT_LIMIT = 200_000


@dataclass(frozen=True)
class SearchSpec:
    """How the dictionary's vectors are indexed and searched (saved with the index).

    Args:
        kind: ``auto``, ``flat``, ``hnsw``, ``ivf`` or ``ivfpq`` (see the module table).
        float16: store vectors as float16 (``flat``, ``hnsw``, ``ivf``).
        hnsw_m, ef_construction, ef_search: HNSW graph degree and search breadth.
        nlist, nprobe: IVF lists (``None`` = 4·√n) and lists searched per query.
        pq_m: PQ sub-quantisers (``None`` = dim / 8; must divide dim).
    """

    kind: Kind = "auto"
    float16: bool = False
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128
    nlist: int | None = None
    nprobe: int = 32
    pq_m: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"search kind must be one of {KINDS}, not {self.kind!r}")

    def resolve(self, n: int) -> SearchSpec:
        """A concrete spec (no ``auto``) for ``n`` vectors."""
        if self.kind != "auto":
            return self
        if n <= AUTO_FLAT_LIMIT:
            return replace(self, kind="flat")
        return replace(self, kind="hnsw", float16=True)

    def factory(self, n: int, dim: int) -> str:
        """The FAISS ``index_factory`` string for ``n`` vectors of dimension ``dim``."""
        spec = self.resolve(n)
        storage = "SQfp16" if spec.float16 else "Flat"
        if spec.kind == "flat":
            return "Flat" if not spec.float16 else "SQfp16"
        if spec.kind == "hnsw":
            return f"HNSW{spec.hnsw_m},{storage}"
        nlist = spec.nlist or max(1, int(4 * math.sqrt(n)))
        if spec.kind == "ivf":
            return f"IVF{nlist},{storage}"
        pq_m = spec.pq_m or max(1, dim // 8)
        if dim % pq_m:
            raise ValueError(f"pq_m={pq_m} must divide the dimension {dim}")
        return f"IVF{nlist},PQ{pq_m}"

    def to_dict(self) -> dict:
        return asdict(self)


def make_index(spec: SearchSpec, n: int, dim: int) -> faiss.Index:
    """An empty FAISS index (inner product) for ``n`` vectors; IVF kinds still need ``train``."""
    index = faiss.index_factory(dim, spec.factory(n, dim), faiss.METRIC_INNER_PRODUCT)
    if spec.resolve(n).kind == "hnsw":
        faiss.downcast_index(index).hnsw.efConstruction = spec.ef_construction
    return index


def training_size(index: faiss.Index, n: int) -> int:
    """How many vectors to train an untrained index on (0 when it needs none)."""
    if index.is_trained:
        return 0
    ivf = faiss.extract_index_ivf(index)
    return min(n, max(40 * ivf.nlist, 10_000))


def after_fill(index: faiss.Index) -> None:
    """Make stored vectors reconstructable (IVF keeps a direct map from ids to list entries)."""
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return
    if ivf.direct_map.type == faiss.DirectMap.NoMap:
        ivf.make_direct_map()


def set_search_parameters(index: faiss.Index, spec: SearchSpec) -> None:
    """Apply the spec's query-time settings (efSearch for HNSW, nprobe for IVF)."""
    params = faiss.ParameterSpace()
    kind = spec.kind
    if kind == "hnsw":
        params.set_index_parameter(index, "efSearch", spec.ef_search)
    elif kind in ("ivf", "ivfpq"):
        params.set_index_parameter(index, "nprobe", spec.nprobe)


def describe(index: faiss.Index) -> str:
    """A short name of the FAISS index class, for ``meta.json`` and ``entitylink info``."""
    return type(faiss.downcast_index(index)).__name__
