"""``jiuzhang plan``: validate a profile and print each stage's work, cost and launch; runs nothing."""

import json
from pathlib import Path

import click

from stages.options import params_option


@click.command("plan")
@params_option
@click.option("--templates", default="templates/prompts", show_default=True,
              type=click.Path(exists=True, file_okay=False), help="Prompt templates (prompt lengths are read from them).")
@click.option("--measured", default=None, type=click.Path(exists=True, file_okay=False),
              help="A run's facts folder (e.g. results/run) whose measured tokens/s replace the stated rates.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def command(params_path: str, templates: str, measured: str | None, as_json: bool) -> None:
    """Validate PARAMS and print, per stage: the work (teacher calls, tokens, problems, training tokens),
    the estimated cost (USD at the params' teacher prices; device-hours at stated or measured throughputs,
    priced at plan.accelerator.hour_usd) and the launch (processes, DeepSpeed stage, vLLM parallelism).

    Amounts come from the params and the data files they name; rates from the `plan` section (stated:
    accelerator peak TFLOP/s, MFU, decode tokens/s) or, with --measured, from a run. Nothing is sent,
    downloaded or trained.

    \b
    Examples:
      jiuzhang plan --params configs/paper.yaml
      jiuzhang plan --measured results/run          # the smoke profile at this machine's measured rates
      jiuzhang plan --params configs/paper.yaml --json > plan.json
    """
    from jiuzhang.config.loader import load_params
    from jiuzhang.plan.checks import blockers
    from jiuzhang.plan.estimate import Planner
    from jiuzhang.plan.memory import GIB, training_memory
    from jiuzhang.plan.rendering import render

    params = load_params(params_path)
    for warning in params.warnings():  # e.g. unpinned hub revisions: the plan holds, the data may drift
        click.echo(f"warning: {warning}", err=True)
    found = blockers(params, Path.cwd(), Path(templates))
    for line in found:
        click.echo(f"blocker: {line}", err=True)
    if found:
        raise SystemExit(2)
    plan = Planner(params, Path.cwd(), Path(templates), Path(measured) if measured else None).build()
    memory = training_memory(params, Path.cwd())
    if as_json:
        click.echo(json.dumps({**plan.as_dict(), "memory_gib": {m.stage: round(m.total / GIB, 2) for m in memory}},
                              indent=2))
    else:
        click.echo(render(plan, params_path, tuple(m.describe() for m in memory)))
