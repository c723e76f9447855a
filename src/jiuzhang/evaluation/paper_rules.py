"""``eval.grading.rules: paper``: grade as JiuZhang3.0's evaluation code does, so our numbers can be put next to
the paper's.

The rules are those of RUCAIBox/JiuZhang3.0 ``eval/parser.py`` and ``eval/grader.py`` at commit aae2f91
(MIT License, (c) 2024 Zhibin Gou; the ToRA harness the paper evaluates with), written here in our own code:

- extraction: choice tasks (AQuA, SAT-Math, MMLU-STEM) take the letter after the last "answer is" / "choice
  is" (the first letter there, else the last letter of the output); others take, in this order, Minerva's
  "final answer is $X$. I hope", the last ``boxed``, the text after the last "he answer is" or "final answer
  is" (everything after it, trailing sentences included), else the last number; then the answer string is
  normalised (``strip_string``) twice, as the harness does;
- gold: GSM8K after ``####``, MATH/MATH-500 the boxed answer of the solution, CARP and Minerva's kept as
  written, TabMWP's numbers as floats, the rest from the answer field, normalised the same way;
- comparison (``math_equal``): lower-case string equality; numbers within relative 1e-4 of the gold, the gold
  x 100 or the gold / 100 (a percentage either way); brackets dropped; tuples element by element; matrices cell
  by cell; equations as lhs - rhs up to sign; "x = v" against v; else sympy equality (3 s limit).

Known departures, each because the original cannot run here: sympy's ``parse_latex`` needs ANTLR 4.11 (math-
verify pins 4.9.3), so LaTeX is read by math-verify's ``latex2sympy2_extended`` (a fork of the ``latex2sympy2``
the harness also tries); the 3-second limit is a SIGALRM in the main thread, not a process pool.
Written here (not imported) because the harness is a script tree, not a package.
"""

from __future__ import annotations

import re
import signal
import threading
from contextlib import contextmanager
from math import isclose
from typing import Any

CHOICE_BENCHMARKS = {"aqua", "sat_math", "sat_math_agieval", "mmlu_stem"}
KEEP_UNITS = {"carp_en", "minerva_math"}  # the harness keeps units (and skips gold normalising) for these

# MathQA's units, as the harness removes them (with a plural 's' each).
_UNITS = ["east", "degree", "mph", "kmph", "ft", "m sqaure", " m east", "sq m", "deg", "mile", "q .", "monkey",
          "prime", "ratio", "profit of rs", "rd", "o", "gm", "p . m", "lb", "tile", "per", "dm", "lt", "gain", "ab",
          "way", "west", "a .", "b .", "c .", "d .", "e .", "f .", "g .", "h .", "t", "a", "h", "no change", "men",
          "soldier", "pie", "bc", "excess", "st", "inches", "noon", "percent", "by", "gal", "kmh", "c", "acre",
          "rise", "a . m", "th", "π r 2", "sq", "mark", "l", "toy", "coin", "sq . m", "gallon", "° f", "profit",
          "minw", "yr", "women", "feet", "am", "pm", "hr", "cu cm", "square", "v â € ™", "are", "rupee", "rounds",
          "cubic", "cc", "mtr", "s", "ohm", "number", "kmph", "day", "hour", "minute", "min", "second", "man",
          "woman", "sec", "cube", "mt", "sq inch", "mp", "∏ cm ³", "hectare", "more", "sec", "unit", "cu . m",
          "cm 2", "rs .", "rs", "kg", "g", "month", "km", "m", "cm", "mm", "apple", "liter", "loss", "yard", "pure",
          "year", "increase", "decrease", "d", "less", "Surface", "litre", "pi sq m", "s .", "metre", "meter",
          "inch"]
_UNIT_PATTERNS = [re.compile(r"(^|\W)" + re.escape(u) + r"($|\W)") for u in _UNITS + [u + "s" for u in _UNITS]]


def _word_number(text: str) -> str:
    try:
        from word2number import w2n
        return str(w2n.word_to_num(text))
    except Exception:  # noqa: BLE001 - not a number in words: the harness keeps the text
        return text


