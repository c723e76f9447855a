"""The durable request journal: every teacher answer is committed to SQLite (WAL) before it is used.

Why SQLite in WAL mode: a commit is one small write to the log, it survives ``kill -9`` of the stage (the
OS has the bytes; ``synchronous=NORMAL`` only risks the last commits on *power loss*), readers never block
the writer, and the file is one portable DVC output that ``dvc push`` ships to other machines.

A row is keyed by :func:`request_key` (endpoint, model, messages, sampling settings), so a rerun sends only
requests without a committed answer, and changing the model or any sampling setting sends again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,          -- request_key(): everything that affects the answer
    item_id TEXT NOT NULL,         -- the prompt id this request was made for
    request TEXT NOT NULL,         -- the request body (JSON), without credentials
    status TEXT NOT NULL,          -- 'ok' (an answer, maybe a refusal) | 'failed' (no usable answer)
    response TEXT,                 -- the raw response body (JSON) for 'ok'
    error TEXT,                    -- the reason for 'failed'
    attempts INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0, -- the price paid for this call, at the rates of the mode it went by
    latency_s REAL,
    committed_at REAL NOT NULL,
    mode TEXT                      -- 'online' | 'batch': the mode (and so the rates) the call was paid at;
                                   -- last, as in journals that gained it by ALTER TABLE
);
CREATE TABLE IF NOT EXISTS batches (
    submission TEXT PRIMARY KEY,   -- our id, committed before anything is uploaded; sent as batch metadata
    input_file_id TEXT,            -- the uploaded request file (uploads cost nothing)
    batch_id TEXT,                 -- the paid-for batch, committed as soon as the create call returns
    keys TEXT NOT NULL,            -- JSON list of the request keys in this batch
    state TEXT NOT NULL,           -- 'open' until its output is committed to answers, then 'done'
    created_at REAL NOT NULL,
    items TEXT                     -- JSON {request key: item id}: answers are committed under their own
                                   -- request even when a rerun has other settings
);
"""


@dataclass(frozen=True)
class Submission:
    """One Batch API submission as the journal holds it."""

    submission: str
    input_file_id: str | None
    batch_id: str | None
    keys: list[str]
    created_at: float
    items: dict[str, str] | None = None


