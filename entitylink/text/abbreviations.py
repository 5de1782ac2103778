"""Abbreviation definitions found in text: ``long form (SF)`` → {SF: long form}.

Two detectors: our Schwartz–Hearst (2003) implementation, which works sentence by
sentence and accepts short forms with hyphens or digits ("A-T", "DM1"), and scispacy's
``AbbreviationDetector`` (the same algorithm on spaCy tokens) when it is installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

Detector = Literal["schwartz-hearst", "scispacy"]
DETECTORS = ("schwartz-hearst", "scispacy")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_PARENS = re.compile(r"\(([^()]*)\)")
_PUNCT_EDGES = ",;:.\"'"


def split_sentences(text: str) -> list[str]:
    """Split at ``. `` / ``! `` / ``? `` followed by a capital, digit or bracket."""
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def is_short_form(candidate: str) -> bool:
    """Schwartz–Hearst short-form test: 2–10 characters, at most two words, a letter, starts alphanumeric."""
    return (
        2 <= len(candidate) <= 10
        and len(candidate.split()) <= 2
        and any(c.isalpha() for c in candidate)
        and candidate[0].isalnum()
        and not (candidate.islower() and len(candidate) > 4 and " " not in candidate and candidate.isalpha())
    )


def best_long_form(short: str, candidate: str) -> str | None:
    """Shortest end of ``candidate`` containing the short form's characters in order (Schwartz–Hearst).

    Characters are matched right to left, case-insensitively; the first character of the
    short form must start a word of the long form.
    """
    s, lf = len(short) - 1, len(candidate) - 1
    while s >= 0:
        char = short[s].lower()
        if not char.isalnum():
            s -= 1
            continue
        while lf >= 0 and (
            candidate[lf].lower() != char or (s == 0 and lf > 0 and candidate[lf - 1].isalnum())
        ):
            lf -= 1
        if lf < 0:
            return None
        lf -= 1
        s -= 1
    start = candidate.rfind(" ", 0, lf + 1) + 1
    long_form = candidate[start:].strip()
    return long_form or None


def _valid_pair(short: str, long_form: str) -> bool:
    words = long_form.split()
    return (
        len(long_form) > len(short)
        and len(words) <= min(len(short) + 5, 2 * len(short))
        and short.lower() not in (w.lower().strip(_PUNCT_EDGES) for w in words)
    )


def schwartz_hearst(text: str) -> dict[str, str]:
    """Abbreviations defined in ``text`` (first definition of each short form wins)."""
    found: dict[str, str] = {}
    for sentence in split_sentences(text):
        for match in _PARENS.finditer(sentence):
            inside = re.split(r"[;,]\s", match.group(1).strip(), maxsplit=1)[0].strip()
            before = sentence[: match.start()].rstrip()
            if not inside or not before:
                continue
            if is_short_form(inside):
                limit = min(len(inside) + 5, 2 * len(inside))
                window = " ".join(before.split()[-limit:])
                long_form = best_long_form(inside, window)
                if long_form and _valid_pair(inside, long_form):
                    found.setdefault(inside, long_form.strip(_PUNCT_EDGES + " "))
                    continue
            # the other way round: "SF (long form)"
            last = before.split()[-1].strip(_PUNCT_EDGES) if before.split() else ""
            if last and is_short_form(last) and len(inside.split()) >= 2:
                long_form = best_long_form(last, inside)
                if long_form and _valid_pair(last, long_form):
                    found.setdefault(last, long_form.strip(_PUNCT_EDGES + " "))
    return found


class AbbreviationFinder:
    """Finds abbreviation definitions in a document's parts (e.g. title and abstract, kept apart).

    Args:
        detector: ``"schwartz-hearst"`` (ours, default) or ``"scispacy"`` (needs scispacy).
    """

    def __init__(self, detector: Detector = "schwartz-hearst"):
        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, not {detector!r}")
        self.detector = detector
        self._nlp = None
        if detector == "scispacy":
            from ..errors import require

            require("scispacy.abbreviation", "detector='scispacy'", "pip install 'entitylink[spacy]'")
            import spacy
            from scispacy.abbreviation import AbbreviationDetector  # noqa: F401 - registers the factory

            self._nlp = spacy.blank("en")
            self._nlp.add_pipe("sentencizer")
            self._nlp.add_pipe("abbreviation_detector")

    def find(self, parts: Iterable[str]) -> dict[str, str]:
        """{short form: long form} over the parts; each part is searched on its own."""
        found: dict[str, str] = {}
        for part in parts:
            if not part.strip():
                continue
            if self._nlp is None:
                pairs = schwartz_hearst(part)
            else:
                doc = self._nlp(part)
                pairs = {str(a): str(a._.long_form) for a in doc._.abbreviations}
            for short, long_form in pairs.items():
                found.setdefault(short, long_form)
        return found


def expand(mention: str, abbreviations: dict[str, str], max_rounds: int = 3) -> str:
    """Replace short forms among a mention's tokens (also inside ``A/B``) by their long forms."""
    if not abbreviations:
        return mention
    for _ in range(max_rounds):
        tokens = []
        for token in mention.split():
            core = token.strip(_PUNCT_EDGES + "()")
            lead = token[: token.find(core)] if core else ""
            trail = token[len(lead) + len(core):] if core else ""
            if core in abbreviations:
                core = abbreviations[core]
            elif "/" in core:
                core = "/".join(abbreviations.get(part, part) for part in core.split("/"))
            tokens.append(f"{lead}{core}{trail}")
        expanded = " ".join(tokens)
        if expanded == mention:
            break
        mention = expanded
    return mention
