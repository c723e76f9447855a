"""Typed config of the ``benchmarks`` params section: where the benchmark test sets are."""

from __future__ import annotations

from pydantic import Field, field_validator

from jiuzhang.config.base_model import Section

# The benchmarks the registry (jiuzhang.benchmarks.registry) and the evaluator (jiuzhang.evaluation.tasks)
# know; named here so validating a params file does not import them (every stage validates the whole
# file, so every stage would otherwise depend on the grader's code). tests/config/test_config.py keeps the three
# lists equal.
BENCHMARK_NAMES = ("aqua", "asdiv", "carp_en", "gsm8k", "gsm_hard", "math", "math500", "mawps", "minerva_math",
                   "mmlu_stem", "sat_math", "sat_math_agieval", "svamp", "tabmwp")


def unknown_benchmarks(names) -> str | None:
    """The error for names that are not benchmarks, or None."""
    unknown = [n for n in names if n not in BENCHMARK_NAMES]
    return f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARK_NAMES)}" if unknown else None


class BenchmarksConfig(Section):
    """The benchmark test sets (read in place from ``root``; never copied into the repo)."""

    root: str = Field(description="Folder with '<name>/test.jsonl' per benchmark, relative to the project root.")
    decontaminate: tuple[str, ...] = Field(strict=False, min_length=1, description=(
        "Benchmarks whose test questions no training text may overlap (the 'test sets filter')."))

    @field_validator("decontaminate")
    @classmethod
    def _known(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        problem = unknown_benchmarks(names)
        if problem:
            raise ValueError(problem)
        return names
