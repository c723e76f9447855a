"""The filter stage's own checks, as datatrove filter blocks: parse and validate, then run tool code.

Checks run cheapest first and each drop names one reason (counted in ``results/filter.json``):
``overlong_prompt``, ``truncated``, the parse reasons (``empty``, ``refusal``, ``missing_problem``,
``missing_solution``), ``missing_answer``, ``no_code`` (:class:`RecordChecks`); ``benchmark_overlap``
(datatrove's ``NGramsDecontFilter``, synthesis/cleaning.py); ``code_error``, ``code_timeout``,
``output_mismatch`` (:class:`ToolExecution`); last ``exact_duplicate`` / ``near_duplicate`` (datatrove's
dedup phases, after execution, so the copy that is kept is one that passed). Parsing a generation into a
problem and a solution and running its code in our sandbox have no datatrove block: they are ours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from jiuzhang.config.synthesis import FilterConfig
from jiuzhang.sandbox.process import Execution, Limits, run_many, run_python
from jiuzhang.synthesis.records import has_answer, outputs_match, parse_generation, program, stored_output, with_output

REASONS = ("overlong_prompt", "truncated", "empty", "refusal", "missing_problem", "missing_solution",
           "missing_answer", "benchmark_overlap", "no_code", "code_error", "code_timeout", "output_mismatch",
           "exact_duplicate", "near_duplicate")

Runner = Callable[[str], Execution]


def sandbox_runner(timeout_s: float, memory_mb: int) -> Runner:
    """A function that runs a program in the sandbox under these time and memory limits."""
    limits = Limits.for_timeout(timeout_s, memory_mb)
    return lambda code: run_python(code, limits)


@dataclass(frozen=True)
class RecordRules:
    """What :func:`verdict` checks, as plain values (the filter section's fields of the same names)."""
    drop_truncated: bool = True
    min_problem_chars: int = 20
    parse_drops: bool = True
    require_answer: bool = True

    @classmethod
    def of(cls, cfg: FilterConfig) -> RecordRules:
        """From the ``filter`` section."""
        return cls(cfg.drop_truncated, cfg.min_problem_chars, cfg.parse_drops, cfg.require_answer)


@dataclass(frozen=True)
class Verdict:
    """The filter's verdict on one record: the drop reason (None: kept) and the parsed problem and solution."""
    reason: str | None = None
    problem: str = ""
    solution: str = ""
    raw: bool = False        # kept as the model wrote it (filter.parse_drops off): no problem/solution split


def verdict(text: str, finish_reason: str, kind: str, cfg: RecordRules) -> Verdict:
    """The checks that need nothing but the generation itself."""
    if finish_reason == "overlong":
        return Verdict("overlong_prompt")
    if cfg.drop_truncated and finish_reason == "length":
        return Verdict("truncated")
    draft = parse_generation(text, finish_reason, cfg.min_problem_chars)
    if draft.reason and (cfg.parse_drops or draft.reason == "empty"):
        return Verdict(draft.reason)
    if draft.reason:  # the paper kept what it could not parse: the record is the text as generated
        return Verdict(None, "", text, raw=True)
    problem, solution = draft.problem or "", draft.solution or ""
    if cfg.require_answer and not has_answer(solution, kind):
        return Verdict("missing_answer")
    if kind == "tool" and program(solution) is None and cfg.parse_drops:
        return Verdict("no_code")
    return Verdict(None, problem, solution)


class RecordChecks(BaseFilter):
    """Parse and validate each generation; a kept one carries its problem and solution in its metadata and,
    as its text, what the test-sets filter reads (problem and solution, or the raw text)."""

    name = "record checks"

    def __init__(self, rules: RecordRules, exclusion_writer: DiskWriter | None = None):
        super().__init__(exclusion_writer)
        self.rules = rules

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        """datatrove's filter entry point: keep a parseable record, else drop it with its reason."""
        md = doc.metadata
        v = verdict(doc.text, md["finish_reason"], md["kind"], self.rules)
        if v.reason:
            return False, v.reason
        md.update(problem=v.problem, solution=v.solution, raw=v.raw)
        doc.text = v.solution if v.raw else v.problem + "\n" + v.solution
        return True


class ToolExecution(BaseFilter):
    """Run each tool record's program in the sandbox (each distinct program of a batch once, ``exec_workers``
    at a time) and keep the record only when it ran; 'verify' also needs the printed output to match the
    stored one, 'replace' writes the printed output into the solution."""

    name = "tool execution"

    def __init__(self, runner: Runner, workers: int, tool_output: str, exclusion_writer: DiskWriter | None = None,
                 batch_size: int = 256):
        super().__init__(exclusion_writer, batch_size=batch_size)
        self.runner, self.workers, self.tool_output = runner, workers, tool_output

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        """datatrove's filter entry point for one document (see :meth:`filter_batch`)."""
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        """Run the batch's tool programs in the sandbox (each distinct program once), keep those whose output matches."""
        codes = [program(d.metadata["solution"]) if d.metadata["kind"] == "tool" and not d.metadata["raw"] else None
                 for d in batch]
        distinct = list(dict.fromkeys(c for c in codes if c is not None))
        results = dict(zip(distinct, run_many(distinct, workers=self.workers, runner=self.runner)))
        return [True if code is None else self._judge(doc, results[code]) for doc, code in zip(batch, codes)]

    def _judge(self, doc: Document, ex: Execution) -> bool | tuple[bool, str]:
        md: dict[str, Any] = doc.metadata
        self.stat_update(f"exec/{ex.status}")
        if ex.status == "timeout":
            return False, "code_timeout"
        if ex.status != "ok":
            md["detail"] = ex.error_line[:200]
            return False, "code_error"
        if self.tool_output == "replace":
            md["solution"] = with_output(md["solution"], ex.stdout)
            return True
        stored = stored_output(md["solution"])
        if stored is None or not outputs_match(stored, ex.stdout):
            md["detail"] = f"stored {stored!r:.60} printed {ex.stdout!r:.60}"
            return False, "output_mismatch"
        return True
