"""``jiuzhang eval_arm``: a control arm's model (pretrain.arms) on the same benchmark items and settings as
``eval``, so the report can compare every arm with the base model and the synthetic arm, paired."""

import click

from stages.eval import command as eval_command


def _arm(arm: str, **options):
    if not options.get("stage_name") and len(options.get("benchmarks") or ()) == 1:
        options["stage_name"] = f"eval_arm@{arm}-{options['benchmarks'][0]}"
    return eval_command.callback(**options)


command = click.Command(
    "eval_arm", params=[click.Option(["--arm"], required=True, help="The arm (pretrain.arms.names); names the "
                                     "MLflow run eval_arm@<arm>-<benchmark>.")] + list(eval_command.params),
    callback=_arm,
    help="""Evaluate a control arm's model exactly as `jiuzhang eval` evaluates the synthetic arm's.

    Same prompts, items (eval.limit / eval.limits), settings (both held-out loss formats included) and
    grading; the report pairs its per-item results with the base model's and the other arms'.

    \b
    Example:
      jiuzhang eval_arm --arm raw --benchmark gsm8k --model models/arms/raw --out data/eval_arms/raw/gsm8k \\
          --results results/eval_arms/raw/gsm8k.json
    """)
