"""Async client for any OpenAI-compatible chat-completions endpoint, journaled, retried, budgeted.

Flow per request: skip it if the journal has a committed answer; else reserve budget, send (one user
message, as in the paper), retry 429/5xx/timeouts/connection errors with exponential backoff + jitter
(honouring ``Retry-After``), commit the outcome to the journal, and only then hand it back.
A malformed body or a non-retryable status is recorded as failed with its reason; it never stops the
other requests. We disable the ``openai`` package's own retries so every attempt is ours to count.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import openai

try:  # the HTTP library this openai release is built on (httpx2 from openai 3, httpx before)
    import httpx2 as _http
except ImportError:  # pragma: no cover - older openai
    import httpx as _http  # type: ignore[no-redef]

from jiuzhang.teacher.budget import Budget
from jiuzhang.teacher.journal import Journal, request_key


@dataclass(frozen=True)
class Sampling:
    """The teacher's sampling settings: model, temperature, top_p, max tokens, seed."""
    model: str
    temperature: float
    top_p: float | None
    max_tokens: int

    def body(self, prompt: str) -> dict[str, Any]:
        """The chat-completions request body of ``prompt``."""
        body: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                                "temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.top_p is not None:
            body["top_p"] = self.top_p
        return body


@dataclass(frozen=True)
class RetryPolicy:
    """How failed calls are retried: how often, and the exponential backoff bounds."""
    max_retries: int
    initial_s: float
    max_s: float

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry ``attempt``: the server's Retry-After, else jittered exponential backoff."""
        if retry_after is not None:
            return retry_after  # the server knows best; honour it even above max_s
        base = min(self.max_s, self.initial_s * 2 ** attempt)
        return base * (0.5 + rng.random() / 2)  # "equal jitter": spread retries of many requests


@dataclass(frozen=True)
class Outcome:
    """The outcome of one item: ok, failed or skipped for the budget, with the answer or the error."""
    item_id: str
    key: str
    status: str                   # 'ok' | 'failed' | 'skipped_budget'
    response: dict[str, Any] | None
    error: str | None
    cached: bool


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret replaced by [REDACTED]."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[REDACTED]")
    return text


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def completion_problem(data: Any) -> str | None:
    """Why a parsed body is not a usable chat completion, or None."""
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
        return "malformed_response: no choices"
    message = data["choices"][0].get("message") if isinstance(data["choices"][0], dict) else None
    if not isinstance(message, dict):
        return "malformed_response: no message"
    return None


class Teacher(Protocol):
    """What a KD round uses of a teacher, whichever mode answers (online: :class:`TeacherClient`, the Batch
    API: :class:`~jiuzhang.teacher.batch.BatchTeacher`); both share the journal's request keys."""

    budget_stopped: bool

    def key(self, prompt: str) -> str:
        """The journal key of ``prompt``."""

    def answer(self, items: list[tuple[str, str]]) -> list[Outcome]:
        """Answer ``(item_id, prompt)`` items, blocking until done; outcomes in input order."""

    def run_facts(self) -> dict[str, Any]:
        """What this run sent (HTTP attempts, or batch requests and batches), for the run facts."""


