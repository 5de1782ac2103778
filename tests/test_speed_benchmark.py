"""The encoding-speed benchmark: one small run of the whole table."""

import json
import shutil

import numpy as np
import pytest
import torch

from benchmarks import speed
from entitylink import DictionaryIndex, Encoder
from tests.conftest import ONTOLOGIES

pytestmark = pytest.mark.slow  # benchmark tables


def test_one_run_compares_every_encoder_against_fp32(tiny_model_session, tmp_path):
    data = tmp_path / "data"
    (data / "medic").mkdir(parents=True)
    shutil.copy(ONTOLOGIES / "example_medic.txt", data / "medic" / "medic_06Jul2012.txt")
    out = tmp_path / "speed.json"
    argv = ["--data", str(data), "--n", "40", "--model", str(tiny_model_session), "--batch-size", "16",
            "--max-length", "6", "--repeats", "1", "--no-accuracy", "--torch-int8", "--out", str(out)]
    assert speed.main(argv) == 0
    record = json.loads(out.read_text())
    rows = record["results"]
    assert [label[:3] for label in rows] == ["(a)", "(b)", "(c)", "(d)", "(e)", "(g)"]
    assert record["names"] > 20 and record["source"].startswith("medic")
    assert record["command"] == "python -m benchmarks.speed " + " ".join(argv)  # how to make it again
    assert record["argv"] == argv and record["versions"]["torch"] == torch.__version__.split("+")[0] or \
        record["versions"]["torch"] == torch.__version__
    assert set(record["git"]) == {"commit", "dirty"} and record["machine"]["cpu"] and record["date"]
    first = next(iter(rows.values()))
    assert first["vs_a"] == 1.0
    cosine = {label[:3]: row["min_cosine_vs_fp32"] for label, row in rows.items()}
    # the baselines pad differently but encode the same thing (cut at the same length): their vectors match ours
    assert cosine["(a)"] > 0.9999 and cosine["(b)"] > 0.9999 and cosine["(c)"] == 1.0
    assert 0.8 < cosine["(g)"] < 0.99999  # quantised: close, never identical
    assert all(row["names_per_s"] > 0 for row in rows.values())
    roofline = record["roofline"]
    assert set(roofline["peak_gflop_s"]) == {"fp32", record["auto_resolved_to"], "int8"}
    assert roofline["forward_gflop"] > 0 and 2 < roofline["mean_tokens"] <= 6
    for label, row in rows.items():  # the same FLOPs over each row's own seconds, against its precision's peak
        assert row["precision"] == ("int8" if label[:3] in ("(e)", "(g)") else "fp32" if label[:3] != "(d)"
                                    else record["auto_resolved_to"])
        assert row["achieved_gflop_s"] == pytest.approx(roofline["forward_gflop"] / row["seconds"], rel=0.02)
        peak = roofline["peak_gflop_s"][row["precision"]]["gflop_s"]
        assert row["of_peak"] == pytest.approx(row["achieved_gflop_s"] / peak, rel=0.02, abs=1e-3)


def test_torch_int8_reference_swaps_every_linear_layer_and_still_builds_an_index(tiny_model_session, medic_example):
    fp32 = Encoder(tiny_model_session, precision="fp32")
    encoder = speed.torch_dynamic_int8(Encoder(tiny_model_session, precision="fp32"))
    modules = list(encoder.model.modules())
    assert not any(type(m) is torch.nn.Linear for m in modules)
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic") for m in modules)
    index = DictionaryIndex.build(medic_example, encoder, show_progress=False)  # as the acc@1 column does
    stored = index.vectors(np.arange(len(index)))
    cosine = (stored * fp32.encode(index.texts)).sum(1)
    assert 0.8 < cosine.min() and cosine.max() < 0.99999  # the index holds the quantised model's vectors


@pytest.mark.parametrize("layers", [1, 3])
def test_flop_count_follows_the_model_shapes(layers):
    from transformers import BertConfig, BertModel

    from benchmarks.flops import count, forward_flops

    config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=40)
    model = BertModel(config, add_pooling_layer=False)
    shape = count(config)
    embeddings = sum(p.numel() for p in model.embeddings.parameters())
    assert shape["embedding_params"] == embeddings
    assert shape["non_embedding_params"] == sum(p.numel() for p in model.parameters()) - embeddings
    # a multiply-add per weight per token, plus QK^T and AV (2 n^2 h multiply-adds per layer)
    lengths = [5, 9]
    expected = sum(2 * shape["non_embedding_params"] * n + layers * 4 * 32 * n * n for n in lengths)
    assert forward_flops(shape, lengths) == expected


def test_peak_matmul_rate_is_measured_per_precision():
    from benchmarks.flops import PEAK_SHAPES, peak_matmul_flops

    for precision in ("fp32", "int8"):
        peak = peak_matmul_flops(precision, seconds=0.3)
        assert peak["flops"] > 1e8 and tuple(peak["shape"]) in PEAK_SHAPES
