import pytest

from entitylink import Normalizer
from entitylink.text.normalize import IDENTITY


def test_default_lowercases_and_turns_punctuation_into_space():
    assert Normalizer()("Heart-Attack,  acute ") == "heart attack acute"
    assert Normalizer()("Alzheimer's   Disease") == "alzheimer s disease"


def test_remove_punctuation_and_accents():
    norm = Normalizer(punctuation="remove", strip_accents=True)
    assert norm("Sjögren's syndrome") == "sjogrens syndrome"


def test_keep_punctuation_and_case():
    norm = Normalizer(lowercase=False, punctuation="keep")
    assert norm("  NIDDM (type-2) ") == "NIDDM (type-2)"


def test_unicode_compatibility_forms_are_folded():
    assert Normalizer()("ＡＬＳ") == "als"  # full-width letters


def test_only_punctuation_normalises_to_empty():
    assert Normalizer()("--- ,;") == ""


def test_identity_changes_nothing():
    assert IDENTITY(" A-b  ") == " A-b  "


def test_round_trip_through_dict():
    norm = Normalizer(punctuation="remove", strip_accents=True)
    assert Normalizer.from_dict(norm.to_dict()) == norm


def test_unknown_settings_are_rejected():
    with pytest.raises(ValueError, match="unknown normalisation settings"):
        Normalizer.from_dict({"lowercase": True, "stem": True})
    with pytest.raises(ValueError, match="punctuation must be"):
        Normalizer(punctuation="drop")
