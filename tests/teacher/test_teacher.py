"""The teacher client for real over HTTP on 127.0.0.1: faults, retries, journal, budget, parsing."""

from __future__ import annotations

import sqlite3

import pytest

from jiuzhang.kd.teacher_round import Endpoint, plan_round, run_round
from jiuzhang.teacher.budget import BudgetExceeded
from jiuzhang.teacher.journal import request_key
from jiuzhang.teacher.parsing import parse_completion
from jiuzhang.teacher.server import ChatServer

from helpers.teacher import items, journal_rows, read_kd, teacher_cfg
from teacher_fakes import FaultyTeacher

KEY = "sk-test-DO-NOT-LEAK-4f9a2c"


FAULT_PROMPTS = {
    "ok": "plain prompt",
    "rate": "FAULT=429,429 rate limited twice",
    "server": "FAULT=500,500 server error twice",
    "slow": "FAULT=slow slow first answer",
    "malformed": "FAULT=malformed,malformed,malformed,malformed,malformed malformed body",
    "drop": "FAULT=drop,drop,drop,drop,drop,drop dropped connection",
    "refusal": "FAULT=refusal refused",
    "length": "FAULT=length truncated",
}


def test_every_fault_finishes_or_is_recorded_with_a_reason(tmp_path):
    fake = FaultyTeacher(slow_s=1.5)
    prompts = list(FAULT_PROMPTS.values())
    with ChatServer(fake.answer) as server:
        m = run_round(teacher_cfg(server.url), items(prompts), Endpoint(KEY), tmp_path / "j.sqlite",
                      tmp_path / "out", progress=False)
    kept, rejected = read_kd(tmp_path / "out")
    by_prompt = {p: i for i, p in zip((f"p{i:03d}" for i in range(len(prompts))), prompts)}
    kept_ids = {r["id"] for r in kept}
    for name in ("ok", "rate", "server", "slow"):
        assert by_prompt[FAULT_PROMPTS[name]] in kept_ids, name
    reasons = {r["id"]: (r["reason"], r["detail"] or "") for r in rejected}
    assert reasons[by_prompt[FAULT_PROMPTS["refusal"]]][0] == "refusal"
    assert reasons[by_prompt[FAULT_PROMPTS["length"]]][0] == "truncated"
    reason, detail = reasons[by_prompt[FAULT_PROMPTS["malformed"]]]
    assert reason == "request_failed" and "malformed_response" in detail
    reason, detail = reasons[by_prompt[FAULT_PROMPTS["drop"]]]
    assert reason == "request_failed" and "gave_up after 4 attempts: connection_error" in detail
    # retries: 429 twice then ok = 3 requests, spaced by at least Retry-After (0.2 s)
    t = fake.times[FAULT_PROMPTS["rate"]]
    assert len(t) == 3 and all(b - a >= 0.19 for a, b in zip(t, t[1:]))
    assert fake.seen[FAULT_PROMPTS["server"]] == 3 and fake.seen[FAULT_PROMPTS["slow"]] == 2
    assert fake.seen[FAULT_PROMPTS["malformed"]] == 1   # a malformed body is not retried in the run
    assert fake.seen[FAULT_PROMPTS["drop"]] == 4        # 1 + max_retries
    assert m["kept"] == 4 and m["rejected"] == {"refusal": 1, "request_failed": 2, "truncated": 1}
    rows = journal_rows(tmp_path / "j.sqlite")
    assert len(rows) == len(prompts)
    assert sorted(s for s, _, _ in rows.values()).count("ok") == 6  # refusal/truncation are answers


def test_rerun_sends_only_requests_without_a_committed_answer(tmp_path):
    fake = FaultyTeacher()
    prompts = [f"question {i}" for i in range(10)] + [FAULT_PROMPTS["malformed"]]
    with ChatServer(fake.answer) as server:
        cfg = teacher_cfg(server.url)
        run_round(cfg, items(prompts), Endpoint(KEY), tmp_path / "j.sqlite", tmp_path / "out", progress=False)
        first = sum(fake.seen.values())
        m = run_round(cfg, items(prompts), Endpoint(KEY), tmp_path / "j.sqlite", tmp_path / "out", progress=False)
        assert sum(fake.seen.values()) == first + 1  # only the failed one goes again
        assert m["run"]["cached"] == 10 and m["run"]["http_attempts"] == 1
        # changing a sampling setting changes every key: everything is sent again
        run_round(teacher_cfg(server.url, temperature=0.7), items(prompts), Endpoint(KEY), tmp_path / "j.sqlite",
                  tmp_path / "out", progress=False)
        assert all(fake.seen[p] == 2 for p in prompts[:10])


@pytest.mark.parametrize("change", [{"model": "other"}, {"temperature": 0.7}, {"max_tokens": 100},
                                    {"top_p": 0.9}, {"messages": [{"role": "user", "content": "other"}]}])
def test_request_key_covers_everything_that_affects_the_answer(change):
    body = {"model": "m", "messages": [{"role": "user", "content": "p"}], "temperature": 0.6, "max_tokens": 2500}
    assert request_key("http://a/v1", body) == request_key("http://a/v1/", dict(body))
    assert request_key("http://a/v1", body) != request_key("http://a/v1", {**body, **change})
    assert request_key("http://a/v1", body) != request_key("http://b/v1", body)


