"""``jiuzhang kd plan``: what a distillation round would send and cost, without sending anything."""

from pathlib import Path

import click

from jiuzhang.config.loader import load_params
from jiuzhang.kd.items import boost_items, initial_items, load_pool
from jiuzhang.kd.teacher_round import plan_round
from stages.options import params_option


@click.group("kd")
def group() -> None:
    """Knowledge-distillation utilities."""


@group.command("plan")
@params_option
@click.option("--round", "round_name", type=click.Choice(["initial", "boost"]), default="initial", show_default=True)
@click.option("--prompts", "prompts_dir", default="data/prompts", show_default=True,
              type=click.Path(exists=True, file_okay=False), help="Prompt pool.")
@click.option("--selection", "selection_dir", default="data/influence/selection", show_default=True,
              type=click.Path(file_okay=False), help="Influence selection (for --round boost).")
@click.option("--journal", "journal_path", default=None, type=click.Path(dir_okay=False),
              help="Journal to count already-paid answers from [default: data/journal/kd_<round>.sqlite].")
def plan(params_path: str, round_name: str, prompts_dir: str, selection_dir: str, journal_path: str | None) -> None:
    """Print the planned number of teacher calls and their estimated cost; send nothing.

    Prompts already answered in the journal are free and not counted. Token estimates: prompt characters
    / 4, and teacher.budget.expected_output_tokens per answer, priced at the rates of teacher.mode
    (teacher.prices online, teacher.batch.prices in batch mode); both modes' prices are shown.

    \b
    Example:
      jiuzhang kd plan --round initial
      jiuzhang kd plan --params configs/paper.yaml --round boost
    """
    params = load_params(params_path)
    pool = load_pool(Path(prompts_dir))
    items = initial_items(pool, params.kd) if round_name == "initial" else boost_items(pool, Path(selection_dir))
    journal = Path(journal_path or f"data/journal/kd_{round_name}.sqlite")
    result = plan_round(params.teacher, items, journal)
    t = params.teacher
    click.echo(f"kd {round_name}: teacher {t.kind} model {t.model}"
               + (" (OFFLINE stand-in, not a real LLM)" if t.kind == "offline" else ""))
    for key, value in result.items():
        click.echo(f"  {key:24} {value}")
