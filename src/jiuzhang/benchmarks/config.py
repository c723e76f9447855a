"""Typed config of the ``benchmarks`` params section: where the benchmark test sets are."""

from __future__ import annotations

from pydantic import Field, field_validator

from jiuzhang.config.base_model import Section


class BenchmarksConfig(Section):
    """The benchmark test sets (read in place from ``root``; never copied into the repo)."""

    root: str = Field(description="Folder with '<name>/test.jsonl' per benchmark, relative to the project root.")
    decontaminate: tuple[str, ...] = Field(strict=False, min_length=1, description=(
        "Benchmarks whose test questions no training text may overlap (the 'test sets filter')."))

    @field_validator("decontaminate")
    @classmethod
    def _known(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from jiuzhang.benchmarks.registry import BENCHMARKS

        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            raise ValueError(f"unknown benchmark(s) {unknown}; known: {', '.join(sorted(BENCHMARKS))}")
        return names
