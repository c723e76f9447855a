"""The kd stages as a user runs them (the `jiuzhang` CLI in a subprocess): offline teacher end to end,
kill -9 mid-run and resume without paying twice, and no API key in any output."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
from mlflow.tracking import MlflowClient

from jiuzhang.prompts.templates import load_templates
from jiuzhang.teacher.server import ChatServer

from conftest import BIN, SHARED, run_cli
from helpers.kd import KEY, TEMPLATES, kd_args, kd_params
from teacher_fakes import FaultyTeacher, write_pool


def test_offline_teacher_end_to_end_and_labelled(tmp_path, write_params):
    templates = load_templates(TEMPLATES, ("grade_school", "aime", "tool"))
    prompts = [templates[lv].fill(f"Snippet about fractions number {i}.") for i in range(4)
               for lv in ("grade_school", "aime", "tool")]
    pool = write_pool(tmp_path / "pool", prompts)
    for row, lv in zip(pool, ["grade_school", "aime", "tool"] * 4):
        row["level"] = lv
    params = kd_params(tmp_path, write_params, len(prompts), kind="offline", model="offline-teacher")
    res = run_cli(*kd_args(params, tmp_path), cwd=tmp_path, env={"JIUZHANG_TRACKING": "on", "MLFLOW_TRACKING_URI": ""})
    assert "OFFLINE TEACHER" in res.stderr + res.stdout
    metrics = json.loads((tmp_path / "metrics" / "kd_initial.json").read_text())
    assert metrics["teacher"]["kind"] == "offline" and "not a real LLM" in metrics["teacher"]["label"]
    assert metrics["kept"] == len(prompts)
    about = metrics["about"]  # the results file describes itself
    assert about["schema_version"] == 2 and about["stage"] == "kd_initial" and len(about["params_digest"]) == 16
    assert about["params_sections"] == ["teacher", "kd"] and about["packages"]["torch"] != "not installed"
    kept = {r["prompt"]: r for r in pq.read_table(tmp_path / "kd" / "part-00000.parquet").to_pylist()}
    gsm8k_questions = {json.loads(line)["question"] for line in open(SHARED / "benchmarks/gsm8k/train.jsonl")}
    for i in range(4):
        assert kept[templates["grade_school"].fill(f"Snippet about fractions number {i}.")]["problem"] in gsm8k_questions
        tool = kept[templates["tool"].fill(f"Snippet about fractions number {i}.")]
        assert "```python" in tool["solution"] and "```output" in tool["solution"]
        assert tool["completion"].startswith("[Problem]: ") and "\n\n[Solution]: " in tool["completion"]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("jiuzhang").experiment_id],
                              filter_string="tags.`jiuzhang.stage` = 'kd_initial'")
    assert runs[0].data.tags["jiuzhang.teacher"] == "offline"
    # the progress figures of the run (sent even with --no-progress, which hides only the console bar)
    history = client.get_metric_history(runs[0].info.run_id, "progress.requests.fraction")
    assert history and history[-1].value == 1.0 and history[-1].step == len(prompts)
    # deterministic: a second run from an empty journal gives the same KD set bytes
    first = (tmp_path / "kd" / "part-00000.parquet").read_bytes()
    (tmp_path / "journal" / "kd.sqlite").unlink()
    run_cli(*kd_args(params, tmp_path), cwd=tmp_path)
    assert (tmp_path / "kd" / "part-00000.parquet").read_bytes() == first


def _committed_prompts(journal: Path) -> set[str]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        try:
            rows = db.execute("SELECT request FROM answers WHERE status = 'ok'").fetchall()
        except sqlite3.OperationalError as err:
            # The poll can open the file between its creation and the CREATE TABLE: nothing committed yet.
            if "no such table" not in str(err):
                raise
            rows = []
    return {json.loads(r[0])["messages"][0]["content"] for r in rows}


def test_kill_9_mid_run_then_rerun_sends_no_committed_request_again(tmp_path, write_params):
    fake = FaultyTeacher(latency_s=0.05)
    prompts = [f"Prompt {i}: make a problem about primes." for i in range(80)]
    write_pool(tmp_path / "pool", prompts)
    journal = tmp_path / "journal" / "kd.sqlite"
    with ChatServer(fake.answer) as server:
        params = kd_params(tmp_path, write_params, len(prompts), kind="openai", model="gpt-test",
                           base_url=server.url, concurrency=4, max_retries=2)
        env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "OPENAI_API_KEY": KEY, "JIUZHANG_TRACKING": "off"}
        proc = subprocess.Popen([str(BIN / "jiuzhang"), *kd_args(params, tmp_path)], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline:
            if journal.exists() and len(_committed_prompts(journal)) >= 20:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        committed = _committed_prompts(journal)
        assert 20 <= len(committed) < 80, "the kill must land mid-run"
        mark = len(fake.log)
        run_cli(*kd_args(params, tmp_path), cwd=tmp_path, env={"OPENAI_API_KEY": KEY})
        resent = fake.log[mark:]
    duplicates = [p for p in resent if p in committed]
    print(f"kill -9 after {len(committed)} committed answers; {len(resent)} requests after restart; "
          f"{len(duplicates)} duplicates")
    assert duplicates == []
    assert set(resent) | committed == set(prompts)
    metrics = json.loads((tmp_path / "metrics" / "kd_initial.json").read_text())
    assert metrics["kept"] == 80 and metrics["completion_tokens"] > 0
    facts = json.loads((tmp_path / "metrics" / "run" / "kd_initial.json").read_text())
    assert facts["cached"] == len(committed) and facts["journal_answered"] == 80


def test_api_key_never_reaches_any_output(tmp_path, write_params):
    fake = FaultyTeacher()
    prompts = ["FAULT=leak400 please echo my headers", "FAULT=500,500,500,500 always failing", "a normal prompt"]
    write_pool(tmp_path / "pool", prompts)
    with ChatServer(fake.answer) as server:
        params = kd_params(tmp_path, write_params, len(prompts), kind="openai", model="gpt-test",
                           base_url=server.url, max_retries=1, backoff_initial_s=0.01, backoff_max_s=0.02,
                           max_failed_share=1.0)
        env = {"OPENAI_API_KEY": KEY, "JIUZHANG_TRACKING": "on", "MLFLOW_TRACKING_URI": ""}
        ok = run_cli(*kd_args(params, tmp_path), cwd=tmp_path, env=env)
        rejected = (tmp_path / "kd" / "rejected.jsonl").read_text()
        assert "[REDACTED]" in rejected  # the server did echo the key; we caught it
        strict = kd_params(tmp_path, write_params, len(prompts), kind="openai", model="gpt-test",
                           base_url=server.url, max_retries=0, max_failed_share=0.0)
        failed = run_cli(*kd_args(strict, tmp_path), cwd=tmp_path, env=env, check=False)
    assert failed.returncode == 2 and "teacher requests failed" in failed.stderr
    texts = [ok.stdout, ok.stderr, failed.stdout, failed.stderr]
    leaks = [str(p) for p in tmp_path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    leaks += [f"output {i}" for i, t in enumerate(texts) if KEY in t]
    assert leaks == []
    assert (tmp_path / "mlflow.db").is_file()  # MLflow was scanned too


def test_missing_api_key_is_a_clear_error_before_any_request(tmp_path, write_params):
    fake = FaultyTeacher()
    write_pool(tmp_path / "pool", ["p"])
    with ChatServer(fake.answer) as server:
        params = kd_params(tmp_path, write_params, 1, kind="openai", model="gpt-test", base_url=server.url,
                           api_key_env="JIUZHANG_TEST_KEY")
        res = run_cli(*kd_args(params, tmp_path), cwd=tmp_path, env={"JIUZHANG_TEST_KEY": ""}, check=False)
    assert res.returncode == 2 and "JIUZHANG_TEST_KEY" in res.stderr and "Traceback" not in res.stderr
    assert sum(fake.seen.values()) == 0


def test_kd_plan_sends_nothing(tmp_path, write_params):
    write_pool(tmp_path / "pool", [f"prompt {i} " * 40 for i in range(10)])
    params = kd_params(tmp_path, write_params, 10, kind="openai", model="gpt-4-0613", base_url="http://127.0.0.1:9/v1")
    res = run_cli("kd", "plan", "--params", str(params), "--prompts", str(tmp_path / "pool"), "--journal",
                  str(tmp_path / "j.sqlite"), cwd=tmp_path)
    assert "to_send                  10" in res.stdout and "est_usd" in res.stdout
    assert not (tmp_path / "j.sqlite").exists()
