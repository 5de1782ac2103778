"""BioC in and out: passages at their offsets, annotations in the passage they start in, input kept."""

import json

import bioc
import bioc.biocjson
import bioc.biocxml
import pytest

from entitylink.apps.cli import main

DOCS = [("11", "A heart attack in a child.", "Asthma and seizures followed; NIDDM was ruled out."),
        ("12", "Lung cancer.", "No asthma.")]


def collection():
    out = bioc.BioCCollection()
    out.source = "test"
    for pmid, title, abstract in DOCS:
        document = bioc.BioCDocument()
        document.id = pmid
        for offset, text, kind in ((0, title, "title"), (len(title) + 1, abstract, "abstract")):
            passage = bioc.BioCPassage()
            passage.offset, passage.text = offset, text
            passage.infons["type"] = kind
            document.add_passage(passage)
        kept = bioc.BioCAnnotation()  # an annotation of the input, to be kept
        kept.id, kept.text = "T1", title.split()[0]
        kept.infons["type"] = "Word"
        kept.add_location(bioc.BioCLocation(0, len(kept.text)))
        document.passages[0].add_annotation(kept)
        out.add_document(document)
    return out


@pytest.fixture()
def inputs(tmp_path):
    pubtator = tmp_path / "docs.pubtator"
    pubtator.write_text("".join(f"{p}|t|{t}\n{p}|a|{a}\n\n" for p, t, a in DOCS))
    xml, js = tmp_path / "docs.xml", tmp_path / "docs.json"
    xml.write_text(bioc.biocxml.dumps(collection()))
    js.write_text(bioc.biocjson.dumps(collection()))
    return pubtator, xml, js


def annotations(path):
    loader = bioc.biocjson if path.suffix == ".json" else bioc.biocxml
    with open(path) as handle:
        found = loader.load(handle)
    out = {}
    for document in found.documents:
        rows = []
        for passage in document.passages:
            for a in passage.annotations:
                if a.infons.get("type") == "Word":
                    continue
                (location,) = a.locations
                assert passage.offset <= location.offset <= passage.offset + len(passage.text)  # where it starts
                local = location.offset - passage.offset
                assert passage.text[local : local + location.length] == a.text
                rows.append((location.offset, location.end, a.text, a.infons["identifier"]))
        out[document.id] = sorted(rows)
    return found, out


@pytest.mark.slow
def test_bioc_xml_and_json_annotate_as_their_pubtator_twin_and_keep_the_input(index_dir, inputs, tmp_path):
    pubtator, xml, js = inputs
    args = ["-q", "annotate", "--index", str(index_dir), "--precision", "fp32"]
    assert main([*args, "--input", str(pubtator), "--input-format", "pubtator", "--output",
                 str(tmp_path / "out.jsonl")]) == 0
    expected = {}
    for line in (tmp_path / "out.jsonl").read_text().splitlines():
        record = json.loads(line)
        expected[record["id"]] = sorted((e["start"], e["end"], e["text"], e["concept_id"]) for e in record["entities"])
    assert sum(map(len, expected.values())) >= 4
    for source, target in ((xml, tmp_path / "out.xml"), (js, tmp_path / "out.json")):
        assert main([*args, "--input", str(source), "--input-format", "bioc", "--format", "bioc", "--output",
                     str(target)]) == 0
        found, rows = annotations(target)
        assert rows == expected
        assert [p.infons["type"] for p in found.documents[0].passages] == ["title", "abstract"]
        assert found.documents[0].passages[0].annotations[0].infons["type"] == "Word"  # the input's own, kept
        assert {a.infons["type"] for d in found.documents for p in d.passages for a in p.annotations} == \
            {"Word", "Disease"}
        ids = [a.id for d in found.documents[:1] for p in d.passages for a in p.annotations]
        assert len(ids) == len(set(ids))  # new annotations do not reuse the input's ids


@pytest.mark.slow
def test_text_to_bioc_and_bad_bioc_input(index_dir, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("A heart attack.\nNo asthma.\n")
    out = tmp_path / "out.xml"
    assert main(["-q", "annotate", "--index", str(index_dir), "--input", str(notes), "--format", "bioc",
                 "--output", str(out), "--precision", "fp32"]) == 0
    found, rows = annotations(out)
    assert [d.id for d in found.documents] == ["1", "2"] and [len(d.passages) for d in found.documents] == [1, 1]
    assert rows["1"] == [(2, 14, "heart attack", "D009203")]
    broken = tmp_path / "broken.xml"
    broken.write_text("<collection><document><id>1</id><passage><offset>x</offset>")
    assert main(["-q", "annotate", "--index", str(index_dir), "--input", str(broken), "--input-format", "bioc",
                 "--output", str(tmp_path / "x.jsonl"), "--precision", "fp32"]) == 2
    assert "broken.xml" in capsys.readouterr().err
