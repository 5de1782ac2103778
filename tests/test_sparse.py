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
