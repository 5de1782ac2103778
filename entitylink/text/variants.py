"""Lexical variants of normalised text: English plurals and British spellings folded onto one key.

"tumours", "tumour", "tumors" and "tumor" share the key "tumor"; "fibres" and "fiber" share "fiber";
"anaemia" and "anemia" share "anemia". Exact matching compares keys where texts differ (MetaMap's
lexical variants, reduced to rules that need no lexicon). Short words, words with digits and Latin
endings ("stenosis", "virus") are left as they are.
"""

from __future__ import annotations

import re
from functools import lru_cache

MIN_LETTERS = 5  # shorter words are left alone: "toes", "aids", "hers" are not plurals to fold

_CONSONANT = "bcdfghjklmnpqrstvwxz"
_SPELLINGS = (
    (re.compile(r"our$"), "or"),  # tumour, behaviour
    (re.compile(rf"(?<=[{_CONSONANT}])re$"), "er"),  # fibre, centre
    (re.compile(r"(?<=\w)ae(?=\w)"), "e"),  # anaemia, haemorrhage, paediatric
    (re.compile(r"(?<=\w)oe(?=\w)"), "e"),  # diarrhoea, coeliac
    (re.compile(rf"^oe(?=[{_CONSONANT}])"), "e"),  # oedema, oesophagus
)


@lru_cache(maxsize=200_000)
def fold_word(word: str) -> str:
    """The key of one lowercase word: singular, American spelling."""
    if len(word) < MIN_LETTERS or not word.isalpha():
        return word
    # Harman's S-stemmer, with -sses/-xes/-ches/-shes and the Latin -ae plural
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        word = word[:-3] + "y"
    elif word.endswith(("sses", "xes", "ches", "shes")):
        word = word[:-2]
    elif word.endswith("ae") and len(word) > 6:
        word = word[:-1]  # vertebrae, fistulae
    elif word.endswith("s") and not word.endswith(("ss", "us", "is", "aes", "ees", "oes")):
        word = word[:-1]
    for pattern, replacement in _SPELLINGS:
        word = pattern.sub(replacement, word)
    return word


def variant_key(normalised: str) -> str:
    """The key of a normalised text (lowercase words separated by single spaces)."""
    return " ".join(fold_word(word) for word in normalised.split(" "))
