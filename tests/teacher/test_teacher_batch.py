"""teacher.mode: batch for real over HTTP on 127.0.0.1: files and batches endpoints (the offline teacher's
BatchService), expiry with an error file, resubmission of only what failed, kill -9 at each step of a
submission with a rerun that re-attaches instead of paying twice, and batch prices in the plans."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter

import pytest

from jiuzhang.kd.teacher_round import Endpoint, plan_round, run_round
from jiuzhang.teacher.batch import BatchWaitExceeded
from jiuzhang.teacher.batch_service import BatchService
from jiuzhang.teacher.server import ChatServer

from conftest import BIN, run_cli
from helpers.kd import KEY, kd_args, kd_params
from helpers.teacher import items, journal_rows, read_kd, teacher_cfg
from teacher_fakes import FaultyTeacher, write_pool

BATCH = {"poll_initial_s": 0.05, "poll_max_s": 0.2}


def batch_cfg(url: str, **over):
    return teacher_cfg(url, mode="batch", batch=BATCH | over.pop("batch", {}), **over)


def test_expired_batch_and_error_file_resubmit_only_what_failed(tmp_path):
    """12 prompts; the first batch expires after 7 requests (5 land in the error file as batch_expired),
    one prompt answers 500 once (retryable) and one 400 whose body echoes the key (final). The second
    batch carries exactly the 5 expired + the 500: every prompt reaches the model once, except the 500 one."""
    fake = FaultyTeacher()
    prompts = ["FAULT=500 flaky", "FAULT=leak400 bad"] + [f"plain prompt {i}" for i in range(10)]
    service = BatchService(fake.answer, expire_after=7)
    with ChatServer(fake.answer, batches=service) as server:
        metrics = run_round(batch_cfg(server.url), items(prompts), Endpoint(KEY), tmp_path / "j.sqlite",
                            tmp_path / "kd", progress=False)
        assert service.created == 2
        assert fake.seen["FAULT=500 flaky"] == 2 and fake.seen["FAULT=leak400 bad"] == 1
        assert all(fake.seen[p] == 1 for p in prompts[2:])
        kept, rejected = read_kd(tmp_path / "kd")
        assert len(kept) == 11 and [r["reason"] for r in rejected] == ["request_failed"]
        assert rejected[0]["detail"].startswith("http_400") and KEY not in json.dumps(rejected)
        rows = journal_rows(tmp_path / "j.sqlite")          # item_id -> (status, error, attempts)
        assert Counter(status for status, _, _ in rows.values()) == Counter({"ok": 11, "failed": 1})
        assert metrics["teacher"]["mode"] == "batch" and metrics["run"]["batches_created"] == 2
        assert metrics["run"]["batch_requests_sent"] == 12 + 6
        # batch prices: half of teacher.prices by default
        assert metrics["cost_usd"] == pytest.approx((metrics["prompt_tokens"] * 15 + metrics["completion_tokens"] * 30)
                                                    / 1e6)
        # a rerun pays only for what has no answer: the failed request goes once more (as online reruns
        # resend failed rows; this time the fake answers it), the 11 answers are not asked again
        again = run_round(batch_cfg(server.url), items(prompts), Endpoint(KEY), tmp_path / "j.sqlite",
                          tmp_path / "kd", progress=False)
    assert service.created == 3 and fake.seen["FAULT=leak400 bad"] == 2
    assert again["run"]["cached"] == 11 and again["run"]["batch_requests_sent"] == 1 and again["kept"] == 12


def test_same_answers_in_both_modes_and_the_journal_is_shared(tmp_path):
    """Requests are keyed the same way in both modes: answers paid online are not bought again in batch."""
    fake = FaultyTeacher()
    prompts = [f"prompt {i}" for i in range(6)]
    service = BatchService(fake.answer)
    with ChatServer(fake.answer, batches=service) as server:
        run_round(teacher_cfg(server.url), items(prompts[:3]), Endpoint(KEY), tmp_path / "j.sqlite",
                  tmp_path / "kd", progress=False)
        m = run_round(batch_cfg(server.url), items(prompts), Endpoint(KEY), tmp_path / "j.sqlite",
                      tmp_path / "kd", progress=False)
    assert m["run"]["cached"] == 3 and m["run"]["batch_requests_sent"] == 3 and all(fake.seen[p] == 1 for p in prompts)


def test_stopping_the_wait_keeps_the_batch_and_a_rerun_reattaches(tmp_path):
    fake = FaultyTeacher()
    prompts = [f"slow prompt {i}" for i in range(8)]
    service = BatchService(fake.answer, line_delay_s=0.15)
    with ChatServer(fake.answer, batches=service) as server:
        with pytest.raises(BatchWaitExceeded, match="rerun the stage to re-attach"):
            run_round(batch_cfg(server.url, batch={"max_wait_s": 0.2}), items(prompts), Endpoint(KEY),
                      tmp_path / "j.sqlite", tmp_path / "kd", progress=False)
        with sqlite3.connect(tmp_path / "j.sqlite") as db:   # the journal was closed (canonical) and kept it
            assert db.execute("SELECT COUNT(*) FROM batches WHERE state = 'open' AND batch_id IS NOT NULL").fetchone()[0] == 1
        m = run_round(batch_cfg(server.url), items(prompts), Endpoint(KEY), tmp_path / "j.sqlite", tmp_path / "kd",
                      progress=False)
    assert service.created == 1 and m["run"]["batches_reattached"] == 1 and m["kept"] == 8
    assert all(fake.seen[p] == 1 for p in prompts)
    with sqlite3.connect(tmp_path / "j.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM batches").fetchone()[0] == 0   # done: folded into the answers


@pytest.mark.parametrize("step", ["upload", "create", "content"])
def test_kill_9_at_each_step_then_rerun_pays_once(tmp_path, write_params, step):
    """The stage (the `jiuzhang` CLI, a real process) is killed with SIGKILL by the server at `step`:
    after the upload, after the server accepted the create call but before the client read its answer (the
    hardest case: only the metadata can find the batch), or while downloading the output. The rerun never
    creates a second batch for the same requests and every prompt reaches the model once."""
    fake = FaultyTeacher()
    prompts = [f"Prompt {i}: a problem about primes." for i in range(30)]
    write_pool(tmp_path / "pool", prompts)
    victim: dict[str, subprocess.Popen] = {}
    fired = []

    def on_event(name, obj):
        if name == step and not fired:
            fired.append(name)
            victim["proc"].send_signal(signal.SIGKILL)
            victim["proc"].wait()

    service = BatchService(fake.answer, on_event=on_event)
    with ChatServer(fake.answer, batches=service) as server:
        params = kd_params(tmp_path, write_params, len(prompts), kind="openai", model="gpt-test",
                           base_url=server.url, mode="batch", batch=BATCH)
        env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "OPENAI_API_KEY": KEY, "JIUZHANG_TRACKING": "off"}
        victim["proc"] = subprocess.Popen([str(BIN / "jiuzhang"), *kd_args(params, tmp_path)], cwd=tmp_path, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert victim["proc"].wait(timeout=120) == -signal.SIGKILL and fired == [step]
        created_before = service.created
        run_cli(*kd_args(params, tmp_path), cwd=tmp_path, env={"OPENAI_API_KEY": KEY})
        deadline = time.time() + 5
        while any(b["status"] not in ("completed", "expired") for b in service.batches.values()) and time.time() < deadline:
            time.sleep(0.05)
    print(f"kill -9 at {step}: batches created before the kill {created_before}, in all {service.created}; "
          f"model calls {sum(fake.seen.values())} for {len(prompts)} prompts")
    assert service.created == 1
    assert sum(fake.seen.values()) == len(prompts) and set(fake.seen) == set(prompts)
    metrics = json.loads((tmp_path / "metrics" / "kd_initial.json").read_text())
    assert metrics["kept"] == 30 and metrics["teacher"]["mode"] == "batch"
    facts = json.loads((tmp_path / "metrics" / "run" / "kd_initial.json").read_text())
    assert facts["batches_reattached"] == 1           # the open submission the killed run committed
    assert facts["batches_found_by_metadata"] == (1 if step == "create" else 0)


def test_plans_price_both_modes(tmp_path):
    cfg = batch_cfg("http://127.0.0.1:9/v1", batch={"prices": {"input_per_million": 10.0, "output_per_million": 20.0}})
    plan = plan_round(cfg, items(["x" * 400] * 10), tmp_path / "none.sqlite")
    assert plan["mode"] == "batch" and plan["est_usd"] == plan["est_usd_batch"]
    assert plan["est_usd_online"] == pytest.approx(plan["est_usd_batch"] * 3)   # 30/60 vs 10/20
    half = plan_round(batch_cfg("http://127.0.0.1:9/v1"), items(["x" * 400] * 10), tmp_path / "none.sqlite")
    assert half["est_usd_batch"] == pytest.approx(half["est_usd_online"] / 2)


def test_offline_teacher_serves_batch_mode_and_gives_the_online_kd_set(tmp_path, write_params):
    """The smoke profile's offline teacher speaks the Batch API too: `jiuzhang kd_initial` in batch mode
    writes byte-identical KD data to online mode (same request keys, same deterministic answers)."""
    prompts = [f"Snippet {i}: fractions and ratios." for i in range(6)]
    write_pool(tmp_path / "pool", prompts)
    online = kd_params(tmp_path, write_params, len(prompts), kind="offline", model="offline-teacher")
    run_cli(*kd_args(online, tmp_path), cwd=tmp_path)
    first = (tmp_path / "kd" / "part-00000.parquet").read_bytes()
    (tmp_path / "journal" / "kd.sqlite").unlink()
    batch = kd_params(tmp_path, write_params, len(prompts), kind="offline", model="offline-teacher", mode="batch",
                      batch=BATCH)
    res = run_cli(*kd_args(batch, tmp_path), cwd=tmp_path)
    assert "(batch mode)" in res.stderr + res.stdout
    assert (tmp_path / "kd" / "part-00000.parquet").read_bytes() == first
    metrics = json.loads((tmp_path / "metrics" / "kd_initial.json").read_text())
    assert metrics["teacher"]["mode"] == "batch" and metrics["kept"] == 6


# ---- issue 22.9 and 22.10: what was paid, answers kept, cancels respected, several batches in flight ----

def _stop_waiting(url: str, prompts: list[str], tmp_path, wait_s: float) -> None:
    """A batch-mode round that stops waiting after ``wait_s``: its batch stays open in the journal."""
    with pytest.raises(BatchWaitExceeded):
        run_round(batch_cfg(url, batch={"max_wait_s": wait_s}), items(prompts), Endpoint(KEY), tmp_path / "j.sqlite",
                  tmp_path / "kd", progress=False)


def test_reported_cost_is_the_price_paid_at_the_mode_it_went_by(tmp_path):
    """Issue 22.9: answers paid online and reused by a batch-mode rerun were reported at batch rates (half
    of what was paid). Each call's price is in its journal row, with the mode it was paid at."""
    fake = FaultyTeacher()
    prompts = [f"prompt {i}" for i in range(6)]
    with ChatServer(fake.answer, batches=BatchService(fake.answer)) as server:
        online = run_round(teacher_cfg(server.url), items(prompts[:3]), Endpoint(KEY), tmp_path / "j.sqlite",
                           tmp_path / "kd", progress=False)
        rerun = run_round(batch_cfg(server.url), items(prompts[:3]), Endpoint(KEY), tmp_path / "j.sqlite",
                          tmp_path / "kd", progress=False)
        mixed = run_round(batch_cfg(server.url), items(prompts), Endpoint(KEY), tmp_path / "j.sqlite",
                          tmp_path / "kd", progress=False)
    at_online = (online["prompt_tokens"] * 30 + online["completion_tokens"] * 60) / 1e6
    assert online["cost_usd"] == pytest.approx(at_online) and online["cost_usd_by_mode"] == {"online": pytest.approx(at_online)}
    assert rerun["run"]["cached"] == 3 and rerun["cost_usd"] == pytest.approx(at_online)   # not at batch rates
    batch_part = mixed["cost_usd_by_mode"]["batch"]
    new_pt, new_ct = mixed["prompt_tokens"] - online["prompt_tokens"], mixed["completion_tokens"] - online["completion_tokens"]
    assert batch_part == pytest.approx((new_pt * 15 + new_ct * 30) / 1e6)
    assert mixed["cost_usd"] == pytest.approx(at_online + batch_part)
    with sqlite3.connect(tmp_path / "j.sqlite") as db:
        assert dict(db.execute("SELECT mode, COUNT(*) FROM answers GROUP BY mode").fetchall()) == {"online": 3, "batch": 3}


