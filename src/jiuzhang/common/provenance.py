"""Provenance records: what produced an artifact.

Two flavours, on purpose:
- :func:`artifact_provenance` goes *inside* DVC outputs, so it holds only what determines the bytes:
  the resolved config, the seeds and the versions of the packages *that stage computes with*
  (:data:`OUTPUT_PACKAGES`). A git commit, a timestamp or the version of a package the stage does not use
  (mlflow, dvc, openai, ...) there would change the output's hash and rerun every downstream stage for
  nothing: upgrading mlflow must not rerun the paper's ~900 GPU-hours.
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

PACKAGES = ("jiuzhang", "torch", "transformers", "tokenizers", "safetensors", "datasets", "pyarrow", "datatrove",
            "numpy", "dvc", "mlflow", "deepspeed", "peft", "openai", "pydantic", "math-verify", "accelerate")


# The packages whose version can change the bytes a stage writes (its computing libraries only).
OUTPUT_PACKAGES: dict[str, tuple[str, ...]] = {
    "corpus": ("datasets", "datatrove", "numpy", "pyarrow", "xxhash"),
    "prompts": ("pyarrow",),
    "base": ("safetensors", "tokenizers", "torch", "transformers"),
}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """The installed version of each package in ``names`` ('not installed' when absent)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _git(cwd: str | Path, *args: str) -> str | None:
    """git's output, or None where git or the repository is missing."""
    try:
        res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.rstrip("\n") if res.returncode == 0 else None  # keep porcelain's leading status column


def git_state(cwd: str | Path = ".") -> dict[str, Any]:
    """The git commit of ``cwd`` and whether tracked files differ from it (None when not a git checkout)."""
    commit = _git(cwd, "rev-parse", "HEAD")
    status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


# What decides a run's results: a commit that changes none of these (e.g. one that only records dvc.lock)
# keeps the same code commit, so a report naming it stays byte-identical across such commits.
CODE_PATHS = ("src", "stages", "dvc.yaml", "params.yaml", "configs", "templates", "pyproject.toml",
              "requirements.lock", "requirements-vllm.lock", "requirements-models.lock")


def code_commit(cwd: str | Path = ".") -> dict[str, Any]:
    """The last commit that changed code, params or templates, and whether those have uncommitted changes."""
    commit = _git(cwd, "log", "-1", "--format=%H", "--", *CODE_PATHS)
    changed = _git(cwd, "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    return {"commit": commit or None, "uncommitted": sorted(line[3:] for line in changed.splitlines())
            if changed else []}


def cpu_model() -> str | None:
    """The CPU's model name (Linux: /proc/cpuinfo), so a run's facts say which machine computed it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def hardware() -> dict[str, Any]:
    """This machine: architecture, CPU model and count, platform, Python, memory, CPU kernels, bf16 support and GPUs."""
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_model": cpu_model(),       # floats can differ in the 6th digit between CPU models (README)
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

        from jiuzhang.common.precision import precision_facts

        info["cpu_kernels"] = torch.backends.cpu.get_cpu_capability()  # see jiuzhang.cli: pinned to AVX2
        info["precision"] = precision_facts()  # oneDNN's bf16 kernels and what the CPU offers for them
        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return info


def artifact_provenance(stage: str, config: dict[str, Any], seeds: dict[str, int]) -> dict[str, Any]:
    """What goes inside a stage's output: only what determines its bytes (see the module docstring)."""
    if stage not in OUTPUT_PACKAGES:
        raise KeyError(f"{stage}: name the packages that determine its output in OUTPUT_PACKAGES")
    return {"stage": stage, "config": config, "seeds": seeds, "packages": package_versions(OUTPUT_PACKAGES[stage])}


def run_provenance(stage: str, config: dict[str, Any], seeds: dict[str, int], cwd: str | Path = ".") -> dict[str, Any]:
    """Everything about one execution (MLflow and ``results/run/``): every package, git, hardware, argv."""
    return {"stage": stage, "config": config, "seeds": seeds, "packages": package_versions(), "git": git_state(cwd),
            "hardware": hardware(), "argv": sys.argv}
