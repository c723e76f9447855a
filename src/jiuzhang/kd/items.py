"""Load the items of each round from the prompt pool and the influence selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from jiuzhang.common.io import InputDataError, read_shards
from jiuzhang.config.kd import KdConfig
from jiuzhang.kd.rounds import sample_initial

POOL_COLUMNS = ["id", "source", "level", "prompt"]
SELECTION_SCHEMA = pa.schema([("id", pa.string()), ("rank", pa.int32()), ("score", pa.float64()),
                              ("method", pa.string())])


def load_pool(prompts_dir: Path) -> list[dict[str, Any]]:
    """Every prompt of the pool in ``prompts_dir``."""
    return list(read_shards(prompts_dir, columns=POOL_COLUMNS))


def initial_items(pool: list[dict[str, Any]], kd: KdConfig) -> list[dict[str, Any]]:
    """The initial round's kd.initial.n prompts, drawn from the pool by seed (order-free)."""
    if kd.initial.n > len(pool):
        raise InputDataError(f"kd.initial.n={kd.initial.n} but the prompt pool has only {len(pool)} prompts; "
                             f"lower kd.initial.n or grow the corpus")
    return sample_initial(pool, kd.initial.n, kd.initial.seed)


def boost_items(pool: list[dict[str, Any]], selection_dir: Path) -> list[dict[str, Any]]:
    """The boost round's prompts: those the influence stage selected, in its rank order."""
    path = selection_dir / "selected.parquet"
    if not path.is_file():
        raise InputDataError(f"{path}: no selection; run the influence stage first (dvc repro influence)")
    chosen = pq.read_table(path, columns=["id"]).column("id").to_pylist()
    by_id = {r["id"]: r for r in pool}
    missing = [i for i in chosen if i not in by_id]
    if missing:
        raise InputDataError(f"{path}: {len(missing)} selected ids are not in the prompt pool (e.g. {missing[0]}); "
                             f"rerun the influence stage on the current pool")
    return sorted((by_id[i] for i in chosen), key=lambda r: r["id"])
