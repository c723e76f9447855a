"""``jiuzhang repro``: ``dvc repro`` with a wall-time table per stage (what ``make repro`` runs)."""

import shutil
from pathlib import Path

import click

from jiuzhang.errors import UserError


@click.command("repro", context_settings={"ignore_unknown_options": True})
@click.option("--times-out", default="results/run/repro.json", show_default=True, type=click.Path(dir_okay=False),
              help="Where the per-stage wall times of a run that did work are kept (a fact file, not a DVC output).")
@click.argument("dvc_args", nargs=-1, type=click.UNPROCESSED)
def command(times_out: str, dvc_args: tuple[str, ...]) -> None:
    """Run `dvc repro [DVC_ARGS]`, showing DVC's output live, then print each stage's wall time.

    A stage's time runs from its start to the next stage's start, so it includes DVC's hashing and
    caching and the stage's Python start-up. Arguments after the options go to `dvc repro` unchanged.

    With `cluster.address: ''` in params.yaml (the default) one local Ray cluster, on 127.0.0.1, serves
    the whole run: every stage joins it instead of starting its own, and it is stopped at the end.

    \b
    Examples:
      jiuzhang repro                    # the whole DAG (make repro)
      jiuzhang repro --force            # every stage again, from scratch
      jiuzhang repro eval report        # only these stages (and what they need)
    """
    from jiuzhang.pipeline.timing import record, timed_repro

    dvc = shutil.which("dvc")
    if dvc is None:
        raise UserError("`dvc` is not on PATH: run `make install` and `source .venv/bin/activate`")
    from jiuzhang.cluster.local import run_cluster
    from jiuzhang.config.cluster import ClusterConfig
    from jiuzhang.config.loader import load_params

    params = Path("params.yaml")
    cluster = load_params(params).cluster if params.exists() else ClusterConfig(executor="inline")
    with run_cluster(cluster, echo=click.echo):
        times = timed_repro(list(dvc_args), Path.cwd(), dvc)
    click.echo("\n" + times.table())
    record(times, Path(times_out))
    if times.returncode != 0:
        raise SystemExit(times.returncode)
