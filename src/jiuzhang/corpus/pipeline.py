"""The corpus pipeline on datatrove: documents -> snippets -> filters -> dedup -> Parquet shards + counts.

Run it through the stage: ``jiuzhang corpus --params params.yaml --out data/corpus ...`` (see dvc.yaml).

Phases (each a datatrove executor of ``corpus.tasks`` ranks; rank r takes every tasks-th document):
``read`` our :class:`SnippetSource` (reading the sources and cutting snippets is ours: datatrove has no
block for pinned HF revisions, row filters, joined fields or the paper's snippet rules), datatrove's
``LambdaFilter`` (length) and ``NGramsDecontFilter`` (13-gram test-sets filter, index written offline:
dataflow/decontamination.py); then datatrove's exact dedup and MinHash phases (dataflow/dedup.py); then the
shards. Every dropped snippet is logged with its reason and counted; the output is never silently empty.
Output rows keep their schema and ids (``<source>/<doc_id>#<part>.<piece>``); shards are one per rank,
``part-<rank>.parquet``, in the order the rank read its documents.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters import LambdaFilter

from jiuzhang.common.io import InputDataError, reset_dir
from jiuzhang.config.cluster import ClusterConfig
from jiuzhang.config.corpus import CorpusConfig, SourceConfig
from jiuzhang.corpus.documents import DocumentReader, check_sources_exist
from jiuzhang.corpus.snippets import snippets
from jiuzhang.dataflow.decontamination import decont_filter, write_index
from jiuzhang.dataflow.dedup import DedupSettings, DropLog, run_dedup
from jiuzhang.dataflow.executor import Phases, file_facts, phases_for
from jiuzhang.dataflow.shards import handoff_writer, read_tables, table_writer

SCHEMA = pa.schema([
    ("id", pa.string()),
    ("source", pa.string()),
    ("doc_id", pa.string()),
    ("text", pa.string()),
    ("n_chars", pa.int32()),
    ("all_levels", pa.bool_()),
])
METADATA = pa.struct([("source", pa.string()), ("doc_id", pa.string()), ("all_levels", pa.bool_())])
REASONS = ("too_short", "exact_duplicate", "benchmark_overlap", "near_duplicate")


class SnippetSource(PipelineStep):
    """Read every source and yield this rank's snippets (:meth:`DocumentReader.owned`).

    A local file is read by every rank, each cutting only its own documents; bad records are then counted
    by rank 0 only (every rank sees them), or stop every rank with ``file:line`` under ``on_bad_record: error``."""

    name = "snippets"
    type = "📖 - READER"

    def __init__(self, cfg: CorpusConfig, root: Path):
        super().__init__()
        self.cfg, self.root = cfg, root

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """datatrove's reader entry point: the snippets of every configured source for this rank."""
        for source in self.cfg.sources:
            yield from self._source(source, rank, world_size)

    def _source(self, source: SourceConfig, rank: int, world_size: int) -> Iterator[Document]:
        cfg = self.cfg
        reader = DocumentReader(source, self.root, cfg.on_bad_record)
        for doc in reader.owned(rank, world_size):
            self.stat_update(f"{source.name}/documents")
            for local_id, text in snippets(doc.text, source.split_by, cfg.cut, source.max_chars or cfg.max_chars,
                                           cfg.max_snippets_per_doc):
                self.stat_update(f"{source.name}/snippets")
                yield Document(text=text, id=f"{source.name}/{doc.doc_id}#{local_id}",
                               metadata={"source": source.name, "doc_id": doc.doc_id,
                                         "all_levels": source.all_levels})
        if rank == 0 or reader.split is not None:  # bad rows: seen by every rank, unless each reads its own part
            for reason, n in reader.bad.items():
                self.stat_update(f"{source.name}/bad/{reason}", value=n)
            if reader.filtered:
                self.stat_update(f"{source.name}/filtered_rows", value=reader.filtered)


def _long_enough(min_chars: int, doc: Document) -> bool:
    return len(doc.text) >= min_chars


def _corpus_row(writer: Any, doc: Document) -> dict[str, Any]:
    md = doc.metadata
    return {"id": doc.id, "source": md["source"], "doc_id": md["doc_id"], "text": doc.text,
            "n_chars": len(doc.text), "all_levels": bool(md["all_levels"])}


