"""The filter stage's driver: read the raw shards in order, filter each, write clean shards and drops."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from jiuzhang.common.io import InputDataError, ShardWriter, reset_dir
from jiuzhang.config.root import Params
from jiuzhang.corpus.decontamination import NgramIndex
from jiuzhang.synthesis.filtering import RecordFilter, Runner, sandbox_runner

RECORD_SCHEMA = pa.schema([("id", pa.string()), ("kind", pa.string()), ("level", pa.string()),
                           ("input", pa.string()), ("output", pa.string())])
DROP_SCHEMA = pa.schema([("id", pa.string()), ("reason", pa.string()), ("detail", pa.string())])


def raw_shards(raw_dir: Path) -> list[Path]:
    """Finished shards only: a shard without its completion marker means synthesize did not finish."""
    shards = sorted(raw_dir.glob("part-*.parquet"))
    if not shards:
        raise InputDataError(f"{raw_dir}: no synthesized shards; run the synthesize stage first (dvc repro synthesize)")
    unfinished = [s.name for s in shards if not s.with_name(s.name.replace(".parquet", ".done.json")).is_file()]
    if unfinished or list(raw_dir.glob("*.partial.jsonl")):
        raise InputDataError(f"{raw_dir}: synthesize has not finished ({', '.join(unfinished) or 'partial shards'}); "
                             f"rerun it (dvc repro synthesize) - it resumes where it stopped")
    return shards


def clean(params: Params, raw_dir: Path, out_dir: Path, runner: Runner | None = None) -> dict[str, Any]:
    shards = raw_shards(raw_dir)
    index = None
    if params.filter.decontaminate:
        index = NgramIndex.from_benchmarks(params.benchmarks.root, params.benchmarks.decontaminate,
                                           params.corpus.decontamination.ngram)
    record_filter = RecordFilter(params.filter, params.corpus.dedup, index, runner or sandbox_runner(params.filter))
    out = reset_dir(out_dir)
    writer = ShardWriter(out, RECORD_SCHEMA, params.filter.shard_rows)
    drops: list[dict[str, str]] = []
    total = 0
    by_kind: dict[str, int] = {}
    started = time.perf_counter()
    for shard in shards:
        rows = pq.read_table(shard).to_pylist()
        total += len(rows)
        kept, dropped = record_filter.process(rows)
        writer.write_many(kept)
        drops += dropped
        for r in kept:
            by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
    if not writer.close():  # nothing kept: an empty shard, so readers see "0 records", not "missing"
        pq.write_table(RECORD_SCHEMA.empty_table(), out / "part-00000.parquet", compression="zstd")
    pq.write_table(pa.Table.from_pylist(drops, schema=DROP_SCHEMA), out / "drops.parquet", compression="zstd")
    report = record_filter.report
    seconds = time.perf_counter() - started
    return {"input": total, "kept": writer.rows, "keep_rate": round(writer.rows / total, 6) if total else 0.0,
            "kept_by_kind": dict(sorted(by_kind.items())),
            "by_kind": {k: {**v, "dropped_by_reason": dict(sorted(v["dropped_by_reason"].items()))}
                        for k, v in sorted(report.by_kind.items())},
            "dropped": sum(report.dropped.values()), "dropped_by_reason": report.dropped,
            "overlap_by_benchmark": dict(sorted(report.overlap_by_benchmark.items())),
            "executions": dict(sorted(report.executions.items())),
            "timing": {"seconds": round(seconds, 2)}}
