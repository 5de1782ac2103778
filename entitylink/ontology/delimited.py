"""Delimited dictionaries: MEDIC / CTD (``ID||name|name``) and TSV (``concept_id<TAB>name``).

Every reader streams its file line by line and reports malformed input as a
:class:`~entitylink.errors.DataFormatError` naming the file and line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from .._io import read_lines
from ..errors import DataFormatError
from .rows import Row

logger = logging.getLogger(__name__)


def _split_ids(path: Path, number: int, field: str) -> list[str]:
    ids = [part.strip() for part in field.split("|")]
    if not field.strip() or any(not part for part in ids):
        raise DataFormatError(path, number, f"empty concept id in {field!r}")
    return ids


def read_medic(
    path: str | Path, *, omim_prefix: str = "OMIM:", mesh_prefix: str = "", source: str = "MEDIC"
) -> Iterator[Row]:
    """MEDIC / CTD dictionary lines ``ID[|ID…]||name[|name…]``.

    A concept with several ids (a MeSH id and an OMIM number) keeps them joined
    with ``|``, so a prediction is right if any of them is. Bare numbers are OMIM
    ids and get ``omim_prefix``; other ids without a prefix get ``mesh_prefix``.
    """
    path = Path(path)

    def fix(cid: str) -> str:
        if ":" in cid:
            return cid
        return f"{omim_prefix}{cid}" if cid.isdigit() else f"{mesh_prefix}{cid}"

    first_line: dict[str, int] = {}
    repeated: list[str] = []
    for number, line in read_lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        if "||" not in line:
            raise DataFormatError(path, number, "expected 'ID[|ID...]||name[|name...]', found no '||'")
        id_field, name_field = line.split("||", 1)
        concept = "|".join(fix(cid) for cid in _split_ids(path, number, id_field))
        if concept in first_line:
            repeated.append(f"{concept} (lines {first_line[concept]} and {number})")
        first_line.setdefault(concept, number)
        names = [name.strip() for name in name_field.split("|") if name.strip()]
        if not names:
            raise DataFormatError(path, number, f"concept {concept} has no name")
        for name in names:
            yield concept, name, source, None
    if repeated:
        logger.warning("%s: %d concept(s) listed on more than one line, their names merged: %s",
                       path, len(repeated), ", ".join(repeated[:5]))


_TSV_COLUMNS = ("concept_id", "name", "source", "semantic_type")


def read_tsv(path: str | Path, *, source: str | None = None) -> Iterator[Row]:
    """Tab-separated ``concept_id<TAB>name`` lines, or ``id||name`` lines.

    An optional header row starting with ``concept_id`` names the columns; it may
    add ``source`` and ``semantic_type``.
    """
    path = Path(path)
    columns: tuple[str, ...] = ("concept_id", "name")
    for number, line in read_lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        if number == 1 and line.split("\t")[0].strip().lower() == "concept_id":
            columns = tuple(col.strip().lower() for col in line.split("\t"))
            unknown = set(columns) - set(_TSV_COLUMNS)
            if unknown or "name" not in columns:
                raise DataFormatError(
                    path, number,
                    f"header columns must be among {list(_TSV_COLUMNS)} and include 'name', found {list(columns)}",
                )
            continue
        if "\t" not in line and "||" in line:
            fields = line.split("||", 1)
        else:
            fields = line.split("\t")
        if len(fields) != len(columns):
            raise DataFormatError(
                path, number,
                f"expected {len(columns)} tab-separated fields ({', '.join(columns)}), found {len(fields)}",
            )
        record = dict(zip(columns, (f.strip() for f in fields)))
        if not record["concept_id"]:
            raise DataFormatError(path, number, "empty concept id")
        if not record["name"]:
            raise DataFormatError(path, number, f"empty name for concept {record['concept_id']}")
        yield (
            record["concept_id"],
            record["name"],
            record.get("source") or source,
            record.get("semantic_type") or None,
        )
