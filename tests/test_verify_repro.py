"""The reproduction verifier: exact hashes for every output, nothing tolerated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml

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
