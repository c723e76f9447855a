"""Parse a teacher completion into ``problem`` and ``solution`` and decide whether it may enter the KD set.

The prompts ask for ``[Problem]: ...`` then ``[Solution]: ...`` (the paper's tool prompt: ``[Problem
Description] ... [/Problem Description]``, ``[Solution] ... [/Solution]``); teachers also write ``**Problem:**``,
``### Problem``, ``Problem 1:`` or ``[Problem]`` on its own line. Rejections carry a reason:
``truncated`` (finish_reason 'length'), ``refusal``, ``empty``, ``missing_problem``, ``missing_solution``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# A marker is "[Word]" anywhere, or "Word" / "Word 1" at the start of a line (after optional "#"s and
# "**"), then an optional colon and closing "**".
_TEMPLATE = (r"(?:(?:\*\*|__)?\[\s*{word}\s*\]"
             r"|(?:^|\n)[ \t]*(?:\#{{1,6}}[ \t]*)?(?:\*\*|__)?\s*{word}(?:[ \t]+\d+)?)"
             r"[ \t]*(?:\*\*|__)?[ \t]*:?[ \t]*(?:\*\*|__)?")
PROBLEM_RE = re.compile(_TEMPLATE.format(word=r"(?:New[ \t]+)?Problem(?:[ \t]+Description)?"), re.IGNORECASE)
# The paper's tool prompt asks for "[Problem Description] ... [/Problem Description]" and "[Solution] ... [/Solution]".
_CLOSING = re.compile(r"\s*\[\s*/\s*(?:Problem(?:[ \t]+Description)?|Solution)\s*\]\s*$", re.IGNORECASE)
SOLUTION_RE = re.compile(_TEMPLATE.format(word="Solution"), re.IGNORECASE)
REFUSAL_RE = re.compile(r"^\s*(?:I'?m sorry|I am sorry|I cannot|I can'?t|I'm unable|I am unable|As an AI)",
                        re.IGNORECASE)


@dataclass(frozen=True)
class Parsed:
    """A teacher completion parsed into problem and solution, or the reason it cannot be used."""
    problem: str | None
    solution: str | None
    reason: str | None     # None when the completion is usable

    @property
    def ok(self) -> bool:
        """True when the completion is usable."""
        return self.reason is None


def completion_text(response: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(content, finish_reason, refusal) of the first choice of a chat-completions body."""
    choice = response["choices"][0]
    message = choice.get("message") or {}
    return message.get("content") or "", choice.get("finish_reason"), message.get("refusal")


def parse_completion(content: str, finish_reason: str | None = "stop", refusal: str | None = None) -> Parsed:
    """Parse ``[Problem]: ... [Solution]: ...``; a refusal, a cut-off or a missing part is a reason."""
    if refusal:
        return Parsed(None, None, "refusal")
    if finish_reason == "length":
        return Parsed(None, None, "truncated")
    text = content.strip()
    if not text:
        return Parsed(None, None, "empty")
    sol = SOLUTION_RE.search(text)
    prob = PROBLEM_RE.search(text[: sol.start()] if sol else text)
    if prob is None:
        return Parsed(None, None, "refusal" if REFUSAL_RE.match(text) else "missing_problem")
    problem = _CLOSING.sub("", text[prob.end(): sol.start() if sol else len(text)]).strip()
    solution = _CLOSING.sub("", text[sol.end():]).strip() if sol else ""
    if not problem:
        return Parsed(None, None, "missing_problem")
    if not solution:
        return Parsed(problem, None, "missing_solution")
    return Parsed(problem, solution, None)


def canonical(problem: str, solution: str) -> str:
    """The synthesizer's training target: one fixed layout, whatever variant the teacher wrote."""
    return f"[Problem]: {problem}\n\n[Solution]: {solution}"
