"""precision='int8': the encoder's forward pass in ONNX Runtime with int8 weights (optional extra)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from entitylink import Encoder
from entitylink.errors import MissingDependencyError
from entitylink.model import onnx_backend
from entitylink.model.trainer import MirrorTrainer
from tests.conftest import write_tiny_bert

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TEXTS = ["heart attack", "myocardial infarction of the left ventricle", "a", "diabetes mellitus type 2", "liver"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(onnx_backend.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


@pytest.mark.slow
def test_int8_stays_close_to_fp32_and_keeps_input_order(tiny_model, cache):
    fp32 = Encoder(tiny_model, precision="fp32").encode(TEXTS)
    encoder = Encoder(tiny_model, precision="int8")
    assert encoder.precision == "int8" and encoder.device.type == "cpu"
    int8 = encoder.encode(TEXTS, batch_size=2)
    assert int8.shape == fp32.shape and int8.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1, atol=1e-5)
    cosines = (int8 * fp32).sum(1)
    assert cosines.min() > 0.99, cosines
    assert not np.allclose(int8, fp32, atol=1e-6)  # it really ran the quantised model
    # Activations are quantised per batch, so compare runs whose batch holds the same texts.
    whole = encoder.encode(TEXTS, batch_size=16)
    np.testing.assert_allclose(encoder.encode(TEXTS[::-1], batch_size=16), whole[::-1], atol=1e-5)
    assert encoder.encode("heart attack").shape == (fp32.shape[1],)


@pytest.mark.slow
def test_the_export_is_standard_onnx_with_7bit_int8_weights(tiny_model, cache):
    import onnx
    from onnx import numpy_helper

    Encoder(tiny_model, precision="int8")
    (path,) = cache.glob("*.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask"]
    weights = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(weights) >= 12  # q, k, v, attention output, intermediate, output per layer, two layers
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64


@pytest.mark.slow
def test_the_export_is_cached_per_weights(tiny_model, tmp_path, cache, monkeypatch):
    calls = []
    real = onnx_backend.export_int8
    monkeypatch.setattr(onnx_backend, "export_int8", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = Encoder(tiny_model, precision="int8").encode(TEXTS)
    again = Encoder(tiny_model, precision="int8").encode(TEXTS)
    assert len(calls) == 1
    np.testing.assert_array_equal(first, again)
    other = write_tiny_bert(tmp_path / "other", seed=1)
    Encoder(other, precision="int8")
    assert len(calls) == 2 and len(list(cache.glob("*.onnx"))) == 2


@pytest.mark.slow
def test_a_damaged_cache_file_is_exported_again(tiny_model, cache):
    expected = Encoder(tiny_model, precision="int8").encode(TEXTS)
    (path,) = cache.glob("*.onnx")
    path.write_bytes(b"not an onnx file")
    np.testing.assert_allclose(Encoder(tiny_model, precision="int8").encode(TEXTS), expected, atol=1e-6)
    assert path.stat().st_size > 1000


def test_int8_needs_the_cpu_and_onnxruntime(tiny_model, cache, monkeypatch):
    with pytest.raises(ValueError, match="CPU"):
        Encoder(tiny_model, precision="int8", device="cuda")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r"entitylink\[onnx\]"):
        Encoder(tiny_model, precision="int8")


def test_training_refuses_int8(tiny_model, cache):
    with pytest.raises(ValueError, match="encoding only"):
        MirrorTrainer(tiny_model, precision="int8")
    with pytest.raises(ValueError, match="encoding only"):
        MirrorTrainer(Encoder(tiny_model, precision="int8"))


@pytest.mark.slow
def test_the_encoder_model_is_left_as_it_was(tiny_model, cache):
    encoder = Encoder(tiny_model, precision="int8")
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    assert encoder.model.config._attn_implementation != "eager"
    assert all(torch.equal(before[k], v) for k, v in encoder.model.state_dict().items())
