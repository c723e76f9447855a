"""``jiuzhang influence``: choose the texts for the boosting round (now: seeded random selection)."""

from pathlib import Path

import click

from jiuzhang.influence.selection import select
from jiuzhang.kd.items import load_pool
from jiuzhang.runtime import run_stage
from stages.options import metrics_option, params_option


@click.command("influence")
@params_option
@click.option("--prompts", "prompts_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Prompt pool written by the prompts stage (the candidates).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (selected.parquet).")
@metrics_option
def command(params_path: str, prompts_dir: str, out: str, metrics_path: str) -> None:
    """Select kd.boost.n candidate texts (never those of round 1) for the teacher's second round.

    influence.method: random is the paper's random-selection baseline; the gradient-based method
    (LESS) plugs in here with the same output table (id, rank, score, method).

    \b
    Example:
      jiuzhang influence --prompts data/prompts --out data/influence --metrics metrics/influence.json
    """
    run_stage("influence", params_path, ("influence", "kd"), {},
              lambda p, run: select(p.influence, p.kd, load_pool(Path(prompts_dir)), Path(out)), metrics_path)
