"""Per-benchmark evaluation facts: how to read the gold answer, how to grade, which rows carry a worked
solution, and how many few-shot exemplars the paper uses (``../shared/benchmarks/SOURCES.md``,
docs/method.md, 'Pre-training and evaluation'). Question texts and the rows (``load_rows``, re-exported here) come from
:mod:`jiuzhang.benchmarks.registry`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jiuzhang.benchmarks.registry import BENCHMARKS, load_rows
from jiuzhang.evaluation.answers import LETTERS, last_boxed, options_of


def _gsm8k_gold(r: dict[str, Any]) -> str:
    return r["answer"].split("####")[-1].strip().replace(",", "")


def _asdiv_gold(r: dict[str, Any]) -> str:
    return re.sub(r"\s*\(.*?\)\s*$", "", str(r["answer"])).strip()


def _number(v: Any) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() else repr(f)


def _boxed_gold(field: str) -> Callable[[dict[str, Any]], str]:
    def gold(r: dict[str, Any]) -> str:
        ans = last_boxed(r[field])
        if ans is None:
            raise KeyError(f"no \\boxed{{}} in '{field}'")
        return ans
    return gold


@dataclass(frozen=True)
class Task:
    """How one benchmark is graded: its kind, gold answer, exemplar count, options and worked solution."""
    name: str
    kind: str                                         # numeric | symbolic | choice | mixed
    gold: Callable[[dict[str, Any]], str]
    shots: int = 0                                    # paper: AQuA 4 (its 4 exemplars), SAT-Math and MMLU-STEM 5
    options: Callable[[dict[str, Any]], list[str]] | None = None
    solution: Callable[[dict[str, Any]], str | None] | None = None   # a worked gold solution, if the file has one

    def question(self, row: dict[str, Any]) -> str:
        """The benchmark's question; a True/False or Yes/No item says so, as the paper's parser appends."""
        text = BENCHMARKS[self.name].question(row)
        gold = self.gold(row).strip().lower()
        suffix = {"true": " (True or False)", "false": " (True or False)", "yes": " (Yes or No)",
                  "no": " (Yes or No)"}.get(gold, "")
        return text.strip() + suffix


TASKS: dict[str, Task] = {t.name: t for t in [
    Task("gsm8k", "numeric", _gsm8k_gold, solution=lambda r: r["answer"]),
    Task("math", "symbolic", _boxed_gold("solution"), solution=lambda r: r["solution"]),
    Task("math500", "symbolic", lambda r: r["answer"], solution=lambda r: r["solution"]),
    Task("minerva_math", "symbolic", _boxed_gold("solution"), solution=lambda r: r["solution"]),
    Task("svamp", "numeric", lambda r: _number(r["Answer"]),
         solution=lambda r: f"{r['Equation'].strip()} = {_number(r['Answer'])}. The answer is {_number(r['Answer'])}."),
    Task("asdiv", "mixed", _asdiv_gold),
    Task("mawps", "numeric", lambda r: _number(r["target"])),
    Task("gsm_hard", "numeric", lambda r: _number(r["target"])),
    Task("carp_en", "symbolic", lambda r: r["answer"], solution=lambda r: r["steps"]),
    Task("tabmwp", "mixed", lambda r: str(r["answer"]), options=lambda r: options_of(r.get("choices")),
         solution=lambda r: r.get("solution")),
    Task("aqua", "choice", lambda r: r["correct"].strip(), shots=4, options=lambda r: options_of(r["options"])),
    Task("sat_math", "choice", lambda r: r["Answer"].strip(), shots=5, options=lambda r: options_of(r["options"])),
    Task("sat_math_agieval", "choice", lambda r: r["label"].strip(), options=lambda r: options_of(r["options"]),
         solution=lambda r: ((r.get("other") or {}).get("solution"))),
    Task("mmlu_stem", "choice", lambda r: LETTERS[int(r["answer"])], shots=5, options=lambda r: options_of(r["choices"])),
]}


__all__ = ["TASKS", "Task", "load_rows"]
