"""Exact and near-duplicate removal as datatrove phases, and the log of every dropped document.

Exact: datatrove's ``ExactDedupSignature`` / ``ExactFindDedups`` / ``ExactDedupFilter`` on the normalised
words (:func:`jiuzhang.dataflow.text.canonical`). Near: its four MinHash phases (signatures, buckets,
clusters, filter), which keep sorted signature files on disk instead of an LSH index in memory. Our
``corpus.dedup.threshold`` / ``num_perm`` pick the bands: the split of ``num_perm`` hashes into ``b`` buckets
of ``r`` rows that minimises false positives plus false negatives around the threshold (the rule
datasketch's ``MinHashLSH`` uses, so the settings keep their meaning).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from datatrove.data import Document
from datatrove.pipeline.dedup import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.dedup.exact_dedup import (
    ExactDedupConfig,
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
)
from datatrove.pipeline.writers.parquet import ParquetWriter

from jiuzhang.dataflow.executor import Phases
from jiuzhang.dataflow.shards import RankShard, handoff_writer, read_tables, table_writer
from jiuzhang.dataflow.text import TEXT_NORM, WordTokens, canonical

DROP_SCHEMA = pa.schema([("id", pa.string()), ("reason", pa.string()), ("group", pa.string()),
                         ("detail", pa.string())])


@dataclass(frozen=True)
class DedupSettings:
    """What to deduplicate and how: exact and/or near (MinHash threshold, permutations, shingle words, seed)."""
    exact: bool
    near: bool
    threshold: float
    num_perm: int
    shingle_words: int
    seed: int


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(buckets, rows per bucket) with buckets x rows <= num_perm minimising P(false positive) + P(false negative)."""
    def area(b: int, r: int, lo: float, hi: float, positive: bool) -> float:
        s = np.linspace(lo, hi, 201)
        p = 1 - (1 - s ** r) ** b
        y = p if positive else 1 - p
        return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(s)))

    best, best_err = (1, 1), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            err = 0.5 * area(b, r, 0.0, threshold, True) + 0.5 * area(b, r, threshold, 1.0, False)
            if err < best_err:
                best, best_err = (b, r), err
    return best


def minhash_config(s: DedupSettings) -> MinhashConfig:
    """datatrove's MinHash settings for ``s``: bands and rows from the Jaccard threshold and permutations."""
    buckets, rows = lsh_bands(s.threshold, s.num_perm)
    return MinhashConfig(n_grams=s.shingle_words, num_buckets=buckets, hashes_per_bucket=rows, seed=s.seed,
                         norm_config=TEXT_NORM)


@dataclass(frozen=True)
class DropLog:
    """Every document a filter dropped, with its reason, under ``<work>/drops/<reason>/<rank>.parquet``.

    ``group`` names the metadata key the counts are broken down by (the corpus source, the record kind)."""

    folder: Path
    group: str

    def writer(self, step: str) -> ParquetWriter:
        """The exclusion writer of one filter step; a drop's reason is the step's own ``filter_reason`` or,
        for a step that has none (datatrove's dedup and n-gram filters), the step name."""
        return table_writer(self.folder / step, "${rank}.parquet", DROP_SCHEMA, partial(_drop_row, step, self.group))

    def table(self) -> pa.Table:
        """Every drop written so far, from all ranks and steps (an empty table when none)."""
        return read_tables(self.folder) or DROP_SCHEMA.empty_table()


def _drop_row(step: str, group: str, writer: Any, doc: Document) -> dict[str, Any]:
    md = doc.metadata
    detail = md.get("contaminated_task") or md.get("detail") or ""
    reason = md.get("filter_reason") if md.get("filter_reason") not in (None, "contaminated") else step
    return {"id": doc.id, "reason": reason, "group": str(md.get(group, "")), "detail": str(detail)}


def run_dedup(phases: Phases, checked: Path, metadata: pa.StructType, settings: DedupSettings, drops: DropLog,
              final: Sequence[Any]) -> None:
    """Dedup the hand-off folder ``checked`` (exact, then near), then run ``final`` steps on what is kept."""
    work = phases.work
    source = checked
    exact_filter: list[Any] = []
    if settings.exact:
        cfg = ExactDedupConfig(content_getter=canonical)
        phases.run("exact-signatures", [RankShard(source), ExactDedupSignature(str(work / "exact" / "sigs"), cfg)])
        phases.run("exact-find", [ExactFindDedups(str(work / "exact" / "sigs"), str(work / "exact" / "dups"), cfg)],
                   tasks=1)
        exact_filter = [ExactDedupFilter(str(work / "exact" / "dups"), cfg,
                                         exclusion_writer=drops.writer("exact_duplicate"))]
    if not settings.near:
        phases.run("write", [RankShard(source), *exact_filter, *final])
        return
    mh = minhash_config(settings)
    deduped = work / "exact-kept"
    phases.run("minhash-signatures", [RankShard(source), *exact_filter, handoff_writer(deduped, metadata),
                                      MinhashDedupSignature(str(work / "minhash" / "sigs"), mh, language=WordTokens())])
    phases.run("minhash-buckets", [MinhashDedupBuckets(str(work / "minhash" / "sigs"), str(work / "minhash" / "buckets"),
                                                       config=mh)], tasks=mh.num_buckets)
    phases.run("minhash-clusters", [MinhashDedupCluster(str(work / "minhash" / "buckets"),
                                                        str(work / "minhash" / "remove"), config=mh)], tasks=1)
    phases.run("write", [RankShard(deduped),
                         MinhashDedupFilter(str(work / "minhash" / "remove"), exclusion_writer=drops.writer("near_duplicate")),
                         *final])
