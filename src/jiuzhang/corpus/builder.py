"""The corpus pipeline: documents -> snippets -> filters -> Parquet shards + counts.

Run it through the stage: ``jiuzhang corpus --params params.yaml --out data/corpus ...`` (see dvc.yaml).
Every dropped snippet is counted under its reason; the output is never silently empty.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from tqdm import tqdm

from jiuzhang.common.io import InputDataError, ShardWriter, reset_dir
from jiuzhang.config.corpus import CorpusConfig
from jiuzhang.corpus.decontamination import DecontaminationFilter, NgramIndex
from jiuzhang.corpus.dedup import ExactDuplicateFilter, NearDuplicateFilter
from jiuzhang.corpus.documents import DocumentReader, check_sources_exist
from jiuzhang.corpus.snippets import snippets

SCHEMA = pa.schema([
    ("id", pa.string()),
    ("source", pa.string()),
    ("doc_id", pa.string()),
    ("text", pa.string()),
    ("n_chars", pa.int32()),
    ("all_levels", pa.bool_()),
])

Filter = Callable[[str, str], tuple[bool, str]]


class MinLengthFilter:
    reason = "too_short"

    def __init__(self, min_chars: int):
        self.min_chars = min_chars

    def __call__(self, snippet_id: str, text: str) -> tuple[bool, str]:
        return (True, "") if len(text) >= self.min_chars else (False, self.reason)


def build_filters(cfg: CorpusConfig, index: NgramIndex | None) -> list[Filter]:
    """Cheap filters first; the MinHash filter last so it only sees snippets that survive the rest."""
    filters: list[Filter] = [MinLengthFilter(cfg.min_chars)]
    if cfg.dedup.exact:
        filters.append(ExactDuplicateFilter())
    if index is not None:
        filters.append(DecontaminationFilter(index))
    if cfg.dedup.near:
        d = cfg.dedup
        filters.append(NearDuplicateFilter(d.threshold, d.num_perm, d.shingle_words, d.seed))
    return filters


def build_corpus(cfg: CorpusConfig, root: Path, bench_root: Path, bench_names: tuple[str, ...],
                 out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Build the snippet corpus into ``out_dir``; return the metrics dict."""
    check_sources_exist(cfg.sources, root)
    index = None
    if cfg.decontamination.enabled:
        index = NgramIndex.from_benchmarks(bench_root, bench_names, cfg.decontamination.ngram)
    filters = build_filters(cfg, index)

    out = reset_dir(out_dir)
    writer = ShardWriter(out, SCHEMA, cfg.shard_rows)
    dropped: Counter[str] = Counter()
    per_source: dict[str, dict[str, Any]] = {}
    kept_chars = 0
    for source in cfg.sources:
        reader = DocumentReader(source, root, cfg.on_bad_record)
        counts = Counter()
        for doc in tqdm(reader, desc=f"corpus/{source.name}", unit="doc", disable=not progress, mininterval=2):
            for local_id, text in snippets(doc.text, source.split_by, cfg.cut, source.max_chars or cfg.max_chars,
                                           cfg.max_snippets_per_doc):
                counts["snippets"] += 1
                snippet_id = f"{source.name}/{doc.doc_id}#{local_id}"
                reason = _first_drop(filters, snippet_id, text)
                if reason:
                    dropped[reason] += 1
                    counts[f"dropped_{reason}"] += 1
                    continue
                writer.write({"id": snippet_id, "source": source.name, "doc_id": doc.doc_id, "text": text,
                              "n_chars": len(text), "all_levels": source.all_levels})
                counts["kept"] += 1
                kept_chars += len(text)
        per_source[source.name] = {"documents": reader.documents, "bad_records": dict(reader.bad),
                                   **({"filtered_rows": reader.filtered} if source.row_filter else {}),
                                   **{k: counts[k] for k in sorted(counts)}}
    writer.close()
    if writer.rows == 0:
        raise InputDataError(f"every snippet was dropped ({dict(dropped)}); nothing to write to {out_dir}. "
                             f"Check corpus.min_chars, the sources and the dedup/decontamination settings")
    decontam = next((f for f in filters if isinstance(f, DecontaminationFilter)), None)
    return {
        "kept": writer.rows,
        "kept_chars": kept_chars,
        "shards": len(writer.shards),
        "dropped": {r: dropped[r] for r in ("too_short", "exact_duplicate", "benchmark_overlap", "near_duplicate")},
        "benchmark_overlap_by_benchmark": dict(sorted(decontam.by_benchmark.items())) if decontam else {},
        "benchmark_ngrams": len(index) if index is not None else 0,
        "sources": per_source,
    }


def _first_drop(filters: list[Filter], snippet_id: str, text: str) -> str:
    for f in filters:
        keep, reason = f(snippet_id, text)
        if not keep:
            return reason
    return ""
