"""Cross-encoder: a transformer that reads a (mention, candidate name) pair and gives it one score.

Saved as a standard Hugging Face sequence-classification directory with one label
(``AutoModelForSequenceClassification.from_pretrained(path)`` and sentence-transformers'
``CrossEncoder(path)`` open it), plus ``entitylink_reranker.json`` with its settings.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .._io import atomic_directory
from .defaults import DEFAULT_MODEL, DEFAULT_PRECISION, Precision
from .hardware import resolve_device, resolve_precision
from .pretrained import open_pretrained, read_settings

logger = logging.getLogger(__name__)

RERANKER_CONFIG = "entitylink_reranker.json"
NIL_TEXT = "none of these"  # the candidate that stands for "the right concept is not in the list"
DEFAULT_PAIR_LENGTH = 48  # tokens for mention + name, without context
CONTEXT_PAIR_LENGTH = 160  # tokens for context + mention + name + synonyms
MARKERS = ("[START]", "[END]")  # around the mention when the reranker reads its context


class CrossEncoder:
    """Scores (mention, candidate) text pairs; higher means more likely the same concept.

    Args:
        model: a Hugging Face id or local directory (a saved reranker, or any encoder to start
            training from; ``"default"`` is the packaged all-MiniLM-L6-v2).
        max_length: tokens per pair; a longer pair is cut from the end of its longer side.
        context_chars: characters of text read on each side of the mention, which is put between
            ``[START]`` and ``[END]`` markers (0: the mention alone). A saved reranker keeps its own.
        synonyms: other names of each candidate's concept read after its name (a saved reranker keeps
            its own).
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"`` (as for :class:`~entitylink.model.encoder.Encoder`).
        device, batch_size: where and how many pairs per forward pass (default 128 on a CPU).
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        *,
        max_length: int | None = None,
        context_chars: int = 0,
        synonyms: int = 0,
        precision: Precision = DEFAULT_PRECISION,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
    ):
        from transformers import AutoModelForSequenceClassification

        if precision == "int8":
            raise ValueError("the cross-encoder runs in torch: precision must be 'auto', 'fp32' or 'bf16'")
        self.model_id = str(model)
        self.tokenizer, self.model, path = open_pretrained(self.model_id, AutoModelForSequenceClassification,
                                                           "reranker", num_labels=1)
        saved = read_settings(path, RERANKER_CONFIG, "reranker")
        if context_chars < 0 or synonyms < 0:
            raise ValueError(f"context_chars and synonyms must be at least 0, not {context_chars} and {synonyms}")
        self.context_chars = int(saved.get("context_chars", 0) if saved else context_chars)
        self.synonyms = int(saved.get("synonyms", 0) if saved else synonyms)
        wide = self.context_chars or self.synonyms
        self.max_length = max_length or saved.get("max_length", CONTEXT_PAIR_LENGTH if wide else DEFAULT_PAIR_LENGTH)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and self.max_length > limit:
            self.max_length = limit  # a pair cannot be longer than the model's positions
        if self.context_chars and not set(MARKERS) <= set(self.tokenizer.get_vocab()):
            self.tokenizer.add_special_tokens({"additional_special_tokens": list(MARKERS)})
            self.model.resize_token_embeddings(len(self.tokenizer))
        self.nil_text = saved.get("nil_text", NIL_TEXT)
        # set by training: the scale of the retriever scores its logits are added to (None: none)
        self.retriever_temperature: float | None = saved.get("retriever_temperature")
        self.base_model = saved.get("base_model", self.model_id)
        if not saved:
            _zero_head(self.model)  # a fresh head adds nothing at first, so training starts from the retriever
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.batch_size = batch_size or (512 if self.device.type == "cuda" else 128)
        self.model.to(self.device).eval()
        self.unsaved = False

    def __repr__(self) -> str:
        return f"CrossEncoder(model={self.model_id!r}, max_length={self.max_length}, precision={self.precision!r})"

    def mention_text(self, mention: str, context: tuple[str, str] | None) -> str:
        """What the reranker reads for a mention: ``left [START] mention [END] right`` when it reads context."""
        if not self.context_chars or context is None:
            return mention
        left, right = context
        left, right = left[-self.context_chars:], right[: self.context_chars]
        return f"{left} {MARKERS[0]} {mention} {MARKERS[1]} {right}".strip()

    def tokenize(self, mentions: Sequence[str], names: Sequence[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(list(mentions), list(names), truncation="longest_first", max_length=self.max_length,
                               padding=True, return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One score per pair, with gradients (for training)."""
        return self.model(**batch).logits.squeeze(-1)

    def score(self, mentions: Sequence[str], names: Sequence[str], batch_size: int | None = None,
              show_progress: bool | None = None) -> np.ndarray:
        """Scores of the pairs (``mentions[i]``, ``names[i]``), in input order, as float32."""
        if len(mentions) != len(names):
            raise ValueError(f"{len(mentions)} mentions for {len(names)} names")
        bs = batch_size or self.batch_size
        order = np.argsort([-(len(m) + len(n)) for m, n in zip(mentions, names)], kind="stable")
        out = np.empty(len(order), np.float32)
        show = len(order) >= 5000 if show_progress is None else show_progress
        with (
            tqdm(total=len(order), unit="pair", desc="reranking", disable=not show) as bar,
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"),
        ):
            for b in range(math.ceil(len(order) / bs)):
                rows = order[b * bs : (b + 1) * bs]
                batch = self.tokenize([mentions[i] for i in rows], [names[i] for i in rows])
                out[rows] = self.logits(batch).float().cpu().numpy()
                bar.update(len(rows))
        return out

    def save(self, path: str | Path, extra_config: dict | None = None,
             add_files: Callable[[Path], None] | None = None) -> Path:
        """Write the model directory atomically; from then on ``model_id`` is that directory."""
        path = Path(path)
        with atomic_directory(path) as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            config = {"max_length": self.max_length, "nil_text": self.nil_text, "base_model": self.base_model,
                      "context_chars": self.context_chars, "synonyms": self.synonyms,
                      "retriever_temperature": self.retriever_temperature, **(extra_config or {})}
            (tmp / RERANKER_CONFIG).write_text(json.dumps(config, indent=2, default=str))
            if add_files is not None:
                add_files(tmp)
        self.model_id = str(path.resolve())
        self.unsaved = False
        return path


def _zero_head(model: torch.nn.Module) -> None:
    """Zero the last linear layer that outputs the single score."""
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1]
    if heads:
        with torch.no_grad():
            heads[-1].weight.zero_()
            if heads[-1].bias is not None:
                heads[-1].bias.zero_()
