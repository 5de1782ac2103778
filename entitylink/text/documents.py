"""Documents to annotate, read lazily from plain text, JSONL or PubTator files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from .._io import read_lines
from ..errors import DataFormatError
from .pubtator import read_pubtator

InputFormat = Literal["text", "jsonl", "pubtator", "bioc"]
INPUT_FORMATS = ("text", "jsonl", "pubtator", "bioc")


def read_documents(path: str | Path, fmt: InputFormat = "text") -> Iterator[tuple[str, str]]:
    """(id, text) of each document, in file order.

    ``text``: one document per line, its id the line number (an empty line is an empty document);
    ``jsonl``: one ``{"id": str, "text": str}`` object per line (blank lines skipped; without ``id``,
    the line number); ``pubtator``: title + " " + abstract, as PubTator offsets count, id = PMID;
    ``bioc``: a BioC collection (XML or JSON), each document's passages at their offsets.
    A malformed line is a :class:`DataFormatError` naming the file and line.
    """
    if fmt == "text":
        for number, line in read_lines(path):
            yield str(number), line
    elif fmt == "jsonl":
        for number, line in read_lines(path):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(path, number, f"not a JSON object: {err.msg}") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise DataFormatError(path, number, 'expected {"id": str, "text": str}: no string "text"')
            doc_id = record.get("id", number)
            if not isinstance(doc_id, (str, int)):
                raise DataFormatError(path, number, f'"id" must be a string, found {type(doc_id).__name__}')
            yield str(doc_id), record["text"]
    elif fmt == "pubtator":
        for document in read_pubtator(path):
            yield document.pmid, document.text
    elif fmt == "bioc":
        from .bioc_io import bioc_text, read_bioc

        for document in read_bioc(path):
            yield str(document.id), bioc_text(document, path)
    else:
        raise ValueError(f"input format must be one of {INPUT_FORMATS}, not {fmt!r}")
