import io
import json

import pytest

from entitylink import __version__
from entitylink.apps.cli import main

from .conftest import ONTOLOGIES


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out


def test_link_from_stdin_as_tsv(index_dir, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("NIDDM\nHeart Attack\n"))
    assert main(["-q", "link", "--index", str(index_dir), "--k", "2", "--precision", "fp32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "mention\trank\tconcept_id\tname\tscore"
    assert lines[1].startswith("NIDDM\t1\tD003924\tNIDDM\t")
    assert len(lines) == 5


def test_link_file_to_jsonl(index_dir, tmp_path):
    mentions = tmp_path / "m.txt"
    mentions.write_text("fits\nasthma\n")
    out = tmp_path / "out.jsonl"
    assert main(["-q", "link", "--index", str(index_dir), "--input", str(mentions), "--output", str(out),
                 "--format", "jsonl", "--k", "3"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["mention"] for r in records] == ["fits", "asthma"]
    assert records[1]["candidates"][0]["concept_id"] == "D001249" and len(records[1]["candidates"]) == 3


def test_evaluate_and_info(index_dir, tmp_path, capsys):
    queries = tmp_path / "q.tsv"
    queries.write_text("NIDDM\tD003924\nHeart Attack\tD009203\nxyz qqq\tD012559\n")
    details = tmp_path / "details.tsv"
    figures = tmp_path / "fig.json"
    assert main(["-q", "evaluate", "--index", str(index_dir), "--queries", str(queries), "--ks", "1,40",
                 "--details", str(details), "--json", str(figures)]) == 0
    out = capsys.readouterr().out
    assert "acc@1\t" in out and "n\t3" in out
    result = json.loads(figures.read_text())
    assert result["n"] == 3 and result["acc@40"] == 1.0 and result["acc@1"] >= 2 / 3
    assert details.read_text().startswith("mention\tgold\tpredicted")
    assert main(["info", str(index_dir)]) == 0
    info = capsys.readouterr().out
    assert "entries" in info and "cls" in info and "example_medic.txt" in info
    assert "encoded in           fp32" in info


def test_evaluate_a_pubtator_corpus_as_the_benchmarks_preprocess_it(index_dir, tmp_path, capsys):
    import pandas as pd

    from entitylink import Linker, evaluate
    from entitylink.text.preprocess import QueryPreprocessor, read_spelling
    from entitylink.text.pubtator import read_pubtator

    corpus = _pubtator(tmp_path / "corpus.txt", [
        ("1", "Breast and ovarian cancer in women.",
         "Women with non-insulin-dependent diabetes mellitus (NIDDM) had a hart attack. NIDDM is common.",
         [("Breast and ovarian cancer", "D001943|D010051"), ("non-insulin-dependent diabetes mellitus", "D003924"),
          ("NIDDM", "D003924"), ("hart attack", "D009203"), ("NIDDM", "D003924")]),
        ("2", "Asthma and fits.", "No seizures.", [("Asthma", "D999999"), ("fits", "D012640")]),
    ])
    spelling = tmp_path / "spell.txt"
    spelling.write_text("hart||heart\n")
    details, figures = tmp_path / "details.tsv", tmp_path / "fig.json"
    assert main(["-q", "evaluate", "--index", str(index_dir), "--corpus", f"pubtator:{corpus}", "--spelling",
                 str(spelling), "--drop-unknown", "--details", str(details), "--json", str(figures)]) == 0
    captured = capsys.readouterr()
    assert "n\t6" in captured.out and "dropped\t1" in captured.err
    rows = pd.read_csv(details, sep="\t")
    long_form = "non insulin dependent diabetes mellitus"
    assert rows["mention"].tolist() == ["breast cancer | ovarian cancer", long_form, long_form, "heart attack",
                                        long_form, "fits"]
    # the same figures as the benchmarks' own path: QueryPreprocessor + evaluate
    queries = QueryPreprocessor(spelling=read_spelling(spelling)).queries(read_pubtator(corpus))
    queries = [q for q in queries if q.gold != "D999999"]
    expected = evaluate(Linker.load(index_dir), [q.text for q in queries], [q.gold for q in queries], ks=(1, 5))
    result = json.loads(figures.read_text())
    assert result["acc@1"] == expected.metrics["acc@1"] and result["acc@5"] == expected.metrics["acc@5"]

    assert main(["-q", "evaluate", "--index", str(index_dir), "--corpus", f"tsv:{corpus}"]) == 2
    assert "--corpus must be pubtator:FILE" in capsys.readouterr().err
    assert main(["-q", "evaluate", "--index", str(index_dir), "--queries", str(corpus), "--spelling",
                 str(spelling)]) == 2
    assert "apply to --corpus only" in capsys.readouterr().err


@pytest.mark.slow
def test_int8_from_the_command_line(index_dir, monkeypatch, capsys):
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr("sys.stdin", io.StringIO("NIDDM\n"))
    assert main(["-q", "link", "--index", str(index_dir), "--k", "1", "--precision", "int8"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("NIDDM\t1\tD003924\t")
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    assert main(["-q", "link", "--index", str(index_dir), "--precision", "int8"]) == 2
    assert "pip install 'entitylink[onnx]'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # training runs in torch: int8 is not offered
        main(["train", "--ontology", "hpo", "--out", "x", "--precision", "int8"])
    assert "invalid choice: 'int8'" in capsys.readouterr().err


def test_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    assert main(["index", "--ontology", "mesh:x.txt", "--out", str(tmp_path / "i")]) == 2
    assert "error: unknown ontology kind 'mesh'" in capsys.readouterr().err
    assert main(["link", "--index", str(tmp_path / "missing")]) == 2
    assert "no index directory" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("D1 Flu\n")
    assert main(["index", "--ontology", f"medic:{bad}", "--out", str(tmp_path / "i")]) == 2
    assert "bad.txt:1" in capsys.readouterr().err


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as err:
        main(["link", "--index", "x", "--k", "0"])
    assert err.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


def test_index_search_options_reach_the_saved_index(tiny_model, tmp_path, capsys):
    out = tmp_path / "idx"
    args = ["-q", "index", "--ontology", f"medic:{ONTOLOGIES / 'example_medic.txt'}", "--model", str(tiny_model),
            "--precision", "fp32", "--out", str(out), "--search", "hnsw", "--float16"]
    assert main(args + ["--pca", "8"]) == 2
    assert "pca needs rerank" in capsys.readouterr().err
    assert main(args + ["--pca", "8", "--rerank", "5", "--ef-search", "40"]) == 0
    search = json.loads((out / "meta.json").read_text())["search"]
    assert (search["kind"], search["pca"], search["rerank"], search["ef_search"]) == ("hnsw", 8, 5, 40)
    ivf = args[:-3] + ["--search", "ivf", "--nlist", "2", "--nprobe", "2"]
    assert main(ivf) == 0
    search = json.loads((out / "meta.json").read_text())["search"]
    assert (search["kind"], search["nlist"], search["nprobe"]) == ("ivf", 2, 2)


@pytest.mark.slow
def test_demo_on_a_tiny_model(tiny_model, tmp_path, capsys):
    """`entitylink demo` end to end (the embedded HPO), with a tiny model so it runs in seconds."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--model", str(tiny_model), "--precision", "fp32",
                 "--max-queries", "40", "--train-names", "64"]) == 0
    printed = capsys.readouterr().out
    assert "[untuned] held-out HPO synonyms: acc@1" in printed and "[Mirror-BERT tuned]" in printed
    assert "clinical phrases -> HPO (top 3)" in printed and "heart attack" in printed
    figures = json.loads((out / "demo_results.json").read_text())
    assert figures["heldout_hpo"]["n"] == 40 and figures["training"]["names"] == 64
    assert "annotating a clinical paragraph" in printed
    from entitylink.apps.demo import PARAGRAPH

    spans = figures["annotated_paragraph"]  # whatever a tiny model finds, it points into the paragraph
    assert all(PARAGRAPH[e["start"]:e["end"]] == e["text"] for e in spans)
    assert any(e["text"] == "short stature" and e["source"] == "exact" for e in spans)  # an HPO name verbatim
    from entitylink import Encoder, Linker

    linker = Linker.load(out / "index", precision="fp32")  # the tuned model, saved where the index says
    assert linker.index.meta["encoder"]["model"] == str((out / "model").resolve())
    assert Encoder(out / "model").fingerprint() == linker.index.encoder.fingerprint()
    assert len(linker.link("heart attack")) == linker.policy.k
    details = (out / "heldout_details.tsv").read_text().splitlines()
    assert len(details) == 41 and details[0].startswith("mention\tgold")


def test_train_takes_the_loader_options_index_takes(tiny_model, tmp_path):
    """--synonym-scopes and --roots reach the OBO loader in train as in index: both see the same names."""
    obo = ONTOLOGIES / "example.obo"
    out = tmp_path / "model"
    base = ["train", "--ontology", f"obo:{obo}", "--out", str(out), "--model", str(tiny_model), "--precision",
            "fp32", "--mode", "mirror", "--epochs", "1", "--batch-size", "4", "--n-names", "1000"]
    assert main(base) == 0
    exact = json.loads((out / "entitylink_training.json").read_text())
    assert main([*base, "--synonym-scopes", "EXACT,RELATED,NARROW,BROAD"]) == 0
    every = json.loads((out / "entitylink_training.json").read_text())
    assert every["steps"] > exact["steps"]  # more synonyms, more names, more steps
    assert main([*base, "--synonym-scopes", "SIMILAR"]) == 2
    assert main([*base, "--roots", "EX:0000003"]) == 0  # one branch: fewer names, fewer steps
    assert json.loads((out / "entitylink_training.json").read_text())["steps"] < exact["steps"]
    assert main([*base, "--roots", "EX:9999999"]) == 2
    assert main([*base[:-1], "all"]) == 0  # every name
    assert json.loads((out / "entitylink_training.json").read_text())["n_names"] is None
    assert json.loads((out / "entitylink_training.json").read_text())["steps"] == exact["steps"]
    assert main([*base[:-1], "2"]) == 0
    assert json.loads((out / "entitylink_training.json").read_text())["steps"] < exact["steps"]
    with pytest.raises(SystemExit) as exit_info:
        main([*base[:-1], "some"])
    assert exit_info.value.code == 2


def test_index_with_a_sparse_weight_writes_a_hybrid_that_link_uses(tiny_model, tmp_path, capsys):
    from entitylink import Linker
    from entitylink.index import HybridIndex

    out = tmp_path / "hybrid"
    assert main(["-q", "index", "--ontology", f"medic:{ONTOLOGIES / 'example_medic.txt'}", "--out", str(out),
                 "--model", str(tiny_model), "--precision", "fp32", "--sparse-weight", "0.4"]) == 0
    linker = Linker.load(out, precision="fp32")
    assert isinstance(linker.index, HybridIndex) and linker.policy.sparse_weight == 0.4
    (tmp_path / "m.txt").write_text("hypertensoin\n")
    capsys.readouterr()
    assert main(["link", "--index", str(out), "--input", str(tmp_path / "m.txt"), "--format", "jsonl",
                 "--precision", "fp32"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = linker.link("hypertensoin")
    assert [(c["concept_id"], round(c["score"], 5)) for c in line["candidates"]] == \
        [(c.concept_id, round(c.score, 5)) for c in expected]
    # annotate links with the saved weight unless --sparse-weight overrides it
    from entitylink.link.annotate import Annotator

    (tmp_path / "doc.txt").write_text("A hart attack with hypertensoin.\n")
    for weight in (None, 0.0):
        option = [] if weight is None else ["--sparse-weight", str(weight)]
        assert main(["-q", "annotate", "--index", str(out), "--input", str(tmp_path / "doc.txt"), "--output",
                     str(tmp_path / "doc.jsonl"), "--precision", "fp32", "--detect-threshold", "-1", *option]) == 0
        written = json.loads((tmp_path / "doc.jsonl").read_text())["entities"]
        annotator = Annotator(Linker.load(out, precision="fp32", sparse_weight=weight), threshold=-1)
        assert [(e["text"], round(e["score"], 5)) for e in written] == \
            [(e.text, round(e.score, 5)) for e in annotator.annotate_one("A hart attack with hypertensoin.")]


def _pubtator(path, documents):
    """Write PubTator documents: (pmid, title, abstract, [(mention text, id), ...]) with computed offsets."""
    lines = []
    for pmid, title, abstract, mentions in documents:
        text = f"{title} {abstract}"
        lines += [f"{pmid}|t|{title}", f"{pmid}|a|{abstract}"]
        start = 0
        for mention, cid in mentions:
            begin = text.index(mention, start)
            lines.append(f"{pmid}\t{begin}\t{begin + len(mention)}\t{mention}\tDisease\t{cid}")
            start = begin + len(mention)
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_reranker_from_a_corpus_or_the_ontology_then_index_and_link(tiny_model, tmp_path, capsys):
    from entitylink import Linker

    medic = f"medic:{ONTOLOGIES / 'example_medic.txt'}"
    assert main(["-q", "index", "--ontology", medic, "--out", str(tmp_path / "idx"), "--model", str(tiny_model),
                 "--precision", "fp32"]) == 0
    corpus = _pubtator(tmp_path / "train.txt", [
        ("1", "Heart attack in diabetics.", "Two had high blood pressure and fits.",
         [("Heart attack", "D009203"), ("high blood pressure", "D006973"), ("fits", "D012640")]),
        ("2", "Hypertensoin and seizure.", "No myocardial infarct was seen.",
         [("Hypertensoin", "D006973"), ("seizure", "D012640"), ("myocardial infarct", "D009203")]),
    ])
    common = ["--index", str(tmp_path / "idx"), "--model", str(tiny_model), "--precision", "fp32",
              "--candidates", "4", "--epochs", "2", "--lists-per-batch", "2"]
    assert main(["train-reranker", *common, "--corpus", f"pubtator:{corpus}", "--dev", f"pubtator:{corpus}",
                 "--out", str(tmp_path / "rr-corpus")]) == 0
    err = capsys.readouterr().err
    assert "6 training lists" in err and "dev acc@1" in err
    assert main(["train-reranker", *common, "--synonyms", "20", "--out", str(tmp_path / "rr-onto")]) == 0
    assert "20 training lists" in capsys.readouterr().err
    assert main(["-q", "index", "--ontology", medic, "--out", str(tmp_path / "idx-rr"), "--model", str(tiny_model),
                 "--precision", "fp32", "--reranker", str(tmp_path / "rr-onto"), "--rerank-k", "4"]) == 0
    linker = Linker.load(tmp_path / "idx-rr", precision="fp32")
    assert linker.reranker is not None and linker.policy.reranker == "reranker" and linker.policy.rerank_k == 4
    (tmp_path / "m.txt").write_text("heart attack\n")
    assert main(["link", "--index", str(tmp_path / "idx-rr"), "--input", str(tmp_path / "m.txt"), "--format",
                 "jsonl", "--precision", "fp32", "--k", "3"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    scores = [c["score"] for c in line["candidates"]]
    assert len(scores) == 3 and all(0 <= s <= 1 for s in scores) and sum(scores) <= 1 + 1e-5  # probabilities
    assert [c["concept_id"] for c in line["candidates"]] == [c.concept_id for c in linker.link("heart attack", k=3)]


def test_annotate_contract_for_each_input_format(index_dir, tmp_path, capsys):
    text_in = tmp_path / "notes.txt"
    text_in.write_text("Asthma and a heart attack.\n\nSeizures (fits) again.\n")
    out = tmp_path / "out.jsonl"
    assert main(["-q", "annotate", "--index", str(index_dir), "--input", str(text_in), "--output", str(out),
                 "--detector", "exact"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == ["1", "2", "3"] and records[1]["entities"] == []
    assert all(set(r) == {"id", "entities"} for r in records)
    first = records[0]["entities"]
    assert [(e["start"], e["end"], e["text"], e["concept_id"]) for e in first] == \
        [(0, 6, "Asthma", "D001249"), (13, 25, "heart attack", "D009203")]
    assert all(set(e) == {"start", "end", "text", "concept_id", "score"} for r in records for e in r["entities"])
    assert isinstance(first[0]["score"], float)

    jsonl_in = tmp_path / "docs.jsonl"
    jsonl_in.write_text(json.dumps({"id": "n1", "text": "Asthma and a heart attack."}) + "\n\n"
                        + json.dumps({"id": "n2", "text": "fits"}) + "\n")
    out2 = tmp_path / "out2.jsonl"
    assert main(["-q", "annotate", "--index", str(index_dir), "--input", str(jsonl_in), "--input-format", "jsonl",
                 "--output", str(out2), "--detector", "exact"]) == 0
    again = [json.loads(line) for line in out2.read_text().splitlines()]
    assert [r["id"] for r in again] == ["n1", "n2"] and again[0]["entities"] == first

    pubtator_in = _pubtator(tmp_path / "in.pubtator", [("77", "Asthma and a heart attack.", "Fits.", [])])
    out3 = tmp_path / "out3.txt"
    assert main(["-q", "annotate", "--index", str(index_dir), "--input", str(pubtator_in), "--input-format",
                 "pubtator", "--output", str(out3), "--format", "pubtator", "--detector", "exact"]) == 0
    from entitylink.text.pubtator import read_pubtator

    (doc,) = read_pubtator(out3)  # our PubTator output reads back, offsets checked against the text
    assert doc.pmid == "77" and [(m.start, m.end, m.ids) for m in doc.mentions] == \
        [(0, 6, "D001249"), (13, 25, "D009203"), (27, 31, "D012640")]


def test_annotate_bad_input_is_one_clear_line_and_keeps_what_was_written(index_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "text": "asthma"}) + "\n" + json.dumps({"id": "b", "txt": "x"}) + "\n")
    out = tmp_path / "out.jsonl"
    out.write_text("an earlier result\n")
    assert main(["-q", "annotate", "--index", str(index_dir), "--input", str(bad), "--input-format", "jsonl",
                 "--output", str(out), "--batch-size", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and 'no string "text"' in err and "Traceback" not in err
    assert out.read_text() == "an earlier result\n"  # never half-replaced
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("asthma\ncaf\xe9 fits\n".encode("latin-1"))
    assert main(["-q", "annotate", "--index", str(index_dir), "--input", str(latin), "--output", str(out)]) == 2
    assert f"{latin}:2" in capsys.readouterr().err and "not valid UTF-8" not in out.read_text()
    offsets = tmp_path / "offsets.txt"
    offsets.write_text("1|t|Asthma.\n1|a|Fits.\n1\t0\t6\tAsthmx\tDisease\tD001249\n\n")
    assert main(["-q", "annotate", "--index", str(index_dir), "--input", str(offsets), "--input-format", "pubtator",
                 "--output", str(out)]) == 2
    assert f"{offsets}:3" in capsys.readouterr().err
    assert main(["-q", "annotate", "--index", str(index_dir), "--input", str(out), "--output", str(out)]) == 2
    assert "would overwrite --input" in capsys.readouterr().err
    missing = tmp_path / "missing.txt"
    assert main(["-q", "annotate", "--index", str(index_dir), "--input", str(missing), "--output",
                 str(tmp_path / "m.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err and not list(tmp_path.glob("m.jsonl*"))


def test_evaluate_docs_scores_annotation_against_a_corpus(index_dir, tmp_path, capsys):
    corpus = _pubtator(tmp_path / "gold.txt", [
        ("1", "Asthma and a heart attack.", "Fits were rare.",
         [("Asthma", "D001249"), ("heart attack", "D009203"), ("Fits", "D012640")]),
        ("2", "No disease here.", "Nor here.", []),
    ])
    figures = tmp_path / "e2e.json"
    assert main(["-q", "evaluate-docs", "--index", str(index_dir), "--corpus", f"pubtator:{corpus}",
                 "--detector", "exact", "--json", str(figures)]) == 0
    out = capsys.readouterr().out
    assert "document\tP 1.0000\tR 1.0000\tF1 1.0000" in out and "documents\t2" in out
    result = json.loads(figures.read_text())
    assert result["mention_strict"] == {"p": 1.0, "r": 1.0, "f1": 1.0, "tp": 3, "fp": 0, "fn": 0}
    assert main(["-q", "evaluate-docs", "--index", str(index_dir), "--corpus", str(corpus)]) == 2
    assert "--corpus must be pubtator:FILE" in capsys.readouterr().err
    assert main(["-q", "evaluate-docs", "--index", str(index_dir), "--corpus", f"pubtator:{corpus}",
                 "--sparse-weight", "0.1"]) == 2  # a dense index has no sparse half to weigh
    assert "needs an index with a sparse half" in capsys.readouterr().err


@pytest.mark.slow
def test_train_tagger_from_a_corpus_or_an_ontology_then_annotate_with_it(index_dir, tiny_model, tmp_path, capsys):
    from entitylink.model.tagger import Tagger

    docs = [(str(i), "A heart attack and asthma.", "Seizures followed the heart attack.",
             [("heart attack", "D009203"), ("asthma", "D001249"), ("Seizures", "D012640"), ("heart attack", "D009203")])
            for i in range(6)]
    corpus = _pubtator(tmp_path / "train.txt", docs)
    tagger_dir = tmp_path / "tagger"
    assert main(["-q", "train-tagger", "--corpus", f"pubtator:{corpus}", "--dev", f"pubtator:{corpus}",
                 "--model", str(tiny_model), "--max-length", "32", "--epochs", "25", "--learning-rate", "3e-3",
                 "--batch-size", "4", "--precision", "fp32", "--out", str(tagger_dir)]) == 0
    assert "dev span F1" in capsys.readouterr().err
    assert Tagger(tagger_dir).training["best_dev_f1"] > 0.8
    assert Tagger(tagger_dir).mentions == ["heart attack", "asthma", "Seizures"]  # its corpus's, kept with it
    notes = tmp_path / "notes.txt"
    notes.write_text("A heart attack and asthma. Seizures followed the heart attack.\n")  # as trained on
    out = tmp_path / "out.jsonl"
    assert main(["-q", "annotate", "--index", str(index_dir), "--tagger", str(tagger_dir), "--input", str(notes),
                 "--output", str(out), "--detect-threshold", "-1", "--precision", "fp32"]) == 0
    entities = json.loads(out.read_text())["entities"]
    assert [(e["text"], e["start"]) for e in entities] == [("heart attack", 2), ("asthma", 19), ("Seizures", 27),
                                                           ("heart attack", 49)]

    texts = tmp_path / "texts.txt"
    texts.write_text("The patient had asthma and fits.\nNo heart attack.\n")
    assert main(["-q", "train-tagger", "--ontology", f"medic:{ONTOLOGIES / 'example_medic.txt'}", "--texts",
                 str(texts), "--model", str(tiny_model), "--max-length", "32", "--epochs", "1", "--precision", "fp32",
                 "--out", str(tmp_path / "weak")]) == 0
    assert "weak labels: 3 name(s) in 2 text(s)" in capsys.readouterr().err
    assert main(["-q", "train-tagger", "--ontology", f"medic:{ONTOLOGIES / 'example_medic.txt'}", "--model",
                 str(tiny_model), "--max-length", "32", "--epochs", "1", "--precision", "fp32",
                 "--out", str(tmp_path / "synthetic")]) == 0
    assert (tmp_path / "synthetic" / "model.safetensors").is_file()
    assert Tagger(tmp_path / "synthetic").mentions is None  # weak labels: no annotated mentions to keep
    assert main(["-q", "train-tagger", "--corpus", f"pubtator:{corpus}", "--texts", str(texts),
                 "--out", str(tmp_path / "x")]) == 2
    assert "--texts goes with --ontology" in capsys.readouterr().err


@pytest.mark.slow
def test_a_crf_tagger_with_dictionary_features_saves_the_settings_dev_chose_and_annotate_uses_them(
        index_dir, tiny_model, tmp_path, capsys):
    docs = [(str(i), "A heart attack and asthma.", "Seizures followed the heart attack.",
             [("heart attack", "D009203"), ("asthma", "D001249"), ("Seizures", "D012640"), ("heart attack", "D009203")])
            for i in range(6)]
    corpus = _pubtator(tmp_path / "train.txt", docs)
    medic = f"medic:{ONTOLOGIES / 'example_medic.txt'}"
    tagger_dir = tmp_path / "tagger"
    common = ["--model", str(tiny_model), "--max-length", "32", "--learning-rate", "3e-3", "--batch-size", "4",
              "--precision", "fp32"]
    assert main(["-q", "train-tagger", "--corpus", f"pubtator:{corpus}", "--index", str(index_dir), "--out",
                 str(tmp_path / "x"), *common]) == 2
    assert "--index chooses the tagger's settings on --dev" in capsys.readouterr().err
    assert main(["-q", "train-tagger", "--corpus", f"pubtator:{corpus}", "--dev", f"pubtator:{corpus}", "--crf",
                 "--dictionary", medic, "--index", str(index_dir), "--epochs", "25", "--out", str(tagger_dir),
                 *common]) == 0
    assert "dev document F1" in capsys.readouterr().err
    saved = json.loads((tagger_dir / "entitylink_tagger.json").read_text())
    assert saved["crf"] and saved["dictionary_features"] and saved["settings"]["dev_document_f1"] == 1.0
    assert saved["settings"]["detect_threshold"] in (0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99)
    notes = tmp_path / "notes.txt"
    notes.write_text("A heart attack and asthma. Seizures followed the heart attack.\n")
    out = tmp_path / "out.jsonl"

    def annotate(*extra):
        assert main(["-q", "annotate", "--index", str(index_dir), "--tagger", str(tagger_dir), "--input", str(notes),
                     "--output", str(out), "--precision", "fp32", *extra]) == 0
        return [(e["text"], e["start"]) for e in json.loads(out.read_text())["entities"]]

    assert annotate() == [("heart attack", 2), ("asthma", 19), ("Seizures", 27), ("heart attack", 49)]
    # an index without "heart attack" as a name: the tagger reads the dictionary it was trained with (it carries
    # it), so it still tags "heart attack", which the encoder then links
    full_index = index_dir
    names = tmp_path / "names.tsv"
    names.write_text("D009203\tMyocardial infarction\nD001249\tAsthma\nD012640\tSeizures\n")
    assert main(["-q", "index", "--ontology", f"tsv:{names}", "--model", str(tiny_model), "--precision", "fp32",
                 "--out", str(tmp_path / "small")]) == 0
    index_dir = tmp_path / "small"
    assert annotate("--detect-threshold", "-1") == [("heart attack", 2), ("asthma", 19), ("Seizures", 27),
                                                    ("heart attack", 49)]
    assert (tagger_dir / "entitylink_tagger_dictionary.tsv").read_text().count("\n") == 123
    # a plain tagger's "heart attack" spans are linked by the encoder there, below the tagger's own threshold
    # (names found verbatim are kept whatever it is), unless --detect-threshold overrides it
    assert main(["-q", "train-tagger", "--corpus", f"pubtator:{corpus}", "--dev", f"pubtator:{corpus}", "--no-crf",
                 "--epochs", "25", "--out", str(tagger_dir), *common]) == 0
    saved = json.loads((tagger_dir / "entitylink_tagger.json").read_text())
    assert not saved["crf"] and saved["settings"] == {"detect_threshold": 0.95, "sparse_weight": 0.1}  # defaults
    saved["settings"]["detect_threshold"] = 2.0
    (tagger_dir / "entitylink_tagger.json").write_text(json.dumps(saved))
    assert annotate() == [("asthma", 19), ("Seizures", 27)] and len(annotate("--detect-threshold", "-1")) == 4
    # tune-tagger chooses a trained tagger's settings again, on dev with an index, and keeps the rest of it
    capsys.readouterr()
    assert main(["-q", "tune-tagger", "--tagger", str(tagger_dir), "--index", str(full_index), "--dev",
                 f"pubtator:{corpus}", "--precision", "fp32"]) == 0
    assert "composites" in capsys.readouterr().err
    tuned = json.loads((tagger_dir / "entitylink_tagger.json").read_text())
    assert tuned["settings"]["dev_document_f1"] == 1.0 and {"training_mentions", "composites"} <= set(tuned["settings"])
    assert tuned["training"] == saved["training"] and tuned["crf"] is False
    assert main(["-q", "tune-tagger", "--tagger", str(tmp_path), "--index", str(full_index), "--dev",
                 f"pubtator:{corpus}"]) == 2
    assert "not a tagger directory" in capsys.readouterr().err


@pytest.mark.slow
def test_train_tagger_refit_trains_again_on_corpus_and_dev_with_what_dev_chose(index_dir, tiny_model, tmp_path,
                                                                                capsys):
    from entitylink.model.tagger import Tagger

    train = _pubtator(tmp_path / "train.txt", [
        (str(i), "A heart attack and asthma.", "Seizures followed.",
         [("heart attack", "D009203"), ("asthma", "D001249"), ("Seizures", "D012640")]) for i in range(4)])
    dev = _pubtator(tmp_path / "dev.txt", [
        ("9", "Asthma and fits.", "No heart attack.", [("Asthma", "D001249"), ("fits", "D012640"),
                                                       ("heart attack", "D009203")])])
    common = ["--corpus", f"pubtator:{train}", "--model", str(tiny_model), "--max-length", "32", "--learning-rate",
              "3e-3", "--batch-size", "4", "--precision", "fp32", "--epochs", "4"]
    assert main(["-q", "train-tagger", *common, "--refit", "--out", str(tmp_path / "x")]) == 2
    assert "--refit trains again on --corpus and --dev together" in capsys.readouterr().err
    out = tmp_path / "tagger"
    assert main(["-q", "train-tagger", *common, "--dev", f"pubtator:{dev}", "--index", str(index_dir), "--refit",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "training again on --corpus and --dev" in err and "settings dev chose" in err
    tagger = Tagger(out)
    held_out = tagger.training["refit"]["held_out"]
    best = max(held_out["history"], key=lambda r: r["dev"]["f1"])["epoch"]
    assert held_out["epochs"] == 4 and len(held_out["history"]) == 4
    assert tagger.training["epochs"] == best and len(tagger.training["history"]) == best
    assert tagger.training["best_dev_f1"] is None and tagger.training["refit"]["documents"] == 5
    assert tagger.training["sentences"] == 4 * 2 + 2  # train's sentences and dev's
    assert tagger.mentions == ["heart attack", "asthma", "Seizures", "Asthma", "fits"]
    assert tagger.settings["chosen_with"] == str(index_dir) and "dev_document_f1" in tagger.settings
    capsys.readouterr()
    assert main(["-q", "tune-tagger", "--tagger", str(out), "--index", str(index_dir), "--dev", f"pubtator:{dev}",
                 "--precision", "fp32", "--out", str(tmp_path / "retuned")]) == 0
    assert "was trained on its dev documents too" in capsys.readouterr().err


@pytest.mark.slow
def test_annotate_a_one_megabyte_document(index_dir, tmp_path):
    import resource

    sentence = "Asthma was seen with a heart attack in one of the men. "
    big = tmp_path / "big.txt"
    text = (sentence * (1_000_000 // len(sentence) + 1))[:1_000_000]
    big.write_text(text + "\nfits\n")
    out = tmp_path / "big.jsonl"
    assert main(["-q", "annotate", "--index", str(index_dir), "--input", str(big), "--output", str(out),
                 "--detector", "exact", "--precision", "fp32"]) == 0
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert len(first["entities"]) == text.count("Asthma") + text.count("heart attack")
    assert second["entities"][0]["text"] == "fits"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 4 * 1024 * 1024  # KiB: well under 4 GiB


def test_train_pairs_a_corpus_mentions_with_names_of_their_concepts(tiny_model, tmp_path, capsys):
    """--mentions adds (mention, concept name) pairs, abbreviations expanded; a corpus of other ids is an error."""
    from entitylink import Ontology
    from entitylink.apps.cli import _gold_mentions, _read_corpus
    from entitylink.model.trainer import mention_pairs
    from entitylink.text.preprocess import read_spelling

    medic = f"medic:{ONTOLOGIES / 'example_medic.txt'}"
    corpus = _pubtator(tmp_path / "train.txt", [
        ("1", "Type 2 diabetes (T2D) and heart attack.", "T2D was common; so were fits.",
         [("Type 2 diabetes", "D003924"), ("T2D", "D003924"), ("heart attack", "D009203"),
          ("T2D", "D003924|D003922"), ("fits", "D999999")]),
    ])
    mentions = _gold_mentions(_read_corpus(f"pubtator:{corpus}", "--mentions"))
    assert mentions == [("type 2 diabetes", "D003924"), ("type 2 diabetes", "D003924"), ("heart attack", "D009203"),
                        ("fits", "D999999")]  # the short form expanded; the two-concept mention left out
    pairs, missing = mention_pairs(Ontology.load(medic), mentions, names_per_mention=2)
    assert missing == 1  # D999999 is not in the example dictionary
    assert pairs[:2] == [("type 2 diabetes", "Diabetes Mellitus, Type 2"), ("type 2 diabetes", "NIDDM")]
    assert pairs[-2:] == [("heart attack", "Myocardial Infarction"), ("heart attack", "Heart Attack")]

    out = tmp_path / "model"
    base = ["train", "--ontology", medic, "--out", str(out), "--model", str(tiny_model), "--precision", "fp32",
            "--mode", "mirror", "--epochs", "1", "--batch-size", "4", "--n-names", "8"]
    assert main(base) == 0
    alone = json.loads((out / "entitylink_training.json").read_text())
    assert main([*base, "--mentions", f"pubtator:{corpus}"]) == 0
    assert "9 pairs; 1 mentions left out" in capsys.readouterr().err
    with_mentions = json.loads((out / "entitylink_training.json").read_text())
    assert with_mentions["steps"] == alone["steps"] + 2  # 8 names + 9 pairs in batches of 4
    assert with_mentions["data_fingerprint"] != alone["data_fingerprint"]
    other = _pubtator(tmp_path / "other.txt", [("2", "Fits.", "None.", [("Fits", "D999999")])])
    assert main([*base, "--mentions", f"pubtator:{other}"]) == 2
    assert "no mention has a concept" in capsys.readouterr().err

    # the short forms kept as written, a misspelling corrected; both only with --mentions
    spelling = tmp_path / "spelling.txt"
    spelling.write_text("attak||attack\n")
    misspelt = _pubtator(tmp_path / "misspelt.txt", [
        ("3", "Type 2 diabetes (T2D).", "T2D and a heart attak.",
         [("Type 2 diabetes", "D003924"), ("T2D", "D003924"), ("heart attak", "D009203")])])
    documents = _read_corpus(f"pubtator:{misspelt}", "--mentions")
    assert _gold_mentions(documents, "off", read_spelling(spelling)) == [
        ("type 2 diabetes", "D003924"), ("t2d", "D003924"), ("heart attack", "D009203")]
    assert _gold_mentions(documents)[1:] == [("type 2 diabetes", "D003924"), ("heart attak", "D009203")]
    assert main([*base, "--mentions", f"pubtator:{misspelt}", "--abbreviations", "off", "--spelling",
                 str(spelling)]) == 0
    assert "9 pairs; 0 mentions left out" in capsys.readouterr().err  # 3 mentions, 3 names each
    assert main([*base, "--spelling", str(spelling)]) == 2
    assert "--spelling and --abbreviations apply to --mentions only" in capsys.readouterr().err
    assert main([*base, "--abbreviations", "schwartz-hearst"]) == 2  # even the default, when asked for
    assert "--spelling and --abbreviations apply to --mentions only" in capsys.readouterr().err
