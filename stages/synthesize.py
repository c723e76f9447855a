"""``jiuzhang synthesize``: the synthesizer writes one generation per prompt of the pool (sharded, resumable)."""

from pathlib import Path

import click

from jiuzhang.runtime import run_stage
from stages.options import metrics_option, params_option, progress_option, prompts_option
from stages.training_common import world


@click.command("synthesize")
@params_option
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Synthesizer model folder (written by the synthesizer stage).")
@prompts_option
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder of shards part-NNNNN.parquet + .done.json markers (a persistent DVC output).")
@metrics_option
@progress_option
def command(params_path: str, model_dir: str, prompts_dir: str, out: str, metrics_path: str, progress: bool) -> None:
    """Run the synthesizer over the prompt pool: one generation per prompt, seeded per prompt.

    Natural-language and tool prompts use synthesize.nl / synthesize.tool sampling. Work is split into
    fixed shards of synthesize.shard_size prompts; finished shards are skipped on a rerun and a half-done
    shard resumes after its last finished batch, so a crash loses at most one batch. Output is the same
    from one process or many: under torchrun every process takes shards k with k % WORLD_SIZE == RANK.

    \b
    Examples:
      jiuzhang synthesize --model models/synthesizer --prompts data/prompts --out data/synthetic/raw \\
          --metrics metrics/synthesize.json
      # one process per GPU (paper profile, synthesize.launcher):
      torchrun --nproc_per_node 8 --no-python jiuzhang synthesize --model models/synthesizer ...
    """
    from jiuzhang.config.loader import load_params
    from jiuzhang.kd.items import load_pool
    from jiuzhang.synthesis.engine import build_engine
    from jiuzhang.synthesis.job import run_job

    w = world()

    def work(p, run):
        cfg = p.synthesize
        return run_job(cfg, load_pool(Path(prompts_dir)), Path(model_dir), Path(out), w,
                       lambda: build_engine(model_dir, cfg, w.local_rank), progress=progress)

    params = load_params(params_path)
    run_stage("synthesize", params_path, ("synthesize",), {"sampling": params.synthesize.seed}, work, metrics_path,
              params=params)
