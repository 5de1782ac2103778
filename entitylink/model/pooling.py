"""Pooling token states into one vector per text, and the pooling setting saved with a model.

A model directory written by entitylink holds its pooling twice: in ``entitylink_encoder.json`` and as a
sentence-transformers module list (``modules.json``, ``1_Pooling/``, ``2_Normalize/``), so that
``SentenceTransformer(path)`` embeds exactly as :class:`~entitylink.model.encoder.Encoder` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import ModelLoadError
from .defaults import DEFAULT_POOLING, POOLINGS, Pooling

ENCODER_CONFIG = "entitylink_encoder.json"
_ST_MODULES = "modules.json"
_ST_POOLING_TYPE = "sentence_transformers.models.Pooling"


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool token states (batch, tokens, dim) into one vector per text."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")


def saved_pooling(source: str | Path) -> Pooling:
    """The pooling saved with a model (local directory or Hugging Face id).

    entitylink's own setting first, else the sentence-transformers Pooling module's (mean for
    all-MiniLM-L6-v2), else :data:`DEFAULT_POOLING`. Hub files come from the local cache or the hub;
    a hub that cannot be reached counts as "no setting saved".
    """
    ours = _model_file(source, ENCODER_CONFIG)
    if ours is not None:
        found = _read_json(ours).get("pooling")
        if found in POOLINGS:
            return found
    folder = "1_Pooling"
    modules = _model_file(source, _ST_MODULES)
    if modules is not None:
        entries = _read_json(modules)
        folder = next((m.get("path", folder) for m in entries if m.get("type") == _ST_POOLING_TYPE), folder)
    theirs = _model_file(source, f"{folder}/config.json")
    if theirs is not None:
        config = _read_json(theirs)
        if config.get("pooling_mode_mean_tokens"):
            return "mean"
        if config.get("pooling_mode_cls_token"):
            return "cls"
    return DEFAULT_POOLING


def write_sentence_transformers_modules(directory: Path, pooling: str, max_length: int, dim: int) -> None:
    """Describe the model in ``directory`` as Transformer → Pooling → Normalize for sentence-transformers."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": _ST_POOLING_TYPE},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (directory / _ST_MODULES).write_text(json.dumps(modules, indent=2))
    (directory / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_length, "do_lower_case": False}, indent=2))
    (directory / "1_Pooling").mkdir(exist_ok=True)
    (directory / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": dim,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }, indent=2))
    (directory / "2_Normalize").mkdir(exist_ok=True)


def _model_file(source: str | Path, name: str) -> Path | None:
    local = Path(source)
    if local.is_dir():
        path = local / name
        return path if path.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(str(source), name))
    except Exception:  # noqa: BLE001 - not on the hub, not cached, offline: no saved setting
        return None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{path}: unreadable pooling settings ({err})") from err
