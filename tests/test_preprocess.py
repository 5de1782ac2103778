import pytest

from entitylink import DataFormatError
from entitylink.text.preprocess import QueryPreprocessor, drop_unknown, read_spelling, split_composite
from entitylink.text.pubtator import Document, Mention


@pytest.mark.parametrize(
    "mention, n, parts",
    [
        ("breast and ovarian cancer", 2, ["breast cancer", "ovarian cancer"]),
        ("sporadic breast, brain, prostate and kidney cancer", 4,
         ["sporadic breast cancer", "brain cancer", "prostate cancer", "kidney cancer"]),
        ("retinal and the pineal tumours", 2, ["retinal tumours", "pineal tumours"]),
        ("deficiency of the C5 or C6 protein", 2, ["deficiency of C5", "deficiency of C6 protein"]),
        ("HPRT/APRT deficiency", 2, ["HPRT deficiency", "APRT deficiency"]),
        ("spinocerebellar ataxias 1 and 2", 2, ["spinocerebellar ataxias 1", "spinocerebellar ataxias 2"]),
        ("colorectal adenomas and carcinoma", 2, ["colorectal adenomas", "colorectal carcinoma"]),
        ("breast and ovarian cancer", 3, None),  # no rule gives three parts
        ("Wilms tumour", 2, None),  # no coordination: alternatives, not a composite
    ],
)
def test_split_composite(mention, n, parts):
    assert split_composite(mention, n) == parts


def test_left_shared_rule_can_be_switched_off():
    assert split_composite("colorectal adenomas and carcinoma", 2, left_shared=False) is None


def test_gold_ids_drop_omim_only_when_mixed():
    pre = QueryPreprocessor(abbreviations=None)
    assert pre.gold_ids("OMIM:201400|C535668") == (["C535668"], "|")
    assert pre.gold_ids("OMIM:1+OMIM:2") == (["OMIM:1", "OMIM:2"], "+")
    assert pre.gold_ids("MESH:D001") == (["D001"], "|")
    keep = QueryPreprocessor(abbreviations=None, drop_omim_in_mixed=False, mesh_prefix="MESH:")
    assert keep.gold_ids("OMIM:201400|MESH:C535668") == (["OMIM:201400", "MESH:C535668"], "|")


def make_doc():
    title = "Copper toxicosis (CT) in dogs."
    abstract = "CT and WD differ. Patients had breast and ovarian cancer, and hemmorhage."
    text = f"{title} {abstract}"

    def m(part, ids, kind="SpecificDisease", nth=0):
        start = text.index(part) if nth == 0 else text.index(part, text.index(part) + 1)
        return Mention("1", start, start + len(part), part, kind, ids)

    return Document("1", title, abstract, [
        m("CT", "D1", nth=1), m("breast and ovarian cancer", "D2|D3", "CompositeMention"),
        m("hemmorhage", "D4"), m("WD", "OMIM:277900"),
    ])


def test_queries_apply_each_step():
    pre = QueryPreprocessor(spelling={"hemmorhage": "haemorrhage"})
    queries = pre.queries([make_doc()])
    assert [q.parts for q in queries] == [
        ["copper toxicosis"], ["breast cancer", "ovarian cancer"], ["haemorrhage"], ["wd"],
    ]
    assert queries[1].is_composite and queries[1].text == ["breast cancer", "ovarian cancer"]
    assert queries[0].text == "copper toxicosis" and queries[0].mention == "CT"


def test_steps_switched_off():
    queries = QueryPreprocessor(abbreviations=None, split_composites=False).queries([make_doc()])
    assert [q.parts for q in queries] == [["ct"], ["breast and ovarian cancer"], ["hemmorhage"], ["wd"]]


def test_drop_unknown_ids():
    queries = QueryPreprocessor(abbreviations=None).queries([make_doc()])
    kept, dropped = drop_unknown(queries, {"D1", "D2", "D3", "D4"})
    assert dropped == 1 and [q.gold for q in kept] == ["D1", "D2|D3", "D4"]


def test_read_spelling(tmp_path):
    good = tmp_path / "spell.txt"
    good.write_text("hemmorhage||haemorrhage\nFist||first\n")
    assert read_spelling(good) == {"hemmorhage": "haemorrhage", "fist": "first"}
    bad = tmp_path / "bad.txt"
    bad.write_text("hemmorhage haemorrhage\n")
    with pytest.raises(DataFormatError, match=r"bad.txt:1: expected 'misspelling\|\|correction'"):
        read_spelling(bad)


def test_a_coordinated_mention_splits_into_the_mentions_it_stands_for():
    from entitylink.text.preprocess import split_coordination

    assert split_coordination("brain, breast, and prostate cancer") == ["brain cancer", "breast cancer",
                                                                       "prostate cancer"]
    assert split_coordination("C6 or C7 deficiency") == ["C6 deficiency", "C7 deficiency"]
    assert split_coordination("breast/ovarian cancer") == ["breast cancer", "ovarian cancer"]
    assert split_coordination("deficiency of C6 and C7") == ["deficiency of C6", "deficiency of C7"]
    for plain in ("ovarian cancer", "combined subtotal deficiency of C6 and C7", "anemia, leukemia"):
        assert split_coordination(plain) is None  # no coordination, or none a rule splits


def test_pieces_joined_by_a_coordination_form_one_run():
    from entitylink.text.spans import Span, coordinated_runs

    def spans(text, *pieces):
        out, at = [], 0
        for piece in pieces:
            at = text.index(piece, at)
            out.append(Span(at, at + len(piece), piece))
            at += len(piece)
        return out

    text = "Seen in prostatic, pancreas, skin, and lung cancer; C6 or C7 deficiency."
    runs = coordinated_runs(text, spans(text, "prostatic", "pancreas", "skin", "lung cancer", "C6 or", "C7 deficiency"))
    assert [r.text for r in runs] == ["prostatic, pancreas, skin, and lung cancer", "C6 or C7 deficiency"]
    assert all(text[r.start:r.end] == r.text for r in runs)
    text = "breast cancer and leukemia; anemia leukemia"  # whole mentions, or no coordination: no run
    assert coordinated_runs(text, spans(text, "breast cancer", "leukemia", "anemia", "leukemia")) == []
