import numpy as np
import pytest

from benchmarks.tagger_choice import choose_setting, held_out_scores
from entitylink.link.annotate import document_f1

SETTINGS = [{"detect_threshold": t, "sparse_weight": w} for w in (0.0, 0.1) for t in (0.8, 0.9, 0.95)]


def one_document(f1s):  # (right, predicted, found, gold) with precision = recall = f1
    return np.array([[[round(100 * f), 100, round(100 * f), 100]] for f in f1s])


def test_document_f1_sums_the_counts_of_documents_before_the_ratio():
    assert document_f1(one_document([0.70, 0.90])).round(2).tolist() == [0.70, 0.90]
    two = np.concatenate([one_document([1.0] * 6), np.array([[[0, 0, 0, 300]]] * 6)], axis=1)
    assert document_f1(two).round(4).tolist() == [0.4] * 6
    assert document_f1(np.zeros((2, 3, 4))).tolist() == [0.0, 0.0]


def test_choice_rules_weigh_a_lone_peak_against_a_plateau():
    spike = one_document([0.70, 0.90, 0.70, 0.85, 0.86, 0.85])
    assert choose_setting(SETTINGS, spike, "best") == 1
    assert choose_setting(SETTINGS, spike, "smoothed") == 3  # the plateau's edges average 0.855; first of equals
    with pytest.raises(ValueError, match="rule must be one of"):
        choose_setting(SETTINGS, spike, "median")


def test_a_setting_better_on_every_document_is_chosen_on_every_sample_and_every_half():
    rng = np.random.default_rng(1)
    right = rng.integers(0, 9, size=(6, 30))
    right[4] = right.max(axis=0) + 1
    ten = np.full_like(right, 10)
    counts = np.stack([right, ten, right, ten], axis=-1)  # 10 predicted and 10 gold ids per document
    assert choose_setting(SETTINGS, counts, "best") == choose_setting(SETTINGS, counts, "bagged") == 4
    scores = held_out_scores(SETTINGS, counts, splits=5)
    assert all(len(v) == 10 for v in scores.values())  # each half of each split scored once
    rng, expected = np.random.default_rng(0), []  # the benchmark's halvings: each half scored by the other's choice
    for _ in range(5):
        order = rng.permutation(30)
        expected += [float(document_f1(counts[4, order[15:]])), float(document_f1(counts[4, order[:15]]))]
    assert scores["best"] == scores["bagged"] == expected
