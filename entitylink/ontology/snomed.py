"""SNOMED CT RF2 description files."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from .._io import read_lines
from ..errors import DataFormatError
from .rows import Row

SNOMED_HEADER = (
    "id", "effectiveTime", "active", "moduleId", "conceptId",
    "languageCode", "typeId", "term", "caseSignificanceId",
)
SNOMED_FSN = "900000000000003001"
_SEMANTIC_TAG = re.compile(r"^(.*\S)\s+\(([^()]+)\)$")


def read_snomed(
    path: str | Path,
    *,
    languages: Iterable[str] | None = ("en",),
    strip_semantic_tag: bool = True,
    include_fsn: bool = True,
) -> Iterator[Row]:
    """SNOMED CT RF2 description file (``sct2_Description_Snapshot*.txt``).

    Keeps active descriptions in ``languages`` (all when ``None``). A fully
    specified name's semantic tag (``Myocardial infarction (disorder)``) becomes the
    concept's ``semantic_type`` and, with ``strip_semantic_tag``, is removed from the name.
    If a file holds several versions of a description (a Full release), the latest wins.
    """
    path = Path(path)
    langs = {lang.lower() for lang in languages} if languages is not None else None
    latest: dict[str, tuple[str, int, list[str]]] = {}
    lines = read_lines(path)
    header = next(lines, None)
    if header is None:
        raise DataFormatError(path, 1, "empty file; expected an RF2 description header")
    if tuple(header[1].split("\t")) != SNOMED_HEADER:
        raise DataFormatError(path, 1, "expected the RF2 description header: " + " TAB ".join(SNOMED_HEADER))
    for number, line in lines:
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != len(SNOMED_HEADER):
            raise DataFormatError(
                path, number, f"expected {len(SNOMED_HEADER)} tab-separated fields, found {len(fields)}"
            )
        previous = latest.get(fields[0])
        if previous is None or fields[1] >= previous[0]:
            latest[fields[0]] = (fields[1], number, fields)
    tags: dict[str, str] = {}
    rows: list[tuple[str, str, bool]] = []
    for _, number, fields in latest.values():
        _, _, active, _, concept, language, type_id, term, _ = fields
        if active not in ("0", "1"):
            raise DataFormatError(path, number, f"'active' must be 0 or 1, found {active!r}")
        if active != "1" or (langs is not None and language.lower() not in langs):
            continue
        is_fsn = type_id == SNOMED_FSN
        if is_fsn:
            match = _SEMANTIC_TAG.match(term)
            if match:
                tags[concept] = match.group(2)
                if strip_semantic_tag:
                    term = match.group(1)
            if not include_fsn:
                continue
        rows.append((concept, term.strip(), is_fsn))
    for concept, term, _ in rows:
        if term:
            yield concept, term, "SNOMEDCT", tags.get(concept)