def request_key(endpoint: str, body: dict[str, Any]) -> str:
    """SHA-256 over the endpoint and the full request body (model, messages, sampling settings)."""
    canonical = json.dumps({"endpoint": endpoint.rstrip("/"), "body": body}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One journal row: the request key, item, status, answer or error, attempts and tokens."""
    key: str
    item_id: str
    status: str
    response: dict[str, Any] | None
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    mode: str | None = None


def _own_copy(path: Path) -> None:
    """DVC may check a cached output out as a hard link or symlink into its cache; SQLite writes in
    place, which would corrupt the cache. Replace such a link with a private copy first."""
    if path.is_symlink() or (path.exists() and os.stat(path).st_nlink > 1):
        tmp = path.with_name(path.name + ".copy")
        shutil.copyfile(path, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)


class Journal:
    """The teacher journal (SQLite): every answer paid for, and open Batch API submissions, so nothing is paid twice."""
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _own_copy(self.path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(answers)")}
        if "mode" not in columns:  # a journal written before the mode was recorded: its calls say 'not recorded'
            self.db.execute("ALTER TABLE answers ADD COLUMN mode TEXT")
        if "items" not in {r[1] for r in self.db.execute("PRAGMA table_info(batches)")}:
            self.db.execute("ALTER TABLE batches ADD COLUMN items TEXT")

    _COLUMNS = "key, item_id, status, response, error, prompt_tokens, completion_tokens, cost_usd, mode"

    @staticmethod
    def _entry(r: tuple) -> Entry:
        return Entry(r[0], r[1], r[2], json.loads(r[3]) if r[3] else None, r[4], r[5], r[6], r[7], r[8])

    def committed(self) -> dict[str, Entry]:
        """Entries that count as answered: every 'ok' row (a failed row is retried on the next run)."""
        rows = self.db.execute(f"SELECT {self._COLUMNS} FROM answers WHERE status = 'ok'")
        return {r[0]: self._entry(r) for r in rows}

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``, or None."""
        r = self.db.execute(f"SELECT {self._COLUMNS} FROM answers WHERE key = ?", (key,)).fetchone()
        return self._entry(r) if r else None

    def record(self, key: str, item_id: str, request: dict[str, Any], status: str, attempts: int,
               response: dict[str, Any] | None = None, error: str | None = None, prompt_tokens: int = 0,
               completion_tokens: int = 0, cost_usd: float = 0.0, latency_s: float | None = None,
               mode: str | None = None) -> None:
        """Commit one outcome (autocommit: the row is durable when this returns). ``cost_usd`` is the price
        paid for it at the rates of ``mode``: reports sum these, never recompute them at today's rates.

        An answer already committed as 'ok' is never overwritten by a failure (a batch's error line for a
        request that another batch answered, say): that answer was paid for and is kept; the failure's
        usage, if any, is added to what the row cost."""
        self.db.execute(
            "INSERT INTO answers (key, item_id, request, status, response, error, attempts, prompt_tokens, "
            "completion_tokens, cost_usd, latency_s, committed_at, mode) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(key) DO UPDATE SET "
            "status=CASE WHEN answers.status='ok' AND excluded.status!='ok' THEN answers.status ELSE excluded.status END, "
            "response=CASE WHEN answers.status='ok' AND excluded.status!='ok' THEN answers.response ELSE excluded.response END, "
            "error=CASE WHEN answers.status='ok' AND excluded.status!='ok' THEN answers.error ELSE excluded.error END, "
            "mode=CASE WHEN answers.status='ok' AND excluded.status!='ok' THEN answers.mode ELSE excluded.mode END, "
            "prompt_tokens=CASE WHEN answers.status='ok' AND excluded.status!='ok' "
            "THEN answers.prompt_tokens + excluded.prompt_tokens ELSE excluded.prompt_tokens END, "
            "completion_tokens=CASE WHEN answers.status='ok' AND excluded.status!='ok' "
            "THEN answers.completion_tokens + excluded.completion_tokens ELSE excluded.completion_tokens END, "
            "cost_usd=CASE WHEN answers.status='ok' AND excluded.status!='ok' "
            "THEN answers.cost_usd + excluded.cost_usd ELSE excluded.cost_usd END, "
            "attempts=answers.attempts + excluded.attempts, latency_s=excluded.latency_s, "
            "committed_at=excluded.committed_at",
            (key, item_id, json.dumps(request, sort_keys=True, ensure_ascii=False), status,
             json.dumps(response, ensure_ascii=False) if response is not None else None, error, attempts,
             prompt_tokens, completion_tokens, cost_usd, latency_s, time.time(), mode))

    # --- Batch API submissions: committed before each step that pays, so a rerun re-attaches -------------
    def open_submissions(self) -> list[Submission]:
        """Batch submissions not yet finished, oldest first (a resumed run polls them instead of resubmitting)."""
        rows = self.db.execute("SELECT submission, input_file_id, batch_id, keys, created_at, items FROM batches "
                               "WHERE state = 'open' ORDER BY created_at, submission").fetchall()
        return [Submission(r[0], r[1], r[2], json.loads(r[3]), r[4], json.loads(r[5]) if r[5] else None)
                for r in rows]

    def begin_submission(self, submission: str, keys: list[str], items: dict[str, str] | None = None) -> Submission:
        """Record a new submission of ``keys`` before it is uploaded, so a crash cannot lose track of it."""
        sub = Submission(submission, None, None, keys, time.time(), items)
        self.db.execute("INSERT INTO batches (submission, keys, state, created_at, items) VALUES (?,?, 'open', ?, ?)",
                        (submission, json.dumps(keys), sub.created_at, json.dumps(items) if items else None))
        return sub

    def update_submission(self, submission: str, **fields: str) -> None:
        """Set input_file_id, batch_id and/or state (autocommit: durable when this returns)."""
        assert set(fields) <= {"input_file_id", "batch_id", "state"}, fields
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE batches SET {sets} WHERE submission = ?", (*fields.values(), submission))

    def totals(self) -> dict[str, float]:
        """What the journal holds and has paid for (all rows, including failed ones with usage)."""
        r = self.db.execute("SELECT COUNT(*), COALESCE(SUM(status='ok'),0), COALESCE(SUM(prompt_tokens),0), "
                            "COALESCE(SUM(completion_tokens),0), COALESCE(SUM(cost_usd),0) FROM answers").fetchone()
        return {"rows": r[0], "answered": r[1], "prompt_tokens": r[2], "completion_tokens": r[3],
                "cost_usd": round(r[4], 6)}

    def close(self, canonical: bool = True) -> None:
        """Fold the WAL back into the file and, with ``canonical``, rewrite the file in canonical form.

        The live file records when each answer was committed, how long it took and how many attempts it
        needed, and its pages follow the order in which concurrent answers arrived: two runs with the same
        answers would differ in bytes, and so in their DVC hash. The canonical form holds the same answer
        rows, inserted in key order into a fresh file, with those per-execution columns zeroed (the run's
        attempts and cache hits are in the stage's run facts, ``results/run/``): the same answers give the
        same bytes. Batch submissions still open (a run that stopped waiting) are kept, so a rerun re-attaches;
        finished ones are dropped (their answers are in the rows). It is written next to the journal and
        moved over it atomically, so a kill during the rewrite leaves the live journal intact. The file stays
        in WAL mode: switching modes is itself a write, which would change its bytes on every open."""
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if not canonical or str(self.path) == ":memory:":
            self.db.close()
            return
        rows = self.db.execute(f"SELECT {self._COLUMNS}, request FROM answers ORDER BY key").fetchall()
        open_batches = self.db.execute("SELECT submission, input_file_id, batch_id, keys, state, created_at, items "
                                       "FROM batches WHERE state = 'open' ORDER BY submission").fetchall()
        self.db.close()
        tmp = self.path.with_name(self.path.name + ".canonical")
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            db.execute("BEGIN")
            db.executemany("INSERT INTO answers (key, item_id, status, response, error, prompt_tokens, "
                           "completion_tokens, cost_usd, mode, request, attempts, latency_s, committed_at) "
                           "VALUES (?,?,?,?,?,?,?,?,?,?,0,NULL,0)",
                           rows)
            db.executemany("INSERT INTO batches (submission, input_file_id, batch_id, keys, state, created_at, items) "
                           "VALUES (?,?,?,?,?,?,?)", open_batches)
            db.execute("COMMIT")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
        os.replace(tmp, self.path)
        for stale in (Path(f"{self.path}-wal"), Path(f"{self.path}-shm"), Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            stale.unlink(missing_ok=True)
