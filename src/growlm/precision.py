"""Which floating-point precision to train in on this machine: `train.precision = "auto" | "bf16" | "fp32"`.

bf16 pays only where the hardware multiplies bf16 natively: CUDA GPUs with bf16 support, and CPUs with AMX or
AVX512-BF16 (Sapphire Rapids and later, Zen 4 and later). Elsewhere torch emulates it, and a bf16 matmul runs
50-100x slower than float32 (an AVX2-only EPYC: about 1 GFLOP/s against 60). "auto" therefore picks bf16 on a CPU
only when the CPU reports AMX or AVX512-BF16 *and* a measured probe (256 x 256 matmuls, a few milliseconds, once
per machine) finds bf16 at least half as fast as float32; the probe also catches CPUs whose fast paths are
switched off (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA). The probe's result is cached in
$XDG_CACHE_HOME/growlm/bf16-probe.json (default ~/.cache), keyed by host, CPU, torch and those variables, so every
process on a machine makes the same choice. The choice and the evidence behind it are one `Precision` record,
written to the run's manifest and printed at the start of a run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from growlm.io.atomic import atomic_write_json

SETTINGS = ("auto", "bf16", "fp32")
# bf16 is chosen when its matmul throughput is at least this multiple of float32's. CPUs with native bf16 measure
# 1.6-3x, emulated bf16 0.01-0.02x; a threshold far from both keeps a noisy probe from flipping the choice.
FAST_BF16_RATIO = 0.5
ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
PROBE_N = 256


@dataclass(frozen=True)
class Precision:
    chosen: str  # "bf16" or "fp32": what the run computes in
    setting: str  # what the config asked for: "auto", "bf16" or "fp32"
    device: str  # "cpu" or "cuda"
    capability: str  # what the hardware offers, e.g. "AVX512+AMX+AVX512_BF16", "AVX2", "NVIDIA H100"
    bf16_speedup: float | None  # measured bf16 / float32 matmul throughput (CPU probe); None where not measured
    reason: str

    @property
    def bf16(self) -> bool:
        return self.chosen == "bf16"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Precision":
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})

    def describe(self) -> str:
        speed = f", bf16 matmul {self.bf16_speedup:.2g}x float32" if self.bf16_speedup is not None else ""
        return f"precision {self.chosen} ({self.setting}: {self.device} {self.capability}{speed}; {self.reason})"

    def warning(self) -> str | None:
        """A one-line warning when an explicit bf16 will be slow here."""
        if self.setting == "bf16" and self.bf16_speedup is not None and self.bf16_speedup < FAST_BF16_RATIO:
            return (
                f"warning: train.precision = 'bf16' on a CPU without fast bf16 ({self.capability}): a bf16 "
                f"matmul runs at {self.bf16_speedup:.2g}x float32 here; set train.precision = 'auto' or 'fp32'"
            )
        return None


def cpu_capability() -> str:
    """torch's vector capability (DEFAULT, AVX2, AVX512, ...) plus the bf16 units the CPU reports."""
    parts = [torch.backends.cpu.get_cpu_capability()]
    if _cpu_flag("_is_amx_tile_supported"):
        parts.append("AMX")
    if _cpu_flag("_is_avx512_bf16_supported"):
        parts.append("AVX512_BF16")
    return "+".join(parts)


def _cpu_flag(name: str) -> bool:
    probe = getattr(torch.cpu, name, None)  # private in torch 2.x; absent means "not known to be there"
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def best_matmul_seconds(dtype: torch.dtype, n: int, reps: int = 3, device: torch.device | str = "cpu") -> float:
    """The fastest of `reps` timed n x n products after one warm-up (a busy moment does not count against it)."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device, dtype=dtype)
    a @ a
    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ a
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


@functools.cache
def measure_bf16_speedup(n: int = PROBE_N) -> float:
    """bf16 matmul throughput over float32's on this CPU (best of 3 each), cached per machine (module docstring)."""
    key = _probe_key(n)
    cache = _cache_file()
    entries = _read_cache(cache)
    if key in entries:
        return float(entries[key])
    ratio = best_matmul_seconds(torch.float32, n) / best_matmul_seconds(torch.bfloat16, n)
    with contextlib.suppress(OSError):  # a read-only home only loses the cache
        atomic_write_json(cache, {**_read_cache(cache), key: ratio})
    return ratio


def _probe_key(n: int) -> str:
    from growlm.provenance import cpu_model

    isa = ",".join(f"{v}={os.environ.get(v, '')}" for v in ISA_VARIABLES)
    return f"{socket.gethostname()}|{cpu_model()}|{cpu_capability()}|torch {torch.__version__}|{isa}|n={n}"


def _cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "growlm" / "bf16-probe.json"


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def choose(setting: str, device: torch.device | str, probe: Callable[[], float] | None = None) -> Precision:
    """The precision a run with `train.precision = setting` computes in on `device`. `probe` returns the bf16 /
    float32 throughput ratio (default: measure_bf16_speedup; tests inject one)."""
    if setting not in SETTINGS:
        raise ValueError(f"precision {setting!r}: expected one of {', '.join(SETTINGS)}")
    device = torch.device(device)
    if device.type == "cuda":
        return _choose_cuda(setting, device)
    probe = probe or measure_bf16_speedup
    capability = cpu_capability()
    native = "AMX" in capability or "AVX512_BF16" in capability
    if setting == "fp32":
        return Precision("fp32", setting, "cpu", capability, None, "as set")
    if setting == "bf16":
        return Precision("bf16", setting, "cpu", capability, probe(), "as set")
    if not native:
        return Precision("fp32", setting, "cpu", capability, None, "no AMX or AVX512-BF16: bf16 would be emulated")
    ratio = probe()
    if ratio >= FAST_BF16_RATIO:
        return Precision("bf16", setting, "cpu", capability, ratio, "native bf16 measured fast")
    return Precision("fp32", setting, "cpu", capability, ratio, "bf16 measured slow: emulated or switched off")


def _choose_cuda(setting: str, device: torch.device) -> Precision:
    name = torch.cuda.get_device_name(device)
    supported = torch.cuda.is_bf16_supported()
    if setting != "auto":
        return Precision(setting, setting, "cuda", name, None, "as set")
    if supported:
        return Precision("bf16", setting, "cuda", name, None, "the GPU supports bf16")
    return Precision("fp32", setting, "cuda", name, None, "the GPU has no bf16 support")
