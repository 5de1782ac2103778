"""Augmentations that make the two views of a Mirror-BERT positive pair differ."""

from __future__ import annotations

import random

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
