"""Evaluation prompts: the paper's template, zero-shot except the 5-shot benchmarks, whose exemplars are
data files (``templates/eval/fewshot/<benchmark>.jsonl``), never Python string literals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jiuzhang.common.io import InputDataError
from jiuzhang.evaluation.tasks import Task

HEADINGS = {"nl": "## Solution\n", "tool": "## Code Solution\n"}


def load_fewshot(folder: str | Path, task: Task) -> list[dict[str, str]]:
    """The task's few-shot exemplars from ``folder`` (none for a zero-shot task); a bad file names its line."""
    if not task.shots:
        return []
    path = Path(folder) / f"{task.name}.jsonl"
    if not path.is_file():
        raise InputDataError(f"{path}: {task.name} is evaluated {task.shots}-shot but has no exemplar file; "
                             f"add {task.shots} lines of {{\"question\", \"solution\"}} (eval.fewshot_dir)")
    shots = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(shots) < task.shots:
        raise InputDataError(f"{path}: {len(shots)} exemplars, {task.name} needs {task.shots}")
    return shots[:task.shots]


def neutral_prompt(task: Task, row: dict[str, Any], shots: list[dict[str, str]]) -> str:
    """The held-out loss's second format: ``Question: ...`` / ``Answer:``, which shares no marker with the
    paper's template (nor with the synthetic records, whose input is that template): a model that only
    learnt the template gains nothing here."""
    head = "".join(f"Question: {s['question'].strip()}\nAnswer:\n{s['solution'].strip()}\n\n\n" for s in shots)
    return f"{head}Question: {task.question(row).strip()}\nAnswer:\n"


def build_prompt(task: Task, row: dict[str, Any], setting: str, shots: list[dict[str, str]]) -> str:
    """The prompt for one row: the exemplars, then the question and the heading of ``setting`` (NL or code)."""
    head = "".join(f"## Question\n{s['question'].strip()}\n\n## Solution\n{s['solution'].strip()}\n\n\n" for s in shots)
    return f"{head}## Question\n{task.question(row).strip()}\n\n{HEADINGS[setting]}"
