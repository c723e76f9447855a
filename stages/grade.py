"""``jiuzhang grade``: grade a predictions file against a benchmark (a fixed command-line contract)."""

import json
from pathlib import Path

import click

from jiuzhang.errors import UserError


@click.command("grade")
@click.option("--benchmark", required=True, help="Benchmark folder name under the benchmarks root, e.g. gsm8k, "
              "math500, svamp, asdiv, mawps, carp_en, tabmwp, aqua, sat_math, mmlu_stem, gsm_hard, minerva_math.")
@click.option("--predictions", required=True, type=click.Path(dir_okay=False),
              help="JSONL with 'idx' (row number in the test file, from 0), 'prediction' (a full model output) and "
              "optionally 'cut_off' (true when the output hit the token limit) or 'finish_reason'.")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Per-item verdicts JSONL (default: next to --predictions, '<name>.verdicts.jsonl').")
@click.option("--root", default="../shared/benchmarks", show_default=True, type=click.Path(file_okay=False),
              help="Benchmarks root folder.")
@click.option("--rules", type=click.Choice(["ours", "paper"]), default="ours", show_default=True,
              help="Grading rules: ours, or as JiuZhang3.0's evaluation code grades (eval.grading.rules).")
@click.option("--agreement", is_flag=True, help="Also grade each output as Math-Verify and the paper's code do, "
              "and print how often each agrees with ours (every verdict row keeps all three).")
def command(benchmark: str, predictions: str, out: str | None, root: str, rules: str, agreement: bool) -> None:
    """Grade model outputs; print one JSON object {benchmark, accuracy, correct, total, invalid}.

    The answer is extracted as in `jiuzhang eval` (last \\boxed{}, "the answer is", then - unless the
    output was cut off - the concluding sentence or the last number; letters for multiple choice) and
    compared by number (integers exactly, others within relative tolerance 1e-4), by text, or
    symbolically (math-verify).

    Rows of a held-out-loss setting (an eval predictions file's 'loss' rows) have no output and are skipped.

    \b
    Examples:
      jiuzhang grade --benchmark gsm8k --predictions preds.jsonl
      jiuzhang grade --benchmark gsm8k --predictions data/eval/gsm8k/predictions.jsonl --agreement
    """
    from jiuzhang.common.io import atomic_write_text, iter_jsonl
    from jiuzhang.evaluation.agreement import summarize, three_verdicts
    from jiuzhang.evaluation.grading import grade
    from jiuzhang.evaluation.heldout import is_loss
    from jiuzhang.evaluation.tasks import TASKS, load_rows

    if benchmark not in TASKS:
        raise UserError(f"--benchmark {benchmark!r} is not known; known: {', '.join(sorted(TASKS))}")
    path = Path(predictions)
    if not path.is_file():
        raise UserError(f"{predictions}: no such file")
    rows = load_rows(root, benchmark)
    items = []
    for line in iter_jsonl(path):
        rec = line.record
        if rec is None:
            raise UserError(f"{path}:{line.lineno}: {line.error}")
        if is_loss(str(rec.get("setting", ""))):
            continue
        idx, pred = rec.get("idx"), rec.get("prediction")
        if not isinstance(idx, int) or not 0 <= idx < len(rows):
            raise UserError(f"{path}:{line.lineno}: 'idx' must be a row number 0..{len(rows) - 1} of {benchmark}, "
                            f"got {idx!r}")
        if not isinstance(pred, str):
            raise UserError(f"{path}:{line.lineno}: 'prediction' must be a string (the full model output)")
        cut_off = rec.get("cut_off", rec.get("finish_reason") == "length")
        if not isinstance(cut_off, bool):
            raise UserError(f"{path}:{line.lineno}: 'cut_off' must be true or false (the output hit the token limit)")
        items.append((idx, pred, cut_off))
    if not items:
        raise UserError(f"{path}: no predictions")
    task = TASKS[benchmark]
    verdicts = []
    for idx, pred, cut_off in items:
        if agreement:
            verdicts.append({"idx": idx, **three_verdicts(task, rows[idx], pred, cut_off)})
            if rules == "paper":
                verdicts[-1].update(extracted=verdicts[-1]["paper"]["extracted"], correct=verdicts[-1]["paper"]["correct"])
            continue
        v = grade(task, rows[idx], pred, cut_off, rules=rules)
        verdicts.append({"idx": idx, "extracted": v.extracted, "gold": v.gold, "correct": v.correct})
    target = Path(out) if out else path.with_name(path.stem + ".verdicts.jsonl")
    atomic_write_text(target, "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in verdicts))
    correct = sum(v["correct"] for v in verdicts)
    click.echo(json.dumps({"benchmark": benchmark, "accuracy": correct / len(verdicts), "correct": correct,
                           "total": len(verdicts), "invalid": sum(v["extracted"] is None for v in verdicts),
                           "rules": rules, "verdicts": str(target),
                           **({"agreement": summarize(verdicts)} if agreement else {})}))
