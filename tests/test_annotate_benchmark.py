"""benchmarks.annotate on a toy corpus: the results shape, the dev choices and the saved index."""

import json
import shutil

import pytest

from benchmarks import annotate
from entitylink.link.policy import LEXICAL, OVERLAPS
from tests.conftest import ONTOLOGIES
from tests.test_cli import _pubtator

pytestmark = pytest.mark.slow


def test_a_small_run_writes_every_system_with_the_contract_shape(tiny_model_session, tmp_path):
    data = tmp_path / "data"
    (data / "medic").mkdir(parents=True)
    (data / "ncbi-disease").mkdir()
    shutil.copy(ONTOLOGIES / "example_medic.txt", data / "medic" / "medic_06Jul2012.txt")
    docs = [(str(i), "Asthma and a heart attack.", "Fits followed; no NIDDM, but a hart attack.",
             [("Asthma", "D001249"), ("heart attack", "D009203"), ("Fits", "D012640"), ("NIDDM", "D003924"),
              ("hart attack", "D009203")])  # a misspelt mention: a corpus name MEDIC lacks
            for i in range(4)]
    for name in ("NCBItrainset_corpus.txt", "NCBIdevelopset_corpus.txt", "NCBItestset_corpus.txt"):
        _pubtator(data / "ncbi-disease" / name, docs)
    out = tmp_path / "out"
    assert annotate.main(["--data", str(data), "--out", str(out), "--model", str(tiny_model_session),
                          "--tagger-epochs", "1"]) == 0
    results = json.loads((out / "results.json").read_text())
    ours = [name for name in results if "[published]" not in name]
    assert len(ours) == 5 and any(name.startswith("exact") for name in ours)
    for name in ours:
        row = results[name]
        assert set(row) >= {"document", "mention_strict", "mention_relaxed", "docs_per_s"}
        assert set(row["document"]) >= {"p", "r", "f1"} and row["docs_per_s"] > 0
    assert results["exact dictionary matching (baseline)"]["document"]["f1"] == 1.0  # every gold name is verbatim
    full = json.loads((out / "results_full.json").read_text())
    chosen = full["choices_on_dev"]["ontology only: exact + approximate matching"]["threshold"]
    assert chosen in annotate.THRESHOLDS and full["command"].startswith("python -m benchmarks.annotate")
    assert full["choices_on_dev"]["ontology only: exact + approximate matching"]["sparse_weight"] in (0.0, 0.1)
    sweep = full["dev_sweep"]["ontology only: exact + approximate matching"]
    assert len(sweep) == 2 * len(LEXICAL) * len(OVERLAPS) * len(annotate.THRESHOLDS)
    assert len(full["dev_sweep"]["exact dictionary matching (baseline)"]) == len(LEXICAL) * len(OVERLAPS)
    assert (out / "index-medic" / "sparse").is_dir()  # hybrid indexes, so the chosen weight can be reproduced
    assert (out / "index-medic" / "policy.json").is_file() and (out / "taggers" / "weak").is_dir()
    from entitylink import Linker

    standard = results["tagger trained on NCBI train, MEDIC + corpus mentions dictionary"]["settings"]
    assert standard["dictionary"] == "MEDIC + corpus mentions"
    assert len(Linker.load(out / "index-medic-train-dev").index) > len(Linker.load(out / "index-medic").index)
