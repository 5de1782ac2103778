import pandas as pd
import pytest

from entitylink import Normalizer, Ontology


@pytest.fixture
def onto():
    return Ontology.from_pairs([
        ("C1", "Heart attack"), ("C1", "heart-attack"), ("C1", "Myocardial infarction"),
        ("C2", "Hypertension"), ("C2", "High blood pressure"),
        ("C3", "Fever"),
        ("C4", "Cold"), ("C5", "cold"),
    ], name="toy")


def test_table_shape_and_helpers(onto):
    assert list(onto.frame.columns) == ["concept_id", "name", "source", "semantic_type"]
    assert len(onto) == 8 and onto.n_concepts == 5
    assert onto.names_of("C2") == ["Hypertension", "High blood pressure"]
    assert onto.names_of("nope") == []
    assert onto.concepts_of("cold") == ["C5"]
    assert onto.concepts_of("COLD", normalizer=Normalizer()) == ["C4", "C5"]


def test_empty_names_are_dropped_with_a_warning(caplog):
    onto = Ontology(pd.DataFrame({"concept_id": ["A", "B", ""], "name": ["x", "  ", "y"]}))
    assert onto.names == ["x"]
    assert "dropped 2 rows" in caplog.text


def test_missing_columns():
    with pytest.raises(ValueError, match="needs the columns"):
        Ontology(pd.DataFrame({"id": ["A"], "label": ["x"]}))


def test_dedupe_after_normalisation(onto):
    deduped = onto.dedupe()
    assert deduped.names_of("C1") == ["Heart attack", "Myocardial infarction"]
    assert len(deduped) == 7  # C4 "Cold" and C5 "cold" are different concepts: both stay


def test_sample_is_seeded(onto):
    assert onto.sample(3, seed=1).names == onto.sample(3, seed=1).names
    assert len(onto.sample(3)) == 3 and len(onto.sample(100)) == len(onto)


def test_hold_out_synonyms(onto):
    rest, queries = onto.hold_out_synonyms(seed=0)
    # C1 (2 distinct names after dedupe) and C2 have >= 2 names; C3, C4, C5 have one
    assert sorted(queries["concept_id"]) == ["C1", "C2"]
    for cid, mention in zip(queries["concept_id"], queries["mention"]):
        assert mention not in rest.names_of(cid)
        assert rest.names_of(cid)  # something left to link to
    assert rest.names_of("C3") == ["Fever"]
    again_rest, again = onto.hold_out_synonyms(seed=0)
    assert again.equals(queries)
    _, capped = onto.hold_out_synonyms(seed=0, max_queries=1)
    assert len(capped) == 1


def test_concat_and_subset(onto):
    other = Ontology.from_pairs([("C9", "Cough"), ("C3", "Fever")])
    both = Ontology.concat([onto, other])
    assert both.n_concepts == 6 and len(both) == 9
    assert both.subset(["C9", "C3"]).names == ["Fever", "Cough"]
