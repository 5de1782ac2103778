import pytest

from entitylink import Candidate, accuracy_at_k
from entitylink.link.evaluation import first_hit_rank, is_match, query_hit_rank, read_queries, score


def test_alternatives_on_either_side():
    assert is_match("D1", "D1")
    assert is_match("D1|OMIM:2", "OMIM:2")  # composite prediction shares an id
    assert is_match("D1", "D9|D1")  # either gold id is right
    assert not is_match("D1|D2", "D3|D4")


def test_composite_gold_as_the_literature_checks_it():
    # an unsplit composite mention: any of its ids is a hit (BioSyn's check_label turns + into |)
    assert first_hit_rank(["X", "D3"], "D1+D3") == 2
    assert first_hit_rank(["X", "D1|D5"], "D5") == 2
    assert first_hit_rank(["X", "Y"], "D1+D3") is None


def test_split_composite_query_needs_every_part():
    assert query_hit_rank([["D1", "X"], ["X", "X", "D3"]], "D1+D3") == 3
    assert query_hit_rank([["D1"], ["X", "Y"]], "D1+D3") is None
    assert query_hit_rank([], "D1") is None


def test_score_with_parts():
    results = [[[Candidate("D1", "a", 0.9)], [Candidate("X", "x", 0.9), Candidate("D3", "c", 0.8)]]]
    ev = score([["breast cancer", "ovarian cancer"]], ["D1+D3"], results, ks=(1, 2))
    assert ev.metrics == {"acc@1": 0.0, "acc@2": 1.0}
    assert ev.details.loc[0, "mention"] == "breast cancer | ovarian cancer"


def test_accuracy_at_k():
    predicted = [["A", "B"], ["X", "B"], ["X", "Y"], ["A|B", "C"]]
    gold = ["A", "B", "Z", "B"]
    assert accuracy_at_k(predicted, gold, ks=(1, 2)) == {"acc@1": 0.5, "acc@2": 0.75}
    with pytest.raises(ValueError, match="predictions for"):
        accuracy_at_k(predicted, gold[:2])


def test_score_details_table():
    results = [
        [Candidate("A", "a", 0.9), Candidate("B", "b", 0.8)],
        [],
        [Candidate("X", "x", 0.5), Candidate("C", "c", 0.4)],
    ]
    ev = score(["m1", "m2", "m3"], ["A", "B", "C"], results, ks=(1, 5))
    assert ev.metrics == {"acc@1": pytest.approx(1 / 3), "acc@5": pytest.approx(2 / 3)}
    assert ev.n == 3
    assert ev.details["rank"].tolist()[0] == 1 and ev.details["rank"].isna().tolist() == [False, True, False]
    assert ev.details.loc[2, "predicted"] == "X"
    assert "acc@1 33.3" in str(ev)


def test_read_queries(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text("mention\tconcept_id\nheart attack\tD009203\nNIDDM\tD003924|OMIM:125853\n")
    frame = read_queries(path)
    assert frame.values.tolist() == [["heart attack", "D009203"], ["NIDDM", "D003924|OMIM:125853"]]
    path.write_text("heart attack\tD009203\nonly a mention\n")
    from entitylink import DataFormatError

    with pytest.raises(DataFormatError, match=r"q.tsv:2: expected 'mention<TAB>concept_id'"):
        read_queries(path)
