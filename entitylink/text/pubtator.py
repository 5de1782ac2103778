"""PubTator corpora (NCBI-disease, BC5CDR, …): documents with their annotated mentions."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .._io import read_lines
from ..errors import DataFormatError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mention:
    """One annotated mention: character offsets into ``title + " " + abstract``, text, type, gold ids."""

    pmid: str
    start: int
    end: int
    text: str
    type: str
    ids: str


@dataclass
class Document:
    """A PubTator document: title, abstract and mentions."""

    pmid: str
    title: str = ""
    abstract: str = ""
    mentions: list[Mention] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Title and abstract as the offsets count them (joined by one space)."""
        return f"{self.title} {self.abstract}"


def read_pubtator(path: str | Path, check_offsets: bool = True) -> list[Document]:
    """Read a PubTator file: ``PMID|t|title``, ``PMID|a|abstract``, then one line per mention,
    ``PMID<TAB>start<TAB>end<TAB>text<TAB>type<TAB>ids``.

    With ``check_offsets``, a mention whose offsets don't select its text is an error
    naming the line. A PMID seen twice keeps its first document (the second is skipped
    with a warning, as the BioSyn preprocessing does: NCBI-disease train has one).
    """
    path = Path(path)
    documents: dict[str, Document] = {}
    current: Document | None = None
    skipping: str | None = None
    for number, line in read_lines(path):
        if not line.strip():
            current = None
            continue
        if "\t" not in line and line.count("|") >= 2 and line.split("|", 2)[1] in ("t", "a"):
            pmid, kind, text = line.split("|", 2)
            if kind == "t":
                if pmid in documents:
                    logger.warning("%s:%d: PMID %s appears again; keeping its first document", path, number, pmid)
                    skipping, current = pmid, None
                    continue
                skipping = None
                current = documents[pmid] = Document(pmid, title=text)
            elif skipping == pmid:
                continue
            elif current is None or current.pmid != pmid:
                raise DataFormatError(path, number, f"abstract of PMID {pmid} without its title line")
            else:
                current.abstract = text
            continue
        fields = line.split("\t")
        if skipping is not None and fields[0] == skipping:
            continue
        if len(fields) == 4 and fields[1] in ("CID",):  # relation lines (BC5CDR) are not mentions
            continue
        if len(fields) != 6:
            raise DataFormatError(
                path, number,
                f"expected PMID<TAB>start<TAB>end<TAB>mention<TAB>type<TAB>ids, found {len(fields)} fields",
            )
        pmid, start, end, text, kind, ids = fields
        if current is None or pmid != current.pmid:
            raise DataFormatError(path, number, f"mention of PMID {pmid} outside its document")
        try:
            begin, finish = int(start), int(end)
        except ValueError:
            raise DataFormatError(path, number, f"offsets must be integers, found {start!r} and {end!r}") from None
        if check_offsets and current.text[begin:finish].strip() != text.strip():
            raise DataFormatError(
                path, number,
                f"offsets {begin}-{finish} select {current.text[begin:finish]!r}, not the mention {text!r}",
            )
        current.mentions.append(Mention(pmid, begin, finish, text.strip(), kind, ids.strip()))
    return list(documents.values())
