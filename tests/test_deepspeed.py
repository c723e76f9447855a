"""DeepSpeed for real on this CPU (DS_ACCELERATOR=cpu, gloo): the same trainer through a ZeRO engine
reaches the weights of the plain torch path and resumes from its own checkpoints.

The first DeepSpeed start JIT-compiles a C++ op (~1 min); TORCH_EXTENSIONS_DIR keeps it in
.cache/torch_extensions so later runs start in seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import ROOT, make_tiny_model

pytestmark = pytest.mark.slow
WORKER = ROOT / "tests" / "ds_worker.py"


def run_worker(*args: str, port: int) -> dict:
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port), "DS_ACCELERATOR": "cpu",
           "TORCH_EXTENSIONS_DIR": str(ROOT / ".cache" / "torch_extensions")}
    res = subprocess.run([sys.executable, str(WORKER), *args], env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    line = next(l for l in res.stdout.splitlines() if l.startswith("METRICS "))
    return json.loads(line[len("METRICS "):])


def test_deepspeed_zero1_matches_torch_and_resumes(tmp_path):
    model_dir = make_tiny_model(tmp_path / "model")

    plain = run_worker(str(model_dir), str(tmp_path / "torch"), str(tmp_path / "ck_t"), "1", "-", "torch", port=29611)
    ds = run_worker(str(model_dir), str(tmp_path / "ds"), str(tmp_path / "ck_ds"), "1", port=29612)
    a, b = load_file(tmp_path / "torch" / "model.safetensors"), load_file(tmp_path / "ds" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-4, k
    assert ds["steps"] == plain["steps"] == 4
    assert [round(x["loss"], 4) for x in ds["loss_curve"]] == [round(x["loss"], 4) for x in plain["loss_curve"]]

    # interrupted after 3 of 4 steps (checkpoint at step 3) -> resume from the DeepSpeed checkpoint
    run_worker(str(model_dir), str(tmp_path / "x"), str(tmp_path / "ck_r"), "1", "3", port=29613)
    assert (tmp_path / "ck_r" / "last").is_dir()
    resumed = run_worker(str(model_dir), str(tmp_path / "resumed"), str(tmp_path / "ck_r"), "1", port=29614)
    c = load_file(tmp_path / "resumed" / "model.safetensors")
    for k in b:
        assert (b[k] - c[k]).abs().max() < 1e-6, k
    assert resumed["loss_curve"] == ds["loss_curve"]


def test_two_processes_under_torchrun_match_one(tmp_path):
    """One code path from 1 to N processes: 2 ranks (gloo, ZeRO-1) each take half of every global batch and
    end with the weights and loss curve of a single process."""
    model_dir = make_tiny_model(tmp_path / "model")
    single = run_worker(str(model_dir), str(tmp_path / "one"), str(tmp_path / "ck1"), "1", "-", "torch", port=29621)
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "TORCH_EXTENSIONS_DIR": str(ROOT / ".cache" / "torch_extensions")}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    torchrun = Path(sys.executable).parent / "torchrun"
    res = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29622", str(WORKER), str(model_dir),
                          str(tmp_path / "two"), str(tmp_path / "ck2"), "1"], env=env, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    curves = [json.loads(l[len("METRICS "):]) for l in res.stdout.splitlines() if l.startswith("METRICS ")]
    assert len(curves) == 2 and curves[0] == curves[1]  # both ranks log the global-batch loss
    assert [round(x["loss"], 4) for x in curves[0]["loss_curve"]] == [round(x["loss"], 4) for x in single["loss_curve"]]
    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-4, k
    assert not (tmp_path / "ck2").exists()  # the main rank cleaned up after every rank was done