def test_a_later_failure_never_replaces_an_answer_already_paid_for(tmp_path):
    """Issue 22.10: a batch left open (the wait stopped) whose requests were meanwhile answered online
    ends expired; its error lines must not overwrite the paid online answers (they did, and were bought again)."""
    from jiuzhang.teacher.journal import Journal

    j = Journal(tmp_path / "unit.sqlite")
    j.record("k", "p1", {"b": 1}, "ok", 1, {"choices": []}, None, 10, 20, 0.5, mode="online")
    j.record("k", "p1", {"b": 1}, "failed", 1, None, "batch_expired: late line", 0, 0, 0.0, mode="batch")
    e = j.get("k")
    assert (e.status, e.response, e.mode, e.cost_usd) == ("ok", {"choices": []}, "online", 0.5)
    j.close()

    fake = FaultyTeacher()
    prompts = [f"late prompt {i}" for i in range(6)]
    service = BatchService(fake.answer, line_delay_s=0.2, expire_after=2)
    with ChatServer(fake.answer, batches=service) as server:
        _stop_waiting(server.url, prompts, tmp_path, 0.05)
        run_round(teacher_cfg(server.url), items(prompts), Endpoint(KEY), tmp_path / "j.sqlite", tmp_path / "kd",
                  progress=False)
        m = run_round(batch_cfg(server.url), items(prompts), Endpoint(KEY), tmp_path / "j.sqlite", tmp_path / "kd",
                      progress=False)
    assert m["kept"] == 6 and m["run"]["batches_reattached"] == 1 and service.created == 1  # nothing bought again
    assert Counter(r[0] for r in journal_rows(tmp_path / "j.sqlite").values()) == Counter({"ok": 6})