class TeacherClient:
    """The online teacher client: concurrent calls with retries, every answer journaled, within the budget."""
    def __init__(self, sampling: Sampling, retry: RetryPolicy, concurrency: int, timeout_s: float,
                 api_key: str, base_url: str | None, endpoint_id: str | None, journal: Journal, budget: Budget,
                 seed: int = 0, on_outcome: Callable[[Outcome], None] | None = None):
        self.sampling, self.retry, self.concurrency = sampling, retry, concurrency
        # A pool sized to the concurrency: httpcore's request-to-connection assignment scans the pool on
        # every request, and the default 1,000-connection pool made that ~1 ms per request here.
        http = openai.DefaultAsyncHttpxClient(limits=_http.Limits(max_connections=concurrency,
                                                                  max_keepalive_connections=concurrency))
        self.client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s,
                                         http_client=http)
        # The endpoint in the request key: the resolved URL, or a stable id (the offline teacher's port
        # changes every run, its answers do not).
        self.endpoint = endpoint_id or str(self.client.base_url)
        self.journal, self.budget = journal, budget
        self.secrets = (api_key,)
        self.rng = random.Random(seed)
        self.on_outcome = on_outcome
        self.sent = 0            # HTTP attempts made in this run
        self.budget_stopped = False

    def key(self, prompt: str) -> str:
        """The journal key of ``prompt``: endpoint and request body hashed."""
        return request_key(self.endpoint, self.sampling.body(prompt))

    def answer(self, items: list[tuple[str, str]]) -> list[Outcome]:
        """Answer ``(item_id, prompt)`` items with :meth:`run` on an event loop of its own."""
        return asyncio.run(self.run(items))

    def run_facts(self) -> dict[str, Any]:
        """HTTP attempts made in this run."""
        return {"http_attempts": self.sent}

    async def run(self, items: list[tuple[str, str]]) -> list[Outcome]:
        """Answer ``(item_id, prompt)`` items; outcomes come back in input order."""
        sem = asyncio.Semaphore(self.concurrency)

        async def one(item_id: str, prompt: str) -> Outcome:
            async with sem:
                outcome = await self._answer(item_id, prompt)
            if self.on_outcome is not None:
                self.on_outcome(outcome)
            return outcome

        try:
            return list(await asyncio.gather(*(one(i, p) for i, p in items)))
        finally:
            await self.client.close()

    async def _answer(self, item_id: str, prompt: str) -> Outcome:
        body = self.sampling.body(prompt)
        key = request_key(self.endpoint, body)  # == self.key(prompt), without building the body twice
        entry = self.journal.get(key)
        if entry is not None and entry.status == "ok":
            return Outcome(item_id, key, "ok", entry.response, None, cached=True)
        if not self.budget.reserve(key, prompt, self.sampling.max_tokens):
            self.budget_stopped = True
            return Outcome(item_id, key, "skipped_budget", None, "budget cap reached", cached=False)
        status, response, error, attempts, latency = await self._send(body)
        usage = (response or {}).get("usage") or {}
        pt, ct = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        cost = self.budget.settle(key, pt, ct, answered=status == "ok")
        error = redact(error, self.secrets) if error else None
        self.journal.record(key, item_id, body, status, attempts, response, error, pt, ct, cost, latency, mode="online")
        return Outcome(item_id, key, status, response, error, cached=False)

    async def _send(self, body: dict[str, Any]) -> tuple[str, dict | None, str | None, int, float]:
        started = time.perf_counter()
        last = "unknown"
        for attempt in range(self.retry.max_retries + 1):
            self.sent += 1
            retry_after = None
            try:
                # The public raw-response API: the body text as the server sent it, so a malformed body is
                # ours to judge (and journal) instead of a parse error inside the client. (The private
                # low-level post saved ~1.5 ms of CPU per request, which matters only at loopback
                # latencies, and could break on any openai release.)
                raw = await self.client.chat.completions.with_raw_response.create(**body)
                text = raw.text
                try:
                    data = json.loads(text)
                except json.JSONDecodeError as exc:
                    return "failed", None, f"malformed_response: invalid JSON ({exc.msg})", attempt + 1, 0.0
                problem = completion_problem(data)
                if problem:
                    return "failed", None, problem, attempt + 1, 0.0
                return "ok", data, None, attempt + 1, round(time.perf_counter() - started, 4)
            except openai.APIStatusError as exc:
                code = exc.status_code
                last = f"http_{code}: {exc.message}"[:500]
                if not (code in (408, 409, 429) or code >= 500):
                    return "failed", None, last, attempt + 1, 0.0
                retry_after = _retry_after(exc.response.headers)
            except openai.APITimeoutError:
                last = "timeout"
            except openai.APIConnectionError as exc:
                last = f"connection_error: {type(exc.__cause__).__name__ if exc.__cause__ else exc}"
            if attempt < self.retry.max_retries:
                await asyncio.sleep(self.retry.delay(attempt, retry_after, self.rng))
        return "failed", None, f"gave_up after {self.retry.max_retries + 1} attempts: {last}", \
            self.retry.max_retries + 1, 0.0
