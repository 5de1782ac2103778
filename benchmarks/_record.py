"""What every benchmark script does with its figures: a JSON record and a Markdown table."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from entitylink._io import atomic_write_text
from entitylink.model.hardware import describe_cpu


def write_record(path: Path, record: dict) -> dict:
    """Stamp ``record`` with the machine and today's date and write it as JSON, atomically."""
    record = {**record, "machine": describe_machine(), "date": time.strftime("%Y-%m-%d")}
    atomic_write_text(path, json.dumps(record, indent=2, default=str))
    return record


def describe_machine() -> dict:
    """The CPU (model, bf16 flags, threads) and, where CUDA is present, the GPU."""
    import torch

    machine = describe_cpu()
    if torch.cuda.is_available():
        machine["gpu"] = torch.cuda.get_device_name()
    return machine


def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A Markdown table of ``rows`` under ``header``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
