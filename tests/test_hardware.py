import logging
import math

import pytest
import torch

from entitylink.model.hardware import bf16_is_fast, describe_cpu, resolve_precision

CPU = torch.device("cpu")
AMX = frozenset({"avx2", "avx512f", "amx_bf16", "amx_tile"})
AVX512_BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})
AVX2_ONLY = frozenset({"avx", "avx2", "fma"})


def test_bf16_fast_only_with_bf16_units():
    assert bf16_is_fast(CPU, AMX)
    assert bf16_is_fast(CPU, AVX512_BF16)
    assert not bf16_is_fast(CPU, AVX2_ONLY)
    assert not bf16_is_fast(CPU, frozenset())


def test_a_onednn_isa_cap_below_bf16_units_means_bf16_is_slow(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert not bf16_is_fast(CPU, AMX)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert bf16_is_fast(CPU, AMX)


def test_auto_precision_follows_the_flags_and_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger="entitylink.model.hardware"):
        assert resolve_precision("auto", CPU, AMX) == "bf16"
        assert resolve_precision("auto", CPU, AVX2_ONLY) == "fp32"
    assert "precision=auto -> bf16" in caplog.text and "precision=auto -> fp32" in caplog.text


def test_explicit_precision_wins_and_bad_values_fail():
    assert resolve_precision("fp32", CPU, AMX) == "fp32"
    assert resolve_precision("bf16", CPU, AVX2_ONLY) == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16", CPU, AMX)
    assert resolve_precision("int8", CPU, AVX2_ONLY) == "int8"
    assert resolve_precision("auto", CPU, AVX2_ONLY) == "fp32"  # auto never picks int8
    with pytest.raises(ValueError, match="runs on the CPU"):
        resolve_precision("int8", torch.device("cuda"), AMX)


def test_describe_cpu_reports_what_the_cpu_has(monkeypatch):
    from entitylink.model import hardware

    monkeypatch.setattr(hardware, "cpu_flags", lambda: AVX512_BF16 | {"amx_tile"})
    monkeypatch.setattr(hardware, "cpu_model", lambda: "AMD EPYC 9B45")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    assert describe_cpu() == {"cpu": "AMD EPYC 9B45", "bf16_flags": ["avx512_bf16"], "avx2": True,
                              "avx512f": True, "threads": 3}
    monkeypatch.setattr(hardware, "cpu_flags", lambda: AVX2_ONLY)
    assert describe_cpu()["bf16_flags"] == [] and not describe_cpu()["avx512f"]


def test_device_from_local_rank_under_torchrun(monkeypatch):
    """Each torchrun rank gets its own GPU, cuda:LOCAL_RANK, made the current device (else all run on GPU 0)."""
    from entitylink.model import hardware

    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert hardware.resolve_device(None) == torch.device("cuda", 3)
    assert hardware.resolve_device("cuda") == torch.device("cuda", 3)
    assert hardware.resolve_device("cuda:1") == torch.device("cuda", 1)  # an explicit index wins
    assert hardware.resolve_device("cpu") == CPU
    assert chosen == [torch.device("cuda", 3), torch.device("cuda", 3)]


@pytest.mark.parametrize("speedup, expected", [(0.6, "fp32"), (2.2, "bf16")])
def test_on_this_machine_auto_also_measures_bf16_against_fp32(monkeypatch, caplog, speedup, expected):
    from entitylink.model import hardware

    monkeypatch.setattr(hardware, "cpu_flags", lambda: AVX512_BF16)  # bf16 units, as lscpu would say
    monkeypatch.setattr(hardware, "bf16_matmul_speedup", lambda: speedup)  # and what a matmul measures
    with caplog.at_level(logging.INFO, logger="entitylink.model.hardware"):
        assert resolve_precision("auto", CPU) == expected
    assert f"measured {speedup:.2f}x fp32" in caplog.text
    monkeypatch.setattr(hardware, "cpu_flags", lambda: AVX2_ONLY)  # no bf16 units: nothing to measure
    monkeypatch.setattr(hardware, "bf16_matmul_speedup", lambda: pytest.fail("measured without bf16 units"))
    assert resolve_precision("auto", CPU) == "fp32"


def test_the_bf16_measurement_is_a_positive_ratio():
    from entitylink.model.hardware import bf16_matmul_speedup

    ratio = bf16_matmul_speedup()
    # AMX measures 5-9x alone and more beside other work: the bounds only say it is a ratio of two timings
    assert math.isfinite(ratio) and 0.01 < ratio < 1000
