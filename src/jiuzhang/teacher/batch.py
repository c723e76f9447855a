"""``teacher.mode: batch``: the teacher's answers through the OpenAI Batch API, at its discounted rates.

Per run: re-attach to every submission the journal still has open (a run killed or stopped waiting), then
submit the requests without a committed answer: write them as JSONL (``custom_id`` = the request key),
upload the file (``/v1/files``), create the batch (``/v1/batches``), poll with backoff, download the output
and error files, commit every answer to the journal, and resubmit only requests that expired or failed
with a retryable status (429/5xx), up to ``teacher.batch.max_submissions`` batches. A later run's first
batch takes every request still without an answer (as an online rerun resends its failed rows).

The journal's promise holds at every point of a kill -9: a submission row is committed *before* the upload,
the file id right after it, the batch id right after the create call returns, and the create call carries
the submission id as batch metadata. A rerun that finds an open submission without a batch id looks for
its batch in ``GET /v1/batches`` (a create the server accepted but whose answer the killed run never
read) and creates one only if there is none, so the same requests are never paid for twice.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import openai
from tqdm import tqdm

from jiuzhang.config.teacher import BatchConfig
from jiuzhang.errors import UserError
from jiuzhang.teacher.budget import Budget
from jiuzhang.teacher.client import Outcome, Sampling, completion_problem, redact
from jiuzhang.teacher.journal import Journal, Submission, request_key

METADATA_KEY = "jiuzhang_submission"
TERMINAL = ("completed", "failed", "expired", "cancelled")


class BatchWaitExceeded(UserError):
    """teacher.batch.max_wait_s passed with a batch still running; a rerun re-attaches to it."""


def _retryable(error: str) -> bool:
    """Worth a new batch: it expired, was never run, or met a transient server condition."""
    return error.startswith(("batch_expired", "missing_from_output", "http_429", "http_5", "batch_cancelled"))


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
        return request_key(self.endpoint, self.sampling.body(prompt))

    # --- the run ---------------------------------------------------------------------------------------
    def run(self, items: list[tuple[str, str]]) -> list[Outcome]:
        requests: dict[str, _Request] = {}
        keys = []                                         # per item, in input order
        for item_id, prompt in items:
            body = self.sampling.body(prompt)
            keys.append(request_key(self.endpoint, body))
            requests.setdefault(keys[-1], _Request(item_id, prompt, body))
        answered_before = {k for k in requests if self._answered(k)}
        for sub in self.journal.open_submissions():       # paid for by an earlier run: finish those first
            self.facts["batches_reattached"] += 1
            for k in sub.keys:                            # already being paid: hold it against the caps
                if k in requests:
                    self.budget.reserve(k, requests[k].prompt, self.sampling.max_tokens)
            self._finish(sub, requests)
        skipped: set[str] = set()
        # The first batch takes every request without an answer (as an online rerun resends failed rows);
        # later ones only what failed in this run for a reason a new batch can cure.
        todo = [k for k in requests if not self._answered(k)]
        for _ in range(self.cfg.max_submissions):
            todo = [k for k in todo if k not in skipped][:self.cfg.max_requests_per_batch]
            if not todo:
                break
            chosen = []
            for k in todo:
                if self.budget.reserve(k, requests[k].prompt, self.sampling.max_tokens):
                    chosen.append(k)
                else:
                    skipped.add(k)
                    self.budget_stopped = True
            if chosen:
                self._finish(self._submit(chosen, requests), requests)
            todo = [k for k in requests if k not in skipped and self._retry(k)]
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

    def _retry(self, key: str) -> bool:
        entry = self.journal.get(key)
        return entry is None or (entry.status != "ok" and _retryable(entry.error or ""))

    # --- one submission: each step committed before the next can pay -----------------------------------
    def _submit(self, keys: list[str], requests: dict[str, _Request]) -> Submission:
        sub = self.journal.begin_submission(uuid.uuid4().hex, keys)
        return self._create(self._upload(sub, requests))

    def _upload(self, sub: Submission, requests: dict[str, _Request]) -> Submission:
        lines = b"".join(json.dumps({"custom_id": k, "method": "POST", "url": "/v1/chat/completions",
                                     "body": requests[k].body}, ensure_ascii=False).encode() + b"\n"
                         for k in sub.keys)
        f = self.client.files.create(file=(f"jiuzhang-{sub.submission}.jsonl", io.BytesIO(lines)), purpose="batch")
        self.journal.update_submission(sub.submission, input_file_id=f.id)
        return replace(sub, input_file_id=f.id)

    def _create(self, sub: Submission) -> Submission:
        batch = self.client.batches.create(input_file_id=sub.input_file_id, endpoint="/v1/chat/completions",
                                           completion_window=self.cfg.completion_window,
                                           metadata={METADATA_KEY: sub.submission})
        self.journal.update_submission(sub.submission, batch_id=batch.id)
        self.facts["batches_created"] += 1
        self.sent += len(sub.keys)
        tqdm.write(f"kd: batch {batch.id} created ({len(sub.keys)} requests)")
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

    def _finish(self, sub: Submission, requests: dict[str, _Request]) -> None:
        if sub.batch_id is None:
            found = self._find(sub)
            if found is not None:
                self.facts["batches_found_by_metadata"] += 1
                self.journal.update_submission(sub.submission, batch_id=found)
                sub = replace(sub, batch_id=found)
            else:   # never created: upload (again if unsure: uploads are free) and create
                sub = self._create(self._upload(sub, requests) if sub.input_file_id is None else sub)
        batch = self._wait(sub)
        self._collect(sub, batch, requests)
        self.journal.update_submission(sub.submission, state="done")

    def _wait(self, sub: Submission):
        started, delay = time.monotonic(), self.cfg.poll_initial_s
        bar = tqdm(total=len(sub.keys), desc=f"batch {sub.batch_id}", unit="req", disable=not self.progress)
        try:
            while True:
                batch = self.client.batches.retrieve(sub.batch_id)
                counts = batch.request_counts
                if counts is not None:
                    bar.n = counts.completed + counts.failed
                    bar.set_postfix(status=batch.status, refresh=True)
                if batch.status in TERMINAL:
                    return batch
                waited = time.monotonic() - started
                if self.cfg.max_wait_s is not None and waited >= self.cfg.max_wait_s:
                    raise BatchWaitExceeded(
                        f"batch {sub.batch_id} is still '{batch.status}' after {waited:.0f} s "
                        f"(teacher.batch.max_wait_s); it stays recorded in the journal: rerun the stage to "
                        f"re-attach to it (nothing is resubmitted or paid twice)")
                self.sleep(delay)
                delay = min(self.cfg.poll_max_s, delay * 1.5)
        finally:
            bar.close()

    def _collect(self, sub: Submission, batch, requests: dict[str, _Request]) -> None:
        """Commit every line of the output and error files; keys in neither are recorded as missing."""
        seen: set[str] = set()
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            for line in self.client.files.content(file_id).text.splitlines():
                if line.strip():
                    seen.add(self._commit_line(json.loads(line), requests))
        if batch.status == "failed":
            why = "; ".join(e.message or "" for e in (batch.errors.data or [])) if batch.errors else ""
            reason = f"batch_failed: {why or 'the batch failed validation'}"
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
        self.journal.record(key, req.item_id, req.body, status, 1, response, error, pt, ct, cost, None)
