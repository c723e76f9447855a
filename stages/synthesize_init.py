"""``jiuzhang synthesize_init``: the synthesizer's initial model answers the same prompts, before any KD."""

import click

from stages.options import metrics_option, params_option, progress_option, prompts_option
from stages.synthesize import synthesize


@click.command("synthesize_init")
@params_option
@prompts_option
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder of shards part-NNNNN.parquet + .done.json markers (a persistent DVC output).")
@metrics_option
@progress_option
def command(params_path: str, prompts_dir: str, out: str, metrics_path: str, progress: bool) -> None:
    """Run synthesizer.init (the model KD starts from) over the first synthesize.init_prompts prompts of the
    synthesize stage's seeded sample, with the same sampling, seeds, engine, shards and resume.

    Its generations go through the same filter (stage filter_init), so the report can show the filter's keep
    rate per kind before and after KD on the same prompts: the first visible effect of the method.

    \b
    Example:
      jiuzhang synthesize_init --prompts data/prompts --out data/synthetic/init_raw \\
          --results results/synthesize_init.json
    """
    synthesize("synthesize_init", params_path, None, prompts_dir, out, metrics_path, progress)
