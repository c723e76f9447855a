"""Registry of the benchmark test sets: where each file is and how its question text is built.

The question builders follow ``../shared/benchmarks/SOURCES.md`` (e.g. SVAMP = Body + "." + Question) and,
for multiple-choice sets and TabMWP, the paper's own formats (RUCAIBox/JiuZhang3.0 @ aae2f911,
``eval/parser.py``: ``Answer Choices: (A) ...``, the TabMWP lead-in), so scores are comparable. The evaluation stage extends each entry with gold-answer extraction;
the corpus and filter stages use the questions for the 13-gram "test sets filter".
"""

from __future__ import annotations

import ast
import json
import re
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
    """The paper's TabMWP lead-in (RUCAIBox/JiuZhang3.0 eval/parser.py ``parse_question``); the choices are
    printed as the Python list they are, as there."""
    title = f'regarding "{r["table_title"]}" ' if r.get("table_title") else ""
    question = f"Read the following table {title}and answer a question:\n{r['table']}\n{r['question']}"
    choices = r.get("choices")
    if choices and choices != "None":
        question += f" Please select from the following options: {choices}"
    return question


def _lettered(options: list[str]) -> str:
    """``Answer Choices: (A) x (B) y ...``: the paper's multiple-choice format (MMLU-STEM, SAT-Math, AQuA)."""
    return "Answer Choices: " + " ".join(f"({letter}) {str(o).strip()}" for letter, o in zip("ABCDE", options))


def _mmlu(r: dict[str, Any]) -> str:
    choices = r["choices"] if isinstance(r["choices"], list) else ast.literal_eval(r["choices"])
    return f"{r['question'].strip()}\n{_lettered(choices)}"


def _sat(r: dict[str, Any]) -> str:
    """Options come as one string "A) .. B) ..": each letter gets its parenthesis, as the paper's parser does."""
    options = "(" + r["options"].strip()
    for letter in "BCD":
        options = re.sub(f" {letter}\\) ", f" ({letter}) ", options)
    return f"{r['question'].strip()}\nAnswer Choices: {options}"


def _aqua(r: dict[str, Any]) -> str:
    """The paper's AQuA format, byte for byte: its parser appends "Answer Choices: ..." to the question with no
    separator (``question.strip() + choice``), and its published AQuA number was measured so."""
    options = r["options"] if isinstance(r["options"], list) else ast.literal_eval(r["options"])
    choice = ("(" + "(".join(options)).replace("(", " (").replace(")", ") ").strip()
    return r["question"].strip() + "Answer Choices: " + choice


@dataclass(frozen=True)
class Benchmark:
    """One benchmark test set: its name, its file under the benchmarks root and how a row becomes a question."""
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
    Benchmark("aqua", "aqua/test.jsonl", _aqua),
    Benchmark("sat_math", "sat_math/test.jsonl", _sat),
    Benchmark("sat_math_agieval", "sat_math_agieval/test.jsonl",
              lambda r: f"{r.get('passage') or ''}\n{r['question']}\n{_options(r['options'])}".strip()),
    Benchmark("mmlu_stem", "mmlu_stem/test.jsonl", _mmlu),
    Benchmark("minerva_math", "minerva_math/test.jsonl", lambda r: r["problem"]),
    Benchmark("gsm_hard", "gsm_hard/test.jsonl", lambda r: r["input"]),
]}


class BenchmarkDataError(UserError, ValueError):
    """A benchmark file is missing or malformed; the message names the file and line."""


def _numbered_rows(root: str | Path, name: str) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(file, line number, row) of every row of benchmark ``name``; a missing file or a bad line is a
    BenchmarkDataError naming them."""
    if name not in BENCHMARKS:
        raise BenchmarkDataError(f"unknown benchmark '{name}'; known: {', '.join(sorted(BENCHMARKS))}")
    path = Path(root) / BENCHMARKS[name].file
    if not path.is_file():
        raise BenchmarkDataError(f"{path}: benchmark file for '{name}' not found; "
                                 f"check benchmarks.root in the params file")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield str(path), lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkDataError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None


def load_rows(root: str | Path, name: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The test rows of benchmark ``name`` under ``root`` (the first ``limit``), each with its row number as
    ``_idx``: the one reader of benchmark files (evaluation, the plan, the test-sets filter)."""
    rows: list[dict[str, Any]] = []
    for _, _, row in _numbered_rows(root, name):
        rows.append({**row, "_idx": len(rows)})
        if limit is not None and len(rows) >= limit:
            break
    return rows


def iter_questions(root: str | Path, name: str) -> Iterator[str]:
    """Yield the question text of every test example of benchmark ``name`` under ``root``."""
    bench = BENCHMARKS[name]
    for path, lineno, row in _numbered_rows(root, name):
        try:
            yield bench.question(row)
        except (KeyError, TypeError) as exc:
            raise BenchmarkDataError(f"{path}:{lineno}: cannot read the question ({exc!r})") from None
