"""What every benchmark script does with its figures: a JSON record and a Markdown table."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from entitylink._io import atomic_write_text
from entitylink.model.hardware import describe_cpu

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("entitylink", "torch", "transformers", "faiss-cpu", "numpy", "scipy", "scikit-learn",
             "sentence-transformers", "onnxruntime", "spacy")


def write_record(path: Path, record: dict, argv: Sequence[str] | None = None) -> dict:
    """Stamp ``record`` with the command, git commit, library versions, machine and date; write it as JSON.

    ``argv`` is the script's arguments (default ``sys.argv[1:]``); the command names the script's module.
    """
    record = {**record, **provenance(argv), "machine": describe_machine(), "date": time.strftime("%Y-%m-%d")}
    atomic_write_text(path, json.dumps(record, indent=2, default=str))
    return record


def provenance(argv: Sequence[str] | None = None) -> dict:
    """How a result was made: the command line, the commit it ran at, and the versions of what it used."""
    caller = sys._getframe(2).f_globals  # the script that called write_record
    spec = caller.get("__spec__")
    module = spec.name if spec is not None else Path(sys.argv[0]).stem
    args = list(sys.argv[1:] if argv is None else argv)
    return {"command": " ".join(["python", "-m", module, *args]), "argv": args, "git": git_state(),
            "versions": versions()}


def git_state() -> dict:
    """The commit of the checkout and whether it had uncommitted changes (``None`` outside a git clone)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


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
