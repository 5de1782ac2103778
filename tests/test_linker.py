import numpy as np
import pytest

from entitylink import Candidate, DictionaryIndex, Linker, Ontology


@pytest.fixture
def linker(medic_example, tiny_encoder):
    return Linker(DictionaryIndex.build(medic_example, tiny_encoder), k=5)


def test_exact_names_link_to_their_concept(linker):
    results = linker.link(["NIDDM", "Heart Attack", "breast cancer"], k=3)
    assert [r[0].concept_id for r in results] == ["D003924", "D009203", "D001943"]
    assert results[0][0].name == "NIDDM" and results[0][0].score == pytest.approx(1.0, abs=1e-4)
    assert all(isinstance(c, Candidate) for r in results for c in r)


def test_k_distinct_concepts_sorted_by_score(linker):
    for cands in linker.link(["heart disease", "cancer of the ovary", "fits"], k=7):
        ids = [c.concept_id for c in cands]
        assert len(ids) == 7 == len(set(ids))
        scores = [c.score for c in cands]
        assert scores == sorted(scores, reverse=True)


def test_search_widens_when_one_concept_has_many_names(tiny_encoder):
    many = [("BIG", f"heart {i} attack {i}") for i in range(100)] + [("SMALL1", "fever"), ("SMALL2", "cough")]
    linker = Linker(DictionaryIndex.build(Ontology.from_pairs(many), tiny_encoder))
    cands = linker.link("heart 5 attack 5", k=3)
    assert sorted(c.concept_id for c in cands) == ["BIG", "SMALL1", "SMALL2"]


def test_k_larger_than_the_dictionary(tiny_encoder):
    linker = Linker(DictionaryIndex.build(Ontology.from_pairs([("A", "fever"), ("B", "cough")]), tiny_encoder))
    assert len(linker.link("fever", k=10)) == 2


def test_empty_and_odd_mentions_do_not_crash(linker):
    results = linker.link(["", "   ", "!!!", "fits", "🙂 heart"])
    assert results[:3] == [[], [], []]
    assert results[3] and results[4]
    assert linker.link([]) == []


def test_mentions_are_normalised_like_names(linker):
    a = linker.link("HEART-ATTACK")
    b = linker.link("heart attack")
    assert [c.concept_id for c in a] == [c.concept_id for c in b]
    np.testing.assert_allclose([c.score for c in a], [c.score for c in b], atol=1e-5)


def test_link_frame(linker):
    frame = linker.link_frame(["fits", "asthma"], k=2)
    assert list(frame.columns) == ["mention", "rank", "concept_id", "name", "score"]
    assert frame["rank"].tolist() == [1, 2, 1, 2]


def test_bad_k(linker):
    with pytest.raises(ValueError, match="k must be an integer of at least 1"):
        linker.link("fits", k=0)


def test_loaded_linker_matches_built_one(linker, tmp_path):
    linker.index.save(tmp_path / "idx")
    loaded = Linker.load(tmp_path / "idx", precision="fp32")
    mentions = ["fits", "kidney failure", "low blood pressure"]
    for got, want in zip(loaded.link(mentions), linker.link(mentions)):
        assert [(c.concept_id, c.name) for c in got] == [(c.concept_id, c.name) for c in want]
        assert [c.score for c in got] == pytest.approx([c.score for c in want], abs=1e-5)


def test_evaluate_links_composite_parts_in_one_batch(linker):
    from entitylink import evaluate

    ev = evaluate(linker, [["breast cancer", "ovarian cancer"], "NIDDM"], ["D001943+D010051", "D003924"], ks=(1,))
    assert ev.metrics["acc@1"] == 1.0 and ev.n == 2
    missed = evaluate(linker, [["breast cancer", "asthma"]], ["D001943+D010051"], ks=(1,))
    assert missed.metrics["acc@1"] == 0.0
