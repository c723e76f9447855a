"""``teacher.mode: batch``: the teacher's answers through the OpenAI Batch API, at its discounted rates.

Per run: re-attach to every submission the journal still has open (a run killed or stopped waiting), then
submit the requests without a committed answer: write them as JSONL (``custom_id`` = the request key),
upload the file (``/v1/files``), create the batch (``/v1/batches``), poll with backoff, download the output
and error files, commit every answer to the journal, and resubmit only requests that expired or failed
with a retryable status (429/5xx), up to ``teacher.batch.max_submissions`` rounds. The requests of a round
are split into batches that run several at once (``max_in_flight``), sized and submitted so that the
estimated input tokens queued stay within the organisation's limit (``max_queued_tokens``). A later run's
first round takes every request still without an answer (as an online rerun resends its failed rows),
except those of a batch someone cancelled (``resubmit_cancelled``). An answer already committed is never
replaced by a later failure line, and answers of an open batch whose requests this run no longer makes
(the settings changed) are committed under their own request keys.

The journal's promise holds at every point of a kill -9: a submission row is committed *before* the upload,
the file id right after it, the batch id right after the create call returns, and the create call carries
the submission id as batch metadata. A rerun that finds an open submission without a batch id looks for
its batch in ``GET /v1/batches`` (a create the server accepted but whose answer the killed run never
read) and creates one only if there is none, so the same requests are never paid for twice.
"""

from __future__ import annotations

import io
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import openai

from jiuzhang.common.progress import Progress
from jiuzhang.config.teacher import BatchConfig
from jiuzhang.errors import UserError
from jiuzhang.teacher.budget import Budget, estimate_prompt_tokens
from jiuzhang.teacher.client import Outcome, Sampling, completion_problem, redact
from jiuzhang.teacher.journal import Journal, Submission, request_key

METADATA_KEY = "jiuzhang_submission"
TERMINAL = ("completed", "failed", "expired", "cancelled")


class BatchWaitExceeded(UserError):
    """teacher.batch.max_wait_s passed with a batch still running; a rerun re-attaches to it."""


def _retryable(error: str) -> bool:
    """Worth a new batch: it expired, was never run, met a transient server condition, or the organisation's
    queue was full (a cancelled batch is a person's decision: see ``resubmit_cancelled``)."""
    return (error.startswith(("batch_expired", "missing_from_output", "http_429", "http_5", "batch_cancelled"))
            or "token_limit_exceeded" in error)


@dataclass
class _Request:
    item_id: str
    prompt: str
    body: dict[str, Any]


