"""BioC collections (XML or JSON) in and out, through the ``bioc`` package (``pip install bioc``).

A BioC document is annotated as one text: each passage placed at its offset, the gaps between them as
spaces, so that entity offsets are the collection's own (a PubTator-derived file, title at 0 and abstract
one character after it, annotates exactly as its PubTator twin). Written back, each entity becomes an
annotation of the passage it starts in, with its concept id (``identifier``), type and score as infons;
the input's passages, infons and earlier annotations are kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from ..errors import DataFormatError, EntityLinkError

BioCFormat = Literal["xml", "json"]


def _bioc():
    try:
        import bioc
        import bioc.biocjson
        import bioc.biocxml
    except ImportError:
        raise EntityLinkError("BioC needs the bioc package: pip install bioc") from None
    return bioc


def bioc_format(path: str | Path) -> BioCFormat:
    """``"json"`` for a file that starts with ``{``, else ``"xml"``."""
    with open(path, encoding="utf-8") as handle:
        start = handle.read(512).lstrip("\ufeff \t\r\n")
    return "json" if start.startswith("{") else "xml"


def read_bioc(path: str | Path) -> Iterator[Any]:
    """The documents of a BioC collection (XML streamed one document at a time, or JSON), in file order."""
    bioc = _bioc()
    try:
        if bioc_format(path) == "json":
            with open(path, encoding="utf-8") as handle:
                collection = bioc.biocjson.load(handle)
            yield from collection.documents
        else:
            from bioc.biocxml import BioCXMLDocumentReader

            yield from BioCXMLDocumentReader(str(path))
    except (ValueError, KeyError, TypeError, AttributeError, SyntaxError) as err:  # lxml's errors are SyntaxErrors
        raise DataFormatError(path, getattr(err, "lineno", None), f"not a BioC collection ({err})") from None


def bioc_text(document: Any, path: str | Path = "BioC") -> str:
    """The document as one text: passages at their offsets, gaps as spaces."""
    parts: list[str] = []
    end = 0
    for passage in sorted(document.passages, key=lambda p: p.offset):
        text = passage.text or ""
        if passage.offset < end:
            raise DataFormatError(path, None, f"document {document.id}: passage at offset {passage.offset} "
                                              f"overlaps the one before it (which ends at {end})")
        parts.append(" " * (passage.offset - end) + text)
        end = passage.offset + len(text)
    return "".join(parts)


def text_document(doc_id: str, text: str) -> Any:
    """A BioC document of one passage (offset 0) holding ``text``, for input that was not BioC."""
    bioc = _bioc()
    passage = bioc.BioCPassage()
    passage.offset, passage.text = 0, text
    document = bioc.BioCDocument()
    document.id = doc_id
    document.add_passage(passage)
    return document


def annotate_document(document: Any, entities: Sequence[Any], entity_type: str, candidates: bool = False) -> Any:
    """Add each entity (``start``, ``end``, ``text``, ``concept_id``, ``score``) as an annotation of the passage
    it starts in; ids continue after the document's own."""
    bioc = _bioc()
    passages = sorted(document.passages, key=lambda p: p.offset)
    taken = {a.id for p in passages for a in p.annotations} | {a.id for a in document.annotations}
    number = 0
    for entity in entities:
        number += 1
        while f"T{number}" in taken:
            number += 1
        annotation = bioc.BioCAnnotation()
        annotation.id = f"T{number}"
        annotation.text = entity.text
        annotation.infons.update({"type": entity_type, "identifier": entity.concept_id, "score": f"{entity.score:.4f}"})
        if candidates and getattr(entity, "candidates", None):
            annotation.infons["candidates"] = json.dumps([[c.concept_id, round(c.score, 4)] for c in entity.candidates])
        annotation.add_location(bioc.BioCLocation(entity.start, entity.end - entity.start))
        home = next((p for p in reversed(passages) if p.offset <= entity.start), None)
        (home.annotations if home is not None else document.annotations).append(annotation)
    return document


def document_block(document: Any, fmt: BioCFormat) -> str:
    """One document as written inside a collection: an XML ``<document>`` element, or a JSON object on a line."""
    bioc = _bioc()
    if fmt == "json":
        return json.dumps(bioc.biocjson.toJSON(document), ensure_ascii=False) + "\n"
    from lxml import etree

    return etree.tostring(bioc.biocxml.encoder.encode_document(document), encoding="unicode") + "\n"


def collection_head(fmt: BioCFormat, source: str = "entitylink") -> str:
    """What a collection file starts with, before its documents."""
    date = time.strftime("%Y-%m-%d")
    if fmt == "json":
        head = json.dumps({"bioctype": "BioCCollection", "source": source, "date": date, "key": "", "version": "1.0",
                           "infons": {}})
        return head[:-1] + ', "documents": [\n'
    return ("<?xml version='1.0' encoding='utf-8' standalone='yes'?>\n<collection>"
            f"<source>{source}</source><date>{date}</date><key></key>\n")


def collection_tail(fmt: BioCFormat) -> str:
    return "\n]}\n" if fmt == "json" else "</collection>\n"


def joined(block: str, first: bool, fmt: BioCFormat) -> str:
    """A document block as written after the blocks before it (JSON puts commas between)."""
    if fmt == "json":
        return ("" if first else ",\n") + block.rstrip("\n")
    return block


def split_blocks(content: str, fmt: BioCFormat) -> list[str]:
    """The document blocks of text written by :func:`document_block` (one part of a sharded run)."""
    if fmt == "json":
        return content.splitlines(keepends=True)
    return [block + "</document>\n" for block in content.split("</document>\n")[:-1]]
