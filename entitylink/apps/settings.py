"""Limits and batching of the HTTP service (kept apart so that the CLI needs no web framework)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServiceSettings:
    """Limits and batching of the service (all configurable on the command line)."""

    max_mentions: int = 1000
    max_mention_length: int = 1000
    max_text_length: int = 100_000
    max_k: int = 100
    batch_window_ms: float = 5.0
    max_batch: int = 1024
    micro_batching: bool = True
