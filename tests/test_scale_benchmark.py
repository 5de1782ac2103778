"""The search-at-scale benchmark: its simulated dictionary and one small run of it."""

import json

import numpy as np
import pytest

from benchmarks import scale, simulate
from benchmarks.simulate import SimulatedDictionary, recall_at

pytestmark = pytest.mark.slow  # benchmark tables


def test_simulated_chunks_are_reproducible_unit_vectors(monkeypatch):
    monkeypatch.setattr(simulate, "CHUNK", 1000)
    sim = SimulatedDictionary(2500, 48, seed=3)
    chunks = list(sim.chunks())
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    np.testing.assert_allclose(np.linalg.norm(np.vstack(chunks), axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(sim.chunk(1), chunks[1])
    assert not np.allclose(SimulatedDictionary(2500, 48, seed=4).chunk(0), chunks[0])
    np.testing.assert_array_equal(sim.queries(50), sim.queries(50))


def test_exact_top_streams_to_the_brute_force_answer(monkeypatch):
    monkeypatch.setattr(simulate, "CHUNK", 700)
    sim = SimulatedDictionary(2000, 32)
    queries = sim.queries(40)
    brute = np.argsort(-(queries @ np.vstack(list(sim.chunks())).T), axis=1)[:, :5]
    streamed = sim.exact_top(queries)
    assert recall_at(brute, streamed) == 1.0
    assert recall_at(brute, streamed[:, ::-1]) == 1.0  # order within the top 5 does not matter
    assert recall_at(brute, np.zeros_like(streamed)) <= 0.2


def test_names_cluster_by_concept_like_real_embeddings():
    sim = SimulatedDictionary(20_000, 64)
    x, queries = sim.chunk(0), sim.queries(200)
    top = np.sort(queries @ x.T, axis=1)[:, ::-1]
    assert top[:, 0].mean() > 0.75  # a query has close names (its concept's) ...
    assert top[:, 0].mean() - top[:, 50].mean() > 0.1  # ... well above the crowd


def test_scale_main_writes_rows_for_each_setting(tmp_path, monkeypatch):
    monkeypatch.setattr(simulate, "CHUNK", 1500)
    out = tmp_path / "scale.json"
    assert scale.main(["--sizes", "3000", "--dims", "32", "--queries", "200", "--out", str(out),
                       "--kinds", "flat fp32 (exact)", "hnsw pca fp16 rerank"]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["setting"] for r in rows] == ["", "ef_search=64", "ef_search=128", "ef_search=256", "ef_search=512",
                                            "ef_search=128 rerank=40", "ef_search=256 rerank=40"]
    assert rows[0]["recall@5"] == 1.0
    assert rows[1]["factory"] == "PCA16,HNSW32,SQfp16,Refine(SQfp16)"
    assert all(r["recall@5"] > 0.8 and r["queries_per_s"] > 0 for r in rows)
