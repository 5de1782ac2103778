import json

import numpy as np
import pytest
import torch

import entitylink.model.encoder as encoder_module
from entitylink import Encoder, ModelLoadError
from entitylink.model.encoder import _pad
from entitylink.model.pooling import pool

TEXTS = ["heart attack", "a", "myocardial infarction of the left ventricle, acute", "", "fits", "high blood pressure"]


def test_shape_dtype_and_unit_norm(tiny_encoder):
    vectors = tiny_encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_length_sorted_batches_keep_input_order(tiny_encoder):
    together = tiny_encoder.encode(TEXTS, batch_size=2)
    one_by_one = np.stack([tiny_encoder.encode(t) for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_padding_matches_the_tokenizer(tiny_encoder):
    ids = tiny_encoder.tokenizer(TEXTS, truncation=True, max_length=tiny_encoder.max_length)["input_ids"]
    ours = _pad(ids, tiny_encoder.tokenizer.pad_token_id, tiny_encoder._takes_token_types, torch.device("cpu"))
    theirs = tiny_encoder.tokenize(TEXTS)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert torch.equal(ours[key], value), key


def test_chunks_keep_input_order(tiny_encoder, monkeypatch):
    whole = tiny_encoder.encode(TEXTS)
    monkeypatch.setattr(encoder_module, "CHUNK", 4)
    np.testing.assert_allclose(tiny_encoder.encode(TEXTS, batch_size=3), whole, atol=1e-5)


def test_default_batch_size_follows_the_device(tiny_model):
    assert Encoder(tiny_model, device="cpu").batch_size == 256
    assert Encoder(tiny_model, device="cpu", batch_size=7).batch_size == 7


def test_lone_string_gives_a_vector_and_empty_list_gives_no_rows(tiny_encoder):
    assert tiny_encoder.encode("fits").shape == (32,)
    assert tiny_encoder.encode([]).shape == (0, 32)


def test_long_text_is_truncated_to_max_length(tiny_model):
    enc = Encoder(tiny_model, max_length=8, precision="fp32")
    long = "heart " * 500
    assert enc.tokenize([long])["input_ids"].shape[1] == 8
    np.testing.assert_allclose(enc.encode(long), enc.encode("heart " * 6), atol=1e-5)


def test_pooling_modes_differ_and_mean_ignores_padding():
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 0.0]]
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 1.0]]
    with pytest.raises(ValueError, match="pooling must be one of"):
        pool(hidden, mask, "max")


def test_pooling_is_read_from_sentence_transformers_config(tiny_model):
    assert Encoder(tiny_model).pooling == "cls"
    (tiny_model / "1_Pooling").mkdir()
    (tiny_model / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    assert Encoder(tiny_model).pooling == "mean"
    assert Encoder(tiny_model, pooling="cls").pooling == "cls"


def test_bf16_runs_and_stays_close_to_fp32(tiny_model):
    fp32 = Encoder(tiny_model, precision="fp32").encode(TEXTS)
    bf16 = Encoder(tiny_model, precision="bf16").encode(TEXTS)
    assert bf16.dtype == np.float32
    assert (fp32 * bf16).sum(1).min() > 0.98


def test_fingerprint_tracks_weights_and_pooling(tiny_model):
    a = Encoder(tiny_model, precision="fp32")
    b = Encoder(tiny_model, precision="fp32")
    assert a.fingerprint() == b.fingerprint()
    assert Encoder(tiny_model, pooling="mean").fingerprint() != a.fingerprint()
    with torch.no_grad():
        b.model.embeddings.word_embeddings.weight[5, 0] += 1.0
    assert a.fingerprint() != b.fingerprint()


def test_save_gives_a_standard_hf_directory(tiny_encoder, tmp_path):
    from transformers import AutoModel

    out = tiny_encoder.save(tmp_path / "saved")
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    hf = AutoModel.from_pretrained(out)
    batch = tiny_encoder.tokenize(["heart attack"])
    with torch.no_grad():
        expected = tiny_encoder.model(**batch).last_hidden_state
        assert torch.allclose(hf(**batch).last_hidden_state, expected, atol=1e-6)
    reloaded = Encoder(out, precision="fp32")
    np.testing.assert_allclose(reloaded.encode(TEXTS), tiny_encoder.encode(TEXTS), atol=1e-6)
    assert reloaded.fingerprint() == tiny_encoder.fingerprint()


def test_bad_model_paths_are_clear_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="cannot load model .*not a local directory"):
        Encoder(str(tmp_path / "no-such-model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="not a Hugging Face model"):
        Encoder(tmp_path / "empty")


def test_bad_options(tiny_model):
    with pytest.raises(ValueError, match="pooling must be one of"):
        Encoder(tiny_model, pooling="max")
    with pytest.raises(ValueError, match="precision must be one of"):
        Encoder(tiny_model, precision="int4")
    with pytest.raises(ValueError, match="max_length"):
        Encoder(tiny_model, max_length=1)


def test_truncation_is_warned_once(tiny_model, caplog):
    enc = Encoder(tiny_model, max_length=8, precision="fp32")
    enc.encode(["heart attack"])
    assert "truncated" not in caplog.text
    enc.encode(["heart " * 50, "fits"])
    enc.encode(["attack " * 5000])  # a 35k-character name: no crash, no second warning
    assert caplog.text.count("truncated") == 1


def _as_hub_cache(model_dir, cache, repo="sentence-transformers/tiny-minilm"):
    """Lay ``model_dir`` out as the Hugging Face hub cache holds a downloaded repository."""
    import shutil

    root = cache / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / ("0" * 40)
    shutil.copytree(model_dir, snapshot)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text("0" * 40)
    return repo


def test_pooling_of_a_hub_id_is_read_from_its_sentence_transformers_config(tiny_model, tmp_path, monkeypatch):
    """A hub id gets the pooling its repository saved, as a local copy does (mean for all-MiniLM-L6-v2)."""
    (tiny_model / "modules.json").write_text(json.dumps(
        [{"idx": 1, "name": "1", "path": "pool", "type": "sentence_transformers.models.Pooling"}]))
    (tiny_model / "pool").mkdir()
    (tiny_model / "pool" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    repo = _as_hub_cache(tiny_model, tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    hub = Encoder(repo, precision="fp32")
    assert hub.pooling == "mean" and Encoder(tiny_model).pooling == "mean"
    np.testing.assert_allclose(hub.encode(TEXTS), Encoder(tiny_model, precision="fp32").encode(TEXTS), atol=1e-6)


def test_saved_model_opens_in_sentence_transformers_with_the_same_vectors(tiny_model, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    for pooling in ("cls", "mean"):
        ours = Encoder(tiny_model, pooling=pooling, precision="fp32", max_length=12)
        out = ours.save(tmp_path / pooling)
        assert ours.model_id == str(out.resolve())
        theirs = st.SentenceTransformer(str(out), device="cpu")
        assert theirs.max_seq_length == 12
        vectors = theirs.encode(TEXTS, convert_to_numpy=True)
        np.testing.assert_allclose(vectors, ours.encode(TEXTS), atol=1e-5)
        assert Encoder(out).pooling == pooling
