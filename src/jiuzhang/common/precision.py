"""What a CPU offers for bf16 and which kernels a process uses, recorded in every stage's provenance.

Measured here (AMD EPYC with AVX512-BF16, 2 threads, SmolLM2-135M, seq 512, batch 2; benchmarks/precision_cpu.py,
2026-12-04): training fp32 152 tokens/s, fp32 master weights + bf16 autocast 229 (1.51x), the forward pass
418 -> 731 (1.75x), HF generation 136 -> 172 new tokens/s (1.26x).
The bf16 matmuls run in oneDNN, which picks its own instruction set (AVX512-BF16, AMX) independently of
PyTorch's ATEN_CPU_CAPABILITY pin (jiuzhang.cli), so both are recorded: a bf16 result is reproducible on
machines whose recorded kernels match.
"""

from __future__ import annotations

import os
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


def autocast(device_type: str, bf16: bool):
    """bf16 autocast over fp32 weights on ``device_type`` (a no-op context when ``bf16`` is false)."""
    import torch

    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16)
