"""Which prompts each distillation round sends: a seeded sample (round 1) or the influence selection
(round 2). Both are pure functions of the ids and seeds, independent of pool order or sharding."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jiuzhang.common.seeding import keyed_uniform


def rank_by_seed(rows: Iterable[dict[str, Any]], seed: int, purpose: str) -> list[dict[str, Any]]:
    """Rows ordered by hash(seed, purpose, id); ties (impossible in practice) broken by id."""
    return sorted(rows, key=lambda r: (keyed_uniform(seed, purpose, r["id"]), r["id"]))


def sample_initial(pool: Iterable[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """The round-1 sample: the first ``n`` prompts by seeded rank, returned in id order."""
    return sorted(rank_by_seed(pool, seed, "kd_initial")[:n], key=lambda r: r["id"])


def select_random(pool: Iterable[dict[str, Any]], exclude: set[str], n: int, seed: int) -> list[dict[str, Any]]:
    """``influence.method: random``: ``n`` prompts not sent in round 1, scored by their seeded rank."""
    candidates = [r for r in pool if r["id"] not in exclude]
    return rank_by_seed(candidates, seed, "influence")[:n]
