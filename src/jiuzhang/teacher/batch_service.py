"""The OpenAI Files and Batch endpoints, served on loopback by :class:`~.server.ChatServer`: the offline
teacher's batch mode, and the test double that expires batches, writes error files and crashes clients.

It implements what ``teacher.mode: batch`` uses, as the OpenAI API documents it:
``POST /v1/files`` (multipart, ``purpose=batch``), ``GET /v1/files/{id}/content``, ``POST /v1/batches``,
``GET /v1/batches/{id}``, ``GET /v1/batches?after=&limit=`` (newest first), ``POST /v1/batches/{id}/cancel``.
An organisation's enqueued-token limit (``queued_token_limit``: input tokens of the batches not yet ended,
estimated at 4 characters per token) fails a batch that would exceed it with ``token_limit_exceeded``,
as the real API does. A batch is worked off in a
background thread by the same ``answer`` function that serves ``/v1/chat/completions``: each answered line
goes to the output file, each non-200 answer to the error file (``response.status_code`` and body), and a
batch that expires (``expire_after`` requests done) lists its unfinished requests in the error file with
code ``batch_expired``, as the real API does. Our own because no OpenAI-compatible server with batches
is installable here (and the test double must inject faults).
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

Answer = Callable[[dict[str, Any], dict[str, str]], Any]



def _payload(part: Any) -> bytes:
    """A multipart field's decoded bytes (empty when it has none)."""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""

