"""The OFFLINE teacher: a stand-in for GPT-4 in the smoke profile. NOT A REAL LLM.

It speaks the OpenAI chat-completions protocol on 127.0.0.1 (see :mod:`.server`), so the real client,
journal, retry and budget code run end to end with no network. Each request gets, deterministically, a
real human-written problem and solution from a bank matched to the prompt's level, written the way the
prompts ask (``[Problem]: ... [Solution]: ...``):
- grade/middle school: GSM8K train (worked solutions; "#### 72" becomes ``\\boxed{72}``);
- tool prompts: a GSM8K train problem, solved by a Python program built from its calculator
  annotations (``<<48/2=24>>``), with the program's printed output;
- higher levels: the problem/solution records of the paper's released samples.
The choice is a hash of the request, so the same request always gets the same answer.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jiuzhang.common.io import InputDataError
from jiuzhang.teacher.budget import estimate_prompt_tokens
from jiuzhang.teacher.server import completion_body

OFFLINE_LABEL = "OFFLINE TEACHER (stand-in, not a real LLM)"
FINGERPRINT = "jiuzhang-offline-teacher"
_CALC = re.compile(r"<<([^=<>]+)=([^<>]*)>>")
_ARITH = re.compile(r"[\d\s.+\-*/()]+")
LOW_LEVELS = {"grade_school", "middle_school"}


@dataclass(frozen=True)
class BankItem:
    """One worked problem of the offline teacher's bank."""
    problem: str
    solution: str


def _gsm8k(path: Path) -> tuple[list[BankItem], list[BankItem]]:
    """(natural-language items, tool items) from GSM8K train."""
    nl, tool = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            steps, _, final = r["answer"].rpartition("####")
            final = final.strip().replace(",", "")
            nl.append(BankItem(r["question"], f"{_CALC.sub('', steps).strip()}\nThe answer is $\\boxed{{{final}}}$."))
            program = _program([expr for expr, _ in _CALC.findall(steps)])
            if program is not None:
                code, printed = program
                tool.append(BankItem(r["question"], f"```python\n{code}\n```\n```output\n{printed}\n```\n"
                                                    f"The answer is $\\boxed{{{final}}}$."))
    return nl, tool


def _program(exprs: list[str]) -> tuple[str, str] | None:
    """A Python program of the calculator steps and what it prints, or None when a step is not plain
    arithmetic. The printed value is computed here, so the output block is what the code really prints."""
    if not exprs or any(not _ARITH.fullmatch(e) or "**" in e for e in exprs):
        return None
    try:
        value = eval(exprs[-1], {"__builtins__": {}}, {})  # noqa: S307 - digits and + - * / ( ) only
    except (SyntaxError, ZeroDivisionError, TypeError):
        return None
    lines = [f"step_{i + 1} = {e.strip()}" for i, e in enumerate(exprs)]
    return "\n".join(lines + [f"print(step_{len(exprs)})"]), str(value)


def _samples(path: Path) -> list[BankItem]:
    items = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            q = r["input"].removeprefix("## Question\n").rsplit("\n\n## ", 1)[0].strip()
            items.append(BankItem(q, r["output"].strip()))
    return items


class OfflineTeacher:
    """Answers chat requests from the banks; plug :meth:`answer` into :class:`~.server.ChatServer`."""

    def __init__(self, gsm8k_train: Path, samples: Path, templates: dict[str, str], latency_s: float = 0.0):
        for p in (gsm8k_train, samples):
            if not Path(p).is_file():
                raise InputDataError(f"{p}: offline-teacher bank not found; fix teacher.offline in the params file")
        self.nl_low, self.tool = _gsm8k(Path(gsm8k_train))
        self.high = _samples(Path(samples))
        # Each template's text before its first placeholder ('{content}', or the tool template's drawn
        # '{example}') identifies the level of a filled prompt.
        self.prefixes = sorted(((t.split("{content}")[0].split("{example}")[0], lv) for lv, t in templates.items()),
                               key=lambda x: -len(x[0]))
        self.latency_s = latency_s
        self.requests = 0

    def level_of(self, prompt: str) -> str | None:
        """The level of ``prompt``, recognised by its template's opening words; None when unknown."""
        return next((lv for prefix, lv in self.prefixes if prompt.startswith(prefix)), None)

    def bank_for(self, level: str | None) -> list[BankItem]:
        """The bank answers for ``level`` come from: tool, low-level or high-level problems."""
        if level == "tool":
            return self.tool
        return self.nl_low if level in LOW_LEVELS else self.high

    def answer(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Answer one chat request like an OpenAI endpoint: a bank problem picked by the prompt's hash."""
        self.requests += 1
        if self.latency_s:
            time.sleep(self.latency_s)
        messages = body.get("messages") or []
        prompt = "\n".join(str(m.get("content", "")) for m in messages)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        bank = self.bank_for(self.level_of(prompt))
        item = bank[int(digest[:12], 16) % len(bank)]
        content = f"[Problem]: {item.problem}\n\n[Solution]: {item.solution}"
        max_tokens = int(body.get("max_tokens") or 10**9)
        finish = "stop"
        if estimate_prompt_tokens(content) > max_tokens:
            content, finish = content[: max_tokens * 4], "length"
        payload = completion_body(str(body.get("model", "offline")), content, finish, estimate_prompt_tokens(prompt),
                                  estimate_prompt_tokens(content), f"offline-{digest[:16]}", FINGERPRINT)
        return 200, {}, payload
