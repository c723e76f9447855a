"""The smoke pipeline at test size as a throwaway DVC project, shared by the DVC tests (pipeline, remotes).

Its DAG runs once per test session (``conftest.ran_small_project``) and each test works on its own copy:
one DAG run costs ~10 min on this 2-core host (twice that on a slow stretch), and CI has 90 min in all.
Fewer benchmarks than the smoke profile: the DVC tests are about reruns, caching, identical hashes and
push/pull, which one benchmark per eval kind (nl, tool, loss, choice) exercises as well as eleven.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from conftest import BIN, copy_project, tiny_params

SOURCES = {"openstax": "../shared/corpus/openstax_math.jsonl",
           "stackexchange": "../shared/corpus/stackmathqa_sample.jsonl"}


def dvc(project: Path, *args: str, env: dict | None = None) -> str:
    """Run ``dvc`` in ``project``; fail the test with DVC's output unless it exits 0."""
    full = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **(env or {})}
    res = subprocess.run([str(BIN / "dvc"), *args], cwd=project, env=full, capture_output=True, text=True)
    assert res.returncode == 0, f"dvc {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout + res.stderr


def small_project(dest: Path, **overrides) -> Path:
    """A copy of this project at ``dest`` with the smoke params shrunk to test size (not run)."""
    project = copy_project(dest)
    params = tiny_params(SOURCES, **overrides)
    params["benchmarks"]["root"] = "../shared/benchmarks"  # as in the shipped params, via ../shared
    params["corpus"]["sources"][0]["max_docs"] = 150
    params["corpus"]["sources"][1]["max_docs"] = 60
    params["kd"]["initial"]["n"] = 20
    params["kd"]["boost"]["n"] = 10
    params["influence"]["pool_size"] = 30
    params["base"]["arch"]["max_position_embeddings"] = 4096  # RoPE: no extra weights; 400-token BPE prompts fit
    params["synthesize"].update(max_prompts=24, shard_size=8, batch_size=4)
    for kind in ("nl", "tool"):
        params["synthesize"][kind]["max_new_tokens"] = 16
    # gsm8k: nl + tool + held-out loss; aqua: multiple choice; gsm_hard: tool only
    params["eval"]["benchmarks"] = {"gsm8k": ["nl", "tool", "loss"], "aqua": ["nl"], "gsm_hard": ["tool"]}
    params["eval"].update(limit=2, max_new_tokens=8, base_benchmarks=["gsm8k"], arm_benchmarks=["gsm8k"])
    # These tests are about DVC (reruns, caching, identical hashes, push/pull), which the executor cannot
    # change (bytes are the same in-process and on Ray: tests/cluster/test_cluster_pool.py); in-process saves the
    # ~10 s a private Ray cluster costs each generation stage of every DAG run here.
    params["cluster"]["executor"] = "inline"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project


def copy_ran(project: Path, dest: Path) -> Path:
    """A copy of a project that has run (outputs, dvc.lock, DVC cache, git and MLflow store) at ``dest``, with
    ``../shared`` linked as from the original: a second, independent project in the same state."""
    shutil.copytree(project, dest, symlinks=True)
    (dest.parent / "shared").symlink_to((project.parent / "shared").resolve())
    return dest
