"""The filter stage's pipeline: raw generations -> validated, executed, deduplicated, decontaminated records.

Checks run cheapest first and each drop names one reason (counted in ``metrics/filter.json``):
``overlong_prompt``, ``truncated``, the parse reasons (``empty``, ``refusal``, ``missing_problem``,
``missing_solution``), ``missing_answer``, ``benchmark_overlap``, then for tool records ``no_code``,
``code_error``, ``code_timeout``, ``output_mismatch``, and last ``exact_duplicate`` / ``near_duplicate``
(after execution, so the copy that is kept is one that passed). Dedup and the n-gram index are the
corpus stage's own filters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jiuzhang.config.corpus import DedupConfig
from jiuzhang.corpus.decontamination import NgramIndex
from jiuzhang.corpus.dedup import ExactDuplicateFilter, NearDuplicateFilter
from jiuzhang.sandbox.runner import Execution, Limits, run_many, run_python
from jiuzhang.config.synthesis import FilterConfig
from jiuzhang.synthesis.records import (has_answer, outputs_match, parse_generation, program, stored_output,
                                        to_record, with_output)

REASONS = ("overlong_prompt", "truncated", "empty", "refusal", "missing_problem", "missing_solution",
           "missing_answer", "benchmark_overlap", "no_code", "code_error", "code_timeout", "output_mismatch",
           "exact_duplicate", "near_duplicate")


@dataclass
class Candidate:
    row: dict[str, Any]
    problem: str = ""
    solution: str = ""
    reason: str | None = None
    detail: str = ""
    raw: bool = False        # kept as the model wrote it (filter.parse_drops off): no problem/solution split


@dataclass
class FilterReport:
    dropped: dict[str, int] = field(default_factory=lambda: {r: 0 for r in REASONS})
    overlap_by_benchmark: dict[str, int] = field(default_factory=dict)
    executions: dict[str, int] = field(default_factory=dict)
    # kind -> {"input", "kept", "keep_rate", "dropped_by_reason" (non-zero reasons only)}: a keep rate per kind
    by_kind: dict[str, dict[str, Any]] = field(default_factory=dict)

    def count(self, kind: str, reason: str | None) -> None:
        k = self.by_kind.setdefault(kind, {"input": 0, "kept": 0, "keep_rate": 0.0, "dropped_by_reason": {}})
        k["input"] += 1
        if reason is None:
            k["kept"] += 1
        else:
            k["dropped_by_reason"][reason] = k["dropped_by_reason"].get(reason, 0) + 1
        k["keep_rate"] = round(k["kept"] / k["input"], 6)


Runner = Callable[[str], Execution]


def sandbox_runner(cfg: FilterConfig) -> Runner:
    limits = Limits.for_timeout(cfg.exec_timeout_s, cfg.exec_memory_mb)
    return lambda code: run_python(code, limits)


def _check(c: Candidate, cfg: FilterConfig, index: NgramIndex | None, report: FilterReport) -> None:
    row = c.row
    if row["finish_reason"] == "overlong":
        c.reason = "overlong_prompt"
        return
    if cfg.drop_truncated and row["finish_reason"] == "length":
        c.reason = "truncated"
        return
    draft = parse_generation(row["text"], row["finish_reason"], cfg.min_problem_chars)
    if draft.reason and (cfg.parse_drops or draft.reason == "empty"):
        c.reason = draft.reason
        return
    if draft.reason:  # the paper kept what it could not parse: the record is the text as generated
        c.raw, c.solution = True, row["text"]
        hit = index.match(row["text"]) if index is not None else None
        if hit:
            c.reason, c.detail = "benchmark_overlap", hit
            report.overlap_by_benchmark[hit] = report.overlap_by_benchmark.get(hit, 0) + 1
        return
    c.problem, c.solution = draft.problem or "", draft.solution or ""
    if cfg.require_answer and not has_answer(c.solution, row["kind"]):
        c.reason = "missing_answer"
        return
    if index is not None:
        hit = index.match(c.problem + "\n" + c.solution)
        if hit:
            c.reason, c.detail = "benchmark_overlap", hit
            report.overlap_by_benchmark[hit] = report.overlap_by_benchmark.get(hit, 0) + 1
            return
    if row["kind"] == "tool" and program(c.solution) is None and cfg.parse_drops:
        c.reason = "no_code"


def _execute(candidates: list[Candidate], cfg: FilterConfig, runner: Runner, report: FilterReport) -> None:
    if cfg.tool_output == "keep":  # the paper: outputs stay as the model wrote them, nothing runs
        return
    tool = [c for c in candidates if c.reason is None and c.row["kind"] == "tool" and program(c.solution) is not None]
    codes = [program(c.solution) for c in tool]
    distinct = list(dict.fromkeys(codes))  # each distinct program runs once
    results = dict(zip(distinct, run_many(distinct, workers=cfg.exec_workers, runner=runner)))
    for c, code in zip(tool, codes):
        ex = results[code]
        report.executions[ex.status] = report.executions.get(ex.status, 0) + 1
        if ex.status == "timeout":
            c.reason = "code_timeout"
        elif ex.status != "ok":
            c.reason, c.detail = "code_error", ex.error_line[:200]
        elif cfg.tool_output == "replace":
            c.solution = with_output(c.solution, ex.stdout)
        else:
            stored = stored_output(c.solution)
            if stored is None or not outputs_match(stored, ex.stdout):
                c.reason, c.detail = "output_mismatch", f"stored {stored!r:.60} printed {ex.stdout!r:.60}"


class RecordFilter:
    """Filters raw shards one at a time (memory bounded by a shard), with dedup state across all of them."""

    def __init__(self, cfg: FilterConfig, dedup: DedupConfig, index: NgramIndex | None, runner: Runner):
        self.cfg, self.index, self.runner = cfg, (index if cfg.decontaminate else None), runner
        self.report = FilterReport()
        self.filters: list = [ExactDuplicateFilter()] if cfg.exact_dedup else []
        if cfg.near_dedup:
            self.filters.append(NearDuplicateFilter(dedup.threshold, dedup.num_perm, dedup.shingle_words, dedup.seed))

    def process(self, rows: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """(kept records, drops {id, reason, detail}); output order = input order."""
        candidates = [Candidate(r) for r in rows]
        for c in candidates:
            _check(c, self.cfg, self.index, self.report)
        _execute(candidates, self.cfg, self.runner, self.report)
        kept, drops = [], []
        for c in candidates:
            if c.reason is None:
                for f in self.filters:
                    ok, reason = f(c.row["id"], c.problem)
                    if not ok:
                        c.reason = reason
                        break
            self.report.count(c.row["kind"], c.reason)
            if c.reason is None:
                record = {"input": "", "output": c.solution.strip()} if c.raw else to_record(c.problem, c.solution,
                                                                                            c.row["kind"])
                kept.append({"id": c.row["id"], "kind": c.row["kind"], "level": c.row["level"], **record})
            else:
                self.report.dropped[c.reason] += 1
                drops.append({"id": c.row["id"], "reason": c.reason, "detail": c.detail})
        return kept, drops
