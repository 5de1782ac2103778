"""benchmarks.hpo_zero_shot with a tiny model: the record's shape and the dense/hybrid scores."""

import json

import pytest

from benchmarks import hpo_zero_shot

pytestmark = pytest.mark.slow


def test_a_tiny_tuning_run_writes_dense_and_hybrid_scores(tiny_model_session, tmp_path):
    out = tmp_path / "hpo.json"
    assert hpo_zero_shot.main(["--model", str(tiny_model_session), "--mode", "both", "--train-names", "200",
                               "--sparse-weights", "0.1", "1.0", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert set(record["scores"]) == {"dense", "dense + 0.1 x TF-IDF", "dense + 1.0 x TF-IDF"}
    assert record["queries"] > 1000 and record["training_seconds"] > 0
    for scores in record["scores"].values():
        assert 0.0 <= scores["acc@1"] <= scores["acc@5"] <= 1.0
    # a random tiny model links by little more than chance; character TF-IDF adds what it knows of spelling
    assert record["scores"]["dense + 1.0 x TF-IDF"]["acc@1"] > record["scores"]["dense"]["acc@1"]
    assert record["command"].startswith("python -m benchmarks.hpo_zero_shot")


def test_the_dev_split_is_held_out_of_the_test_dictionary(tiny_model_session, tmp_path):
    records = {}
    for split in ("test", "dev"):
        out = tmp_path / f"{split}.json"
        flags = ["--dev"] if split == "dev" else []
        assert hpo_zero_shot.main(["--model", str(tiny_model_session), "--mode", "none", "--sparse-weights",
                                   *flags, "--out", str(out)]) == 0
        records[split] = json.loads(out.read_text())
    test, dev = records["test"], records["dev"]
    assert (test["split"], dev["split"]) == ("test", "dev")
    # a second synonym of each concept that still has two names leaves the dictionary and becomes a dev query
    assert dev["dictionary_names"] + dev["queries"] == test["dictionary_names"]
    assert 0 < dev["queries"] < test["queries"]
