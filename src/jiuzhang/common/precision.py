"""What a CPU offers for bf16 and which kernels a process uses, recorded in every stage's provenance.

Measured here (AMD EPYC with AVX512-BF16, 2 threads, SmolLM2-135M, seq 512, batch 2; benchmarks/precision_cpu.py,
2026-12-04): training fp32 152 tokens/s, fp32 master weights + bf16 autocast 229 (1.51x), the forward pass
418 -> 731 (1.75x), HF generation 136 -> 172 new tokens/s (1.26x).
The bf16 matmuls run in oneDNN, which picks its own instruction set (AVX512-BF16, AMX) independently of
PyTorch's ATEN_CPU_CAPABILITY pin (jiuzhang.cli), so both are recorded: a bf16 result is reproducible on
machines whose recorded kernels match.

On a CPU without AVX512-BF16 or AMX (e.g. an AMD EPYC without AVX-512, 2026-12-07) oneDNN has no bf16 kernel
and a bf16 matmul falls back to ATen's reference loops: a 768x576x1536 linear layer's forward and backward took
904 ms in bf16 vs 37 ms in fp32 (24x, 2 threads), and the mini profile's synthesizer training ran at 5 tokens/s
(was 431 with AVX512-BF16). :func:`warn_slow_bf16` says so, once per process, before such work starts, and
a training ``dtype: auto`` (:func:`resolve_dtype`) takes bf16 only where it is native: a GPU, or a CPU listing
avx512_bf16 or amx_bf16.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")


def cpu_bf16_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The CPU's bf16 instruction sets among :data:`BF16_FLAGS` (empty where /proc/cpuinfo is unreadable)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [f for f in BF16_FLAGS if f in flags]


def precision_facts() -> dict[str, object]:
    """The kernels this process runs with: PyTorch's CPU capability, the oneDNN cap, the CPU's bf16 sets."""
    import torch

    return {"cpu_kernels": torch.backends.cpu.get_cpu_capability(),
            "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY"),
            "onednn_max_cpu_isa_env": os.environ.get("ONEDNN_MAX_CPU_ISA"),
            "cpu_bf16": cpu_bf16_flags(), "mkldnn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())}


_warned: set[str] = set()


def slow_bf16(device_type: str, bf16: bool, flags: list[str] | None = None) -> str | None:
    """Why bf16 on ``device_type`` will be slow here (a CPU without native bf16 instructions), or None."""
    if not bf16 or device_type != "cpu":
        return None
    if (flags if flags is not None else cpu_bf16_flags()):
        return None
    return ("bf16 on a CPU without AVX512-BF16 or AMX: its matmuls fall back to ATen's reference loops, ~24x "
            "slower than fp32 here (jiuzhang.common.precision); set the section's dtype to fp32 on this machine "
            "(e.g. --set synthesizer.train.dtype=fp32) or run where /proc/cpuinfo lists avx512_bf16 or amx_bf16")


def resolve_dtype(dtype: str, device_type: str, flags: list[str] | None = None) -> str:
    """``dtype`` ("auto", "fp32" or "bf16") as run on ``device_type``: "auto" is bf16 on a GPU and on a CPU
    with native bf16 instructions (``flags``, read from /proc/cpuinfo when None), fp32 on any other CPU, where
    bf16 runs ~24x slower than fp32 (module docstring). The resolved value is recorded with the results,
    since it decides the trained bytes."""
    if dtype != "auto":
        return dtype
    if device_type != "cpu":
        return "bf16"
    return "bf16" if (flags if flags is not None else cpu_bf16_flags()) else "fp32"


def warn_slow_bf16(device_type: str, bf16: bool, where: str) -> None:
    """Print :func:`slow_bf16`'s reason for ``where`` (a stage's step) once per process, if there is one."""
    reason = slow_bf16(device_type, bf16)
    if reason and where not in _warned:
        _warned.add(where)
        print(f"warning: {where}: {reason}", file=sys.stderr, flush=True)


def autocast(device_type: str, bf16: bool):
    """bf16 autocast over fp32 weights on ``device_type`` (a no-op context when ``bf16`` is false)."""
    import torch

    warn_slow_bf16(device_type, bf16, "bf16 autocast")
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16)
