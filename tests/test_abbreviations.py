import pytest

from entitylink.text.abbreviations import AbbreviationFinder, best_long_form, expand, is_short_form, schwartz_hearst

TEXT = (
    "Ataxia-telangiectasia (A-T) is a recessive disorder. Myotonic dystrophy (DM) is common. "
    "Hereditary nonpolyposis colorectal cancer (HNPCC; OMIM 120435) and the APC (adenomatous polyposis coli) "
    "gene. Wilson disease (WD) differs from copper toxicosis (CT)."
)


def test_finds_definitions_including_hyphenated_and_reversed_forms():
    found = schwartz_hearst(TEXT)
    assert found["A-T"] == "Ataxia-telangiectasia"
    assert found["HNPCC"] == "Hereditary nonpolyposis colorectal cancer"
    assert found["APC"] == "adenomatous polyposis coli"
    assert found["WD"] == "Wilson disease" and found["CT"] == "copper toxicosis"


def test_never_takes_a_long_form_across_a_sentence_boundary():
    assert "DM" not in schwartz_hearst(TEXT)
    assert "DM" not in schwartz_hearst("It is a disorder. Myotonic dystrophy (DM) is common.")


def test_short_form_rules():
    assert is_short_form("A-T") and is_short_form("DM1") and is_short_form("HNPCC")
    assert not is_short_form("x") and not is_short_form("1998") and not is_short_form("see figure one")
    assert not is_short_form("patients")  # a long lower-case word is not an abbreviation
    assert best_long_form("CT", "the common autosomal recessive copper toxicosis") == "copper toxicosis"
    assert best_long_form("XYZ", "copper toxicosis") is None


def test_finder_searches_parts_separately():
    finder = AbbreviationFinder()
    assert "DM" not in finder.find(["Study of dystrophy", "Myotonic (DM) patients"])
    with pytest.raises(ValueError, match="detector must be one of"):
        AbbreviationFinder("ab3p")


def test_scispacy_backend_when_installed():
    pytest.importorskip("scispacy")
    found = AbbreviationFinder("scispacy").find(["Wilson disease (WD) is rare."])
    assert found == {"WD": "Wilson disease"}


def test_expand_tokens_slashes_and_punctuation():
    abbreviations = {"WD": "Wilson disease", "CT": "copper toxicosis", "A-T": "ataxia telangiectasia"}
    assert expand("WD", abbreviations) == "Wilson disease"
    assert expand("CT,", abbreviations) == "copper toxicosis,"
    assert expand("(A-T)", abbreviations) == "(ataxia telangiectasia)"
    assert expand("WD/CT patients", abbreviations) == "Wilson disease/copper toxicosis patients"
    assert expand("WDX", abbreviations) == "WDX"
    assert expand("CT", {}) == "CT"
