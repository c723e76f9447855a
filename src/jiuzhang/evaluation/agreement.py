"""How often our grader agrees with two others on the same outputs: Math-Verify (its own extraction from the
whole output: the last boxed/LaTeX/plain expression, then symbolic equality) and JiuZhang3.0's evaluation code
(:mod:`.paper_rules`). ``jiuzhang grade --agreement`` prints it for a predictions file; each verdict row keeps
all three, so a reader can look at every disagreement."""

from __future__ import annotations

from typing import Any

from jiuzhang.evaluation import paper_rules
from jiuzhang.evaluation.grading import grade
from jiuzhang.evaluation.tasks import Task

OTHERS = ("paper", "math_verify")


def math_verify_correct(gold: str, output: str) -> bool | None:
    """Math-Verify's verdict on a whole output (None for a choice task: it has no notion of option letters)."""
    from math_verify import parse, verify

    try:
        return bool(verify(parse(f"${gold}$", parsing_timeout=5), parse(output, parsing_timeout=5), timeout_seconds=5))
    except Exception:  # noqa: BLE001 - an output it cannot read is a wrong answer to it
        return False


def three_verdicts(task: Task, row: dict[str, Any], output: str, cut_off: bool) -> dict[str, Any]:
    """Our verdict (with the extracted answer) next to the paper's and Math-Verify's."""
    ours = grade(task, row, output, cut_off)
    _, paper_extracted, paper_ok = paper_rules.grade(task.name, row, output)
    return {"extracted": ours.extracted, "gold": ours.gold, "correct": ours.correct,
            "paper": {"extracted": paper_extracted, "correct": paper_ok},
            "math_verify": {"correct": None if task.kind == "choice" else math_verify_correct(ours.gold, output)}}


def summarize(verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Per other grader: items compared, agreements, share, and the two kinds of disagreement."""
    out = {}
    for other in OTHERS:
        pairs = [(v["correct"], v[other]["correct"]) for v in verdicts if v[other]["correct"] is not None]
        if not pairs:
            out[other] = {"compared": 0, "note": "not comparable on this benchmark (choice letters)"}
            continue
        agree = sum(a == b for a, b in pairs)
        out[other] = {"compared": len(pairs), "agree": agree, "share": round(agree / len(pairs), 4),
                      "ours_right_other_wrong": sum(a and not b for a, b in pairs),
                      "ours_wrong_other_right": sum(b and not a for a, b in pairs),
                      "accuracy_ours": round(sum(a for a, _ in pairs) / len(pairs), 4),
                      "accuracy_other": round(sum(b for _, b in pairs) / len(pairs), 4)}
    return out