def test_answers_of_an_open_batch_are_kept_when_the_settings_changed(tmp_path):
    """Issue 22.10: a batch submitted at temperature 0.6, re-attached by a run at 0.7: its answers are
    committed under their own requests (they were dropped), so going back to 0.6 buys nothing again."""
    fake = FaultyTeacher()
    prompts = [f"settings prompt {i}" for i in range(4)]
    service = BatchService(fake.answer, line_delay_s=0.1)
    with ChatServer(fake.answer, batches=service) as server:
        _stop_waiting(server.url, prompts, tmp_path, 0.05)
        warmer = run_round(batch_cfg(server.url, temperature=0.7), items(prompts), Endpoint(KEY),
                           tmp_path / "j.sqlite", tmp_path / "kd", progress=False)
        assert warmer["run"]["batches_reattached"] == 1 and service.created == 2 and warmer["kept"] == 4
        back = run_round(batch_cfg(server.url), items(prompts), Endpoint(KEY), tmp_path / "j.sqlite",
                         tmp_path / "kd", progress=False)
    assert service.created == 2 and back["run"]["cached"] == 4 and back["kept"] == 4
    with sqlite3.connect(tmp_path / "j.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM answers WHERE status = 'ok'").fetchone()[0] == 8  # both settings


def test_a_cancelled_batch_is_not_resubmitted_unless_asked(tmp_path):
    """Issue 22.10: someone cancelled the batch (dashboard or API); its unanswered requests were resubmitted
    automatically. Now they fail with a reason naming teacher.batch.resubmit_cancelled, on every rerun,
    until that is set."""
    fake = FaultyTeacher()
    prompts = [f"cancel prompt {i}" for i in range(6)]
    service = BatchService(fake.answer, line_delay_s=0.15)
    with ChatServer(fake.answer, batches=service) as server:
        _stop_waiting(server.url, prompts, tmp_path, 0.2)
        (batch_id,) = service.batches
        service.cancel(batch_id)
        for _ in range(2):  # the rerun that collects the cancelled batch, and one more
            m = run_round(batch_cfg(server.url), items(prompts), Endpoint(KEY), tmp_path / "j.sqlite",
                          tmp_path / "kd", progress=False)
            assert service.created == 1 and 0 < m["kept"] < 6
            _, rejected = read_kd(tmp_path / "kd")
            assert all("resubmit_cancelled" in r["detail"] for r in rejected) and len(rejected) == 6 - m["kept"]
        again = run_round(batch_cfg(server.url, batch={"resubmit_cancelled": True}), items(prompts), Endpoint(KEY),
                          tmp_path / "j.sqlite", tmp_path / "kd", progress=False)
    assert service.created == 2 and again["kept"] == 6 and all(fake.seen[p] == 1 for p in prompts)


