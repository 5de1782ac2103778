"""Slow protocol check on the real NCBI-disease data (skipped where ../shared/data is absent)."""

import pytest

from .conftest import SHARED_DATA

needs_data = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SHARED_DATA / "ncbi-disease").is_dir(), reason="../shared/data/ncbi-disease not present"),
]


@needs_data[0]
@needs_data[1]
def test_protocol_counts_and_tfidf_baseline():
    from benchmarks.ncbi_disease import Benchmark, run_settings, sparse
    from entitylink.text.preprocess import QueryPreprocessor, read_spelling

    spelling = read_spelling(SHARED_DATA / "medic" / "ncbi-spell-check.txt")
    assert len(spelling) == 37  # 37 pairs; the last line has no newline, so `wc -l` says 36
    bench = Benchmark(SHARED_DATA, QueryPreprocessor(spelling=spelling))
    assert len(bench.queries["test"]) == 960 and bench.dropped["test"] == 0
    assert len(bench.queries["dev"]) == 787
    result = run_settings(sparse, bench)
    # the first probe saw 85.8 / 91.8 for TF-IDF with these steps: far below means a broken step
    assert result["test"]["acc@1"] > 0.84 and result["test"]["acc@5"] > 0.90
    assert result["test-medic"]["acc@1"] < result["test"]["acc@1"]


def test_encoding_cache_encodes_each_text_once_and_reuses_across_runs(tiny_model, tmp_path):
    import numpy as np

    from benchmarks.ncbi_disease import EncodingCache
    from entitylink import Encoder

    reference = Encoder(tiny_model, precision="fp32").encode(["fits", "heart attack", "cancer"])
    encoder = Encoder(tiny_model, precision="fp32")
    calls = []
    real = encoder.encode
    encoder.encode = lambda texts, **kw: calls.append(list(texts)) or real(texts, **kw)
    cache = EncodingCache(tmp_path / "cache")
    cache.attach(encoder)
    np.testing.assert_allclose(encoder.encode(["fits", "heart attack", "fits"]), reference[[0, 1, 0]], atol=1e-6)
    np.testing.assert_allclose(encoder.encode(["cancer", "fits"]), reference[[2, 0]], atol=1e-6)
    assert calls == [["fits", "heart attack"], ["cancer"]]  # each distinct text once
    assert encoder.encode("fits").shape == (reference.shape[1],)
    cache.save()
    fresh = Encoder(tiny_model, precision="fp32")
    fresh_calls = []
    real_fresh = fresh.encode
    fresh.encode = lambda texts, **kw: fresh_calls.append(list(texts)) or real_fresh(texts, **kw)
    EncodingCache(tmp_path / "cache").attach(fresh)  # a later run: read from the folder
    np.testing.assert_allclose(fresh.encode(["heart attack", "cancer"]), reference[[1, 2]], atol=1e-6)
    assert fresh_calls == []
