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
Before any of that, what modern models write around an answer is read as what it means (issue 25): a JSON
object's ``answer`` field wins over its ``reasoning``; Markdown emphasis (``**6**``, a bold last line) is
removed, and a bold last line is a statement; Unicode math (``3√5``, ``π/4``, U+2212, ``½``, ``x²``) becomes
the LaTeX the rest reads; a word answer ("infinitely many", "no solution", "none") is the answer, never the
text's last number. An output that loops (its tail repeats) or stops mid-sentence (on an operator, a comma or
a connecting word) is treated as cut off even when the engine gave no ``finish_reason``: only an explicit
statement counts. An answer statement that is an equation keeps its left side unless that side is plain
arithmetic ("2 * 1.5 = 3 bolts" states 3; "x^2 + y^2 = 13" states the equation): the grader decides
against the gold which side is compared.
Written here (not taken from math-verify) because math-verify extracts from LaTeX only and has no
notion of multiple-choice letters, "the answer is" or GSM8K markers; math-verify does the comparing.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
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
# An equals sign that is not part of <=, >=, !=, == or a LaTeX command: where an equation's sides meet.
TOP_EQUALS = re.compile(r"(?<![<>!\\])=(?!=)")
_GSM8K = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_HEADING = re.compile(r"[A-Za-z]{3,}\b(?![}])")  # a word of 3+ letters first: heading text, not an answer
# A clause after the answer in its sentence: "12 and so ...", "12, because ...".
_TRAILING_CLAUSE = re.compile(r"(?:\s*,\s*|\s+)(?:and so|so|because|since|which)\b.*$", re.IGNORECASE | re.DOTALL)
# Markdown emphasis around a span (not Python's 2**3: no word character or bracket may touch the markers).
_EMPHASIS = re.compile(r"(?<![\w)\]*_])(\*\*|__)(?=\S)(.+?)(?<=\S)\1(?![\w(\[*_])", re.DOTALL)
_BOLD_LAST_LINE = re.compile(r"(?:^|\n)[ \t]*(\*\*|__)(?=\S)([^\n]+?)(?<=\S)\1[ \t.]*\s*$")
# Word answers, as a model states them; grading knows which words mean the same.
WORD_ANSWER = re.compile(r"\b(infinitely many|infinite(?:ly)?|no (?:real )?solutions?|none|does not exist|undefined)\b",
                         re.IGNORECASE)
_LAST_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
# Where a sentence cannot end: an operator, an open bracket, a comma, or a word that joins to what follows.
_CUT_END = re.compile(r"(?:[=+\-*/\\(\[{,:×÷^]|\b(?:the|a|an|of|to|and|or|by|is|are|was|were|with|for|then|so|we|be|"
                      r"that|from|into|than|as|at|in|on|get|gives|equals|plus|minus|times|divided|multiplied))\s*$",
                      re.IGNORECASE)
_JSON_KEYS = ("answer", "final_answer", "finalAnswer", "Answer", "result")
_VULGAR = {"½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5), "⅖": (2, 5), "⅗": (3, 5),
           "⅘": (4, 5), "⅙": (1, 6), "⅚": (5, 6), "⅛": (1, 8), "⅜": (3, 8), "⅝": (5, 8), "⅞": (7, 8)}
_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_SYMBOLS = {"\u2212": "-", "\u2013": "-", "\u00d7": "\\times ", "\u00f7": "\\div ", "\u22c5": "\\cdot ",
            "\u00b7": "\\cdot ", "\u03c0": "\\pi", "\u221e": "\\infty", "\u2264": "\\le ", "\u2265": "\\ge ",
            "\u2260": "\\ne ", "\u2205": "\\emptyset", "\u00b0": "^\\circ"}
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
    ans = _TRAILING_CLAUSE.sub("", ans)                              # "12 and so ..." states 12
    ans = _strip_sentence(ans)
    rhs = _rhs(ans)
    lhs = ans[:len(ans) - len(rhs)].rstrip().rstrip("=")
    if rhs != ans and re.match(r"-?\\?\$?\s*\d", rhs) and not has_variable(lhs):  # a computed value after '='
        return rhs
    return ans


def has_variable(expr: str) -> bool:
    """Whether ``expr`` names a variable (a letter outside LaTeX commands and \\text{}): 'x^2 + y^2' does,
    '2 * 1.5' and '3 \\times 4' do not."""
    expr = re.sub(r"\\text\w*\s*\{[^{}]*\}", "", expr)
    return re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", expr)) is not None


def _rhs(formula: str) -> str:
    """``a = b = 7`` -> ``7``: the last side of a chain of equalities."""
    parts = TOP_EQUALS.split(formula)
    return parts[-1].strip()


