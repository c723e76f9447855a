"""The filter stage on datatrove: raw shards -> checks -> test-sets filter -> tool execution -> dedup -> records.

Phase ``read`` runs ``filter.tasks`` ranks (raw shard i goes to rank i % tasks): our
:class:`RawRecords` reader, :class:`~jiuzhang.synthesis.filtering.RecordChecks`, datatrove's
``NGramsDecontFilter``, our :class:`~jiuzhang.synthesis.filtering.ToolExecution`; then datatrove's exact
and MinHash dedup on the problem text (dataflow/dedup.py). Drops are logged with their reasons
(``drops.parquet``, sorted by id) and counted per kind; clean shards are one per rank.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from jiuzhang.common.io import InputDataError, reset_dir
from jiuzhang.config.root import Params
from jiuzhang.dataflow.decontamination import decont_filter, write_index
from jiuzhang.dataflow.dedup import DedupSettings, DropLog, run_dedup
from jiuzhang.dataflow.executor import file_facts, phases_for
from jiuzhang.dataflow.shards import handoff_writer, read_tables, table_writer
from jiuzhang.synthesis.filtering import REASONS, RecordChecks, RecordRules, Runner, ToolExecution, sandbox_runner
from jiuzhang.synthesis.records import to_record

RECORD_SCHEMA = pa.schema([("id", pa.string()), ("kind", pa.string()), ("level", pa.string()),
                           ("input", pa.string()), ("output", pa.string())])
DROP_SCHEMA = pa.schema([("id", pa.string()), ("reason", pa.string()), ("detail", pa.string())])
METADATA = pa.struct([("kind", pa.string()), ("level", pa.string()), ("finish_reason", pa.string()),
                      ("problem", pa.string()), ("solution", pa.string()), ("raw", pa.bool_())])


def raw_shards(raw_dir: Path) -> list[Path]:
    """Finished shards only: a shard without its completion marker means synthesize did not finish."""
    shards = sorted(raw_dir.glob("part-*.parquet"))
    if not shards:
        raise InputDataError(f"{raw_dir}: no synthesized shards; run the synthesize stage first (dvc repro synthesize)")
    unfinished = [s.name for s in shards if not s.with_name(s.name.replace(".parquet", ".done.json")).is_file()]
    if unfinished or any(raw_dir.glob("*.partial.jsonl")):
        raise InputDataError(f"{raw_dir}: synthesize has not finished ({', '.join(unfinished) or 'partial shards'}); "
                             f"rerun it (dvc repro synthesize) - it resumes where it stopped")
    return shards


class RawRecords(PipelineStep):
    """This rank's raw shards (shard i for i % tasks == rank), one document per generation."""

    name = "raw records"
    type = "📖 - READER"

    def __init__(self, shards: list[Path]):
        super().__init__()
        self.shards = shards

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """datatrove's reader entry point: this rank's share of the raw record shards as documents."""
        for shard in self.shards[rank::world_size]:
            for row in pq.read_table(shard, columns=["id", "kind", "level", "text", "finish_reason"]).to_pylist():
                self.stat_update(f"input/{row['kind']}")
                yield Document(text=row["text"], id=row["id"],
                               metadata={"kind": row["kind"], "level": row["level"],
                                         "finish_reason": row["finish_reason"]})


