"""Final-answer extraction from a model output and gold-answer extraction from a benchmark row.

Prediction order (docs/method.md, the paper's harness, plus the formats real outputs use):

1. an explicit answer statement: the last ``\\boxed{}`` (or ``\\fbox{}``), GSM8K's ``#### x``, "the
   (final) answer is x" or "Answer: x" (math delimiters and any trailing sentence removed; "2 * 1.5 = 3
   bolts" gives the value after the last ``=``);
2. only when there is none and the output was *not* cut off by the token limit (a cut-off output's last
   number is a half-finished step, not an answer): the number after "is"/"=" in the last concluding
   sentence ("So ...", "Therefore ...", "In total ..."), else whichever comes last of the last formula's
   right-hand side and the last plain number. Numbers that are labels ("horse #12"), digits inside an
   expression (``25 + 3\\sqrt{5}`` is taken whole, not as 5) and formulas without a digit (``\\(n\\)``)
   are not answers.
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
_ANSWER_COLON = re.compile(r"^\W*(?:final\s+)?answer\s*:\s*(.+?)$", re.IGNORECASE | re.MULTILINE)
# A full stop that ends a sentence (not "Mrs. Hilt").
_SENTENCE_END = re.compile(r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)\.\s+(?=[A-Z])")
# A concluding sentence of a solution without a marked answer.
_CONCLUSION = re.compile(r"(?:^|(?<=[.!\n]))\s*(?:so|thus|therefore|hence|in total|altogether|finally)\b[^.\n]*"
                         r"(?:\.\d[^.\n]*)*", re.IGNORECASE)
# A number that is part of an expression: operators, LaTeX commands and braces around digits.
_EXPRESSION = re.compile(r"(?:\\[A-Za-z]+|[{}()^_+*/\d.,]|-|\s(?=[-+*/\\\d{(]))+")
_GSM8K = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_HEADING = re.compile(r"[A-Za-z]{3,}\b(?![}])")  # a word of 3+ letters first: heading text, not an answer
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


def _statement_value(ans: str) -> str:
    """What an answer statement states: "\\(X\\). I hope it is correct." -> "X"; "2 * 1.5 = 3 bolts" -> "3 bolts"."""
    ans = _SENTENCE_END.split(ans.strip(), maxsplit=1)[0]          # the trailing sentence goes
    ans = re.sub(r"\\[()\[\]]", "", ans)                             # \( \) \[ \] delimiters
    ans = _strip_sentence(ans)
    rhs = _rhs(ans)
    if rhs != ans and re.match(r"-?\\?\$?\s*\d", rhs):               # a computed value after '='
        return rhs
    return ans


def _rhs(formula: str) -> str:
    """``a = b = 7`` -> ``7``: the last side of a chain of equalities."""
    parts = re.split(r"(?<![<>!\\])=(?!=)", formula)
    return parts[-1].strip()


def stated_answer(text: str) -> str | None:
    """The answer a solution states explicitly (boxed, ``####``, "the answer is"), or None."""
    boxed = last_boxed(text)
    if boxed:
        return boxed
    # GSM8K's "#### 72"; a Markdown heading ("#### Step 1: Add", "#### Solution") is not an answer
    marks = [m.group(1).strip() for m in _GSM8K.finditer(text) if not _HEADING.match(m.group(1))]
    if marks:
        return marks[-1]
    for pattern in (_ANSWER_IS, _ANSWER_COLON):  # "Final Answer: The final answer is X" states X
        for m in reversed(list(pattern.finditer(text))):
            ans = _statement_value(m.group(1))
            if ans:
                return ans
    return None


def extract_answer(text: str, cut_off: bool = False) -> str | None:
    """The final answer of a free-form solution, or None when there is none. ``cut_off``: the output hit
    the token limit, so only an explicit answer statement counts."""
    stated = stated_answer(text)
    if stated is not None or cut_off:
        return stated
    return _implied_answer(text)


def _unlabelled_numbers(plain: str) -> list[re.Match]:
    return [m for m in NUMBER_RE.finditer(plain) if not plain[:m.start()].rstrip().endswith(("#", "No.", "no."))
            and (m.start() == 0 or not plain[m.start() - 1].isalpha())]


def _implied_answer(text: str) -> str | None:
    segments = [s for s in _MATH_SEG.finditer(text)
                if re.search(r"\d", _rhs(next(g for g in s.groups() if g is not None)))]  # \(n\) is no answer
    plain = text
    for seg in _MATH_SEG.finditer(text):  # numbers inside formulas do not count as plain numbers
        plain = plain[:seg.start()] + " " * (seg.end() - seg.start()) + plain[seg.end():]
    conclusions = list(_CONCLUSION.finditer(plain))
    if conclusions:
        sentence = conclusions[-1].group(0)
        cut = max(sentence.rfind(" is "), sentence.rfind("="), sentence.rfind(" are "), 0)
        after = _unlabelled_numbers(sentence[cut:])  # the first number stated, not "... in 4 weeks"
        if after and conclusions[-1].end() >= len(plain.rstrip(" .\n")) - 1:
            return _whole_expression(sentence[cut:], after[0])
    numbers = _unlabelled_numbers(plain)
    if segments and (not numbers or segments[-1].end() > numbers[-1].end()):
        seg = segments[-1]
        formula = next(g for g in seg.groups() if g is not None)
        return _rhs(formula).rstrip(".").strip() or None
    if numbers:
        return _whole_expression(plain, numbers[-1])
    return None


def _whole_expression(text: str, number: re.Match) -> str:
    """The number, or the whole expression it is a digit of (``25 + 3\\sqrt{5}``, not ``5``)."""
    for m in _EXPRESSION.finditer(text):
        if m.start() <= number.start() and number.end() <= m.end():
            expr = m.group(0).strip().rstrip(".,").strip()
            if re.search(r"\\[A-Za-z]|[{}^+*/]|\d\s*-\s*\d", expr) and expr.count("{") == expr.count("}"):
                return expr
            break
    return number.group(0)


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
