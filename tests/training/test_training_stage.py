"""The training stages as a user runs them: `jiuzhang synthesizer_initial` killed with SIGKILL mid-run,
rerun, ends with the same weights as an uninterrupted run; the model it writes generates text."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import BIN, make_tiny_model, run_cli, tiny_params
from helpers.kd import write_kd_set

pytestmark = pytest.mark.slow


def test_killed_training_resumes_to_the_same_weights(tmp_path, write_params):
    model_dir = make_tiny_model(tmp_path / "model")
    write_kd_set(tmp_path / "kd", 96)
    params = tiny_params({"x": "unused.jsonl"})
    params["synthesizer"]["init"] = {"path": str(model_dir)}
    params["synthesizer"]["train"].update(max_length=64, micro_batch=2, global_batch=4, epochs=2, save_every=2,
                                          log_every=1, lr=0.003)
    params_file = write_params(params)

    def args(out: str, ck: str) -> list[str]:
        return ["synthesizer_initial", "--params", str(params_file), "--kd", str(tmp_path / "kd"), "--out",
                str(tmp_path / out), "--checkpoints", str(tmp_path / ck), "--metrics", str(tmp_path / f"{out}.json")]

    run_cli(*args("full", "ck_full"), cwd=tmp_path)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "JIUZHANG_TRACKING": "off"}
    proc = subprocess.Popen([str(BIN / "jiuzhang"), *args("resumed", "ck")], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    checkpoint = tmp_path / "ck" / "last.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    first = checkpoint.stat().st_mtime_ns if checkpoint.exists() else None
    while checkpoint.exists() and checkpoint.stat().st_mtime_ns == first and proc.poll() is None:
        time.sleep(0.05)  # let it get past a second checkpoint, then kill it mid-step
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists(), "the kill must land mid-run, after a checkpoint"
    run_cli(*args("resumed", "ck"), cwd=tmp_path)
    full = (tmp_path / "full" / "model.safetensors").read_bytes()
    assert (tmp_path / "resumed" / "model.safetensors").read_bytes() == full

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "resumed")
    tok = AutoTokenizer.from_pretrained(tmp_path / "resumed")
    ids = tok("Make a problem about 7.", return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    assert tok.decode(out[0, ids.shape[1]:]).strip()
