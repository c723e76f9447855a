"""A fault-injecting OpenAI-compatible teacher for tests (served on 127.0.0.1 by ChatServer).

A prompt containing ``FAULT=<a>,<b>,...`` gets behaviour <a> on its first request, <b> on its second, and
so on, then normal answers. Behaviours: 429 (with Retry-After), 500, slow (sleeps past the client
timeout), malformed (invalid JSON), drop (closes the connection), leak400 (a 400 whose body echoes the
Authorization header: the client must never let that key reach any output), refusal, length.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from jiuzhang.common.io import ShardWriter
from jiuzhang.prompts.pool import SCHEMA as POOL_SCHEMA
from jiuzhang.teacher.server import completion_body

FAULT = re.compile(r"FAULT=([\w,]+)")


class FaultyTeacher:
    def __init__(self, latency_s: float = 0.0, slow_s: float = 2.0, retry_after: str = "0.2"):
        self.latency_s, self.slow_s, self.retry_after = latency_s, slow_s, retry_after
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()      # prompt -> requests received
        self.times: dict[str, list[float]] = {}  # prompt -> arrival times
        self.log: list[str] = []                 # prompts in arrival order

    def answer(self, body: dict[str, Any], headers: dict[str, str]):
        prompt = body["messages"][0]["content"]
        with self.lock:
            n = self.seen[prompt]
            self.seen[prompt] += 1
            self.times.setdefault(prompt, []).append(time.monotonic())
            self.log.append(prompt)
        if self.latency_s:
            time.sleep(self.latency_s)
        m = FAULT.search(prompt)
        plan = m.group(1).split(",") if m else []
        behaviour = plan[n] if n < len(plan) else "ok"
        if behaviour == "429":
            return 429, {"retry-after": self.retry_after}, b'{"error": {"message": "rate limited"}}'
        if behaviour == "500":
            return 500, {}, b'{"error": {"message": "internal error"}}'
        if behaviour == "slow":
            time.sleep(self.slow_s)
        if behaviour == "malformed":
            return 200, {}, b'{"choices": [{"message": '
        if behaviour == "drop":
            return None
        if behaviour == "leak400":
            msg = f"bad request from {headers.get('authorization', '')}"
            return 400, {}, json.dumps({"error": {"message": msg}}).encode()
        content, finish = f"[Problem]: Problem for {prompt[:40]}\n\n[Solution]: Work it out. \\boxed{{1}}", "stop"
        if behaviour == "refusal":
            content = "I'm sorry, but I can't help with that."
        if behaviour == "length":
            content, finish = "[Problem]: cut off mid", "length"
        return 200, {}, completion_body(body["model"], content, finish, len(prompt) // 4, len(content) // 4,
                                        "test", "faulty-teacher")


def write_pool(folder: Path, prompts: list[str], level: str = "high_school") -> list[dict]:
    rows = [{"id": f"p{i:04d}", "snippet_id": f"s{i:04d}", "source": "test", "level": level, "prompt": p}
            for i, p in enumerate(prompts)]
    writer = ShardWriter(folder, POOL_SCHEMA, 1000)
    writer.write_many(rows)
    writer.close()
    return rows
