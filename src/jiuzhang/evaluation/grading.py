"""Grading one prediction against one gold answer.

- ``choice``: the extracted letter equals the gold letter.
- ``numeric``: integers equal exactly (120,006 is not 120,000), other numbers within relative tolerance
  1e-4 (after removing units, ``\\text{}`` with or without a space before its brace, dollar signs, also
  mangled ones like ``\\15``, thousands separators, ``%``; fractions and ``a/b`` are evaluated; a percentage
  also matches its value / 100).
- ``symbolic``: normalised strings equal, else numeric equality, else math-verify's symbolic
  equivalence (fractions vs decimals, ``\\dfrac``, intervals, matrices, sets, relations).
- ``mixed`` (TabMWP, ASDiv): numeric answers as ``numeric``; text answers (yes/no, names, choice texts)
  by normalised text, TabMWP's choices by the option the output names last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jiuzhang.evaluation.answers import extract_answer, extract_choice
from jiuzhang.evaluation.tasks import Task

REL_TOL = 1e-4


@dataclass(frozen=True)
class Verdict:
    gold: str
    extracted: str | None
    correct: bool


_UNIT_WORDS = re.compile(r"\s*(?:dollars?|cents?|units?|cm|m|km|kg|g|hours?|minutes?|seconds?|days?|years?|"
                         r"feet|foot|inches|inch|miles?|meters?|degrees?|percent|mph|sq|square|cubic)\b.*$",
                         re.IGNORECASE)


def clean_latex(s: str) -> str:
    s = s.strip().strip("$").strip()
    s = re.sub(r"\\text(?:bf|rm|normal)?\s*\{\s*([^{}]*?)\s*\}", r" \1 ", s)
    s = re.sub(r"\\(?=\d)", "", s)  # "\\15": a "\\$15" that lost its dollar sign
    s = re.sub(r"\\(?:mathrm|mathbf)\{([^{}]*)\}", r"\1", s)
    s = s.replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\ ", " ").replace("\\left", "")
    s = s.replace("\\right", "").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("^\\circ", "")
    s = s.replace("^{\\circ}", "").replace("\\$", "").replace("$", "").replace("\\%", "%")
    return re.sub(r"\s+", " ", s).strip()


def to_number(s: str | None) -> tuple[float, bool] | None:
    """(value, was a percentage) or None when ``s`` is not a plain number."""
    if s is None:
        return None
    s = clean_latex(s)
    s = _UNIT_WORDS.sub("", s).strip().rstrip(".").strip()
    s = re.sub(r"^([-+]?[\d.,/]+%?)\s+[A-Za-z][A-Za-z\s'-]*$", r"\1", s)  # "10 apples" -> "10"
    percent = s.endswith("%")
    s = s.rstrip("%").strip()
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    m = re.fullmatch(r"(-?)\\frac\{?(-?\d+(?:\.\d+)?)\}?\{?(-?\d+(?:\.\d+)?)\}?", s)
    try:
        if m:
            value = float(m.group(2)) / float(m.group(3)) * (-1 if m.group(1) else 1)
        elif re.fullmatch(r"-?\d+(?:\.\d+)?\s*/\s*-?\d+(?:\.\d+)?", s):
            a, b = s.split("/")
            value = float(a) / float(b)
        elif re.fullmatch(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", s):
            value = float(s)
        else:
            return None
    except (ValueError, ZeroDivisionError):
        return None
    return value, percent


def numbers_equal(a: float, b: float) -> bool:
    if a.is_integer() and b.is_integer():
        return a == b  # a count or amount off by 6 in 120,000 is wrong, whatever its relative size
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b)) if a and b else abs(a - b) <= 1e-8


def _numeric_match(gold: str, pred: str | None) -> bool:
    g, p = to_number(gold), to_number(pred)
    if g is None or p is None:
        return False
    if numbers_equal(g[0], p[0]):
        return True
    return p[1] and numbers_equal(g[0], p[0] / 100)  # "50%" for a gold 0.5


def _norm(s: str) -> str:
    s = clean_latex(s).lower()
    s = re.sub(r"\s+", "", s).rstrip(".")
    return s.replace("{", "").replace("}", "") if len(s) < 3 else s


def _symbolic_match(gold: str, pred: str | None) -> bool:
    if pred is None:
        return False
    if _norm(gold) == _norm(pred) or _numeric_match(gold, pred):
        return True
    from math_verify import parse, verify

    try:
        g = parse(f"${gold}$", parsing_timeout=5)
        p = parse(f"${pred}$", parsing_timeout=5)
        return bool(g and p and verify(g, p, timeout_seconds=5))
    except Exception:  # math-verify raises on LaTeX it cannot read; that is a wrong answer, not a crash
        return False


def grade(task: Task, row: dict[str, Any], prediction: str, cut_off: bool = False) -> Verdict:
    """``cut_off``: the output hit the token limit; then only an explicitly stated answer counts."""
    gold = task.gold(row)
    if task.kind == "choice":
        letter = extract_choice(prediction, task.options(row) if task.options else None)
        return Verdict(gold, letter, letter == gold)
    pred = extract_answer(prediction, cut_off)
    if task.kind == "numeric":
        return Verdict(gold, pred, _numeric_match(gold, pred))
    if task.kind == "mixed":
        if to_number(gold) is not None:
            return Verdict(gold, pred, _numeric_match(gold, pred))
        options = task.options(row) if task.options else []
        chosen = _last_option(prediction, pred, options) if options else None
        ok = (chosen is not None and _norm(chosen) == _norm(gold)) or (pred is not None and _norm(pred) == _norm(gold))
        return Verdict(gold, chosen or pred, ok)
    return Verdict(gold, pred, _symbolic_match(gold, pred))


def _last_option(text: str, boxed: str | None, options: list[str]) -> str | None:
    """The option equal to the extracted answer ``boxed``, else the option named last in ``text``
    (TabMWP's text answers)."""
    for opt in options:
        if boxed is not None and _norm(opt) == _norm(boxed):
            return opt
    best, pos = None, -1
    low = text.lower()
    for opt in options:
        i = low.rfind(opt.lower())
        if i > pos:
            best, pos = opt, i
    return best
