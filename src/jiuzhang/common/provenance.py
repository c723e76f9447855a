"""Provenance records: what produced an artifact.

Two flavours, on purpose:
- :func:`artifact_provenance` goes *inside* DVC outputs, so it holds only what determines the bytes
  (resolved config, seeds, package versions). A git commit or timestamp there would change the output's
  hash on every commit and rerun every downstream stage for nothing.
- :func:`run_provenance` goes to MLflow: everything, including git commit, hardware and time.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("jiuzhang", "torch", "transformers", "tokenizers", "datasets", "pyarrow", "datasketch",
            "numpy", "dvc", "mlflow", "deepspeed", "peft", "openai", "pydantic")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state(cwd: str | Path = ".") -> dict[str, Any]:
    def run(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    try:
        import torch

        info["cpu_kernels"] = torch.backends.cpu.get_cpu_capability()  # see jiuzhang.cli: pinned to AVX2
        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return info


def artifact_provenance(stage: str, config: dict[str, Any], seeds: dict[str, int]) -> dict[str, Any]:
    return {"stage": stage, "config": config, "seeds": seeds, "packages": package_versions()}


def run_provenance(stage: str, config: dict[str, Any], seeds: dict[str, int], cwd: str | Path = ".") -> dict[str, Any]:
    return {**artifact_provenance(stage, config, seeds), "git": git_state(cwd), "hardware": hardware(),
            "argv": sys.argv}
