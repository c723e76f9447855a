"""``jiuzhang eval_base``: the base model on the same benchmark items and settings as ``eval``, so the
report can show base vs trained with paired intervals (``eval.base_benchmarks``)."""

import click

from stages.eval import command as eval_command


def _base(**options):
    if not options.get("stage_name") and len(options.get("benchmarks") or ()) == 1:
        options["stage_name"] = f"eval_base@{options['benchmarks'][0]}"
    return eval_command.callback(**options)


command = click.Command(
    "eval_base", params=list(eval_command.params), callback=_base,
    help="""Evaluate the base model exactly as `jiuzhang eval` evaluates the trained one.

    Same prompts, items (eval.limit / eval.limits), settings (held-out loss included) and grading; the
    MLflow run is named eval_base@<benchmark>. The report pairs its per-item results with the trained
    model's (data/eval vs data/eval_base) for the base-vs-trained table.

    \b
    Example:
      jiuzhang eval_base --benchmark gsm8k --model models/base --out data/eval_base/gsm8k \\
          --results results/eval_base/gsm8k.json
    """)
