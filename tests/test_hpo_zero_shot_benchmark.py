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
