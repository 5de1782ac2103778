"""UMLS Metathesaurus: ``MRCONSO.RRF`` names, with semantic types from ``MRSTY.RRF``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from .._io import read_lines
from ..errors import DataFormatError
from .rows import Row

_MRCONSO_FIELDS = 18


def read_umls(
    path: str | Path,
    *,
    languages: Iterable[str] | None = ("ENG",),
    sources: Iterable[str] | None = None,
    drop_suppressed: bool = True,
    semantic_types: str | Path | None = None,
) -> Iterator[Row]:
    """UMLS ``MRCONSO.RRF`` rows (``CUI|LAT|…|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|``), streamed.

    Keeps rows whose ``LAT`` is in ``languages`` (all when ``None``), whose ``SAB`` is
    in ``sources`` (all when ``None``) and, with ``drop_suppressed``, whose
    ``SUPPRESS`` is ``N``. The CUI is the concept id. ``semantic_types`` may name an
    ``MRSTY.RRF`` file to fill ``semantic_type`` (names joined with ``|``).
    """
    path = Path(path)
    langs = {lang.upper() for lang in languages} if languages is not None else None
    sabs = set(sources) if sources is not None else None
    sty = _read_mrsty(semantic_types) if semantic_types else {}
    for number, line in read_lines(path):
        if not line:
            continue
        fields = line.split("|")
        if fields[-1] == "" and len(fields) == _MRCONSO_FIELDS + 1:
            fields.pop()
        if len(fields) != _MRCONSO_FIELDS:
            raise DataFormatError(
                path, number, f"expected {_MRCONSO_FIELDS} '|'-separated MRCONSO fields, found {len(fields)}"
            )
        cui, lat, sab, name, suppress = fields[0], fields[1], fields[11], fields[14], fields[16]
        if not cui:
            raise DataFormatError(path, number, "empty CUI")
        if langs is not None and lat.upper() not in langs:
            continue
        if sabs is not None and sab not in sabs:
            continue
        if drop_suppressed and suppress != "N":
            continue
        if name.strip():
            yield cui, name.strip(), sab, sty.get(cui)


def _read_mrsty(path: str | Path) -> dict[str, str]:
    types: dict[str, list[str]] = {}
    for number, line in read_lines(path):
        if not line:
            continue
        fields = line.split("|")
        if len(fields) < 4:
            raise DataFormatError(path, number, f"expected MRSTY fields CUI|TUI|STN|STY|..., found {len(fields)}")
        types.setdefault(fields[0], []).append(fields[3])
    return {cui: "|".join(names) for cui, names in types.items()}