def build_corpus(cfg: CorpusConfig, root: Path, bench_root: Path, bench_names: tuple[str, ...],
                 out_dir: Path, cluster: ClusterConfig | None = None) -> dict[str, Any]:
    """Build the snippet corpus into ``out_dir``; return the metrics dict."""
    check_sources_exist(cfg.sources, root)
    local = [root / s.path for s in cfg.sources if s.format == "jsonl" and s.path is not None]
    inputs = {"corpus": cfg.model_dump(mode="json"), "benchmarks": [str(bench_root), list(bench_names)],
              "files": file_facts(local)}
    phases = phases_for("corpus", inputs, cfg.tasks, cluster)
    with phases.cluster():
        return _run(cfg, root, bench_root, bench_names, out_dir, phases)


def _run(cfg: CorpusConfig, root: Path, bench_root: Path, bench_names: tuple[str, ...], out_dir: Path,
         phases: Phases) -> dict[str, Any]:
    work = phases.work
    drops = DropLog(work / "drops", "source")
    steps: list[Any] = [SnippetSource(cfg, root),
                        LambdaFilter(partial(_long_enough, cfg.min_chars), exclusion_writer=drops.writer("too_short"))]
    ngram_counts: dict[str, int] = {}
    if cfg.decontamination.enabled:
        ngram_counts = write_index(work / "ngrams", bench_root, bench_names, cfg.decontamination.ngram)
        steps.append(decont_filter(work / "ngrams", cfg.decontamination.ngram, drops.writer("benchmark_overlap")))
    phases.run("read", [*steps, handoff_writer(work / "read", METADATA)])

    d = cfg.dedup
    settings = DedupSettings(d.exact, d.near, d.threshold, d.num_perm, d.shingle_words, d.seed)
    staged = work / "out"
    run_dedup(phases, work / "read", METADATA, settings, drops,
              [table_writer(staged, "part-${rank}.parquet", SCHEMA, _corpus_row)])

    kept = read_tables(staged, "part-*.parquet", ["source", "n_chars"])
    if kept is None or kept.num_rows == 0:
        dropped = Counter(drops.table().column("reason").to_pylist())
        raise InputDataError(f"every snippet was dropped ({dict(dropped)}); nothing to write to {out_dir}. "
                             f"Check corpus.min_chars, the sources and the dedup/decontamination settings")
    metrics = _metrics(cfg, phases, kept, drops.table(), ngram_counts)
    out = reset_dir(out_dir)
    for shard in sorted(staged.glob("part-*.parquet")):
        shutil.move(str(shard), out / shard.name)
    shutil.rmtree(work, ignore_errors=True)  # done: nothing left to resume
    return metrics


def _metrics(cfg: CorpusConfig, phases: Phases, kept: pa.Table, dropped: pa.Table,
             ngram_counts: dict[str, int]) -> dict[str, Any]:
    read = phases.totals("read", SnippetSource.name)
    per_source: dict[str, dict[str, Any]] = {}
    kept_by = Counter(kept.column("source").to_pylist())
    drop_by = Counter(zip(dropped.column("group").to_pylist(), dropped.column("reason").to_pylist()))
    for s in cfg.sources:
        n = s.name
        counts = {"kept": kept_by[n], "snippets": read[f"{n}/snippets"],
                  **{f"dropped_{r}": drop_by[(n, r)] for r in REASONS if drop_by[(n, r)]}}
        per_source[n] = {"documents": read[f"{n}/documents"],
                         "bad_records": {k.split("/")[-1]: v for k, v in sorted(read.items())
                                         if k.startswith(f"{n}/bad/")},
                         **({"filtered_rows": read[f"{n}/filtered_rows"]} if s.row_filter else {}),
                         **{k: counts[k] for k in sorted(counts)}}
    reasons = Counter(dropped.column("reason").to_pylist())
    overlap = dropped.filter(pc.equal(dropped.column("reason"), "benchmark_overlap")).column("detail").to_pylist()
    return {
        "kept": kept.num_rows,
        "kept_chars": int(pc.sum(kept.column("n_chars")).as_py()),
        "shards": len({p for p in (phases.work / "out").glob("part-*.parquet")}),
        "tasks": phases.tasks,
        "dropped": {r: reasons[r] for r in REASONS},
        "benchmark_overlap_by_benchmark": dict(sorted(Counter(overlap).items())),
        "benchmark_ngrams": sum(ngram_counts.values()),
        "sources": per_source,
    }
