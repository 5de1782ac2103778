"""Candidate mention spans in running text: tokens with offsets, sentences, and the windows between.

The rules are QuickUMLS's (windows of 1…N tokens inside a sentence; none starting or ending with a
stop word, a bare number or punctuation; a minimum length), without knowledge of any corpus.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

_TOKEN = re.compile(r"[^\W_]+")
# a sentence ends at . ! ? followed by space and a capital, digit or bracket, or at a blank line
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])|\n\s*\n")

# English function words: a window never starts or ends with one, and none is a name on its own.
STOP_WORDS = frozenset("""
a about above after again against all also although am an and any are as at be because been before being
below between both but by can could did do does doing done down during each either else ever every few for
from further had has have having he her here hers herself him himself his how however i if in into is it its
itself just least less may me might more most much must my myself neither no nor not of off often on once
one only or other others our ours ourselves out over own per rather same several shall she should since so
some such than that the their theirs them themselves then there these they this those though through thus
to too under until up upon us very via was we were what when where whether which while who whom whose why
will with within without would yet you your yours yourself yourselves
""".split())


@dataclass(frozen=True)
class Token:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Span:
    """A character span ``text[start:end]`` of a document (``tokens``: how many tokens it holds, where known)."""

    start: int
    end: int
    text: str
    tokens: int = field(default=0, compare=False)

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


class _Interval(Protocol):
    start: int
    end: int


Item = TypeVar("Item", bound=_Interval)


CONTEXT_CHARS = 128  # text kept on each side of a mention for a reranker that reads context (xMEN's)


def context_window(text: str, start: int, end: int, chars: int = CONTEXT_CHARS) -> tuple[str, str]:
    """The ``chars`` characters of ``text`` before ``start`` and after ``end`` (line breaks as spaces)."""
    left, right = text[max(0, start - chars) : start], text[end : end + chars]
    return " ".join(left.split()), " ".join(right.split())


def keep_non_overlapping(items: Iterable[Item], rank: Callable[[Item], Any]) -> list[Item]:
    """The items that survive a greedy pass in ``rank`` order (best first) keeping each one that overlaps
    none kept before it, in text order."""
    kept: list[Item] = []
    for item in sorted(items, key=rank):
        if all(item.end <= k.start or k.end <= item.start for k in kept):
            kept.append(item)
    return sorted(kept, key=lambda k: (k.start, k.end))


def tokenize(text: str) -> list[Token]:
    """Runs of letters and digits (what the default normaliser keeps), with character offsets."""
    return [Token(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]


def sentence_starts(text: str) -> list[int]:
    """Character offsets where sentences begin (always 0 first)."""
    return [0, *(m.end() for m in _SENTENCE_END.finditer(text))]


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence."""
    starts = sentence_starts(text)
    return [(a, b) for a, b in zip(starts, [*starts[1:], len(text)]) if text[a:b].strip()]


def is_boundary_token(token: str) -> bool:
    """Whether a window may start or end with this token: not a bare number, not a stop word unless
    written as an acronym ("ALL", "WAS": names, not the words)."""
    if token.isdigit():
        return False
    return token.casefold() not in STOP_WORDS or (len(token) >= 2 and token.isupper())


def windows(text: str, max_tokens: int, min_chars: int = 3, breaks: str = "()[];:,") -> Iterator[Span]:
    """Every span of 1…``max_tokens`` tokens inside one sentence that starts and ends with a boundary token
    (or ends with a number of one or two digits after another token).

    A span does not cross a sentence end, nor any of the ``breaks`` characters (brackets, semicolons, colons
    and commas rarely fall inside names as text writes them: "diabetes (NIDDM)" gives "diabetes" and
    "NIDDM", not the two together).
    """
    for sent_start, sent_end in sentences(text):
        tokens = tokenize(text[sent_start:sent_end])
        for i, first in enumerate(tokens):
            if not is_boundary_token(first.text):
                continue
            for j in range(i, min(len(tokens), i + max_tokens)):
                last = tokens[j]
                if j > i and any(c in breaks for c in text[sent_start + tokens[j - 1].end:sent_start + last.start]):
                    break
                if not (is_boundary_token(last.text) or (j > i and last.text.isdigit() and len(last.text) <= 2)):
                    continue  # a short number may end a name: "diabetes mellitus type 2", "SCA 1"
                start, end = sent_start + first.start, sent_start + last.end
                if end - start >= min_chars:
                    yield Span(start, end, text[start:end], j - i + 1)


def chunks(text: str, max_chars: int) -> list[tuple[int, str]]:
    """(offset, piece) covering ``text`` in pieces of at most ``max_chars``, cut at sentence ends where
    possible, else at a space; an empty text has none."""
    out: list[tuple[int, str]] = []
    start = 0
    starts = sentence_starts(text)[1:]
    while start < len(text):
        if len(text) - start <= max_chars:
            end = len(text)
        else:
            limit = start + max_chars
            last = bisect.bisect_right(starts, limit) - 1  # the last sentence start within the limit
            end = starts[last] if last >= 0 and starts[last] > start else \
                (text.rfind(" ", start + 1, limit) + 1 or limit)
        out.append((start, text[start:end]))
        start = end
    return out


_GLUE = re.compile(r"[\s,]*(?:(?:and/or|and|or)[\s,]*)?")
COORDINATION = re.compile(r"\b(?:and|or)\b|,|/")  # what joins the mentions of a composite one
_TRAILING_COORDINATION = re.compile(r"(?:\s*,)?\s+(?:and/or|and|or)$|\s*,$")


def coordinated_runs(text: str, spans: Iterable[Span]) -> list[Span]:
    """Runs of two or more spans joined only by commas and "and"/"or", each span but the last one word (a
    tagger's pieces of "prostatic, pancreas, skin, and lung cancer"), as one span from the first to the last."""
    ordered = sorted(spans, key=lambda s: (s.start, s.end))
    runs, current = [], []
    for span in ordered:
        if current and _joins(text, current[-1], span):
            current.append(span)
            continue
        if len(current) > 1:
            runs.append(current)
        current = [span]
    if len(current) > 1:
        runs.append(current)
    out = []
    for run in runs:
        start, end = run[0].start, run[-1].end
        if COORDINATION.search(text[run[0].end:run[-1].start] + " " + " ".join(s.text for s in run[:-1])):
            out.append(Span(start, end, text[start:end]))
    return out


def _joins(text: str, left: Span, right: Span) -> bool:
    """``right`` follows ``left`` across a coordination only, and ``left`` is one word (and its "and"/"or")."""
    if right.start < left.end or len(_TOKEN.findall(_TRAILING_COORDINATION.sub("", left.text))) != 1:
        return False
    return _GLUE.fullmatch(text[left.end:right.start]) is not None
