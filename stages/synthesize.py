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
    synthesize("synthesize", params_path, model_dir, prompts_dir, out, metrics_path, progress)


def synthesize(stage: str, params_path: str, model_dir: str | None, prompts_dir: str, out: str, metrics_path: str,
               progress: bool) -> None:
    """Stage ``synthesize`` (the trained synthesizer, ``model_dir``) or ``synthesize_init`` (``model_dir``
    None: synthesizer.init on the first synthesize.init_prompts prompts of the same seeded sample)."""
    from jiuzhang.config.loader import load_params
    from jiuzhang.kd.items import load_pool
    from jiuzhang.synthesis.engine import build_engine
    from jiuzhang.synthesis.job import run_job

    w = world()

    def work(p, run):
        cfg, model, revision = p.synthesize, model_dir, None
        if model is None:  # a prefix of the same seeded sample: the prompts synthesize answers too
            init = p.synthesizer.init
            model, revision = init.path or init.model_id, init.revision
            cfg = cfg.model_copy(update={"max_prompts": min(cfg.max_prompts or cfg.init_prompts, cfg.init_prompts)})
        return run_job(cfg, load_pool(Path(prompts_dir)), model, Path(out), w,
                       lambda: build_engine(model, cfg, w.local_rank, revision), progress=progress,
                       revision=revision)

    params = load_params(params_path)
    sections = ("synthesize",) if model_dir else ("synthesize", "synthesizer")
    run_stage(stage, params_path, sections, {"sampling": params.synthesize.seed}, work, metrics_path, params=params)
