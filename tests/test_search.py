"""FAISS index kinds: recall against exact search, float16 storage, save/load with their parameters."""

import numpy as np
import pytest

from entitylink import DictionaryIndex, Linker
from entitylink.index.search import SearchSpec, after_fill, make_index, set_search_parameters, training_size


def clustered(n: int, dim: int, seed: int = 0, decay: float = 0.0) -> np.ndarray:
    """Unit vectors in clusters of ~4, like several names per concept; ``decay`` > 0 makes the
    variance fall off over the axes, as it does in real embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n // 4, dim)) * np.arange(1, dim + 1) ** -decay
    x = centres[rng.integers(0, len(centres), n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall_at_5(spec: SearchSpec, base: np.ndarray, queries: np.ndarray) -> float:
    exact = make_index(SearchSpec(kind="flat"), len(base), base.shape[1])
    exact.add(base)
    index = make_index(spec, len(base), base.shape[1])
    if training_size(index, len(base)):
        index.train(base)
    index.add(base)
    after_fill(index)
    set_search_parameters(index, spec.resolve(len(base), base.shape[1]))
    _, truth = exact.search(queries, 5)
    _, found = index.search(queries, 5)
    return float(np.mean([len(set(t) & set(f)) / 5 for t, f in zip(truth, found)]))


@pytest.mark.parametrize(
    "spec, minimum",
    [
        (SearchSpec(kind="flat", float16=True), 0.99),
        (SearchSpec(kind="hnsw"), 0.97),
        (SearchSpec(kind="hnsw", float16=True), 0.97),
        (SearchSpec(kind="ivf", nlist=32, nprobe=16), 0.9),
        (SearchSpec(kind="ivfpq", nlist=32, nprobe=16), 0.15),  # 4-bit codes alone; chance is 5/4000
        (SearchSpec(kind="ivfpq", nlist=32, nprobe=32, rerank=100, float16=True), 0.97),  # rerank buys it back
        (SearchSpec(kind="hnsw", pca=16, rerank=50, float16=True), 0.95),
    ],
    ids=["flat-fp16", "hnsw", "hnsw-fp16", "ivf", "ivfpq", "ivfpq-rerank", "hnsw-pca-rerank"],
)
def test_recall_against_exact_search(spec, minimum):
    decay = 0.5 if spec.pca else 0.0
    base = clustered(4000, 32, decay=decay)
    queries = clustered(300, 32, seed=1, decay=decay)
    assert recall_at_5(spec, base, queries) >= minimum


def test_auto_is_exact_for_small_and_hnsw_float16_for_large():
    assert SearchSpec().resolve(50_000, 384).kind == "flat"
    small_dim = SearchSpec().resolve(4_000_000, 384)
    assert (small_dim.kind, small_dim.float16, small_dim.pca, small_dim.rerank) == ("hnsw", True, None, 0)
    large = SearchSpec().resolve(4_000_000, 768)
    assert (large.kind, large.float16, large.pca, large.nlist, large.nprobe, large.rerank) == \
        ("ivfpq", True, 256, 16_000, 800, 40)
    assert large.factory(4_000_000, 768) == "PCA256,IVF16000,PQ64x4fs,Refine(SQfp16)"
    assert SearchSpec(nprobe=1000).resolve(4_000_000, 768).nprobe == 1000
    assert SearchSpec(nlist=2000).resolve(4_000_000, 768).nprobe == 100
    assert SearchSpec(kind="ivf").factory(1_000_000, 768) == "IVF4000,Flat"
    assert SearchSpec(kind="ivfpq").factory(1_000_000, 768) == "IVF4000,PQ192x4fs"
    assert SearchSpec(kind="ivfpq", pca=128, rerank=4).factory(1_000_000, 768) == \
        "PCA128,IVF4000,PQ32x4fs,Refine(Flat)"
    with pytest.raises(ValueError, match="search kind must be one of"):
        SearchSpec(kind="annoy")
    with pytest.raises(ValueError, match="must divide"):
        SearchSpec(kind="ivfpq", pq_m=7).factory(1000, 32)
    with pytest.raises(ValueError, match="rerank"):
        SearchSpec(kind="ivfpq", rerank=-1)
    with pytest.raises(ValueError, match="pca needs rerank"):
        SearchSpec(kind="hnsw", pca=16)
    with pytest.raises(ValueError, match="below the dimension"):
        SearchSpec(kind="hnsw", pca=32, rerank=4).factory(1000, 32)


@pytest.mark.parametrize("spec", [SearchSpec(kind="hnsw", float16=True, ef_search=64),
                                  SearchSpec(kind="ivf", nlist=4, nprobe=2),
                                  SearchSpec(kind="ivfpq", nlist=4, nprobe=4, rerank=10, float16=True),
                                  SearchSpec(kind="hnsw", pca=8, rerank=10)],
                         ids=["hnsw", "ivf", "ivfpq-rerank", "hnsw-pca"])
def test_index_kinds_save_load_and_link(spec, medic_example, tiny_encoder, tmp_path):
    index = DictionaryIndex.build(medic_example, tiny_encoder, search=spec, chunk_size=50)
    assert index.meta["search"]["kind"] == spec.kind and index.faiss_index.ntotal == len(index)
    index.save(tmp_path / "idx")
    loaded = DictionaryIndex.load(tmp_path / "idx", encoder=tiny_encoder)
    assert loaded.meta["faiss_factory"] == index.meta["faiss_factory"]
    np.testing.assert_allclose(loaded.vectors(np.arange(3)), index.vectors(np.arange(3)), atol=2e-3)
    linker = Linker(loaded, k=3)
    assert linker.link("NIDDM")[0].concept_id == "D003924"
    assert len(linker.link("heart disease")) == 3


def test_chunked_build_equals_one_chunk(medic_example, tiny_encoder):
    whole = DictionaryIndex.build(medic_example, tiny_encoder)
    chunked = DictionaryIndex.build(medic_example, tiny_encoder, chunk_size=7)
    ids = np.arange(len(whole))
    np.testing.assert_allclose(whole.vectors(ids), chunked.vectors(ids), atol=1e-5)
