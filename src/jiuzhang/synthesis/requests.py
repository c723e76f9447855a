"""What to generate: one request per prompt, its seed, its sampling, and the fixed shards of work.

Shards are consecutive slices of the pool in a seeded order; they are the unit of resume and of work
split between processes (shard s goes to rank ``s % world_size``). Because the slices depend only on the
data and params, never on the process count, the output is the same from 1 process or N.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jiuzhang.common.seeding import keyed_uniform
from jiuzhang.config.synthesis import SamplingConfig, SynthesizeConfig

TOOL_LEVEL = "tool"


@dataclass(frozen=True)
class Request:
    """One generation request: id, prompt, kind (nl or tool), level and its own sampling seed."""
    id: str
    prompt: str
    kind: str               # "nl" or "tool"
    level: str
    seed: int
    sampling: SamplingConfig
    stop: tuple[str, ...] = ()   # generation ends at the first of these strings (evaluation)


def request_seed(seed: int, prompt_id: str) -> int:
    """The sampling seed of one prompt: a 63-bit number from (global seed, prompt id) only."""
    return int(keyed_uniform(seed, "synthesize", prompt_id) * 2**63)


def plan_requests(pool: list[dict[str, Any]], cfg: SynthesizeConfig) -> list[Request]:
    """The pool in seeded order (first ``max_prompts`` of it), as requests."""
    order = sorted(pool, key=lambda r: (keyed_uniform(cfg.seed, "order", r["id"]), r["id"]))
    if cfg.max_prompts is not None:
        order = order[:cfg.max_prompts]
    out = []
    for r in order:
        kind = "tool" if r["level"] == TOOL_LEVEL else "nl"
        out.append(Request(r["id"], r["prompt"], kind, r["level"], request_seed(cfg.seed, r["id"]),
                           cfg.tool if kind == "tool" else cfg.nl))
    return out


def shard_requests(requests: list[Request], shard_size: int) -> list[list[Request]]:
    """``requests`` in consecutive shards of ``shard_size``."""
    return [requests[i:i + shard_size] for i in range(0, len(requests), shard_size)]


def batches(shard: list[Request], prompt_tokens: dict[str, int], batch_size: int) -> list[list[Request]]:
    """Same-kind batches (one sampling setting per generate call), longest prompts first so padding is small.

    Depends only on the shard's content, so a resumed shard re-forms exactly the same batches.
    """
    out = []
    for kind in ("nl", "tool"):
        same = sorted((r for r in shard if r.kind == kind), key=lambda r: (-prompt_tokens[r.id], r.id))
        out += [same[i:i + batch_size] for i in range(0, len(same), batch_size)]
    return out