def _braced_fracs(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{72}`` -> ``\\frac{1}{72}`` (the harness's ``_fix_fracs``)."""
    head, *rest = s.split("\\frac")
    out = head
    for part in rest:
        out += "\\frac"
        if part.startswith("{"):
            out += part
        elif len(part) < 2:
            return s
        elif part[1] != "{":
            out += "{" + part[0] + "}{" + part[1] + "}" + part[2:]
        else:
            out += "{" + part[0] + "}" + part[1:]
    return out


def _slash_to_frac(s: str) -> str:
    if s.count("/") != 1:
        return s
    a, b = s.split("/")
    try:
        a2 = a if "sqrt" in a else int(a)
        b2 = b if "sqrt" in b else int(b)
    except ValueError:
        return s
    return f"\\frac{{{a2}}}{{{b2}}}" if s == f"{a2}/{b2}" else s


def normalize(s: Any, skip_unit: bool = False) -> str:
    """The harness's ``strip_string``: the answer string as it compares it."""
    s = str(s).strip().replace("\n", "").rstrip(".").replace("\\!", "")
    s = re.sub(r"\\begin\{array\}\{.*?\}", r"\\begin{pmatrix}", s)
    s = re.sub(r"\\end\{array\}", r"\\end{pmatrix}", s).replace("bmatrix", "pmatrix")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\neq", "\\ne").replace("\\leq", "\\le").replace("\\geq", "\\ge")
    s = s.replace("\\left", "").replace("\\right", "").replace("\\{", "{").replace("\\}", "}")
    unitless = re.sub(r"\\text{.*?}$", "", s).strip()
    if unitless and unitless != s:
        s = unitless
    if not skip_unit:
        for _ in range(2):
            for pattern in _UNIT_PATTERNS:
                cut = pattern.sub(r"\1\2", s)
                if cut:
                    s = cut
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "").replace("$", "")
    s = s.replace("\\(", "").replace("\\)", "")
    s = _word_number(s)
    s = re.sub(r"\\text\{(.*?)\}", r"\1", s)
    for key in ["x=", "y=", "z=", "x\\in", "y\\in", "z\\in", "x\\to", "y\\to", "z\\to"]:
        s = s.replace(key, "")
    s = s.replace("\\emptyset", "{}").replace("(-\\infty,\\infty)", "\\mathbb{R}")
    s = s.replace("\\%", "").replace("%", "").replace(" .", " 0.").replace("{.", "{0.")
    # (the harness's bracket unwrapping here tests str.isalnum() on the bracketed string, so it never applies)
    s = s.replace("infinity", "\\infty")
    if "\\infty" not in s:
        s = s.replace("inf", "\\infty")
    s = s.replace("+\\inity", "\\infty").replace("and", "").replace("\\mathbf", "")
    s = re.sub(r"\\mbox{.*?}", "", s)
    if "j" in s and "i" not in s:
        s = s.replace("j", "i")
    s = re.sub(r"(\d+)\.0*([^\d])", r"\1\2", s)
    s = re.sub(r"(\d+)\.0*$", r"\1", s)
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    if len(s.split("=")) == 2 and len(s.split("=")[0]) <= 2:
        s = s.split("=")[1]
    s = re.sub(r"\\sqrt(\w+)", r"\\sqrt{\1}", s).replace(" ", "")
    return _slash_to_frac(_braced_fracs(s))


def _choice(text: str) -> str:
    text = text.strip("\n")
    if any(text.count(t) > 1 for t in ("choice is", "answer is")):  # an echoed few-shot prompt: first chunk
        text = text.split("\n\n")[0]
    parts = re.split("choice is|answer is", text)
    flagged = len(parts) > 1
    pred = (parts[-1] if flagged else text).strip("\n").rstrip(".").rstrip("/").strip(" ").lstrip(":")
    letters = re.findall(r"\b(A|B|C|D|E)\b", pred.upper())
    if letters:
        pred = letters[0] if flagged else letters[-1]
    else:
        pred = pred.strip().strip(".")
    return pred.rstrip(".").rstrip("/")


def _boxed_tail(text: str) -> str:
    tail = text.split("boxed")[-1]
    if not tail:
        return ""
    if tail[0] != "{":
        return tail.split("$")[0].strip()
    depth, out = 1, ""
    for c in tail[1:]:
        depth += (c == "{") - (c == "}")
        if depth == 0:
            break
        out += c
    return out


def extract(text: str, benchmark: str) -> str:
    """The answer the harness reads from ``text`` (already normalised twice, as it compares it)."""
    text = text.replace("\u043a\u0438", "")
    if benchmark in CHOICE_BENCHMARKS:
        return normalize(_choice(text))
    if "final answer is $" in text and "$. I hope" in text:
        pred = text.split("final answer is $", 1)[1].split("$. I hope", 1)[0].strip()
    elif "boxed" in text:
        pred = _boxed_tail(text)
    elif "he answer is" in text:
        pred = text.split("he answer is")[-1].strip()
    elif "final answer is" in text:
        pred = text.split("final answer is")[-1].strip()
    else:
        numbers = re.findall(r"-?\d*\.?\d+", text.replace(",", ""))
        pred = numbers[-1] if numbers else ""
    pred = re.sub(r"\n\s*", "", pred)
    if pred.startswith(":"):
        pred = pred[1:]
    if pred.endswith("."):
        pred = pred[:-1]
    if pred.endswith("/"):
        pred = pred[:-1]
    skip = benchmark in KEEP_UNITS
    return normalize(normalize(pred, skip_unit=skip), skip_unit=skip)


def gold(benchmark: str, row: dict[str, Any]) -> str:
    """The gold answer as the harness parses it from a test row."""
    if benchmark in ("math", "math500"):
        return extract(row["solution"], "math")
    answer: Any  # a string, or a float for TabMWP's numbers (as the paper's harness parses them)
    if benchmark == "minerva_math":
        answer = extract(row["solution"], benchmark)
    elif benchmark == "carp_en":
        answer = row["answer"]
    elif benchmark == "gsm8k":
        answer = row["answer"].split("####")[-1]
    elif benchmark in ("gsm_hard", "mawps"):
        answer = row["target"]
    elif benchmark == "svamp":
        answer = row["Answer"]
    elif benchmark == "asdiv":
        answer = re.sub(r"\(.*?\)", "", row["answer"])
    elif benchmark == "tabmwp":
        answer = row["answer"]
        if row.get("ans_type") in ("integer_number", "decimal_number"):
            if "/" in answer:
                answer = int(answer.split("/")[0]) / int(answer.split("/")[1])
            elif "," in answer:
                answer = float(answer.replace(",", ""))
            elif "%" in answer:
                answer = float(answer.split("%")[0]) / 100
            else:
                answer = float(answer)
    elif benchmark == "mmlu_stem":
        answer = "ABCD"[int(row["answer"])]
    elif benchmark == "sat_math":
        answer = row["Answer"]
    elif benchmark == "sat_math_agieval":
        answer = row["label"]
    elif benchmark == "aqua":
        answer = row["correct"]
    else:
        raise KeyError(f"the paper's harness has no rule for benchmark '{benchmark}'")
    if benchmark in KEEP_UNITS:
        return str(answer).replace("\\neq", "\\ne").replace("\\leq", "\\le").replace("\\geq", "\\ge")
    return normalize(answer)


def _number(s: str) -> float | None:
    s = re.sub(",", "", str(s))
    try:
        return float(s)
    except ValueError:
        if s.endswith("%"):
            s = s[:-1].rstrip("\\")
            try:
                return float(s) / 100
            except ValueError:
                return None
    return None


def _close(a: float, b: float) -> bool:
    return isclose(b, a, rel_tol=1e-4)


@contextmanager
def _time_limit(seconds: int):
    """SIGALRM after ``seconds`` (main thread only; elsewhere no limit), as the harness's 3-second pool."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(*_):
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _sympy(s: str):
    from latex2sympy2_extended import latex2sympy
    from sympy.parsing.sympy_parser import parse_expr

    for parse in (latex2sympy, parse_expr):
        for text in (s.replace("\\\\", "\\"), s):
            try:
                return parse(text)
            except Exception:  # noqa: BLE001 - the harness tries the next reader
                continue
    return s


def _symbolic_equal(a: str, b: str) -> bool:
    from sympy import N, simplify

    x, y = _sympy(a), _sympy(b)
    checks = (lambda: str(x) == str(y) or x == y,
              lambda: x.equals(y) or simplify(x - y) == 0,
              lambda: (abs(x.lhs - x.rhs)).equals(abs(y.lhs - y.rhs)),
              lambda: _close(float(N(x)), float(N(y))),
              lambda: x.shape == y.shape and x.applyfunc(lambda v: round(v, 3)).equals(y.applyfunc(lambda v: round(v, 3))))
    for check in checks:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001 - a check that does not apply to these objects
            continue
    return False


def _matrix_rows(s: str) -> list[list[str]]:
    body = s[len("\\begin{pmatrix}"):-len("\\end{pmatrix}")]
    return [line.strip().split("&") for line in body.split("\\\\") if line.strip()]


def equal(pred: str | None, ref: str | None) -> bool:
    """The harness's ``math_equal`` (percentages and closeness on)."""
    if pred is None or ref is None:
        return False
    if str(pred).strip().lower() == str(ref).strip().lower():
        return True
    p_num, r_num = _number(pred), _number(ref)
    if p_num is not None and r_num is not None:
        return any(_close(p_num, r) for r in (r_num / 100, r_num, r_num * 100))
    if not pred:
        return False
    ref, pred = str(ref).strip(), str(pred).strip()
    if "pmatrix" in pred and "pmatrix" not in ref:
        ref = ", ".join("\\begin{pmatrix}" + m.strip("{}").replace(",", "\\") + "\\end{pmatrix}"
                        for m in re.findall(r"\{.*,.*\}", ref))
    p_str, r_str = pred, ref
    if (pred.startswith("[") and pred.endswith("]") and not ref.startswith("(")) or \
            (pred.startswith("(") and pred.endswith(")") and not ref.startswith("[")):
        p_str, r_str = p_str.strip("[]()"), r_str.strip("[]()")
    for c in "{}()":
        p_str, r_str = p_str.replace(c, ""), r_str.replace(c, "")
    if p_str.lower() == r_str.lower():
        return True
    bracket = r"(\(|\[).+(\)|\])"
    if re.match(bracket, pred) and re.match(bracket, ref):
        ps, rs = pred[1:-1].split(","), ref[1:-1].split(",")
        if len(ps) == len(rs) and all(equal(a, b) for a, b in zip(ps, rs)):
            return True
    ends = ("\\end{pmatrix}", "\\end{bmatrix}")
    if pred.startswith(("\\begin{pmatrix}", "\\begin{bmatrix}")) and pred.endswith(ends) and \
            ref.startswith(("\\begin{pmatrix}", "\\begin{bmatrix}")) and ref.endswith(ends):
        pm, rm = _matrix_rows(pred), _matrix_rows(ref)
        if len(pm) == len(rm) and all(len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
                                      for a, b in zip(pm, rm)):
            return True
    if pred.count("=") == 1 and ref.count("=") == 1:
        p_lhs, p_rhs = pred.split("=")
        r_lhs, r_rhs = ref.split("=")
        p_diff, r_diff = f"{p_lhs.strip()} - ({p_rhs.strip()})", f"{r_lhs.strip()} - ({r_rhs.strip()})"
        if _limited_symbolic(p_diff, r_diff) or _limited_symbolic(f"-({p_diff})", r_diff):
            return True
    elif pred.count("=") == 1 and len(pred.split("=")[0].strip()) <= 2 and "=" not in ref:
        if equal(pred.split("=")[1], ref):
            return True
    elif ref.count("=") == 1 and len(ref.split("=")[0].strip()) <= 2 and "=" not in pred:
        if equal(pred, ref.split("=")[1]):
            return True
    return _limited_symbolic(pred, ref)


def _limited_symbolic(a: str, b: str) -> bool:
    try:
        with _time_limit(3):
            return _symbolic_equal(a, b)
    except TimeoutError:
        return False


def grade(benchmark: str, row: dict[str, Any], output: str) -> tuple[str, str, bool]:
    """(gold, extracted, correct) under the paper's rules."""
    ref = gold(benchmark, row)
    pred = extract(output, benchmark)
    return ref, pred, equal(pred, ref)
