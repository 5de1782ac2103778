"""Benchmark queries from an annotated corpus, preprocessed as the entity-linking literature does.

Steps, in BioSyn's order, each switchable: abbreviation expansion from the document's own
definitions, composite-mention splitting ("breast and ovarian cancer" → two parts), then
normalisation and spelling correction of each part. Queries whose ids the dictionary lacks
can be dropped (``drop_unknown``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._io import read_lines
from ..errors import DataFormatError
from .abbreviations import AbbreviationFinder, Detector, expand
from .normalize import Normalizer
from .pubtator import Document
from .spans import COORDINATION, context_window

logger = logging.getLogger(__name__)

_W = r"[A-Za-z0-9][\w'-]*"
_OF = re.compile(rf"^(?P<head>{_W}) of (?:both )?(?:the )?(?P<a>(?:{_W} )+?)(?:and|or) (?:the )?(?P<b>{_W}(?: {_W})*)$")
_LIST = re.compile(rf"^(?P<items>(?:{_W},? )+?)(?:and/or|and|or),? (?:the )?(?P<last>{_W}),? (?P<stem>.+)$")
_SLASH = re.compile(r"^(?P<pre>(?:.* )?)(?P<a>[\w'-]+)/(?P<b>[\w'-]+)(?P<suf>(?: .*)?)$")
_LEFT = re.compile(rf"^(?P<mod>{_W}) (?P<a>{_W}) (?:and/or|and|or) (?P<b>{_W})$")
_NUM = r"[0-9]+[A-Za-z]?|[IVX]+|[A-Z]"
_NUMBERED = re.compile(rf"^(?P<stem>.+?) (?P<a>{_NUM}) (?:and|or) (?P<b>{_NUM})$")


def _rule_splits(text: str, left_shared: bool) -> list[list[str]]:
    """The parts each splitting rule gives a coordinated mention, in rule order."""
    candidates: list[list[str]] = []
    if match := _OF.match(text):
        head = match["head"]
        candidates.append([f"{head} of {match['a'].strip()}", f"{head} of {match['b'].strip()}"])
    if match := _LIST.match(text):
        items = [i.strip() for i in match["items"].split(",") if i.strip()] + [match["last"]]
        candidates.append([f"{item} {match['stem']}" for item in items])
    if "and/or" not in text and (match := _SLASH.match(text)):
        pre, suf = match["pre"], match["suf"]
        candidates.append([f"{pre}{match['a']}{suf}".strip(), f"{pre}{match['b']}{suf}".strip()])
    if match := _NUMBERED.match(text):
        candidates.append([f"{match['stem']} {match['a']}", f"{match['stem']} {match['b']}"])
    if left_shared and (match := _LEFT.match(text)):
        candidates.append([f"{match['mod']} {match['a']}", f"{match['mod']} {match['b']}"])
    return candidates


def split_composite(mention: str, n_parts: int, left_shared: bool = True) -> list[str] | None:
    """Split a coordinated mention into ``n_parts`` mentions, or ``None`` if no rule gives that many.

    Only a mention with a coordination (and, or, a comma, a slash) is split. Rules, in
    order: "X of A and B" → "X of A", "X of B"; "A, B and C stem" → "A stem", "B stem",
    "C stem"; "pre A/B suf" → "pre A suf", "pre B suf"; "stem 1 and 2" → "stem 1",
    "stem 2"; with ``left_shared``, "mod A and B" → "mod A", "mod B"; last, one part per
    word when the counts agree.
    """
    text = " ".join(mention.split())
    if not COORDINATION.search(text):
        return None
    candidates = [*_rule_splits(text, left_shared), text.split()]
    return next((c for c in candidates if len(c) == n_parts), None)


def split_coordination(mention: str) -> list[str] | None:
    """The mentions a coordinated mention stands for, by the first of :func:`split_composite`'s rules that
    applies ("brain, breast and prostate cancer" → "brain cancer", "breast cancer", "prostate cancer"), or
    ``None``: no coordination, or no rule applies (words alone are not split)."""
    text = " ".join(mention.split())
    if not COORDINATION.search(text):
        return None
    return next(iter(_rule_splits(text, left_shared=True)), None)


def read_spelling(path: str | Path) -> dict[str, str]:
    """A ``misspelling||correction`` file (the NCBI-disease spell-check list)."""
    fixes: dict[str, str] = {}
    for number, line in read_lines(path):
        if not line.strip():
            continue
        parts = line.split("||")
        if len(parts) != 2 or not parts[0].strip():
            raise DataFormatError(path, number, f"expected 'misspelling||correction', found {line[:80]!r}")
        fixes[parts[0].strip().lower()] = parts[1].strip().lower()
    return fixes


def split_ids(ids: str) -> list[str]:
    """Individual ids of ``A|B`` or ``A+B``."""
    return [i.strip() for i in ids.replace("+", "|").split("|") if i.strip()]


@dataclass
class Query:
    """One benchmark query: the mention as annotated, its preprocessed part(s) and gold ids."""

    pmid: str
    mention: str
    parts: list[str]
    gold: str
    type: str = ""
    context: tuple[str, str] | None = None  # the text before and after the mention in its document

    @property
    def is_composite(self) -> bool:
        return len(self.parts) > 1

    @property
    def text(self) -> str | list[str]:
        """What to link: one string, or the parts of a split composite mention."""
        return self.parts[0] if len(self.parts) == 1 else self.parts


@dataclass
class QueryPreprocessor:
    """Turns annotated mentions into linkable queries; every step can be switched off.

    Args:
        abbreviations: detector for definitions in the title and the abstract, each
            searched on its own (``None`` = no expansion).
        split_composites: split coordinated mentions whose gold has several ids.
        left_shared: also split "mod A and B" into "mod A", "mod B" (beyond BioSyn's rules).
        drop_omim_in_mixed: in a gold mixing MeSH and OMIM ids, keep the MeSH ones (BioSyn).
        spelling: ``{misspelling: correction}`` applied to normalised tokens.
        normalizer: the dictionary's normaliser, applied to every part.
        mesh_prefix: what a gold ``MESH:`` prefix becomes (MEDIC writes MeSH ids bare).
    """

    abbreviations: Detector | None = "schwartz-hearst"
    split_composites: bool = True
    left_shared: bool = True
    drop_omim_in_mixed: bool = True
    spelling: dict[str, str] = field(default_factory=dict)
    normalizer: Normalizer = field(default_factory=Normalizer)
    mesh_prefix: str = ""

    def __post_init__(self) -> None:
        self._finder = AbbreviationFinder(self.abbreviations) if self.abbreviations else None

    def gold_ids(self, ids: str) -> tuple[list[str], str]:
        """The gold's individual ids (prefix-mapped, OMIM filtered in mixed golds) and its joining symbol."""
        symbol = "+" if "+" in ids else "|"
        parts = [self.mesh_prefix + i[5:] if i.startswith("MESH:") else i for i in split_ids(ids)]
        if self.drop_omim_in_mixed and len(parts) > 1:
            omim = [i.startswith("OMIM:") for i in parts]
            if any(omim) and not all(omim):
                parts = [i for i, o in zip(parts, omim) if not o]
        return parts, symbol

    def clean(self, text: str) -> str:
        """Normalise and correct the spelling of one part."""
        text = self.normalizer(text)
        if self.spelling:
            text = " ".join(self.spelling.get(token, token) for token in text.split())
        return text

    def queries(self, documents: Iterable[Document]) -> list[Query]:
        """One query per annotated mention (a split composite stays one query)."""
        out: list[Query] = []
        for doc in documents:
            found = self._finder.find([doc.title, doc.abstract]) if self._finder else {}
            for m in doc.mentions:
                text = expand(m.text, found) if found else m.text
                ids, symbol = self.gold_ids(m.ids)
                parts = [text]
                if self.split_composites and len(ids) > 1:
                    parts = split_composite(text, len(ids), left_shared=self.left_shared) or [text]
                out.append(Query(m.pmid, m.text, [self.clean(p) for p in parts], symbol.join(ids), m.type,
                                 context_window(doc.text, m.start, m.end)))
        return out


def drop_unknown(queries: Sequence[Query], known_ids: set[str]) -> tuple[list[Query], int]:
    """Keep queries all of whose gold ids are known (BioSyn's ``remove_cuiless``); also return the count dropped."""
    kept = [q for q in queries if all(i in known_ids for i in split_ids(q.gold))]
    return kept, len(queries) - len(kept)
