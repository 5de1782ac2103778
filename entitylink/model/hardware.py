"""Hardware detection: which device to use and whether bf16 is a fast path on it."""

from __future__ import annotations

import functools
import logging
import os
import platform
from pathlib import Path
from typing import Literal

import torch

from .defaults import DEFAULT_PRECISION, PRECISIONS, Precision  # noqa: F401 - re-exported

logger = logging.getLogger(__name__)


# CPU flags that give bf16 matrix units; AVX2-only CPUs emulate bf16 and run it slower than fp32.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# oneDNN (torch's bf16 matmuls on the CPU) can be capped below those units with ONEDNN_MAX_CPU_ISA.
_ONEDNN_ISAS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """Feature flags of the CPU from ``/proc/cpuinfo`` (empty where unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags") or line.startswith("Features"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name, e.g. ``Intel(R) Xeon(R) Processor`` or ``AMD EPYC 7B13``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_cpu() -> dict[str, object]:
    """CPU model, the bf16-relevant flags it has, and torch's thread count (for benchmark records)."""
    flags = cpu_flags()
    return {
        "cpu": cpu_model(),
        "bf16_flags": sorted(f for f in BF16_CPU_FLAGS if f in flags),
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "threads": torch.get_num_threads(),
    }


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` picks CUDA when available, else CPU.

    Under ``torchrun`` (``LOCAL_RANK`` set) a CUDA device without an index becomes this process's own
    GPU, ``cuda:LOCAL_RANK``, which is also made the current device, so each rank runs on its own GPU.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        local_rank = os.environ.get("LOCAL_RANK")
        device = torch.device("cuda", int(local_rank) if local_rank is not None else torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device


def bf16_is_fast(device: torch.device, flags: frozenset[str] | None = None) -> bool:
    """True where bf16 matmuls run in hardware: CUDA GPUs with bf16 support, CPUs with AMX/AVX512-BF16
    (unless ``ONEDNN_MAX_CPU_ISA`` caps oneDNN below them)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        flags = cpu_flags() if flags is None else flags
        cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
        return any(flag in flags for flag in BF16_CPU_FLAGS) and cap not in _ONEDNN_ISAS_WITHOUT_BF16
    return False


def resolve_precision(
    precision: str, device: torch.device, flags: frozenset[str] | None = None
) -> Literal["fp32", "bf16", "int8"]:
    """Turn ``auto`` into ``bf16`` or ``fp32`` for this device; log the choice and why.

    ``auto`` never picks ``int8``: its vectors differ more from fp32 (mean cosine about 0.99), so it is
    chosen explicitly. ``int8`` runs on the CPU only.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "int8" and device.type != "cpu":
        raise ValueError(f"precision='int8' runs on the CPU (ONNX Runtime), not on {device}; "
                         "use 'auto' or 'bf16' there")
    if precision != "auto":
        return precision  # type: ignore[return-value]
    fast = bf16_is_fast(device, flags)
    if device.type == "cpu":
        reason = f"CPU {cpu_model()!r} " + ("has" if fast else "lacks") + " AMX/AVX512-BF16"
    else:
        reason = f"device {device}"
    choice: Literal["fp32", "bf16"] = "bf16" if fast else "fp32"
    logger.info("precision=auto -> %s (%s)", choice, reason)
    return choice
