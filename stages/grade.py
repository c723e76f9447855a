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
def command(benchmark: str, predictions: str, out: str | None, root: str) -> None:
    """Grade model outputs; print one JSON object {benchmark, accuracy, correct, total, invalid}.

    The answer is extracted as in `jiuzhang eval` (last \\boxed{}, "the answer is", then - unless the
    output was cut off - the concluding sentence or the last number; letters for multiple choice) and
    compared by number (integers exactly, others within relative tolerance 1e-4), by text, or
    symbolically (math-verify).

    \b
    Example:
      jiuzhang grade --benchmark gsm8k --predictions preds.jsonl
    """
    from jiuzhang.common.io import atomic_write_text, iter_jsonl
    from jiuzhang.evaluation.grading import grade
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
        v = grade(task, rows[idx], pred, cut_off)
        verdicts.append({"idx": idx, "extracted": v.extracted, "gold": v.gold, "correct": v.correct})
    target = Path(out) if out else path.with_name(path.stem + ".verdicts.jsonl")
    atomic_write_text(target, "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in verdicts))
    correct = sum(v["correct"] for v in verdicts)
    click.echo(json.dumps({"benchmark": benchmark, "accuracy": correct / len(verdicts), "correct": correct,
                           "total": len(verdicts), "invalid": sum(v["extracted"] is None for v in verdicts),
                           "verdicts": str(target)}))
