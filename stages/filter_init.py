"""``jiuzhang filter_init``: the filter over the init model's generations (stage synthesize_init)."""

import click

from stages.filter import run_filter
from stages.options import metrics_option, params_option


@click.command("filter_init")
@params_option
@click.option("--raw", "raw_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Shards written by the synthesize_init stage.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: the records that would be kept + drops.parquet.")
@metrics_option
def command(params_path: str, raw_dir: str, out: str, metrics_path: str) -> None:
    """Exactly the filter stage's checks on the generations of the synthesizer's initial model, so
    results/filter_init.json and results/filter.json compare keep rates (per kind, with drop reasons)
    before and after KD on the same prompts.

    \b
    Example:
      jiuzhang filter_init --raw data/synthetic/init_raw --out data/synthetic/init_clean \\
          --results results/filter_init.json
    """
    run_filter("filter_init", params_path, raw_dir, out, metrics_path)
