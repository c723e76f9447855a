"""The influence stage's output: the texts chosen for the boosting round, with their scores.

``method: random`` ranks candidates by a seeded hash (the paper's random-selection ablation); the
gradient-based ``less`` method writes the same table with influence scores.
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
from jiuzhang.kd.rounds import select_random


def select(cfg: InfluenceConfig, kd: KdConfig, pool: list[dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    exclude = {r["id"] for r in initial_items(pool, kd)}  # never pay twice for the same text
    available = len(pool) - len(exclude)
    if kd.boost.n > available:
        raise InputDataError(f"kd.boost.n={kd.boost.n} but only {available} prompts remain after the round-1 "
                             f"sample; lower kd.boost.n or grow the corpus")
    chosen = select_random(pool, exclude, kd.boost.n, cfg.seed)
    rows = [{"id": r["id"], "rank": i, "score": keyed_uniform(cfg.seed, "influence", r["id"]), "method": cfg.method}
            for i, r in enumerate(chosen)]
    out = reset_dir(out_dir)
    pq.write_table(pa.Table.from_pylist(rows, schema=SELECTION_SCHEMA), out / "selected.parquet", compression="zstd")
    levels: dict[str, int] = {}
    for r in chosen:
        levels[r["level"]] = levels.get(r["level"], 0) + 1
    return {"method": cfg.method, "candidates": available, "selected": len(rows), "by_level": dict(sorted(levels.items()))}