class BatchTeacher:
    """Answers ``(item_id, prompt)`` items through the Batch API; same journal and budget as the online
    client, same :class:`~.client.Outcome` per item (in input order)."""

    def __init__(self, sampling: Sampling, cfg: BatchConfig, timeout_s: float, api_key: str, base_url: str | None,
                 endpoint_id: str | None, journal: Journal, budget: Budget,
                 on_outcome: Callable[[Outcome], None] | None = None, progress: bool = True,
                 sleep: Callable[[float], None] = time.sleep):
        self.sampling, self.cfg = sampling, cfg
        self.client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=5)
        self.endpoint = endpoint_id or str(self.client.base_url)
        self.journal, self.budget, self.on_outcome = journal, budget, on_outcome
        self.secrets = (api_key,)
        self.progress, self.sleep = progress, sleep
        self.sent = 0            # requests put into batches by this run
        self.facts = {"batches_created": 0, "batches_reattached": 0, "batches_found_by_metadata": 0}
        self.budget_stopped = False

    def key(self, prompt: str) -> str:
        """The journal key of ``prompt``: the same as the online client's, so either mode replays the other."""
        return request_key(self.endpoint, self.sampling.body(prompt))

    def answer(self, items: list[tuple[str, str]]) -> list[Outcome]:
        """Answer ``(item_id, prompt)`` items through the Batch API (:meth:`run`)."""
        return self.run(items)

    def run_facts(self) -> dict[str, Any]:
        """Requests put into batches by this run, and batches created, reattached or found by metadata."""
        return {"batch_requests_sent": self.sent, **self.facts}

    # --- the run ---------------------------------------------------------------------------------------
    def run(self, items: list[tuple[str, str]]) -> list[Outcome]:
        """Answer every (item id, prompt) through the Batch API, resuming open submissions; outcomes in input order."""
        requests: dict[str, _Request] = {}
        keys = []                                         # per item, in input order
        for item_id, prompt in items:
            body = self.sampling.body(prompt)
            keys.append(request_key(self.endpoint, body))
            requests.setdefault(keys[-1], _Request(item_id, prompt, body))
        answered_before = {k for k in requests if self._answered(k)}
        reattached = self.journal.open_submissions()      # paid for by an earlier run: finish those first
        for sub in reattached:
            self.facts["batches_reattached"] += 1
            for k in sub.keys:                            # already being paid: hold it against the caps
                if k in requests:
                    self.budget.reserve(k, requests[k].prompt, self.sampling.max_tokens)
        skipped: set[str] = set()
        # The first round takes every request without an answer (as an online rerun resends failed rows),
        # except those of a batch someone cancelled; later ones only what failed in this run for a reason a
        # new batch can cure.
        being_answered = {k for sub in reattached for k in sub.keys}  # run alongside this round's new batches
        todo = [k for k in requests if not self._answered(k) and not self._cancelled(k) and k not in being_answered]
        for round_ in range(self.cfg.max_submissions):
            todo = [k for k in todo if k not in skipped]
            chosen = []
            for k in todo:
                if self.budget.reserve(k, requests[k].prompt, self.sampling.max_tokens):
                    chosen.append(k)
                else:
                    skipped.add(k)
                    self.budget_stopped = True
            self._run_batches(reattached if round_ == 0 else [], self._chunks(chosen, requests), requests)
            todo = [k for k in requests if k not in skipped and self._retry(k)]
            if not todo:
                break
        outcomes = []
        for (item_id, _), key in zip(items, keys):
            entry = self.journal.get(key)
            if key in skipped and (entry is None or entry.status != "ok"):
                o = Outcome(item_id, key, "skipped_budget", None, "budget cap reached", cached=False)
            elif entry is None:
                o = Outcome(item_id, key, "failed", None, "not answered: out of teacher.batch.max_submissions",
                            cached=False)
            else:
                o = Outcome(item_id, key, entry.status, entry.response, entry.error, cached=key in answered_before)
            if self.on_outcome is not None:
                self.on_outcome(o)
            outcomes.append(o)
        self.client.close()
        return outcomes

    def _answered(self, key: str) -> bool:
        entry = self.journal.get(key)
        return entry is not None and entry.status == "ok"

    def _cancelled(self, key: str) -> bool:
        entry = self.journal.get(key)
        return (not self.cfg.resubmit_cancelled and entry is not None and entry.status != "ok"
                and (entry.error or "").startswith("batch_cancelled"))

    def _retry(self, key: str) -> bool:
        entry = self.journal.get(key)
        if entry is None:
            return True
        return entry.status != "ok" and not self._cancelled(key) and _retryable(entry.error or "")

    @staticmethod
    def _tokens(req: _Request) -> int:
        """The request's input tokens as the enqueued-token limit counts them (estimated, 4 chars/token)."""
        return estimate_prompt_tokens(json.dumps(req.body.get("messages", []), ensure_ascii=False))

    def _chunks(self, keys: list[str], requests: dict[str, _Request]) -> list[tuple[list[str], int]]:
        """Batches of at most max_requests_per_batch requests and, with a limit, at most a quarter of
        max_queued_tokens each, so that several run at once within the limit; each with its token estimate
        (counted once here, not at every poll while it waits)."""
        cap = None if self.cfg.max_queued_tokens is None else max(1, self.cfg.max_queued_tokens // 4)
        chunks: list[tuple[list[str], int]] = []
        current: list[str] = []
        tokens = 0
        for k in keys:
            t = self._tokens(requests[k])
            if current and (len(current) == self.cfg.max_requests_per_batch or (cap is not None and tokens + t > cap)):
                chunks.append((current, tokens))
                current, tokens = [], 0
            current.append(k)
            tokens += t
        return chunks + ([(current, tokens)] if current else [])

    def _run_batches(self, reattached: list[Submission], chunks: list[tuple[list[str], int]],
                     requests: dict[str, _Request]) -> None:
        """Submit ``chunks`` as batches, as many at once as max_in_flight and the enqueued-token estimate
        allow, and collect each as it ends; ``reattached`` (earlier runs' open batches) count as in flight."""
        limit = self.cfg.max_queued_tokens
        queued: dict[str, int] = {}          # submission -> its estimated input tokens, while in flight
        in_flight: list[Submission] = []
        for sub in reattached:
            in_flight.append(self._ensure_created(sub, requests))
            queued[sub.submission] = sum(self._tokens(requests[k]) for k in sub.keys if k in requests)
        waiting = list(chunks)
        total = sum(len(s.keys) for s in in_flight) + sum(len(c) for c, _ in chunks)
        bar = Progress("batch requests", total, "req", form=None if self.progress and total else "off")
        done_requests = 0
        started, delay = time.monotonic(), self.cfg.poll_initial_s
        try:
            while waiting or in_flight:
                while waiting and len(in_flight) < self.cfg.max_in_flight:
                    keys, need = waiting[0]
                    if limit is not None and in_flight and sum(queued.values()) + need > limit:
                        break  # wait for a batch to end: the organisation's queue would refuse this one
                    waiting.pop(0)
                    sub = self._submit(keys, requests)
                    in_flight.append(sub)
                    queued[sub.submission] = need
                ended: list[tuple[Submission, Any]] = []
                running: list[tuple[Submission, Any]] = []
                for sub in in_flight:
                    assert sub.batch_id is not None  # in flight: its batch was created
                    batch = self.client.batches.retrieve(sub.batch_id)
                    (ended if batch.status in TERMINAL else running).append((sub, batch))
                for sub, batch in ended:
                    self._collect(sub, batch, requests)
                    self.journal.update_submission(sub.submission, state="done")
                    queued.pop(sub.submission, None)
                    done_requests += len(sub.keys)
                in_flight = [sub for sub, _ in running]
                counts = [b.request_counts for _, b in running if b.request_counts is not None]
                bar.set(done_requests + sum(c.completed + c.failed for c in counts),
                        in_flight=len(in_flight), queued=len(waiting))
                if ended or not in_flight:
                    delay = self.cfg.poll_initial_s
                    continue
                waited = time.monotonic() - started
                if self.cfg.max_wait_s is not None and waited >= self.cfg.max_wait_s:
                    ids = ", ".join(str(s.batch_id) for s in in_flight)
                    raise BatchWaitExceeded(
                        f"batch(es) {ids} still running after {waited:.0f} s (teacher.batch.max_wait_s); they stay "
                        f"recorded in the journal: rerun the stage to re-attach to them (nothing is resubmitted "
                        f"or paid twice){f'; {sum(len(c) for c, _ in waiting)} requests were not submitted yet' if waiting else ''}")
                self.sleep(delay)
                delay = min(self.cfg.poll_max_s, delay * 1.5)
        finally:
            bar.close()

    # --- one submission: each step committed before the next can pay -----------------------------------
    def _submit(self, keys: list[str], requests: dict[str, _Request]) -> Submission:
        sub = self.journal.begin_submission(uuid.uuid4().hex, keys, {k: requests[k].item_id for k in keys})
        return self._create(self._upload(sub, requests))

    def _upload(self, sub: Submission, requests: dict[str, _Request]) -> Submission:
        lines = b"".join(json.dumps({"custom_id": k, "method": "POST", "url": "/v1/chat/completions",
                                     "body": requests[k].body}, ensure_ascii=False).encode() + b"\n"
                         for k in sub.keys)
        f = self.client.files.create(file=(f"jiuzhang-{sub.submission}.jsonl", io.BytesIO(lines)), purpose="batch")
        self.journal.update_submission(sub.submission, input_file_id=f.id)
        return replace(sub, input_file_id=f.id)

    def _create(self, sub: Submission) -> Submission:
        assert sub.input_file_id is not None  # uploaded first (_upload)
        batch = self.client.batches.create(input_file_id=sub.input_file_id, endpoint="/v1/chat/completions",
                                           completion_window=self.cfg.completion_window,
                                           metadata={METADATA_KEY: sub.submission})
        self.journal.update_submission(sub.submission, batch_id=batch.id)
        self.facts["batches_created"] += 1
        self.sent += len(sub.keys)
        print(f"kd: batch {batch.id} created ({len(sub.keys)} requests)", file=sys.stderr, flush=True)
        return replace(sub, batch_id=batch.id)

    def _find(self, sub: Submission) -> str | None:
        """The batch a killed run created for ``sub`` (its metadata), if the server has one. Batches are
        listed newest first: stop at those created well before the submission (an organisation may have
        thousands), allowing 10 minutes of clock difference with the server."""
        for batch in self.client.batches.list(limit=100):   # the SDK pages through the rest
            if (batch.metadata or {}).get(METADATA_KEY) == sub.submission:
                return batch.id
            if batch.created_at < sub.created_at - 600:
                return None
        return None

    def _ensure_created(self, sub: Submission, requests: dict[str, _Request]) -> Submission:
        if sub.batch_id is not None:
            return sub
        found = self._find(sub)
        if found is not None:
            self.facts["batches_found_by_metadata"] += 1
            self.journal.update_submission(sub.submission, batch_id=found)
            return replace(sub, batch_id=found)
        # never created: upload (again if unsure: uploads are free) and create
        return self._create(self._upload(sub, self._requests_of(sub, requests)) if sub.input_file_id is None else sub)

    def _requests_of(self, sub: Submission, requests: dict[str, _Request]) -> dict[str, _Request]:
        """The submission's own requests: this run's, and, for keys this run does not have (its settings
        changed since), the bodies from the uploaded input file, so their answers are kept under their key."""
        missing = [k for k in sub.keys if k not in requests]
        if not missing or sub.input_file_id is None:
            return requests
        own = dict(requests)
        for line in self.client.files.content(sub.input_file_id).text.splitlines():
            if line.strip():
                entry = json.loads(line)
                k = entry.get("custom_id", "")
                if k in missing:
                    own[k] = _Request((sub.items or {}).get(k, "unknown"), "", entry.get("body") or {})
        return own

    def _collect(self, sub: Submission, batch, requests: dict[str, _Request]) -> None:
        """Commit every line of the output and error files; keys in neither are recorded as missing."""
        requests = self._requests_of(sub, requests)
        seen: set[str] = set()
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            for line in self.client.files.content(file_id).text.splitlines():
                if line.strip():
                    seen.add(self._commit_line(json.loads(line), requests))
        if batch.status == "failed":
            why = "; ".join(f"{e.code or ''} {e.message or ''}".strip() for e in (batch.errors.data or [])) \
                if batch.errors else ""
            reason = f"batch_failed: {why or 'the batch failed validation'}"
        elif batch.status == "cancelled":
            reason = (f"batch_cancelled: batch {batch.id} was cancelled before this request ran; it is not sent "
                      f"again unless teacher.batch.resubmit_cancelled is true")
        else:
            reason = f"missing_from_output: batch {batch.id} ended '{batch.status}' without this request"
        for k in sub.keys:
            if k not in seen and k in requests:
                self._record(k, requests[k], "failed", None, reason)

    def _commit_line(self, line: dict[str, Any], requests: dict[str, _Request]) -> str:
        key = line.get("custom_id", "")
        if key not in requests:
            return key          # not ours (another run's request with other settings): leave it
        response, error = line.get("response") or {}, line.get("error")
        status_code, body = response.get("status_code"), response.get("body")
        if status_code == 200 and not error:
            problem = completion_problem(body)
            if problem is None:
                self._record(key, requests[key], "ok", body, None)
                return key
            self._record(key, requests[key], "failed", None, problem)
            return key
        if error:
            reason = f"{error.get('code') or 'error'}: {error.get('message') or ''}"
        else:
            message = ((body or {}).get("error") or {}).get("message", "") if isinstance(body, dict) else ""
            reason = f"http_{status_code}: {message}"
        self._record(key, requests[key], "failed", None, redact(reason[:500], self.secrets))
        return key

    def _record(self, key: str, req: _Request, status: str, response: dict | None, error: str | None) -> None:
        usage = (response or {}).get("usage") or {}
        pt, ct = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        cost = self.budget.settle(key, pt, ct, answered=status == "ok")
        self.journal.record(key, req.item_id, req.body, status, 1, response, error, pt, ct, cost, None, mode="batch")