def test_several_batches_run_at_once_within_the_queued_token_limit(tmp_path):
    """Issue 22.10: batches ran one at a time and the organisation's enqueued-token limit was not handled.
    12 requests, at most 3 per batch, a queue limit of ~6 requests' tokens: several batches run at once,
    none is refused by the limit, and every request is answered once."""
    fake = FaultyTeacher()
    prompts = [f"queued prompt number {i:02d}" for i in range(12)]
    per_request = len(json.dumps([{"role": "user", "content": prompts[0]}])) // 4
    limit = 6 * per_request + 2
    service = BatchService(fake.answer, line_delay_s=0.4, queued_token_limit=limit)
    with ChatServer(fake.answer, batches=service) as server:
        m = run_round(batch_cfg(server.url, batch={"max_requests_per_batch": 3, "max_queued_tokens": limit}),
                      items(prompts), Endpoint(KEY), tmp_path / "j.sqlite", tmp_path / "kd", progress=False)
    assert m["kept"] == 12 and all(fake.seen[p] == 1 for p in prompts)
    assert service.max_in_progress >= 2
    assert not [b for b in service.batches.values() if b["status"] == "failed"]
    queued_ok = all(b["_tokens"] <= limit for b in service.batches.values())
    assert queued_ok and m["run"]["batches_created"] == len(service.batches) >= 4
