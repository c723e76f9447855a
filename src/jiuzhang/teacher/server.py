"""A minimal OpenAI-compatible chat-completions HTTP server on 127.0.0.1, run in a background thread.

It serves the offline teacher of the smoke profile and, in tests, a fault-injecting variant. We write our
own (on ``http.server``) rather than pull in a web framework: it is ~100 lines, has no dependencies, and
its users need only ``POST /v1/chat/completions`` (the teacher) or ``POST /v1/completions`` (eval tests),
plus, with a :class:`~.batch_service.BatchService`, the Files and Batch endpoints of ``teacher.mode: batch``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# answer(body, headers) -> (status, extra headers, payload bytes), or None to drop the connection
Answer = Callable[[dict[str, Any], dict[str, str]], "tuple[int, dict[str, str], bytes] | None"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: the stage reports progress itself

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        path = urlsplit(self.path).path.rstrip("/")
        service = self.server.batches
        if service is not None and path.endswith("/files"):
            self._json(*service.upload({k.lower(): v for k, v in self.headers.items()}, raw))
            return
        if service is not None and path.endswith("/cancel") and "/batches/" in path:
            self._json(*service.cancel(path.split("/")[-2]))
            return
        if service is not None and path.endswith("/batches"):
            try:
                self._json(*service.create(json.loads(raw)))
            except json.JSONDecodeError:
                self._send(400, {}, b'{"error": {"message": "request body is not JSON"}}')
            return
        if not path.endswith("/completions"):
            self._send(404, {}, b'{"error": {"message": "only /v1/chat/completions and /v1/completions are served"}}')
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._send(400, {}, b'{"error": {"message": "request body is not JSON"}}')
            return
        result = self.server.answer(body, {k.lower(): v for k, v in self.headers.items()})
        if result is None:  # simulate a dropped connection
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self._send(*result)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")       # v1, files|batches, [id], [content]
        service = self.server.batches
        if service is None or len(parts) < 2:
            self._send(404, {}, b'{"error": {"message": "not found"}}')
        elif parts[1] == "files" and len(parts) == 4 and parts[3] == "content":
            status, data = service.content(parts[2])
            self._send(status, {}, data, "application/octet-stream" if status == 200 else "application/json")
        elif parts[1] == "batches" and len(parts) == 3:
            self._json(*service.retrieve(parts[2]))
        elif parts[1] == "batches" and len(parts) == 2:
            q = parse_qs(url.query)
            self._json(*service.list(q.get("after", [None])[0], int(q.get("limit", ["20"])[0])))
        else:
            self._send(404, {}, b'{"error": {"message": "not found"}}')

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, {}, json.dumps(obj).encode())

    def _send(self, status: int, headers: dict[str, str], payload: bytes,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    answer: Answer
    batches: Any = None      # a BatchService, or None: chat/completions only


class ChatServer:
    """``with ChatServer(answer) as server: server.url`` -> ``http://127.0.0.1:<port>/v1``."""

    def __init__(self, answer: Answer, port: int = 0, batches: Any = None):
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.answer = answer
        self._server.batches = batches
        self._thread = threading.Thread(target=self._server.serve_forever, name="chat-server", daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL on 127.0.0.1."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "ChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def completion_body(model: str, content: str, finish_reason: str, prompt_tokens: int, completion_tokens: int,
                    response_id: str, fingerprint: str) -> bytes:
    """The JSON body of a chat completion as OpenAI returns it."""
    return json.dumps({
        "id": response_id, "object": "chat.completion", "created": 0, "model": model,
        "system_fingerprint": fingerprint,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }).encode("utf-8")
