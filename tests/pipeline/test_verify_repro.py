"""The reproduction verifier: exact hashes for every output, nothing tolerated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml

from jiuzhang.pipeline.closeness import Tolerance
from jiuzhang.pipeline.verify import render, verify
from jiuzhang.teacher.journal import SCHEMA

from conftest import ROOT, run_cli

ROW = ("k1", "p1", '{"model": "m"}', "ok", '{"choices": []}', None, 3, 200, 400, 0.01, 1.5, 1700000000.0)


def project(root: Path, hashes: dict[str, str], journal_rows: list[tuple], report: str) -> Path:
    root.mkdir(parents=True)
    (root / "dvc.lock").write_text(yaml.safe_dump(
        {"schema": "2.0", "stages": {"s": {"cmd": "x", "outs": [{"path": p, "md5": h} for p, h in hashes.items()]}}}))
    (root / "data" / "journal").mkdir(parents=True)
    db = sqlite3.connect(root / "data" / "journal" / "kd_initial.sqlite")
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO answers (key, item_id, request, status, response, error, attempts, prompt_tokens, "
                   "completion_tokens, cost_usd, latency_s, committed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                   journal_rows)
    db.commit()
    db.close()
    (root / "reports").mkdir()
    (root / "reports" / "report.html").write_text(report)
    return root


def test_identical_and_different(tmp_path):
    html = "<h1>results</h1><pre>gsm8k {}</pre>"
    common = {"models/base": "aaa", "reports/report.html": "h1", "data/journal/kd_initial.sqlite": "j1"}
    a = project(tmp_path / "a", {**common, "data/kd/initial": "kd"}, [ROW], html.format(0.5))
    b = project(tmp_path / "b", {**common, "data/kd/initial": "kd"}, [ROW], html.format(0.5))
    assert {v.status for v in verify(a, b)} == {"identical"}

    # nothing is tolerated any more: a journal whose bytes differ is DIFFERENT, with what differs in it
    later = ROW[:9] + (0.01, 2.9, 1700000999.0)  # other wall-clock facts, same answer
    differs = {**common, "reports/report.html": "h2", "data/journal/kd_initial.sqlite": "j2", "data/kd/initial": "kd"}
    b = project(tmp_path / "b2", differs, [later], html.format(0.5))
    verdicts = {v.path: v for v in verify(a, b)}
    assert verdicts["data/journal/kd_initial.sqlite"].status == "DIFFERENT"
    assert "same answer rows, different bytes" in verdicts["data/journal/kd_initial.sqlite"].detail
    assert verdicts["reports/report.html"].status == "DIFFERENT"

    # a different answer, a different results table, a different model: all caught
    other_answer = ROW[:4] + ('{"choices": [1]}',) + ROW[5:]
    c = project(tmp_path / "c", {**differs, "models/base": "zzz"}, [other_answer], html.format(0.6))
    verdicts = {v.path: v for v in verify(a, c)}
    assert verdicts["models/base"].status == "DIFFERENT" and "aaa vs zzz" in verdicts["models/base"].detail
    assert verdicts["data/journal/kd_initial.sqlite"].detail.endswith("(1 of 1 answer rows differ)")

    # a reference lock that lacks an output, and the command's exit status
    same = project(tmp_path / "same", {**common, "data/kd/initial": "kd"}, [ROW], html.format(0.5))
    ref = tmp_path / "ref.lock"
    ref.write_text(yaml.safe_dump({"stages": {"s": {"outs": [{"path": "models/base", "md5": "aaa"}]}}}))
    verdicts = verify(a, same, ref)
    assert {v.path: v.status for v in verdicts}["data/kd/initial"] == "MISSING"
    assert "3 MISSING" in render(verdicts)
    assert run_cli("verify-repro", str(a), str(same), cwd=tmp_path).returncode == 0
    res = run_cli("verify-repro", str(a), str(c), cwd=tmp_path, check=False)
    assert res.returncode == 1 and "DIFFERENT" in res.stdout


def test_makefile_verifies_two_clean_clones_against_the_committed_lock():
    recipe = (ROOT / "Makefile").read_text().split("verify-repro: ")[1].split("\n\n")[0]
    assert "git clone" in recipe and "repro --force" in recipe and "--against dvc.lock" in recipe
    assert "PYTHONPATH=" in recipe  # each clone runs its own code, not the venv's editable checkout


# Across machines: outputs whose hashes differ are judged by their numbers (issue 25).
def _md5(data: bytes) -> str:
    import hashlib
    return hashlib.md5(data).hexdigest()


def _lock(root: Path, outs: dict[str, str]) -> None:
    (root / "dvc.lock").write_text(yaml.safe_dump(
        {"schema": "2.0", "stages": {"s": {"cmd": "x", "outs": [{"path": p, "md5": h} for p, h in outs.items()]}}}))


def _write(root: Path, rel: str, data: bytes) -> str:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)
    return _md5(data)


def _weights(scale: float) -> bytes:
    import torch
    from safetensors.torch import save

    torch.manual_seed(0)
    w = torch.randn(64, 64)
    return save({"w": w * scale, "b": torch.ones(3)})


def test_numbers_within_tolerance_are_close_beyond_it_different(tmp_path):
    import json

    def run(name: str, acc: float, loss: str, scale: float, text: str) -> Path:
        root = tmp_path / name
        outs = {"results/eval.json": _write(root, "results/eval.json", json.dumps({"acc": acc, "n": 40}).encode()),
                "results/loss.csv": _write(root, "results/loss.csv", f"step,loss\n1,{loss}\n".encode()),
                "models/m/model.safetensors": _write(root, "models/m/model.safetensors", _weights(scale)),
                "data/notes.txt": _write(root, "data/notes.txt", text.encode())}
        _lock(root, outs)
        return root

    a = run("a", 0.5, "1.2345678", 1.0, "same")
    b = run("b", 0.5 * (1 + 3e-7), "1.2345679", 1 + 2e-7, "same")      # the 6th-7th digit moved
    verdicts = {v.path: v for v in verify(a, b, tolerance=Tolerance())}
    assert {v.status for v in verdicts.values()} == {"close", "identical"}, render(list(verdicts.values()))
    assert verdicts["data/notes.txt"].status == "identical"
    assert "max rel" in verdicts["results/eval.json"].detail and "rtol 0.0001" in verdicts["results/eval.json"].detail
    assert "4099 numbers" in verdicts["models/m/model.safetensors"].detail      # 64*64 + 3 weights compared

    c = run("c", 0.55, "1.2345678", 1.01, "other")                       # beyond the tolerance, and other text
    verdicts = {v.path: v for v in verify(a, c, tolerance=Tolerance())}
    assert verdicts["results/eval.json"].status == "DIFFERENT"
    assert verdicts["models/m/model.safetensors"].status == "DIFFERENT"
    assert verdicts["data/notes.txt"].status == "DIFFERENT" and "not a numeric format" in verdicts["data/notes.txt"].detail
    assert verdicts["results/loss.csv"].status == "identical"
    assert {v.status for v in verify(a, b)} == {"DIFFERENT", "identical"}    # exact mode tolerates nothing
    res = run_cli("verify-repro", str(a), str(b), cwd=tmp_path, check=False)
    assert res.returncode == 0 and "close" in res.stdout
    assert run_cli("verify-repro", str(a), str(b), "--exact", cwd=tmp_path, check=False).returncode == 1


def test_against_a_revision_reads_git_kept_and_cached_outputs(tmp_path):
    import json
    import subprocess

    root = tmp_path / "proj"
    metrics = _write(root, "results/eval.json", json.dumps({"acc": 0.25}).encode())
    weights = _weights(1.0)
    file_md5 = _md5(weights)
    manifest = json.dumps([{"md5": file_md5, "relpath": "model.safetensors"}]).encode()
    dir_md5 = _md5(manifest) + ".dir"
    _write(root, f".dvc/cache/files/md5/{dir_md5[:2]}/{dir_md5[2:]}", manifest)   # the committed model, cached
    _write(root, f".dvc/cache/files/md5/{file_md5[:2]}/{file_md5[2:]}", weights)
    _lock(root, {"results/eval.json": metrics, "models/m": dir_md5})
    git = lambda *args: subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("add", "dvc.lock", "results/eval.json")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run on machine 1")
    # the rerun on machine 2: both outputs moved in the 7th digit, and dvc.lock was rewritten
    new_metrics = _write(root, "results/eval.json", json.dumps({"acc": 0.25000001}).encode())
    new_weights = _write(root, "models/m/model.safetensors", _weights(1 + 1e-7))
    _lock(root, {"results/eval.json": new_metrics, "models/m": _md5(new_weights.encode()) + ".dir"})
    verdicts = {v.path: v for v in verify(root, None, "HEAD", Tolerance())}
    assert verdicts["results/eval.json"].status == "close", verdicts["results/eval.json"].detail
    assert verdicts["models/m"].status == "close", verdicts["models/m"].detail
    (root / ".dvc" / "cache").rename(root / "elsewhere")                 # the committed model is not here
    verdicts = {v.path: v for v in verify(root, None, "HEAD", Tolerance())}
    assert verdicts["models/m"].status == "DIFFERENT" and "dvc pull" in verdicts["models/m"].detail