class BatchService:
    """Files and batches held in memory. ``expire_after``: each of the first ``expiring_batches`` batches
    stops after that many requests and expires; ``line_delay_s``: time per request (so a client sees
    ``in_progress``); ``on_event(name, batch_or_file)``: called at 'upload', 'create' (before the create call
    is answered) and 'content'. ``max_in_progress`` records how many batches ran at once."""

    def __init__(self, answer: Answer, line_delay_s: float = 0.0, expire_after: int | None = None,
                 expiring_batches: int = 1, on_event: Callable[[str, dict], None] | None = None,
                 queued_token_limit: int | None = None):
        self.answer, self.line_delay_s, self.on_event = answer, line_delay_s, on_event
        self.queued_token_limit = queued_token_limit
        self.max_in_progress = 0
        self.expire_after, self.expiring_batches = expire_after, expiring_batches
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self.created = 0               # batches created (a re-attaching client must not add one)

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):06d}"

    def _event(self, name: str, obj: dict) -> None:
        if self.on_event is not None:
            self.on_event(name, obj)

    # --- files -----------------------------------------------------------------------------------------
    def upload(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict]:
        """POST /v1/files: store an uploaded JSONL file."""
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"content-type: " + headers.get("content-type", "").encode() + b"\r\n\r\n" + raw)
        fields = {part.get_param("name", header="content-disposition"): part for part in msg.iter_parts()}
        if "file" not in fields or "purpose" not in fields:
            return 400, {"error": {"message": "multipart fields 'file' and 'purpose' are required"}}
        content = _payload(fields["file"])
        purpose = _payload(fields["purpose"]).decode()
        obj = self._file(content, purpose, fields["file"].get_filename() or "upload.jsonl")
        self._event("upload", obj)
        return 200, {k: v for k, v in obj.items() if k != "content"}

    def _file(self, content: bytes, purpose: str, name: str) -> dict[str, Any]:
        with self.lock:
            obj: dict[str, Any] = {"id": self._id("file"), "object": "file", "bytes": len(content), "created_at": int(time.time()),
                   "filename": name, "purpose": purpose, "status": "processed", "content": content}
            self.files[obj["id"]] = obj
        return obj

    def content(self, file_id: str) -> tuple[int, bytes]:
        """GET /v1/files/{id}/content: a stored file's bytes."""
        f = self.files.get(file_id)
        if f is None:
            return 404, json.dumps({"error": {"message": f"no file {file_id}"}}).encode()
        self._event("content", f)
        return 200, f["content"]

    # --- batches ---------------------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> tuple[int, dict]:
        """POST /v1/batches: validate the input file and start a batch."""
        f = self.files.get(body.get("input_file_id", ""))
        if f is None or f["purpose"] != "batch":
            return 400, {"error": {"message": "input_file_id must name a file uploaded with purpose 'batch'"}}
        if body.get("endpoint") != "/v1/chat/completions":
            return 400, {"error": {"message": "only /v1/chat/completions batches are served"}}
        lines = [json.loads(line) for line in f["content"].splitlines() if line.strip()]
        tokens = sum(len(json.dumps(line.get("body", {}).get("messages", []))) // 4 for line in lines)
        with self.lock:
            batch = {"id": self._id("batch"), "object": "batch", "endpoint": body["endpoint"], "errors": None,
                     "input_file_id": f["id"], "completion_window": body.get("completion_window", "24h"),
                     "status": "validating", "output_file_id": None, "error_file_id": None,
                     "created_at": int(time.time()), "metadata": body.get("metadata"),
                     "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "_tokens": tokens}
            self.batches[batch["id"]] = batch
            self.created += 1
            limit = self.expire_after if self.created <= self.expiring_batches else None
            queued = sum(b["_tokens"] for b in self.batches.values()
                         if b["status"] in ("validating", "in_progress", "finalizing") and b is not batch)
            over = self.queued_token_limit is not None and queued + tokens > self.queued_token_limit
            if over:  # the real API accepts the create call, then fails the batch
                batch.update(status="failed", errors={"object": "list", "data": [
                    {"code": "token_limit_exceeded", "message": f"Enqueued token limit reached: {queued} tokens "
                     f"queued + {tokens} > {self.queued_token_limit}", "param": None, "line": None}]})
            running = sum(b["status"] in ("validating", "in_progress", "finalizing") for b in self.batches.values())
            self.max_in_progress = max(self.max_in_progress, running)
        if not over:
            threading.Thread(target=self._work, args=(batch, lines, limit), daemon=True).start()
        self._event("create", batch)
        return 200, self._public(batch)

    def retrieve(self, batch_id: str) -> tuple[int, dict]:
        """GET /v1/batches/{id}: the batch's state."""
        b = self.batches.get(batch_id)
        return (200, self._public(b)) if b else (404, {"error": {"message": f"no batch {batch_id}"}})

    @staticmethod
    def _public(b: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in b.items() if not k.startswith("_")}

    def cancel(self, batch_id: str) -> tuple[int, dict]:
        """As someone in the organisation cancelling it (the dashboard or the API): requests not yet run
        are not run; what was answered is in the output file."""
        b = self.batches.get(batch_id)
        if b is None:
            return 404, {"error": {"message": f"no batch {batch_id}"}}
        with self.lock:
            if b["status"] in ("validating", "in_progress"):
                b["status"] = "cancelling"
                b["_cancel"] = True
        return 200, self._public(b)

    def list(self, after: str | None, limit: int) -> tuple[int, dict]:
        """GET /v1/batches: batches newest first, paged by ``after`` and ``limit``."""
        ordered = sorted(self.batches.values(), key=lambda b: b["id"], reverse=True)
        if after:
            ordered = [b for b in ordered if b["id"] < after]
        page = ordered[:limit]
        return 200, {"object": "list", "data": [self._public(b) for b in page], "has_more": len(ordered) > limit,
                     "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None}

    def _work(self, batch: dict[str, Any], lines: Sequence[dict], limit: int | None) -> None:
        batch["status"] = "in_progress"
        out: list[dict[str, Any]] = []
        err: list[dict[str, Any]] = []
        for n, line in enumerate(lines):
            cid = line.get("custom_id")
            if batch.get("_cancel"):
                break  # cancelled: the rest is never run (and appears in neither file)
            if limit is not None and n >= limit:
                err.append({"id": f"batch_req_{batch['id']}_{n}", "custom_id": cid, "response": None,
                            "error": {"code": "batch_expired", "message": "the batch expired before this request "
                                                                          "was run"}})
                continue
            if self.line_delay_s:
                time.sleep(self.line_delay_s)
            result = self.answer(line.get("body") or {}, {})
            status, payload = (result[0], result[2]) if result is not None else (500, b'{"error": "dropped"}')
            try:
                body = json.loads(payload)
            except json.JSONDecodeError:
                body = {"error": {"message": "invalid JSON from the model server"}}
            entry = {"id": f"batch_req_{batch['id']}_{n}", "custom_id": cid,
                     "response": {"status_code": status, "request_id": f"req_{n}", "body": body}, "error": None}
            with self.lock:
                (out if status == 200 else err).append(entry)
                batch["request_counts"]["completed" if status == 200 else "failed"] += 1
        if not batch.get("_cancel"):
            batch["status"] = "finalizing"

        def write(entries: list[dict], kind: str) -> str | None:
            if not entries:
                return None
            data = b"".join(json.dumps(e).encode() + b"\n" for e in entries)
            return self._file(data, f"batch_{kind}", f"{batch['id']}_{kind}.jsonl")["id"]

        batch["output_file_id"], batch["error_file_id"] = write(out, "output"), write(err, "error")
        expired = limit is not None and len(lines) > limit
        if batch.get("_cancel"):
            batch["status"], batch["cancelled_at"] = "cancelled", int(time.time())
            return
        batch["status"] = "expired" if expired else "completed"
        batch["expired_at" if expired else "completed_at"] = int(time.time())
