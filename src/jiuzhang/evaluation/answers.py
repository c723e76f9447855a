"""Final-answer extraction from a model output and gold-answer extraction from a benchmark row.

Prediction order (DESIGN.md section 2.5, the paper's harness, plus the formats real outputs use): the
last ``\\boxed{}`` (or ``\\fbox{}``), then GSM8K's ``#### x``, then "the answer is x", then whichever
comes last of the last ``$...$`` formula (its right-hand side) and the last plain number.
Written here (not taken from math-verify) because math-verify extracts from LaTeX only and has no
notion of multiple-choice letters, "the answer is" or GSM8K markers; math-verify does the comparing.
"""

from __future__ import annotations

import ast
import re
from typing import Any

LETTERS = "ABCDE"
NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_ANSWER_IS = re.compile(r"(?:the\s+)?(?:final\s+)?answer\s+is\s*:?\s*(.+?)(?:\n|$)", re.IGNORECASE)
_GSM8K = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_MATH_SEG = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` with balanced braces (``\\boxed 5`` too)."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = start + (6 if text.startswith("\\boxed", start) else 5)
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] != "{":
        m = re.match(r"[^\s$.,]+", text[i:])
        return m.group(0) if m else None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j].strip()
    return None


def _strip_sentence(ans: str) -> str:
    ans = ans.strip()
    ans = re.sub(r"^\$+|\$+$", "", ans.rstrip(". ").strip()).strip()
    return ans.rstrip(".").strip()


def _rhs(formula: str) -> str:
    """``a = b = 7`` -> ``7``: the last side of a chain of equalities."""
    parts = re.split(r"(?<![<>!\\])=(?!=)", formula)
    return parts[-1].strip()


def extract_answer(text: str) -> str | None:
    """The final answer of a free-form solution, or None when there is none."""
    boxed = last_boxed(text)
    if boxed:
        return boxed
    m = list(_GSM8K.finditer(text))
    if m:
        return m[-1].group(1).strip()
    m = list(_ANSWER_IS.finditer(text))
    if m:
        ans = _strip_sentence(m[-1].group(1))
        if ans:
            return ans
    segments = list(_MATH_SEG.finditer(text))
    plain = text
    for seg in segments:  # numbers inside formulas do not count as plain numbers
        plain = plain[:seg.start()] + " " * (seg.end() - seg.start()) + plain[seg.end():]
    numbers = list(NUMBER_RE.finditer(plain))
    if segments and (not numbers or segments[-1].end() > numbers[-1].end()):
        seg = segments[-1]
        formula = next(g for g in seg.groups() if g is not None)
        return _rhs(formula).rstrip(".").strip() or None
    if numbers:
        return numbers[-1].group(0)
    return None


def extract_choice(text: str, options: list[str] | None = None) -> str | None:
    """A multiple-choice letter: boxed, "the answer is (B)", the last "(B)" / "B)", or the option whose
    text the final answer equals."""
    for cand in (last_boxed(text), *(m.group(1) for m in reversed(list(_ANSWER_IS.finditer(text))))):
        if cand:
            m = re.match(r"^\s*\(?\s*([A-E])\s*\)?(?:\s|[.:]|$)", re.sub(r"\\text\{(.*?)\}", r"\1", cand))
            if m:
                return m.group(1)
    m = list(re.finditer(r"[Cc]hoice\s+\$?(?:\\math(?:bf|rm)\{)?([A-E])\}?\$?\s+is\s+(?:the\s+)?correct", text))
    if m:
        return m[0].group(1)
    m = list(re.finditer(r"\(([A-E])\)|\b([A-E])\)", text))
    if m:
        return m[-1].group(1) or m[-1].group(2)
    if options:
        ans = extract_answer(text)
        if ans is not None:
            for letter, opt in zip(LETTERS, options):
                if _norm_text(opt) == _norm_text(ans):
                    return letter
    return None


def _norm_text(s: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"^\(?[A-E]\)\s*", "", str(s))).strip().lower().rstrip(".")


def options_of(raw: Any) -> list[str]:
    """Options stored as a list, the repr of a list, or one string "A) ... B) ..."."""
    if isinstance(raw, str):
        try:
            raw = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            parts = re.split(r"\s*\(?([A-E])\)\s*", raw)
            return [p.strip() for p in parts[2::2]] if len(parts) > 2 else [raw]
    return [str(o) for o in (raw or [])]
