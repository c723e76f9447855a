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
    assert (tmp_path / "ck_r" / "COMPLETE").read_text() == "step-2"
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


def _env(**extra: str) -> dict:
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "TORCH_EXTENSIONS_DIR": str(ROOT / ".cache" / "torch_extensions"),
           **extra}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _torchrun(args: list[str], nproc: int, port: int, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    torchrun = Path(sys.executable).parent / "torchrun"
    res = subprocess.run([str(torchrun), "--nproc_per_node", str(nproc), "--master_port", str(port), str(WORKER),
                          *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def _metrics(res: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(l[len("METRICS "):]) for l in res.stdout.splitlines() if l.startswith("METRICS ")]


def test_a_short_last_batch_takes_the_same_steps_on_every_rank(tmp_path):
    """Issue 22.4: 21 unpacked examples in global batches of 4 leave a last batch of 1 row: under two ranks
    one rank has no micro-batch (its DeepSpeed collectives hung), and in one process the short batch has
    fewer micro-batches than DeepSpeed's accumulation steps (its boundary slid into the next step). Padded
    with zero-weight micro-batches, both end with the plain torch weights."""
    model_dir = make_tiny_model(tmp_path / "model")
    env = _env(DS_WORKER_SETTINGS=json.dumps({"packing": False, "epochs": 1}), DS_WORKER_EXAMPLES="21")
    plain = _metrics(_torchrun([str(model_dir), str(tmp_path / "t"), str(tmp_path / "ck_t"), "1", "-", "torch"], 1,
                               29641, env))[0]
    one = _metrics(_torchrun([str(model_dir), str(tmp_path / "d1"), str(tmp_path / "ck_1"), "1"], 1, 29642, env))[0]
    two = _metrics(_torchrun([str(model_dir), str(tmp_path / "d2"), str(tmp_path / "ck_2"), "1"], 2, 29643, env))
    assert plain["steps"] == one["steps"] == two[0]["steps"] == 6  # ceil(21 / 4)
    a = load_file(tmp_path / "t" / "model.safetensors")
    for run in ("d1", "d2"):
        b = load_file(tmp_path / run / "model.safetensors")
        for k in a:
            assert (a[k] - b[k]).abs().max() < 1e-4, (run, k)
    assert [round(x["loss"], 4) for x in two[0]["loss_curve"]] == [round(x["loss"], 4) for x in plain["loss_curve"]]


def test_a_kill_mid_save_leaves_the_previous_checkpoint_to_resume_from(tmp_path):
    """Issue 22.4: a process killed while writing its second checkpoint (model file written, optimizer file
    not) left a half-new, half-old tag 'last' that the next run accepted. Each save now goes to a new tag and
    the COMPLETE pointer moves only once it is whole: the rerun resumes from the first checkpoint and ends
    with the uninterrupted run's weights."""
    model_dir = make_tiny_model(tmp_path / "model")
    settings = json.dumps({"save_every": 1})
    full = _metrics(_torchrun([str(model_dir), str(tmp_path / "full"), str(tmp_path / "ck_f"), "1"], 1, 29651,
                              _env(DS_WORKER_SETTINGS=settings)))[0]
    killed = _torchrun([str(model_dir), str(tmp_path / "x"), str(tmp_path / "ck"), "1"], 1, 29652,
                       _env(DS_WORKER_SETTINGS=settings, DS_WORKER_KILL_AT_SAVE="2"), check=False)
    assert killed.returncode != 0
    tags = sorted(p.name for p in (tmp_path / "ck").iterdir() if p.is_dir())
    assert tags == ["step-0", "step-1"] and (tmp_path / "ck" / "COMPLETE").read_text() == "step-0"
    resumed = _metrics(_torchrun([str(model_dir), str(tmp_path / "resumed"), str(tmp_path / "ck"), "1"], 1, 29653,
                                 _env(DS_WORKER_SETTINGS=settings)))[0]
    assert resumed["loss_curve"] == full["loss_curve"]
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "resumed" / "model.safetensors")
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-6, k