def normalize_unicode(text: str) -> str:
    """Unicode math as LaTeX: ``3√5`` -> ``3\\sqrt{5}``, ``π/4`` -> ``\\pi/4``, U+2212 -> ``-``, ``½`` -> ``\\frac{1}{2}``,
    ``x²`` -> ``x^{2}``."""
    if text.isascii():
        return text
    for char, latex in _SYMBOLS.items():
        text = text.replace(char, latex)
    text = re.sub(r"\\(pi|infty|emptyset)(?=[A-Za-z])", r"\\\1 ", text)
    text = re.sub(r"√\s*\(([^()]*)\)", r"\\sqrt{\1}", text)
    text = re.sub(r"∛\s*\(([^()]*)\)", r"\\sqrt[3]{\1}", text)
    text = re.sub(r"√\s*(\d+(?:\.\d+)?|[A-Za-z]|\\[A-Za-z]+)", r"\\sqrt{\1}", text)
    text = re.sub(r"∛\s*(\d+(?:\.\d+)?|[A-Za-z])", r"\\sqrt[3]{\1}", text)
    for char, (a, b) in _VULGAR.items():
        text = re.sub(rf"(\d+)\s*{char}", rf"(\1+\\frac{{{a}}}{{{b}}})", text)  # 2½ is two and a half
        text = text.replace(char, f"\\frac{{{a}}}{{{b}}}")
    return re.sub(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+", lambda m: "^{" + m.group(0).translate(_SUPERSCRIPT) + "}", text)


def json_answer(text: str) -> str | None:
    """The ``answer`` (or ``final_answer``, ``result``) field of the last JSON object in ``text`` (bare or in a
    fenced block), as a string; None when no object has one."""
    found = None
    decoder = json.JSONDecoder()
    for m in list(re.finditer(r"\{", text))[:200]:
        if m.start() and not text[:m.start()].rstrip(" \t").endswith(("\n", "`", ":", "json")) and \
                text[:m.start()].strip():
            continue  # an object starts a line (or a fence, or the text), not the middle of a formula
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict):
            for key in _JSON_KEYS:
                if obj.get(key) not in (None, ""):
                    found = obj[key]
                    break
    if found is None or isinstance(found, (dict, list)):
        return None
    value = str(found).strip()
    return stated_answer(value) or _statement_value(value) or None


def strip_emphasis(text: str) -> str:
    """Markdown ``**x**`` / ``__x__`` -> ``x`` (repeatedly, for nested or adjacent spans)."""
    for _ in range(3):
        new = _EMPHASIS.sub(r"\2", text)
        if new == text:
            break
        text = new
    return text


def is_unfinished(text: str) -> bool:
    """Whether an output loops (its tail repeats a unit of 8-400 characters three times, or a line of 8+
    characters recurs 5+ times as a third of its lines) or stops where no sentence ends (an operator, an open
    bracket, a comma, a joining word). Either way its last number is a half-finished step, not an answer."""
    flat = re.sub(r"\s+", " ", text.strip())
    if not flat:
        return False
    for p in range(8, min(400, len(flat) // 3) + 1):
        tail = flat[-3 * p:]
        if tail[:-p] == tail[p:] and len(set(tail)) > 3:
            return True
    lines = [line.strip() for line in text.splitlines() if len(line.strip()) >= 8]
    if lines:
        _, n = Counter(lines).most_common(1)[0]
        if n >= 5 and n * 3 >= len(lines):
            return True
    return _CUT_END.search(flat) is not None


def stated_answer(text: str) -> str | None:
    """The answer a solution states explicitly (boxed, ``####``, "the answer is", a bold last line), or None."""
    bold = _BOLD_LAST_LINE.search(text)
    text = strip_emphasis(text)
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
    if bold:  # a bold last line is the answer the output ends on: "**12 tomatoes**"
        return _statement_value(bold.group(2)) or None
    return None


def extract_answer(text: str, cut_off: bool = False) -> str | None:
    """The final answer of a free-form solution, or None when there is none. ``cut_off``: the output hit
    the token limit, so only an explicit answer statement counts; an output that loops or stops
    mid-sentence (:func:`is_unfinished`) is treated the same."""
    text = normalize_unicode(text)
    answer = json_answer(text) if "{" in text else None
    if answer is not None:
        return answer
    stated = stated_answer(text)
    if stated is not None or cut_off or is_unfinished(text):
        return stated
    return _implied_answer(strip_emphasis(text))


def _unlabelled_numbers(plain: str) -> list[re.Match]:
    return [m for m in NUMBER_RE.finditer(plain) if not plain[:m.start()].rstrip().endswith(("#", "No.", "no."))
            and (m.start() == 0 or not plain[m.start() - 1].isalpha())]


def _implied_answer(text: str) -> str | None:
    last = _LAST_SENTENCE.split(text.strip())[-1]
    word = WORD_ANSWER.search(last)
    if word and not NUMBER_RE.search(last[word.end():]):  # "..., so there are infinitely many solutions."
        return word.group(1).lower()
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
    stated = list(re.finditer(r"[Cc]hoice\s+\$?(?:\\math(?:bf|rm)\{)?([A-E])\}?\$?\s+is\s+(?:the\s+)?correct", text))
    if stated:
        return stated[0].group(1)
    marked = list(re.finditer(r"\(([A-E])\)|\b([A-E])\)", text))
    if marked:
        return marked[-1].group(1) or marked[-1].group(2)
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
