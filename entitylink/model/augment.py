"""Augmentations that make the two views of a Mirror-BERT positive pair differ."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import torch


def mask_random_span(text: str, k: int, mask_token: str, rng: random.Random) -> str:
    """Replace a random span of ``k`` characters of ``text`` with ``mask_token``.

    Texts of ``k`` characters or fewer, and ``k <= 0``, are returned unchanged.
    """
    if k <= 0 or len(text) <= k:
        return text
    start = rng.randrange(0, len(text) - k + 1)
    return f"{text[:start]}{mask_token}{text[start + k:]}"


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Set the probability of every dropout layer of ``model`` (hidden and attention)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be in [0, 1), not {p}")
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    config = getattr(model, "config", None)
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if config is not None and hasattr(config, key):
            setattr(config, key, p)


@contextlib.contextmanager
def temporary_dropout(model: torch.nn.Module, p: float) -> Iterator[None]:
    """Set every dropout probability of ``model`` to ``p`` inside the block, and put the old ones back."""
    config = getattr(model, "config", None)
    keys = ("hidden_dropout_prob", "attention_probs_dropout_prob")
    layers = {module: module.p for module in model.modules() if isinstance(module, torch.nn.Dropout)}
    settings = {key: getattr(config, key) for key in keys if config is not None and hasattr(config, key)}
    set_dropout(model, p)
    try:
        yield
    finally:
        for module, before in layers.items():
            module.p = before
        for key, before in settings.items():
            setattr(config, key, before)


class DropHead:
    """DropHead (Zhou et al., 2020): while training, zero whole attention heads at random per example.

    Works through forward hooks on the self-attention modules (any module with
    ``num_attention_heads`` whose output is ``(batch, tokens, heads × head_dim)``), so it
    needs no model-specific code; kept heads are rescaled by ``1 / (1 - p)``. Use as a
    context manager or call :meth:`remove`.
    """

    def __init__(self, model: torch.nn.Module, p: float):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drophead must be in [0, 1), not {p}")
        self.p = p
        self.handles = []
        if p == 0.0:
            return
        for module in model.modules():
            heads = getattr(module, "num_attention_heads", None)
            if heads and type(module).__name__.endswith("SelfAttention"):
                self.handles.append(module.register_forward_hook(self._hook(heads)))
        if not self.handles:
            raise ValueError("drophead: no self-attention modules with num_attention_heads found in the model")

    def _hook(self, heads: int):
        def hook(module, inputs, output):
            if not module.training:
                return output
            hidden = output[0] if isinstance(output, tuple) else output
            batch, tokens, width = hidden.shape
            keep = (torch.rand(batch, 1, heads, 1, device=hidden.device) >= self.p).to(hidden.dtype)
            dropped = (hidden.view(batch, tokens, heads, width // heads) * keep / (1 - self.p)).view_as(hidden)
            return (dropped, *output[1:]) if isinstance(output, tuple) else dropped

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def __enter__(self) -> DropHead:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
