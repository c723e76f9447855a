"""The DVC pipeline for real, in a throwaway copy of the project: repro, no-op rerun, param-selective
rerun, byte-identical outputs from scratch, and a push -> wipe -> pull -> clean status round trip."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from jiuzhang.pipeline.verify import lock_outputs, render, verify

from conftest import BIN
from helpers.dvc_project import copy_ran, dvc, small_project

pytestmark = pytest.mark.slow


# Two full DAG runs (the session's shared one and a from-scratch one here), a variant and reruns: ~25 min
# alone on this 2-core host; the limit leaves room for a slow stretch (the shared run is set up in here).
@pytest.mark.timeout(3600)
def test_repro_rerun_selective_identical_and_push_pull(ran_small_project, tmp_path):
    ran, out = ran_small_project
    a = copy_ran(ran, tmp_path / "a" / "proj")
    for stage in ("corpus", "prompts", "base", "kd_initial", "synthesizer_initial", "influence", "kd_boost",
                  "synthesizer", "synthesize", "filter", "pretrain", "eval@gsm8k", "eval@aqua", "report"):
        assert f"Running stage '{stage}'" in out
    assert (a / "mlflow.db").is_file()  # default tracking store: SQLite in the project
    first = lock_outputs(a / "dvc.lock")
    assert set(first) >= {"data/corpus", "data/prompts", "models/base", "results/corpus.json", "data/kd/initial",
                          "data/journal/kd_initial.sqlite", "data/influence/candidates", "data/influence/selection",
                          "data/kd/boost", "data/synthetic/raw", "data/synthetic/clean", "models/jiuzhang",
                          "data/eval/gsm8k", "data/eval/gsm_hard", "reports/accuracy.png", "reports/results.md"}
    synth = yaml.safe_load((a / "results" / "synthesize.json").read_text())
    assert synth["records"] == 24 and synth["overlong_skipped"] == 0 and synth["new_tokens"] > 0

    again = dvc(a, "repro")
    assert "Running stage" not in again

    # from scratch in a second copy: byte-identical outputs (same hashes in dvc.lock), the teacher
    # journals (canonical form) and the report (no wall times) included; nothing is tolerated
    b = small_project(tmp_path / "b" / "proj")
    dvc(b, "repro")
    verdicts = verify(a, b)
    assert {v.status for v in verdicts} == {"identical"}, render(verdicts)
    assert lock_outputs(b / "dvc.lock") == first

    # one param changes -> only the stage that reads it reruns: plan.* is read by the report alone
    params = yaml.safe_load((a / "params.yaml").read_text())
    mfu = params["plan"]["mfu"]
    params["plan"]["mfu"] = mfu / 2
    (a / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    selective = dvc(a, "repro")
    assert selective.count("Running stage") == 1 and "Running stage 'report'" in selective, selective
    params["plan"]["mfu"] = mfu
    (a / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "Running stage 'report'" in dvc(a, "repro")
    # back to the first params: the same outputs again
    assert lock_outputs(a / "dvc.lock") == first

    # push to the shipped default remote (../jiuzhang-dvc-remote next to the project), wipe cache and
    # outputs, pull back: status clean, nothing to rerun
    dvc(a, "push")
    dvc_ignores = {p.relative_to(a): p.read_text() for p in a.rglob(".gitignore") if ".dvc" not in p.parts}
    assert Path("data/kd/.gitignore") in dvc_ignores
    assert any((tmp_path / "a" / "jiuzhang-dvc-remote").rglob("*"))
    for path in ("data/corpus", "data/prompts", "models", "data/kd", "data/journal", "data/synthetic", ".dvc/cache"):
        shutil.rmtree(a / path)
    assert "deleted" in dvc(a, "status")
    dvc(a, "pull")
    status = dvc(a, "status")
    assert "Data and pipelines are up to date" in status, status
    assert "Running stage" not in dvc(a, "repro")
    assert (a / "models" / "base" / "model.safetensors").is_file()

    # the pulled journal replays the teacher round without a single request
    dvc(a, "repro", "-f", "kd_initial")
    facts = yaml.safe_load((a / "results" / "run" / "kd_initial.json").read_text())
    assert facts["http_attempts"] == 0 and facts["cached"] == 20

    # a variant: `dvc exp run -S influence.method=random` reruns only what depends on influence, logs under a
    # parent of its own, and `jiuzhang compare` shows the two side by side
    # DVC keeps its cached outputs out of git with per-folder .gitignore files; the wipe above deleted some
    # (data/kd/.gitignore went with data/kd) and `dvc pull` does not write them back, while `dvc exp run`
    # refuses outputs that git tracks: put DVC's own files back before the baseline commit.
    for rel, text in dvc_ignores.items():
        (a / rel).write_text(text)
    (a / ".gitignore").write_text("/mlflow.db\n/mlartifacts/\n/results/run/\n/.cache/\n")
    for key, value in (("user.name", "jiuzhang test"), ("user.email", "test@example.invalid")):
        subprocess.run(["git", "config", key, value], cwd=a, check=True)  # dvc exp commits need an identity
    subprocess.run(["git", "add", "-A"], cwd=a, check=True)
    subprocess.run(["git", "commit", "-qm", "baseline"], cwd=a, check=True)
    committed = subprocess.run(["git", "ls-files"], cwd=a, capture_output=True, text=True, check=True).stdout
    assert not [line for line in committed.splitlines()
                if line.startswith(("data/", "models/")) and not line.endswith("/.gitignore")]
    tracked = {"JIUZHANG_TRACKING": "on", "MLFLOW_TRACKING_URI": ""}
    exp = dvc(a, "exp", "run", "-S", "influence.method=random", "--name", "random-sel", env=tracked)
    assert "Running stage 'influence'" in exp and "Running stage 'corpus'" not in exp
    shown = dvc(a, "exp", "show", "--no-pager", "--md")
    assert "random-sel" in shown
    res = subprocess.run([str(BIN / "jiuzhang"), "compare", "--all"], cwd=a, capture_output=True, text=True,
                         env={**os.environ, **tracked})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "(random-sel)" in lines[1]
    method = next(line for line in lines if line.strip().startswith("influence.method"))
    assert method.split()[1:] == ["less", "random"]
    corpus_row = next(line for line in lines if line.strip().startswith("corpus: "))
    assert corpus_row.endswith(" =")  # not rerun in the variant: the baseline's figure
    assert any(line.strip().startswith("eval@gsm8k: nl.accuracy") for line in lines)
