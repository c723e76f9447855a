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

Before comparing: a word answer ("infinitely many", "no solution", "none", ``\\infty``, ``\\emptyset``) equals only
a gold of the same meaning (never a number: "none" is not 0); when the gold is a value and the prediction an
equation whose left side is one variable ("x = 5"), its right side is compared (any left side for ``numeric``),
while a gold equation is compared as an equation; and when the question asks for a form ("as a common
fraction", "simplify", "simplest radical form", "lowest terms"), an equivalent answer in another form is wrong
(a fraction not in lowest terms, a decimal for a fraction, a radicand with a square factor).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from jiuzhang.evaluation.answers import TOP_EQUALS, extract_answer, extract_choice, has_variable
from jiuzhang.evaluation.tasks import Task

REL_TOL = 1e-4


@dataclass(frozen=True)
class Verdict:
    """One graded answer: the gold, what was extracted (None: no answer) and whether it is right."""
    gold: str
    extracted: str | None
    correct: bool


_UNIT_WORDS = re.compile(r"\s*(?:dollars?|cents?|units?|cm|m|km|kg|g|hours?|minutes?|seconds?|days?|years?|"
                         r"feet|foot|inches|inch|miles?|meters?|degrees?|percent|mph|sq|square|cubic)\b.*$",
                         re.IGNORECASE)


def clean_latex(s: str) -> str:
    """``s`` without dollar signs, text/formatting macros and spacing that do not change the value."""
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
    """Integers must be equal; other numbers within REL_TOL of each other."""
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


def grade(task: Task, row: dict[str, Any], prediction: str, cut_off: bool = False, rules: str = "ours") -> Verdict:
    """``cut_off``: the output hit the token limit; then only an explicitly stated answer counts. ``rules``:
    'ours' (this module) or 'paper' (JiuZhang3.0's evaluation code, :mod:`.paper_rules`; it knows no cut-off)."""
    if rules == "paper":
        from jiuzhang.evaluation import paper_rules

        gold, extracted, correct = paper_rules.grade(task.name, row, prediction)
        return Verdict(gold, extracted, correct)
    try:
        question = task.question(row)
    except (KeyError, TypeError):  # a row without its question text (a hand-made row) asks for no form
        question = ""
    return grade_answer(task.kind, task.gold(row), prediction, question=question,
                        options=task.options(row) if task.options else None, cut_off=cut_off)


def grade_answer(kind: str, gold: str, prediction: str, question: str = "", options: list[str] | None = None,
                 cut_off: bool = False) -> Verdict:
    """Grade ``prediction`` (a model's whole output) against ``gold`` for a task of ``kind``; ``question``
    says which form an answer must take, ``options`` are a choice task's (or TabMWP's) options."""
    if kind == "choice":
        letter = extract_choice(prediction, options)
        return Verdict(gold, letter, letter == gold)
    pred = extract_answer(prediction, cut_off)
    gold_word, pred_word = word_class(gold), word_class(pred)
    if pred is not None and (gold_word or pred_word):
        return Verdict(gold, pred, gold_word is not None and gold_word == pred_word)
    gold_side, compared = _compared_sides(kind, gold, pred)
    if kind == "numeric":
        return Verdict(gold, pred, _numeric_match(gold_side, compared) and in_requested_form(question, gold, compared))
    if kind == "mixed":
        if to_number(gold) is not None:
            return Verdict(gold, pred, _numeric_match(gold_side, compared))
        chosen = _last_option(prediction, pred, options) if options else None
        ok = (chosen is not None and _norm(chosen) == _norm(gold)) or (pred is not None and _norm(pred) == _norm(gold))
        return Verdict(gold, chosen or pred, ok)
    if compared is not None and bool(TOP_EQUALS.search(gold_side)) != bool(TOP_EQUALS.search(compared)):
        return Verdict(gold, pred, False)  # an equation is not a value (math-verify would compare its right side)
    return Verdict(gold, pred, _symbolic_match(gold_side, compared) and in_requested_form(question, gold, compared))


# Words that mean one answer; a gold or prediction in a class equals only its class.
_WORD_CLASSES = {
    "infinite": re.compile(r"infinitely many(?: \w+)?|infinite(?:ly)?|infinity|\\infty|there are infinitely many"),
    "none": re.compile(r"no (?:real )?solutions?|none|\\emptyset|\\varnothing|\{\s*\}|does not exist|dne"),
    "undefined": re.compile(r"undefined"),
}


def word_class(answer: str | None) -> str | None:
    """'infinite', 'none' or 'undefined' when the whole answer is such a word (``\\text{no solution}`` too)."""
    if answer is None:
        return None
    s = re.sub(r"\\(?:text|mathrm)\w*\s*\{([^{}]*)\}", r"\1", answer).strip().strip("$").strip().rstrip(".").lower()
    s = re.sub(r"\s+", " ", s)
    for name, pattern in _WORD_CLASSES.items():
        if pattern.fullmatch(s):
            return name
    return None


_ONE_VARIABLE = re.compile(r"\s*(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?\w+\}?)?'?\s*")


def _compared_sides(kind: str, gold: str, pred: str | None) -> tuple[str, str | None]:
    """(gold, prediction) as compared: where one is a value and the other an equation whose left side is one
    variable ("x = 5"; for a numeric task any left side, "2 * 1.5 = 3"), the equation's right side; a gold
    equation against a predicted equation, both whole."""
    if pred is None:
        return gold, pred
    gold_sides, pred_sides = TOP_EQUALS.split(gold), TOP_EQUALS.split(pred)
    if len(gold_sides) > 1 and len(pred_sides) == 1 and _ONE_VARIABLE.fullmatch(gold_sides[0]):
        return gold_sides[-1].strip(), pred
    if len(pred_sides) > 1 and len(gold_sides) == 1:
        lhs = pred_sides[0]
        if kind == "numeric" or _ONE_VARIABLE.fullmatch(lhs) or not has_variable(lhs):
            return gold, pred_sides[-1].strip()
    return gold, pred


_FRACTION_FORM = re.compile(r"common fraction|as a fraction|in a fraction|lowest terms|simplest fraction", re.I)
_SIMPLE_FORM = re.compile(r"\bsimplif|simplest|lowest terms|reduced form|fully reduced", re.I)


def in_requested_form(question: str, gold: str, pred: str | None) -> bool:
    """False when ``question`` asks for a form (a common fraction, simplified, simplest radical form) that
    ``pred`` is not in: a fraction not in lowest terms, a decimal where the gold has none, a radicand with a
    square factor. True when no form is asked for."""
    if pred is None or not (_FRACTION_FORM.search(question) or _SIMPLE_FORM.search(question)):
        return True
    p = clean_latex(pred)
    if re.search(r"\d\.\d", p) and not re.search(r"\d\.\d", clean_latex(gold)):
        return False
    fractions = re.findall(r"\\frac\{\s*(-?\d+)\s*\}\{\s*(-?\d+)\s*\}", p)
    fractions += re.findall(r"(?<![\d.}])(-?\d+)\s*/\s*(\d+)(?![\d.])", p)
    if any(int(b) == 0 or abs(int(b)) == 1 or math.gcd(int(a), int(b)) != 1 for a, b in fractions):
        return False
    radicands = [int(n) for n in re.findall(r"\\sqrt\s*\{\s*(\d+)\s*\}|\\sqrt\s*(\d)", p) for n in n if n]
    return not any(n > 1 and any(n % (k * k) == 0 for k in range(2, math.isqrt(n) + 1)) for n in radicands)


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