def test_budget_refuses_a_plan_that_cannot_fit_before_sending(tmp_path):
    fake = FaultyTeacher()
    with ChatServer(fake.answer) as server:
        cfg = teacher_cfg(server.url, budget={"max_requests": 5})
        with pytest.raises(BudgetExceeded, match="nothing was sent"):
            run_round(cfg, items([f"q{i}" for i in range(6)]), Endpoint(KEY), tmp_path / "j.sqlite",
                      tmp_path / "out", progress=False)
        usd = teacher_cfg(server.url, budget={"max_usd": 0.01})
        assert "USD" in plan_round(usd, items([f"q{i}" for i in range(6)]), tmp_path / "none.sqlite")["budget"]
    assert sum(fake.seen.values()) == 0 and not (tmp_path / "none.sqlite").exists()


def test_budget_cap_stops_cleanly_at_the_cap_and_resumes(tmp_path):
    fake = FaultyTeacher()
    prompts = [f"question number {i} " * 20 for i in range(12)]
    # Each request reserves its worst case (prompt + max_tokens 2,500) and really uses ~120 tokens, so
    # with this cap a handful fit before the next worst case would cross it.
    cap = 3300
    with ChatServer(fake.answer) as server:
        cfg = teacher_cfg(server.url, concurrency=2, budget={"max_tokens": cap, "expected_output_tokens": 20})
        with pytest.raises(BudgetExceeded, match="cap reached") as info:
            run_round(cfg, items(prompts), Endpoint(KEY), tmp_path / "j.sqlite", tmp_path / "out", progress=False)
        assert "raise the cap and rerun" in str(info.value)
        rows = journal_rows(tmp_path / "j.sqlite")
        with sqlite3.connect(tmp_path / "j.sqlite") as db:
            used = db.execute("SELECT SUM(prompt_tokens + completion_tokens) FROM answers").fetchone()[0]
        assert 0 < len(rows) < 12 and used <= cap
        assert sum(fake.seen.values()) == len(rows)  # nothing sent beyond what was committed
        sent_before = sum(fake.seen.values())
        bigger = teacher_cfg(server.url, concurrency=2, budget={"max_tokens": 10**6, "expected_output_tokens": 20})
        m = run_round(bigger, items(prompts), Endpoint(KEY), tmp_path / "j.sqlite", tmp_path / "out", progress=False)
    assert m["kept"] == 12 and sum(fake.seen.values()) - sent_before == 12 - len(rows)


@pytest.mark.parametrize("content, finish, reason, problem", [
    ("[Problem]: What is 2+2?\n\n[Solution]: 4. \\boxed{4}", "stop", None, "What is 2+2?"),
    ("**Problem:** A\n\n**Solution:** B", "stop", None, "A"),
    ("### Problem\nA\n### Solution\nB", "stop", None, "A"),
    ("[Problem]\nA\n[Solution]\nB", "stop", None, "A"),
    ("Sure! [Problem]: A [Solution]: B", "stop", None, "A"),
    ("New Problem: A\nSolution: B", "stop", None, "A"),
    ("[Problem]: A\n[Solution]: B", "length", "truncated", None),
    ("", "stop", "empty", None),
    ("I'm sorry, but I can't help with that.", "stop", "refusal", None),
    ("[Problem]: A only", "stop", "missing_solution", "A only"),
    ("Here is a solution: x", "stop", "missing_problem", None),
    ("[Problem]:\n[Solution]: B", "stop", "missing_problem", None),
])
def test_parse_completion(content, finish, reason, problem):
    parsed = parse_completion(content, finish)
    assert parsed.reason == reason and parsed.problem == problem


def test_refusal_field_is_a_refusal():
    assert parse_completion("[Problem]: A\n[Solution]: B", "stop", refusal="cannot comply").reason == "refusal"


def test_journal_bytes_depend_on_the_answers_only(tmp_path):
    """The journal is a DVC output: the same answers must give the same bytes, whatever the order they
    arrived in (concurrency), their latencies and commit times, and a rerun that sends nothing must not
    change it (issue 13, item 8)."""
    prompts = [f"question {i}" for i in range(12)] + [FAULT_PROMPTS["rate"], FAULT_PROMPTS["slow"]]
    fake = FaultyTeacher(slow_s=1.2)
    with ChatServer(fake.answer) as server:
        for name, concurrency in (("serial", 1), ("parallel", 8)):
            fake.seen.clear()
            run_round(teacher_cfg(server.url, concurrency=concurrency), items(prompts), Endpoint(KEY),
                      tmp_path / f"{name}.sqlite", tmp_path / f"out-{name}", progress=False)
        serial = (tmp_path / "serial.sqlite").read_bytes()
        assert (tmp_path / "parallel.sqlite").read_bytes() == serial
        assert not list(tmp_path.glob("*.sqlite-wal")) and not list(tmp_path.glob("*.canonical"))
        m = run_round(teacher_cfg(server.url, concurrency=8), items(prompts), Endpoint(KEY),
                      tmp_path / "serial.sqlite", tmp_path / "out-again", progress=False)
    assert m["run"]["cached"] == len(prompts) and (tmp_path / "serial.sqlite").read_bytes() == serial
    assert len(journal_rows(tmp_path / "serial.sqlite")) == len(prompts)
