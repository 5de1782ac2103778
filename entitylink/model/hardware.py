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
    """True where bf16 matmuls beat fp32: CUDA GPUs with bf16 support; CPUs with AMX/AVX512-BF16
    (unless ``ONEDNN_MAX_CPU_ISA`` caps oneDNN below them) on which a bf16 matmul of the encoder's shape
    also measures faster than fp32. Some CPUs with AVX512-BF16 and no AMX run bf16 matmuls at about half
    the fp32 rate (benchmarks/README.md), so the flags alone do not decide. With ``flags`` given (another
    machine's, for a what-if) only the flags are read."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        measure = flags is None
        flags = cpu_flags() if flags is None else flags
        cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
        if not any(flag in flags for flag in BF16_CPU_FLAGS) or cap in _ONEDNN_ISAS_WITHOUT_BF16:
            return False
        return bf16_matmul_speedup() > 1.0 if measure else True
    return False


@functools.lru_cache(maxsize=1)
def bf16_matmul_speedup(rows: int = 2048, repeats: int = 5) -> float:
    """fp32 time over bf16 time of a matmul shaped like the encoder's feed-forward layer, on this CPU
    (measured once per process, about 0.1 s)."""
    import time

    a = torch.randn(rows, 384)
    b = torch.randn(384, 1536)
    best = {}
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        x @ y  # warm-up: oneDNN picks its kernel on the first call
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            x @ y
            times.append(time.perf_counter() - start)
        best[dtype] = min(times)
    speedup = best[torch.float32] / best[torch.bfloat16]
    logger.info("bf16 matmul on this CPU: %.2fx fp32", speedup)
    return speedup


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
        has = any(flag in (cpu_flags() if flags is None else flags) for flag in BF16_CPU_FLAGS)
        reason = f"CPU {cpu_model()!r} " + ("has" if has else "lacks") + " AMX/AVX512-BF16"
        if has and flags is None:
            reason += f"; bf16 matmuls measured {bf16_matmul_speedup():.2f}x fp32"
    else:
        reason = f"device {device}"
    choice: Literal["fp32", "bf16"] = "bf16" if fast else "fp32"
    logger.info("precision=auto -> %s (%s)", choice, reason)
    return choice
