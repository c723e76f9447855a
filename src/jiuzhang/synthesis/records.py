"""From a synthesizer generation to a pre-training record, the paper's format:

``{"input": "## Question\\n{problem}\\n\\n## Solution\\n", "output": solution}`` (tool records end the input
with ``## Code Solution\\n``). The generation is parsed with the same parser as the teacher's answers
(``[Problem]: ... [Solution]: ...`` and the variants models write).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jiuzhang.teacher.parsing import parse_completion

CODE_RE = re.compile(r"```(?:python|py)[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
OUTPUT_RE = re.compile(r"```output[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
ANSWER_RE = re.compile(r"\\boxed\s*\{|the (?:final )?answer is", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Draft:
    """A generation parsed into problem and solution, or the reason it cannot become a record."""
    problem: str | None
    solution: str | None
    reason: str | None       # why it cannot become a record; None when it can


def parse_generation(text: str, finish_reason: str, min_problem_chars: int) -> Draft:
    """``text`` parsed into a Draft; too short a problem or a missing part is a reason to drop it."""
    parsed = parse_completion(text, "stop")  # truncation is judged by the filter, from finish_reason
    if not parsed.ok:
        return Draft(parsed.problem, parsed.solution, parsed.reason)
    if len(parsed.problem or "") < min_problem_chars:
        return Draft(parsed.problem, parsed.solution, "missing_problem")
    return Draft(parsed.problem, parsed.solution, None)


def has_answer(solution: str, kind: str) -> bool:
    """A final answer: ``\\boxed{}`` or "the answer is"; a tool solution may instead end in code output."""
    return bool(ANSWER_RE.search(solution)) or (kind == "tool" and bool(CODE_RE.search(solution)))


def program(solution: str) -> str | None:
    """The solution's Python code blocks, joined in order (run as one program, like notebook cells)."""
    blocks = CODE_RE.findall(solution)
    return "\n".join(b.rstrip() for b in blocks) + "\n" if blocks else None


def stored_output(solution: str) -> str | None:
    """The program output that a tool solution states in its output blocks, or None."""
    blocks = OUTPUT_RE.findall(solution)
    return "\n".join(b.strip() for b in blocks) if blocks else None


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def outputs_match(stored: str, printed: str) -> bool:
    """Equal after whitespace normalisation, or both one number equal to 1e-6 relative (``10`` vs ``10.0``)."""
    a, b = _normal(stored), _normal(printed)
    if a == b:
        return True
    if _NUMBER.fullmatch(a) and _NUMBER.fullmatch(b):
        x, y = float(a), float(b)
        return abs(x - y) <= 1e-6 * max(1.0, abs(x), abs(y))
    return False


def with_output(solution: str, printed: str) -> str:
    """The solution with its output block(s) replaced by one block holding what the code printed."""
    block = f"```output\n{printed.strip()}\n```"
    stripped = OUTPUT_RE.sub("", solution)
    last = list(CODE_RE.finditer(stripped))[-1]
    return (stripped[:last.end()].rstrip() + "\n" + block + "\n" + stripped[last.end():].lstrip("\n")).strip()


def to_record(problem: str, solution: str, kind: str) -> dict[str, str]:
    """The training record of a problem and its solution: the question and heading as input, the solution as output."""
    heading = "## Code Solution" if kind == "tool" else "## Solution"
    return {"input": f"## Question\n{problem.strip()}\n\n{heading}\n", "output": solution.strip()}