def _dedup_text(data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
    """What dedup compares: the problem (a raw record: its whole text)."""
    for doc in data:
        doc.text = doc.metadata["solution"] if doc.metadata["raw"] else doc.metadata["problem"]
        yield doc


def _record_row(writer: Any, doc: Document) -> dict[str, Any]:
    md = doc.metadata
    record = ({"input": "", "output": md["solution"].strip()} if md["raw"]
              else to_record(md["problem"], md["solution"], md["kind"]))
    return {"id": doc.id, "kind": md["kind"], "level": md["level"], **record}


def clean(params: Params, raw_dir: Path, out_dir: Path, runner: Runner | None = None) -> dict[str, Any]:
    """Filter the raw shards into ``out_dir`` (clean shards + drops.parquet); return the metrics dict."""
    cfg = params.filter
    shards = raw_shards(raw_dir)
    inputs = {"filter": cfg.model_dump(mode="json"), "dedup": params.corpus.dedup.model_dump(mode="json"),
              "benchmarks": [str(params.benchmarks.root), list(params.benchmarks.decontaminate)],
              "ngram": params.corpus.decontamination.ngram, "files": file_facts(shards)}
    phases = phases_for("filter", inputs, cfg.tasks, params.cluster)
    work = phases.work
    drops = DropLog(work / "drops", "kind")
    started = time.perf_counter()
    steps: list[Any] = [RawRecords(shards), RecordChecks(RecordRules.of(cfg), exclusion_writer=drops.writer("checks"))]
    if cfg.decontaminate:
        n = params.corpus.decontamination.ngram
        write_index(work / "ngrams", params.benchmarks.root, params.benchmarks.decontaminate, n)
        steps.append(decont_filter(work / "ngrams", n, drops.writer("benchmark_overlap")))
    if cfg.tool_output != "keep":  # the paper: outputs stay as the model wrote them, nothing runs
        steps.append(ToolExecution(runner or sandbox_runner(cfg.exec_timeout_s, cfg.exec_memory_mb), cfg.exec_workers,
                                   cfg.tool_output, exclusion_writer=drops.writer("execution")))
    d = params.corpus.dedup
    settings = DedupSettings(cfg.exact_dedup, cfg.near_dedup, d.threshold, d.num_perm, d.shingle_words, d.seed)
    staged = work / "out"
    with phases.cluster():
        phases.run("read", [*steps, _dedup_text, handoff_writer(work / "checked", METADATA)])
        run_dedup(phases, work / "checked", METADATA, settings, drops,
                  [table_writer(staged, "part-${rank}.parquet", RECORD_SCHEMA, _record_row)])

    kept = read_tables(staged, "part-*.parquet", ["kind"]) or RECORD_SCHEMA.empty_table()
    dropped = drops.table().sort_by("id")
    metrics = _metrics(phases.totals("read", RawRecords.name), phases.totals("read", ToolExecution.name), kept, dropped,
                       time.perf_counter() - started, has_exec=cfg.tool_output != "keep")
    out = reset_dir(out_dir)
    for shard in sorted(staged.glob("part-*.parquet")):
        shutil.move(str(shard), out / shard.name)
    if kept.num_rows == 0:  # nothing kept: an empty shard, so readers see "0 records", not "missing"
        pq.write_table(RECORD_SCHEMA.empty_table(), out / "part-00000.parquet", compression="zstd")
    pq.write_table(dropped.select(["id", "reason", "detail"]).cast(DROP_SCHEMA), out / "drops.parquet",
                   compression="zstd")
    shutil.rmtree(work, ignore_errors=True)  # done: nothing left to resume
    return metrics


def _metrics(read: Counter[str], last_step: Counter[str], kept: pa.Table, dropped: pa.Table, seconds: float,
             has_exec: bool) -> dict[str, Any]:
    inputs = {k.split("/", 1)[1]: v for k, v in read.items() if k.startswith("input/")}
    total = sum(inputs.values())
    kept_by = Counter(kept.column("kind").to_pylist())
    reasons = dropped.column("reason").to_pylist()
    by_kind_reason = Counter(zip(dropped.column("group").to_pylist(), reasons))
    by_kind = {}
    for kind in sorted(inputs):
        n = inputs[kind]
        by_kind[kind] = {"input": n, "kept": kept_by[kind], "keep_rate": round(kept_by[kind] / n, 6) if n else 0.0,
                         "dropped_by_reason": {r: c for (k, r), c in sorted(by_kind_reason.items()) if k == kind}}
    overlap = Counter(d for r, d in zip(reasons, dropped.column("detail").to_pylist()) if r == "benchmark_overlap")
    executions = {k.split("/", 1)[1]: v for k, v in last_step.items() if k.startswith("exec/")} if has_exec else {}
    counted = Counter(reasons)
    return {"input": total, "kept": kept.num_rows, "keep_rate": round(kept.num_rows / total, 6) if total else 0.0,
            "kept_by_kind": dict(sorted(kept_by.items())), "by_kind": by_kind,
            "dropped": len(reasons), "dropped_by_reason": {r: counted[r] for r in REASONS},
            "overlap_by_benchmark": dict(sorted(overlap.items())),
            "executions": dict(sorted(executions.items())),
            "timing": {"seconds": round(seconds, 2)}}
