"""Registry of the benchmark test sets: where each file is and how its question text is built.

The question builders follow ``../shared/benchmarks/SOURCES.md`` (e.g. SVAMP = Body + "." + Question,
TabMWP = title + table + question). The evaluation stage extends each entry with gold-answer extraction;
the corpus and filter stages use the questions for the 13-gram "test sets filter".
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jiuzhang.errors import UserError


def _join_body(body: str, question: str) -> str:
    body = body.strip()
    if body and not body.endswith("."):
        body += "."
    return f"{body} {question.strip()}".strip()


def _options(raw: Any) -> str:
    """Options are stored as a list or as the repr of a list (AQuA, AGIEval)."""
    if isinstance(raw, str):
        try:
            raw = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw
    if isinstance(raw, (list, tuple)):
        return " ".join(str(o) for o in raw)
    return str(raw)


def _tabmwp(r: dict[str, Any]) -> str:
    parts = [r.get("table_title") or "", r.get("table") or "", r["question"]]
    choices = r.get("choices")
    if choices and choices != "None":
        parts.append(_options(choices))
    return "\n".join(p for p in parts if p)


@dataclass(frozen=True)
class Benchmark:
    name: str
    file: str  # relative to the benchmarks root
    question: Callable[[dict[str, Any]], str]


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in [
    Benchmark("gsm8k", "gsm8k/test.jsonl", lambda r: r["question"]),
    Benchmark("math", "math/test.jsonl", lambda r: r["problem"]),
    Benchmark("math500", "math500/test.jsonl", lambda r: r["problem"]),
    Benchmark("svamp", "svamp/test.jsonl", lambda r: _join_body(r["Body"], r["Question"])),
    Benchmark("asdiv", "asdiv/test.jsonl", lambda r: _join_body(r["body"], r["question"])),
    Benchmark("mawps", "mawps/test.jsonl", lambda r: r["input"]),
    Benchmark("carp_en", "carp_en/test.jsonl", lambda r: r["content"]),
    Benchmark("tabmwp", "tabmwp/test.jsonl", _tabmwp),
    Benchmark("aqua", "aqua/test.jsonl", lambda r: f"{r['question']}\n{_options(r['options'])}"),
    Benchmark("sat_math", "sat_math/test.jsonl", lambda r: f"{r['question']}\n{r['options']}"),
    Benchmark("sat_math_agieval", "sat_math_agieval/test.jsonl",
              lambda r: f"{r.get('passage') or ''}\n{r['question']}\n{_options(r['options'])}".strip()),
    Benchmark("mmlu_stem", "mmlu_stem/test.jsonl", lambda r: f"{r['question']}\n{_options(r['choices'])}"),
    Benchmark("minerva_math", "minerva_math/test.jsonl", lambda r: r["problem"]),
    Benchmark("gsm_hard", "gsm_hard/test.jsonl", lambda r: r["input"]),
]}


class BenchmarkDataError(UserError, ValueError):
    """A benchmark file is missing or malformed; the message names the file and line."""


def iter_questions(root: str | Path, name: str) -> Iterator[str]:
    """Yield the question text of every test example of benchmark ``name`` under ``root``."""
    bench = BENCHMARKS[name]
    path = Path(root) / bench.file
    if not path.is_file():
        raise BenchmarkDataError(f"{path}: benchmark file for '{name}' not found; "
                                 f"check benchmarks.root in the params file")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield bench.question(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise BenchmarkDataError(f"{path}:{lineno}: cannot read the question ({exc!r})") from None
