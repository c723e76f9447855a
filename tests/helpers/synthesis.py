"""Synthesis tests' helpers: a prompt pool, params, the in-process executor, shard bytes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from jiuzhang.config.cluster import ClusterConfig
from jiuzhang.config.loader import validate_params

from conftest import tiny_params

POOL_SCHEMA = pa.schema([("id", pa.string()), ("snippet_id", pa.string()), ("source", pa.string()),
                         ("level", pa.string()), ("prompt", pa.string())])


def pool(n: int) -> list[dict]:
    return [{"id": f"p{i:04d}", "snippet_id": f"s{i}", "source": "t", "level": "tool" if i % 4 == 0 else "amc8",
             "prompt": f"Make a problem about {i} and {i * 7 % 13}." + (" more" * (i % 5))} for i in range(n)]


def params(**synth) -> object:
    raw = tiny_params({"x": "unused.jsonl"})
    raw["synthesize"].update({"shard_size": 8, "batch_size": 4, "threads": 1,
                              "nl": {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 12},
                              "tool": {"temperature": 0.1, "top_p": 0.95, "max_new_tokens": 12},
                              "max_prompts": None, **synth})
    return validate_params(raw, "test")


INLINE = ClusterConfig(executor="inline")


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(folder.glob("part-*")) if not f.name.endswith(".partial.jsonl")}
