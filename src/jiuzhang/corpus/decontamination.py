"""The "test sets filter": drop text that shares a word n-gram (paper: 13) with any benchmark test question.

Tokens are lower-cased alphanumeric runs, as in the contamination check of ``../shared/corpus/SOURCES.md``.
The index maps each n-gram's hash to the benchmark it came from, so drops are counted per benchmark.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from jiuzhang.benchmarks.registry import iter_questions

_TOKEN = re.compile(r"[a-z0-9]+")


def ngrams(text: str, n: int) -> Iterable[str]:
    tokens = _TOKEN.findall(text.lower())
    return (" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


class NgramIndex:
    """N-grams of benchmark questions -> benchmark name. Python's string hash is per-process random but
    only membership is used, so results do not depend on it."""

    def __init__(self, n: int):
        self.n = n
        self._grams: dict[str, str] = {}
        self.questions: dict[str, int] = {}

    def add(self, benchmark: str, questions: Iterable[str]) -> None:
        count = 0
        for q in questions:
            count += 1
            for gram in ngrams(q, self.n):
                self._grams.setdefault(gram, benchmark)
        self.questions[benchmark] = count

    @classmethod
    def from_benchmarks(cls, root: str | Path, names: Iterable[str], n: int) -> "NgramIndex":
        index = cls(n)
        for name in names:
            index.add(name, iter_questions(root, name))
        return index

    def __len__(self) -> int:
        return len(self._grams)

    def match(self, text: str) -> str | None:
        """The benchmark of the first shared n-gram, or None when the text is clean."""
        for gram in ngrams(text, self.n):
            hit = self._grams.get(gram)
            if hit is not None:
                return hit
        return None


class DecontaminationFilter:
    reason = "benchmark_overlap"

    def __init__(self, index: NgramIndex):
        self.index = index
        self.by_benchmark: dict[str, int] = {}

    def __call__(self, snippet_id: str, text: str) -> tuple[bool, str]:
        hit = self.index.match(text)
        if hit is None:
            return True, ""
        self.by_benchmark[hit] = self.by_benchmark.get(hit, 0) + 1
        return False, self.reason
