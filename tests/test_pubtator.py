import pytest

from entitylink import DataFormatError
from entitylink.text.pubtator import read_pubtator

TITLE = "Ataxia-telangiectasia (A-T) and breast cancer."
ABSTRACT = "Carriers of A-T mutations may have breast and ovarian cancer."
TEXT = f"{TITLE} {ABSTRACT}"


def span(part: str, start_at: int = 0) -> tuple[int, int]:
    start = TEXT.index(part, start_at)
    return start, start + len(part)


def doc(pmid="100", mentions=None) -> str:
    lines = [f"{pmid}|t|{TITLE}", f"{pmid}|a|{ABSTRACT}"]
    for text, kind, ids, start_at in mentions or []:
        start, end = span(text, start_at)
        lines.append(f"{pmid}\t{start}\t{end}\t{text}\t{kind}\t{ids}")
    return "\n".join(lines) + "\n\n"


def test_reads_documents_and_mentions(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n" + doc(mentions=[
        ("Ataxia-telangiectasia", "SpecificDisease", "D001260", 0),
        ("breast and ovarian cancer", "CompositeMention", "D001943|D010051", 0),
    ]) + doc("200"))
    docs = read_pubtator(path)
    assert [d.pmid for d in docs] == ["100", "200"]
    first = docs[0]
    assert first.title == TITLE and first.abstract == ABSTRACT and first.text == TEXT
    assert [(m.text, m.type, m.ids) for m in first.mentions] == [
        ("Ataxia-telangiectasia", "SpecificDisease", "D001260"),
        ("breast and ovarian cancer", "CompositeMention", "D001943|D010051"),
    ]
    assert docs[1].mentions == []


def test_offsets_that_do_not_match_name_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    start, end = span("breast cancer")
    path.write_text(doc() .rstrip("\n") + f"\n100\t{start + 2}\t{end}\tbreast cancer\tSpecificDisease\tD001943\n")
    with pytest.raises(DataFormatError, match=r"bad.txt:3: offsets .* not the mention 'breast cancer'"):
        read_pubtator(path)
    assert read_pubtator(path, check_offsets=False)[0].mentions[0].start == start + 2


def test_duplicate_pmid_keeps_the_first(tmp_path, caplog):
    path = tmp_path / "dup.txt"
    path.write_text(doc(mentions=[("breast cancer", "SpecificDisease", "D001943", 0)]) + doc())
    docs = read_pubtator(path)
    assert len(docs) == 1 and len(docs[0].mentions) == 1
    assert "appears again" in caplog.text


@pytest.mark.parametrize(
    "text, message",
    [
        ("100|a|abstract only\n", "without its title line"),
        ("100|t|Title\n100|a|Abstract\n100\t0\t5\tTitle\tDisease\n", "found 5 fields"),
        ("100|t|Title\n100|a|Abstract\n100\tx\t5\tTitle\tDisease\tD1\n", "offsets must be integers"),
        ("100|t|Title\n100|a|Abstract\n999\t0\t5\tTitle\tDisease\tD1\n", "outside its document"),
    ],
)
def test_malformed_files(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=message):
        read_pubtator(path)
