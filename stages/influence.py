"""``jiuzhang influence``: write data for the candidate pool with synthesizer_initial, then choose the boost texts."""

from pathlib import Path

import click

from jiuzhang.runtime import Output, as_stage
from stages.options import metrics_option, params_option, progress_option, prompts_option


@click.command("influence")
@params_option
@prompts_option
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Round-1 synthesizer (written by synthesizer_initial): writes the candidates' data.")
@click.option("--candidates", "candidates_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder of the candidates' generations (resumable shards, as synthesize writes).")
@click.option("--reference", "reference_dir", default=None, type=click.Path(file_okay=False),
              help="Reference model for method 'less' (the model to be pre-trained: models/base).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: selected.parquet (+ scores.parquet for 'less').")
@metrics_option
@progress_option
def command(params_path: str, prompts_dir: str, model_dir: str, candidates_dir: str, reference_dir: str | None,
            out: str, metrics_path: str, progress: bool) -> None:
    """Select kd.boost.n texts for the teacher's second round from a candidate pool.

    The pool is influence.pool_size prompts never sent in round 1; synthesizer_initial writes data for
    each through the synthesize engine (same sampling, sharding and resume). influence.method: less
    (the paper's method) warms up a LoRA on the reference model, scores each candidate's data by
    gradient similarity to the target tasks (LESS) and keeps the top kd.boost.n; random is the paper's
    ablation baseline. Both write the same table (id, rank, score, method).

    \b
    Example:
      jiuzhang influence --prompts data/prompts --model models/synthesizer_initial \\
          --candidates data/influence/candidates --reference models/base --out data/influence/selection \\
          --results results/influence.json
    """
    from jiuzhang.influence.selection import choose_boost_prompts
    from jiuzhang.kd.items import load_pool

    # not the candidates folder among the inputs: the stage writes it (persist, resumable), so at the start it
    # may hold a half-done or an earlier run's shards, and its digest would make the card differ between runs
    with as_stage("influence", params_path, ("influence", "kd", "synthesize"), results_path=metrics_path,
                  inputs={"prompts": prompts_dir, "synthesizer": model_dir,
                          **({"reference": reference_dir} if reference_dir else {})}, output=Output(out)) as s:
        s.results = choose_boost_prompts(s.params, load_pool(Path(prompts_dir)), model_dir, Path(candidates_dir),
                                         Path(reference_dir) if reference_dir else None, Path(out), progress)
