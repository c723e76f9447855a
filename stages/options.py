"""Options every stage shares, so each stage file only declares what is its own."""

import click

params_option = click.option(
    "--params", "params_path", default="params.yaml", show_default=True, type=click.Path(dir_okay=False),
    help="Params file (profile) to read: params.yaml (smoke) or configs/paper.yaml (paper).")
metrics_option = click.option(
    "--metrics", "metrics_path", required=True, type=click.Path(dir_okay=False),
    help="Where to write this stage's metrics JSON (declared as DVC metrics in dvc.yaml).")
