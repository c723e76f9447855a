"""``jiuzhang compare``: two (or more) pipeline runs side by side, from MLflow."""

import os
from pathlib import Path

import click

from stages.options import params_option


@click.command("compare")
@params_option
@click.option("--experiment", default=None, help="MLflow experiment [default: tracking.experiment of PARAMS].")
@click.option("--all", "every", is_flag=True, help="Every metric, also equal ones and run facts (wall time, tokens/s).")
@click.option("--arms", "arms", is_flag=True, help="Instead of MLflow pipelines: this workspace's control arms "
              "(pretrain.arms: base, synthetic, raw, released) on the same items, from the eval stages' outputs.")
@click.option("--results-dir", "--metrics-dir", "metrics_dir", default="results", show_default=True,
              type=click.Path(file_okay=False),
              help="With --arms: the stages' results (pretrain.json, pretrain_arms/<arm>.json).")
@click.option("--predictions", "eval_dir", default="data/eval", show_default=True, type=click.Path(file_okay=False),
              help="With --arms: the synthetic arm's per-item predictions.")
@click.option("--base-predictions", "base_dir", default="data/eval_base", show_default=True,
              type=click.Path(file_okay=False), help="With --arms: the base model's per-item predictions.")
@click.option("--arm-predictions", "arm_dir", default="data/eval_arms", show_default=True,
              type=click.Path(file_okay=False), help="With --arms: the control arms' per-item predictions.")
@click.argument("selectors", nargs=-1)
def command(params_path: str, experiment: str | None, every: bool, arms: bool, metrics_dir: str, eval_dir: str,
            base_dir: str, arm_dir: str, selectors: tuple[str, ...]) -> None:
    """Show pipelines' params that differ and their metrics side by side.

    SELECTORS are DVC experiment names (`dvc exp run --name`, or the name DVC drew) or pipeline ids (a
    prefix is enough); with none, the two pipelines that ran last. The store is MLFLOW_TRACKING_URI, else
    the project's tracking.store (as the stages log).

    \b
    Examples:
      dvc exp run -S influence.method=random --name random-sel
      jiuzhang compare                      # the two latest pipelines
      jiuzhang compare 3f2a91 random-sel    # the baseline's pipeline id vs the experiment
      jiuzhang compare --arms               # synthetic vs raw corpus vs released vs base, paired intervals
    """
    if arms:
        return _arms(params_path, Path(metrics_dir), Path(eval_dir), Path(base_dir), Path(arm_dir))
    from mlflow.tracking import MlflowClient

    from jiuzhang.config.loader import load_params
    from jiuzhang.tracking.compare import load_pipelines, render, select
    from jiuzhang.tracking.mlflow_run import resolve_tracking

    params = load_params(params_path)
    target = resolve_tracking(os.environ.get("MLFLOW_TRACKING_URI"), Path.cwd(), params.tracking.store)
    client = MlflowClient(tracking_uri=target.uri)
    pipes = select(load_pipelines(client, experiment or params.tracking.experiment), list(selectors))
    click.echo(render(pipes, every))


def _arms(params_path: str, metrics_dir: Path, eval_dir: Path, base_dir: Path, arm_dir: Path) -> None:
    from jiuzhang.config.loader import load_params
    from jiuzhang.errors import UserError
    from jiuzhang.evaluation.arm_comparison import compare_arms, render_text
    from jiuzhang.report.data import MEASURE_NAMES, scored_settings

    p = load_params(params_path)
    if not p.pretrain.arms.names or not p.eval.arm_benchmarks:
        raise UserError(f"{params_path}: no control arms to compare (pretrain.arms.names / eval.arm_benchmarks are "
                        f"empty); list them and run dvc repro")
    e = p.eval
    comparison = compare_arms(e.arm_benchmarks, {b: scored_settings(e.benchmarks[b], e.loss_formats)
                                                 for b in e.arm_benchmarks},
                              metrics_dir, eval_dir, base_dir, arm_dir, p.pretrain.arms.names)
    click.echo(render_text(comparison, MEASURE_NAMES))
