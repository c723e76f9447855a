"""Teacher client tests' helpers: a config for a loopback endpoint, work items, journal and output readers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq

from jiuzhang.config.teacher import TeacherConfig


def teacher_cfg(url: str, **over) -> TeacherConfig:
    base = dict(kind="openai", model="gpt-test", base_url=url, temperature=0.6, max_tokens=2500, concurrency=4,
                timeout_s=1.0, max_retries=3, backoff_initial_s=0.05, backoff_max_s=0.2, max_failed_share=1.0,
                prices={"input_per_million": 30.0, "output_per_million": 60.0})
    base.update(over)
    return TeacherConfig.model_validate(base)


def items(prompts: list[str]) -> list[dict]:
    return [{"id": f"p{i:03d}", "level": "college", "source": "t", "prompt": p} for i, p in enumerate(prompts)]


def journal_rows(path: Path) -> dict[str, tuple[str, str | None, int]]:
    with sqlite3.connect(path) as db:
        return {r[0]: (r[1], r[2], r[3]) for r in db.execute("SELECT item_id, status, error, attempts FROM answers")}


def read_kd(out: Path) -> tuple[list[dict], list[dict]]:
    kept = pq.read_table(out / "part-00000.parquet").to_pylist() if (out / "part-00000.parquet").exists() else []
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    return kept, rejected
