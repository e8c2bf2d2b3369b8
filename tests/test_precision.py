"""train.precision = "auto": bf16 only where the hardware multiplies bf16 natively fast (the probe is injected here:
no timing asserts), the choice recorded in the run's manifest, printed, and kept by a resume."""

from __future__ import annotations

import json
import os

import pytest
import torch

import growlm.precision as precision
from growlm.precision import choose


def never() -> float:
    raise AssertionError("the probe must not run here")


@pytest.fixture
def cpu(monkeypatch):
    """Pretend the CPU reports `capability` (torch's string plus the bf16 units)."""

    def set_capability(capability: str) -> None:
        monkeypatch.setattr(precision, "cpu_capability", lambda: capability)

    return set_capability


@pytest.mark.parametrize("capability", ["AVX512+AMX+AVX512_BF16", "AVX512+AVX512_BF16"])
def test_auto_picks_bf16_where_the_probe_finds_native_bf16_fast(cpu, capability):
    cpu(capability)
    chosen = choose("auto", "cpu", probe=lambda: 2.0)
    assert chosen.chosen == "bf16" and chosen.bf16 and chosen.bf16_speedup == 2.0 and chosen.warning() is None


def test_auto_picks_fp32_where_bf16_is_measured_slow(cpu):
    cpu("AVX2+AMX+AVX512_BF16")  # the units are there but switched off (ONEDNN_MAX_CPU_ISA=AVX2): the probe decides
    chosen = choose("auto", "cpu", probe=lambda: 0.015)
    assert chosen.chosen == "fp32" and chosen.bf16_speedup == 0.015 and "slow" in chosen.reason


def test_auto_picks_fp32_without_probing_a_cpu_that_has_no_bf16_units(cpu):
    cpu("AVX2")
    chosen = choose("auto", "cpu", probe=never)
    assert chosen.chosen == "fp32" and chosen.bf16_speedup is None and "AVX2" in chosen.describe()


def test_explicit_settings_mean_what_they_say(cpu):
    cpu("AVX2")
    assert choose("fp32", "cpu", probe=never).chosen == "fp32"
    slow = choose("bf16", "cpu", probe=lambda: 0.017)
    assert slow.chosen == "bf16"
    assert slow.warning().startswith("warning: train.precision = 'bf16'") and "0.017x float32" in slow.warning()
    cpu("AVX512+AMX")
    assert choose("bf16", "cpu", probe=lambda: 2.5).warning() is None


def test_the_threshold_sits_between_emulated_and_native_bf16(cpu):
    cpu("AVX512+AMX")
    assert choose("auto", "cpu", probe=lambda: precision.FAST_BF16_RATIO).chosen == "bf16"
    assert choose("auto", "cpu", probe=lambda: precision.FAST_BF16_RATIO * 0.99).chosen == "fp32"


@pytest.fixture
def fresh_probe():
    """measure_bf16_speedup's process cache emptied before and after: a faked measurement must not outlive its
    test (later runs in this process would choose by it)."""
    precision.measure_bf16_speedup.cache_clear()
    yield precision.measure_bf16_speedup
    precision.measure_bf16_speedup.cache_clear()


def test_the_probe_is_measured_once_per_machine_and_read_back(tmp_path, monkeypatch, fresh_probe):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []
    monkeypatch.setattr(
        precision,
        "best_matmul_seconds",
        lambda dtype, n: calls.append(dtype) or (2.0 if dtype == torch.float32 else 1.0),
    )
    assert fresh_probe() == 2.0 and len(calls) == 2
    fresh_probe.cache_clear()
    assert fresh_probe() == 2.0 and len(calls) == 2, "the second process reads the cache"
    # another ISA cap is another machine for the probe (a value unlike the one this process may run under)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", os.environ.get("ONEDNN_MAX_CPU_ISA", "") + "_OTHER")
    fresh_probe.cache_clear()
    fresh_probe()
    assert len(calls) == 4 and len(json.loads((tmp_path / "growlm" / "bf16-probe.json").read_text())) == 2
