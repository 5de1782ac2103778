"""Calibration: scores become probabilities of being right, fitted on dev, saved in the policy."""

import numpy as np
import pytest

from entitylink import DictionaryIndex, Linker, LinkingPolicy
from entitylink.apps.cli import main
from entitylink.link.calibration import Calibration, expected_calibration_error, reliability

from .conftest import ONTOLOGIES


def synthetic(n=4000, seed=0):
    """Scores whose true probability of being right is score**2: raw scores are over-confident."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 1, n)
    return scores, rng.uniform(0, 1, n) < scores**2


@pytest.mark.parametrize("kind", ["isotonic", "platt"])
def test_a_fitted_calibration_is_monotonic_bounded_and_better_than_raw(kind):
    scores, correct = synthetic()
    calibration = Calibration.fit(scores, correct, kind=kind)
    grid = np.linspace(-0.5, 1.5, 50)
    mapped = calibration(grid)
    assert ((0 <= mapped) & (mapped <= 1)).all() and (np.diff(mapped) >= -1e-12).all()
    held_scores, held_correct = synthetic(seed=1)  # judged on other data than it was fitted on
    assert expected_calibration_error(calibration(held_scores), held_correct) < \
        expected_calibration_error(held_scores, held_correct) / 2
    assert Calibration.from_dict(calibration.to_dict()) == calibration
    assert np.allclose(calibration(0.9), 0.81, atol=0.1)


def test_reliability_table_counts_every_prediction():
    rows = reliability([0.05, 0.15, 0.95, 0.99, 1.0], [False, True, True, True, False], bins=10)
    assert sum(r["n"] for r in rows) == 5
    assert rows[-1]["n"] == 3 and rows[-1]["right"] == pytest.approx(2 / 3)


def test_the_linker_maps_scores_and_thresholds_on_the_probability(medic_example, tiny_encoder, tmp_path):
    index = DictionaryIndex.build(medic_example, tiny_encoder)
    raw = Linker(index, k=3).link(["heart attack", "fits"])
    calibration = Calibration(kind="platt", a=10.0, b=-9.5)
    calibrated = Linker(index, LinkingPolicy(k=3, calibration=calibration.to_dict()))
    mapped = calibrated.link(["heart attack", "fits"])
    for before, after in zip(raw, mapped):
        assert [c.concept_id for c in before] == [c.concept_id for c in after]  # the order is kept
        assert np.allclose([c.score for c in after], calibration([c.score for c in before]))
    cut = (mapped[0][0].score + mapped[0][1].score) / 2
    kept = calibrated.link(["heart attack", "fits"], threshold=cut)
    assert len(kept[0]) == 1 and all(c.score >= cut for cands in kept for c in cands)
    calibrated.save(tmp_path / "idx")
    assert Linker.load(tmp_path / "idx", precision="fp32").policy.calibration == calibration.to_dict()


def test_calibrate_command_writes_the_policy_and_a_plot(tiny_model, tmp_path, capsys):
    out = tmp_path / "idx"
    assert main(["-q", "index", "--ontology", f"medic:{ONTOLOGIES / 'example_medic.txt'}", "--out", str(out),
                 "--model", str(tiny_model), "--precision", "fp32"]) == 0
    queries = tmp_path / "dev.tsv"
    queries.write_text("mention\tconcept_id\nheart attack\tD009203\nhypertensoin\tD006973\nfits\tD012640\n"
                       "sugar diabetes\tD003924\nbreast cancers\tD001943\nkidney failure\tD051437\n")
    assert main(["calibrate", "--index", str(out), "--queries", str(queries), "--precision", "fp32",
                 "--plot", str(tmp_path / "reliability.png")]) == 0
    assert "expected calibration error" in capsys.readouterr().err
    policy = LinkingPolicy.read(out)
    assert policy.calibration["kind"] == "isotonic" and policy.calibration["n"] == 6
    assert (tmp_path / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    scores = [c.score for c in Linker.load(out, precision="fp32").link("heart attack")]
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_ncbi_benchmark_calibration_report_fits_on_dev_and_plots(tmp_path):
    import pandas as pd

    from benchmarks.ncbi_disease import calibration_report

    rng = np.random.default_rng(0)

    def details(n):  # right more often at higher scores, and one query with no candidate
        scores = rng.uniform(0.3, 1.0, n)
        frame = pd.DataFrame({"score": scores, "hit@1": rng.uniform(0, 1, n) < scores ** 3})
        return pd.concat([frame, pd.DataFrame({"score": [None], "hit@1": [False]})], ignore_index=True)

    report = calibration_report({"dev": {"_details": details(400)}, "test": {"_details": details(400)}}, tmp_path)
    assert report["n_dev"] == report["n_test"] == 400
    ece = report["test_ece"]
    assert ece["isotonic, fitted on dev"] < ece["raw score"] and ece["platt, fitted on dev"] < ece["raw score"]
    assert (tmp_path / "reliability.png").read_bytes()[:4] == b"\x89PNG"
