"""Opening Hugging Face models with a task head (the reranker's, the tagger's) and their settings file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._io import recover_directory
from ..errors import ModelLoadError
from .defaults import DEFAULT_MODEL
from .encoder import default_model_path


def open_pretrained(model_id: str, auto_class: Any, kind: str, **head: Any) -> tuple[Any, Any, Path]:
    """The tokenizer, the model (``auto_class.from_pretrained``) and the local directory of ``model_id``
    (a Hugging Face id, a directory, or ``"default"``); a head the checkpoint lacks starts fresh, quietly."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = default_model_path() if model_id == DEFAULT_MODEL else recover_directory(model_id)
    source = str(path) if path.exists() else model_id
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a fresh head is expected when starting from an encoder
    try:
        return AutoTokenizer.from_pretrained(source), auto_class.from_pretrained(source, **head), path
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load {kind} model {model_id!r}: {err}") from err
    finally:
        hf_logging.set_verbosity(verbosity)


def read_settings(path: Path, name: str, kind: str) -> dict:
    """The JSON settings file ``name`` saved beside a model (empty when there is none)."""
    file = path / name
    if not file.is_file():
        return {}
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{file}: unreadable {kind} settings ({err})") from None
    if not isinstance(content, dict):
        raise ModelLoadError(f"{file}: unreadable {kind} settings")
    return content
