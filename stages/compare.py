"""``jiuzhang compare``: two (or more) pipeline runs side by side, from MLflow."""

import os
from pathlib import Path

import click

from stages.options import params_option


@click.command("compare")
@params_option
@click.option("--experiment", default=None, help="MLflow experiment [default: tracking.experiment of PARAMS].")
@click.option("--all", "every", is_flag=True, help="Every metric, also equal ones and run facts (wall time, tokens/s).")
@click.argument("selectors", nargs=-1)
def command(params_path: str, experiment: str | None, every: bool, selectors: tuple[str, ...]) -> None:
    """Show pipelines' params that differ and their metrics side by side.

    SELECTORS are DVC experiment names (`dvc exp run --name`, or the name DVC drew) or pipeline ids (a
    prefix is enough); with none, the two pipelines that ran last. The store is MLFLOW_TRACKING_URI, else
    the project's tracking.store (as the stages log).

    \b
    Examples:
      dvc exp run -S influence.method=random --name random-sel
      jiuzhang compare                      # the two latest pipelines
      jiuzhang compare 3f2a91 random-sel    # the baseline's pipeline id vs the experiment
    """
    from mlflow.tracking import MlflowClient

    from jiuzhang.config.loader import load_params
    from jiuzhang.tracking.compare import load_pipelines, render, select
    from jiuzhang.tracking.mlflow_run import resolve_tracking

    params = load_params(params_path)
    target = resolve_tracking(os.environ.get("MLFLOW_TRACKING_URI"), Path.cwd(), params.tracking.store)
    client = MlflowClient(tracking_uri=target.uri)
    pipes = select(load_pipelines(client, experiment or params.tracking.experiment), list(selectors))
    click.echo(render(pipes, every))
