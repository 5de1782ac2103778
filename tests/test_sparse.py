import numpy as np
import pytest

from entitylink import DictionaryIndex, Linker, Ontology
from entitylink.index import HybridIndex, SparseIndex


def test_tfidf_links_spelling_variants(medic_example):
    linker = Linker(SparseIndex.build(medic_example), k=3)
    results = linker.link(["Alzheimers disease", "hypertensoin", "breast cancers", ""])
    assert [r[0].concept_id for r in results[:3]] == ["D000544", "D006973", "D001943"]
    assert results[3] == []
    scores = [c.score for c in results[0]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1.0001


def test_sparse_search_returns_sorted_top_k(medic_example):
    index = SparseIndex.build(medic_example)
    queries = index.prepare(["heart attack", "fits"])
    scores, positions = index.search(queries, 4)
    full = index.scores(queries)
    for row in range(2):
        assert np.allclose(scores[row], np.sort(full[row])[::-1][:4], atol=1e-6)
        assert index.texts[positions[row, 0]] in ("heart attack", "fits")


def test_hybrid_scores_are_the_weighted_sum(medic_example, tiny_encoder):
    dense = DictionaryIndex.build(medic_example, tiny_encoder)
    hybrid = HybridIndex(dense, sparse_weight=0.7, pool=8)
    queries = hybrid.prepare(["heart atack"])
    scores, positions = hybrid.search(queries, 3)
    pos = positions[0, 0]
    expected = float(dense.vectors(np.array([pos]))[0] @ queries.dense[0]) + 0.7 * hybrid.sparse.scores(
        queries.sparse)[0, pos]
    assert scores[0, 0] == pytest.approx(expected, abs=1e-5)
    assert Linker(hybrid).link("heart atack", k=1)[0].concept_id == "D009203"


def test_weight_zero_is_the_dense_ranking(medic_example, tiny_encoder):
    dense = DictionaryIndex.build(medic_example, tiny_encoder)
    mentions = ["kidney failure", "fits", "low blood pressure"]
    plain = Linker(dense).link(mentions, k=3)
    fused = Linker(HybridIndex(dense, sparse_weight=0.0)).link(mentions, k=3)
    assert [[c.concept_id for c in r] for r in plain] == [[c.concept_id for c in r] for r in fused]


def test_misaligned_sparse_index_is_rejected(medic_example, tiny_encoder):
    dense = DictionaryIndex.build(medic_example, tiny_encoder)
    other = SparseIndex.build(Ontology.from_pairs([("A", "fever")]))
    with pytest.raises(ValueError, match="must list the dense index's entries"):
        HybridIndex(dense, other)


@pytest.mark.parametrize("search", [
    "hnsw", "ivf", {"kind": "ivfpq", "nlist": 4, "nprobe": 4, "pq_m": 8, "rerank": 8, "float16": True}])
def test_hybrid_over_an_approximate_dense_index(medic_example, tiny_encoder, search):
    """Fusion needs the stored vectors of each candidate: approximate kinds give them back too."""
    from entitylink.index.search import SearchSpec

    spec = SearchSpec(**search) if isinstance(search, dict) else search
    approximate = DictionaryIndex.build(medic_example, tiny_encoder, search=spec)
    exact = DictionaryIndex.build(medic_example, tiny_encoder, search="flat")
    assert approximate.meta["faiss"] != exact.meta["faiss"]
    mentions = ["heart atack", "kidney failure", "fits", "breast cancers", "low blood pressure"]
    hybrid = HybridIndex(approximate, sparse_weight=0.5, pool=len(approximate))  # the pool covers every entry
    queries = hybrid.prepare(mentions)
    scores, positions = hybrid.search(queries, 3)
    stored = approximate.vectors(positions[:, 0])
    sparse = hybrid.sparse.scores(queries.sparse)
    for row, pos in enumerate(positions[:, 0]):
        expected = float(stored[row] @ queries.dense[row]) + 0.5 * sparse[row, pos]
        assert scores[row, 0] == pytest.approx(expected, abs=2e-3)  # float16 storage: 1e-3-ish
    reference = Linker(HybridIndex(exact, sparse_weight=0.5, pool=len(exact))).link(mentions, k=1)
    assert [r[0].concept_id for r in Linker(hybrid).link(mentions, k=1)] == [r[0].concept_id for r in reference]
