"""Run one knowledge-distillation round: send prompts to the teacher through the journaled client,
parse the answers, and write the KD set (``prompt`` -> ``completion``) plus the rejected items.

Run it through the stages: ``jiuzhang kd_initial ...`` / ``jiuzhang kd_boost ...`` (see dvc.yaml).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from jiuzhang.common.io import InputDataError, ShardWriter, atomic_write_text, reset_dir
from jiuzhang.common.progress import Progress
from jiuzhang.config.teacher import TeacherConfig
from jiuzhang.errors import UserError
from jiuzhang.teacher.batch import BatchTeacher
from jiuzhang.teacher.batch_service import BatchService
from jiuzhang.teacher.budget import Budget, BudgetExceeded, Caps, Prices
from jiuzhang.teacher.client import Outcome, RetryPolicy, Sampling, Teacher, TeacherClient
from jiuzhang.teacher.journal import Journal
from jiuzhang.teacher.offline import OFFLINE_LABEL, OfflineTeacher
from jiuzhang.teacher.parsing import canonical, completion_text, parse_completion
from jiuzhang.teacher.server import ChatServer

SCHEMA = pa.schema([("id", pa.string()), ("level", pa.string()), ("source", pa.string()),
                    ("prompt", pa.string()), ("completion", pa.string()),
                    ("problem", pa.string()), ("solution", pa.string())])


class TooManyFailures(UserError):
    """More requests failed than teacher.max_failed_share allows."""


@dataclass(frozen=True)
class Endpoint:
    """Where requests go. ``offline_templates`` set = start the offline teacher for this round."""

    api_key: str
    offline_templates: dict[str, str] | None = None


def _budget(cfg: TeacherConfig, journal: Journal) -> Budget:
    """The caps of ``teacher.budget`` at the rates of ``teacher.mode``, starting from what the journal has
    already paid for."""
    spent = journal.totals()
    b = cfg.budget
    return Budget(Caps(b.max_requests, b.max_tokens, b.max_usd), Prices.of(cfg.active_prices()),
                  requests=int(spent["answered"]), tokens=int(spent["prompt_tokens"] + spent["completion_tokens"]),
                  usd=float(spent["cost_usd"]))


def _client(cfg: TeacherConfig, api_key: str, base_url: str | None, journal: Journal, budget: Budget,
            seed: int = 0, on_outcome=None, progress: bool = False) -> Teacher:
    """The online client, or the Batch API runner for ``teacher.mode: batch``; both key requests the same
    way, so answers committed in one mode are reused by the other."""
    # The offline teacher's port changes every run; its identity in request keys must not.
    endpoint_id = f"offline:{cfg.model}" if cfg.kind == "offline" else None
    sampling = Sampling(cfg.model, cfg.temperature, cfg.top_p, cfg.max_tokens)
    if cfg.mode == "batch":
        return BatchTeacher(sampling, cfg.batch, cfg.timeout_s, api_key, base_url, endpoint_id, journal, budget,
                            on_outcome, progress)
    return TeacherClient(sampling, RetryPolicy(cfg.max_retries, cfg.backoff_initial_s, cfg.backoff_max_s),
                         cfg.concurrency, cfg.timeout_s, api_key, base_url, endpoint_id, journal, budget, seed, on_outcome)


def _pending(client: Teacher, journal: Journal, items: list[dict[str, Any]]) -> list[str]:
    done = journal.committed()
    return [it["prompt"] for it in items if client.key(it["prompt"]) not in done]


def plan_round(cfg: TeacherConfig, items: list[dict[str, Any]], journal_path: Path) -> dict[str, Any]:
    """What a round would send and cost, without sending anything (and without an API key)."""
    # Read an existing journal; never create one just to plan (it is a DVC output of the stage).
    journal = Journal(journal_path if journal_path.exists() else ":memory:")
    try:
        budget = _budget(cfg, journal)
        client = _client(cfg, "unused-for-planning", cfg.base_url, journal, budget)
        pending = _pending(client, journal, items)
        plan = budget.plan(pending, cfg.budget.expected_output_tokens)
        try:
            budget.check_plan(plan)
            verdict = "fits the budget"
        except BudgetExceeded as exc:
            verdict = str(exc)
    finally:
        journal.close(canonical=False)  # planning reads; it never rewrites the output
    pt, ct = plan["prompt_tokens"], plan["completion_tokens"]
    return {"items": len(items), "already_answered": len(items) - len(pending), "to_send": plan["requests"],
            "mode": cfg.mode, "est_prompt_tokens": pt, "est_completion_tokens": ct,
            "est_usd": plan["usd"],
            "est_usd_online": round(Prices.of(cfg.active_prices("online")).cost(pt, ct), 4),
            "est_usd_batch": round(Prices.of(cfg.active_prices("batch")).cost(pt, ct), 4),
            "spent_usd": round(budget.usd, 4), "budget": verdict}


def run_round(cfg: TeacherConfig, items: list[dict[str, Any]], endpoint: Endpoint, journal_path: Path,
              out_dir: Path, progress: bool = True, seed: int = 0) -> dict[str, Any]:
    """Answer ``items`` (dicts with id, level, source, prompt); write the KD set; return metrics."""
    journal = Journal(journal_path)
    with ExitStack() as stack:
        stack.callback(journal.close)  # fold the WAL back into the file even when the round fails
        budget = _budget(cfg, journal)
        base_url = cfg.base_url
        if endpoint.offline_templates is not None:
            o = cfg.offline
            if o is None:
                raise InputDataError("teacher.kind: offline needs a teacher.offline section (its answer banks)")
            teacher = OfflineTeacher(Path(o.gsm8k_train), Path(o.samples), endpoint.offline_templates,
                                     o.latency_ms / 1000)
            server = stack.enter_context(ChatServer(teacher.answer, batches=BatchService(teacher.answer)))
            base_url = server.url
            print(f"kd: using the {OFFLINE_LABEL} at {server.url} ({cfg.mode} mode)", file=sys.stderr, flush=True)

        counts: Counter[str] = Counter()
        bar = stack.enter_context(Progress("requests", len(items), "req", form=None if progress else "off"))

        def on_outcome(o: Outcome) -> None:
            counts["cached" if o.cached else o.status] += 1
            bar.update(1, cached=counts["cached"], failed=counts["failed"], usd=f"{budget.usd:.2f}")

        client = _client(cfg, endpoint.api_key, base_url, journal, budget, seed, on_outcome, progress)
        # Refuse before sending anything when the calls still to make cannot fit the budget.
        budget.check_plan(budget.plan(_pending(client, journal, items), cfg.budget.expected_output_tokens))
        work = [(it["id"], it["prompt"]) for it in items]
        outcomes = client.answer(work)
        totals = journal.totals()
        usage = _usage(outcomes, journal)

    kept, rejected = _parse(items, outcomes)
    _write(out_dir, kept, rejected)
    rejected_by = Counter(r["reason"] for r in rejected)
    metrics = {
        "teacher": {"kind": cfg.kind, "model": cfg.model, "mode": cfg.mode,
                    "label": OFFLINE_LABEL if cfg.kind == "offline" else "real endpoint"},
        "items": len(items), "kept": len(kept), "rejected": dict(sorted(rejected_by.items())),
        # what this round's answers cost, whether paid now or earlier (a rerun reports the same figures)
        **usage,
        # facts of this execution: cache hits, HTTP attempts, and everything the journal has paid for
        # (it may hold answers of earlier configurations too)
        "run": {"cached": counts["cached"], "answered_now": counts["ok"], "failed_now": counts["failed"],
                "skipped_budget": counts["skipped_budget"],
                **client.run_facts(),
                **{f"journal_{k}": v for k, v in totals.items()}},
    }
    if client.budget_stopped:
        raise BudgetExceeded(f"teacher.budget cap reached after {totals['answered']} answered requests "
                             f"(${totals['cost_usd']:.2f}); {counts['skipped_budget']} requests were not sent. "
                             f"Every answer so far is committed in {journal_path}; raise the cap and rerun to "
                             f"send only the rest.")
    failed = rejected_by.get("request_failed", 0)
    if items and failed / len(items) > cfg.max_failed_share:
        raise TooManyFailures(f"{failed} of {len(items)} teacher requests failed (> teacher.max_failed_share="
                              f"{cfg.max_failed_share}); see {out_dir}/rejected.jsonl for the reasons. Answers "
                              f"are committed in {journal_path}; a rerun retries only the failed ones.")
    return metrics


def _usage(outcomes: list[Outcome], journal: Journal) -> dict[str, Any]:
    """What this round's answers cost as paid: each call's price from its journal row, at the rates of the
    mode it went by (an online answer reused by a batch-mode rerun keeps its online price)."""
    pt = ct = 0
    usd = 0.0
    by_mode: dict[str, float] = {}
    for o in outcomes:
        if o.status != "ok":
            continue
        e = journal.get(o.key)
        assert e is not None  # an 'ok' outcome was journaled before it was returned
        pt, ct, usd = pt + e.prompt_tokens, ct + e.completion_tokens, usd + e.cost_usd
        mode = e.mode or "not recorded"
        by_mode[mode] = by_mode.get(mode, 0.0) + e.cost_usd
    return {"prompt_tokens": pt, "completion_tokens": ct, "cost_usd": round(usd, 6),
            "cost_usd_by_mode": {m: round(v, 6) for m, v in sorted(by_mode.items())}}


def _parse(items: list[dict[str, Any]], outcomes: list[Outcome]) -> tuple[list[dict], list[dict]]:
    kept, rejected = [], []
    for item, o in zip(items, outcomes, strict=True):
        if o.status != "ok":
            reason = "request_failed" if o.status == "failed" else o.status
            rejected.append({"id": item["id"], "reason": reason, "detail": o.error})
            continue
        assert o.response is not None  # every 'ok' outcome carries its response
        content, finish, refusal = completion_text(o.response)
        parsed = parse_completion(content, finish, refusal)
        if not parsed.ok:
            rejected.append({"id": item["id"], "reason": parsed.reason, "detail": content[:300]})
            continue
        kept.append({"id": item["id"], "level": item["level"], "source": item["source"], "prompt": item["prompt"],
                     "completion": canonical(parsed.problem or "", parsed.solution or ""), "problem": parsed.problem,
                     "solution": parsed.solution})
    return sorted(kept, key=lambda r: r["id"]), sorted(rejected, key=lambda r: r["id"])


def _write(out_dir: Path, kept: list[dict], rejected: list[dict]) -> None:
    out = reset_dir(out_dir)
    writer = ShardWriter(out, SCHEMA, max(1, len(kept)))
    writer.write_many(kept)
    writer.close()
    atomic_write_text(out / "rejected.jsonl", "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                                                      for r in rejected))
