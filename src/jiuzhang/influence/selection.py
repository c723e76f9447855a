"""The influence stage: the candidate pool (texts never sent in round 1, with data written for them by
``synthesizer_initial``) and the texts chosen from it for the boosting round, with their scores.

``method: random`` ranks candidates by a seeded hash (the paper's random-selection ablation); the
gradient-based ``less`` method writes the same table with influence scores computed on the candidates' data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from jiuzhang.common.io import InputDataError, reset_dir
from jiuzhang.common.seeding import keyed_uniform
from jiuzhang.influence.config import InfluenceConfig
from jiuzhang.kd.config import KdConfig
from jiuzhang.kd.items import SELECTION_SCHEMA, initial_items
from jiuzhang.kd.rounds import rank_by_seed, select_random


def candidate_pool(cfg: InfluenceConfig, kd: KdConfig, pool: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A seeded sample of ``pool_size`` prompts, none of them sent in round 1 (never pay twice for a text)."""
    exclude = {r["id"] for r in initial_items(pool, kd)}
    available = [r for r in pool if r["id"] not in exclude]
    if cfg.pool_size > len(available):
        raise InputDataError(f"influence.pool_size={cfg.pool_size} but only {len(available)} prompts remain after "
                             f"the round-1 sample; lower influence.pool_size or grow the corpus")
    if kd.boost.n > cfg.pool_size:
        raise InputDataError(f"kd.boost.n={kd.boost.n} exceeds influence.pool_size={cfg.pool_size}: the boost "
                             f"round selects from the candidate pool; raise pool_size or lower kd.boost.n")
    return rank_by_seed(available, cfg.seed, "candidates")[:cfg.pool_size]


def select(cfg: InfluenceConfig, kd: KdConfig, candidates: list[dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    chosen = select_random(candidates, set(), kd.boost.n, cfg.seed)
    rows = [{"id": r["id"], "rank": i, "score": keyed_uniform(cfg.seed, "influence", r["id"]), "method": cfg.method}
            for i, r in enumerate(chosen)]
    out = reset_dir(out_dir)
    pq.write_table(pa.Table.from_pylist(rows, schema=SELECTION_SCHEMA), out / "selected.parquet", compression="zstd")
    levels: dict[str, int] = {}
    for r in chosen:
        levels[r["level"]] = levels.get(r["level"], 0) + 1
    return {"method": cfg.method, "candidates": len(candidates), "selected": len(rows), "by_level": dict(sorted(levels.items()))}
