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


def test_top_k_sparse_search_matches_the_dense_product(medic_example):
    index = SparseIndex.build(medic_example)
    queries = index.prepare(["heart attack", "fits", "alzheimer", "zzzz qqq", "breast and ovarian cancer"])
    scores, positions = index.search(queries, 6)
    full = index.scores(queries)
    for row in range(queries.shape[0]):
        best = np.sort(full[row])[::-1][:6]
        found = positions[row] >= 0
        assert np.allclose(scores[row][found], best[: found.sum()], atol=1e-5)
        assert (best[found.sum():] <= 1e-9).all()  # only zero-score entries are left out
        assert np.allclose(full[row, positions[row][found]], scores[row][found], atol=1e-5)


def test_hybrid_index_saves_and_loads_with_its_policy(medic_example, tiny_encoder, tmp_path):
    from entitylink import LinkingPolicy

    dense = DictionaryIndex.build(medic_example, tiny_encoder)
    linker = Linker(HybridIndex(dense), LinkingPolicy(k=3, sparse_weight=0.3))
    mentions = ["heart atack", "hypertensoin", "kidney failure", "fits"]
    expected = linker.link(mentions)
    linker.save(tmp_path / "hybrid")
    assert (tmp_path / "hybrid" / "sparse" / "matrix.npz").is_file()
    loaded = Linker.load(tmp_path / "hybrid", precision="fp32")
    assert isinstance(loaded.index, HybridIndex) and loaded.policy.sparse_weight == 0.3
    assert loaded.link(mentions) == expected
    def rounded(results):
        return [[(c.concept_id, round(c.score, 5)) for c in r] for r in results]

    dense_only = rounded(Linker.load(tmp_path / "hybrid", precision="fp32", sparse_weight=0.0).link(mentions))
    assert dense_only == rounded(Linker(dense, k=3).link(mentions))  # a weight of 0 is the dense ranking
    assert rounded(loaded.link(mentions, sparse_weight=0.0)) == dense_only


def test_a_sparse_weight_without_a_sparse_half_is_a_clear_error(medic_example, tiny_encoder, tmp_path):
    from entitylink import EntityLinkError

    Linker(DictionaryIndex.build(medic_example, tiny_encoder)).save(tmp_path / "dense")
    with pytest.raises(EntityLinkError, match="needs an index with a sparse half"):
        Linker.load(tmp_path / "dense", precision="fp32", sparse_weight=0.2)
    with pytest.raises(EntityLinkError, match="--sparse-weight"):
        Linker.load(tmp_path / "dense", precision="fp32").link("fits", sparse_weight=0.2)


def test_added_names_reach_both_halves(medic_example, tiny_encoder):
    hybrid = HybridIndex(DictionaryIndex.build(medic_example, tiny_encoder), sparse_weight=1.0)
    assert hybrid.add(Ontology.from_pairs([("NEW1", "zebra stripe syndrome")])) == 1
    assert len(hybrid.sparse) == len(hybrid.dense) and hybrid.sparse.matrix.shape[0] == len(hybrid.dense)
    assert Linker(hybrid).link("zebra stripe syndrom", k=1)[0].concept_id == "NEW1"
