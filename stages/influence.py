"""``jiuzhang influence``: write data for the candidate pool with synthesizer_initial, then choose the boost texts."""

from functools import partial
from pathlib import Path

import click

from jiuzhang.runtime import Output, run_stage
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
    import pyarrow.parquet as pq

    from jiuzhang.errors import UserError
    from jiuzhang.influence.selection import candidate_pool, select, select_less
    from jiuzhang.kd.items import load_pool
    from jiuzhang.synthesis.engine import build_engine
    from jiuzhang.synthesis.job import run_job

    def work(p, run):
        if p.influence.method == "less" and reference_dir is None:  # before any generation
            raise UserError("influence.method: less needs --reference (the model to be pre-trained, models/base)")
        candidates = candidate_pool(p.influence, p.kd, load_pool(Path(prompts_dir)))
        cfg = p.synthesize.model_copy(update={"max_prompts": None})
        made = run_job(cfg, candidates, Path(model_dir), Path(candidates_dir), p.cluster,
                       partial(build_engine, model_dir, cfg), progress=progress)
        timing = made.pop("timing", {})
        if p.influence.method == "less":
            texts = {r["id"]: r["text"] for f in sorted(Path(candidates_dir).glob("part-*.parquet"))
                     for r in pq.read_table(f, columns=["id", "text"]).to_pylist()}
            metrics = select_less(p.influence, p.kd, candidates, texts, Path(reference_dir), Path(out), p.cluster)
        else:
            metrics = select(p.influence, p.kd, candidates, Path(out))
        return {**metrics, "candidate_data": {k: made[k] for k in ("records", "by_finish_reason", "mean_new_tokens")},
                "timing": timing}

    run_stage("influence", params_path, ("influence", "kd", "synthesize"), {}, work, metrics_path,
              # not the candidates folder: the stage writes it (persist, resumable), so at the start it may hold a
              # half-done or an earlier run's shards, and its digest would make the card differ between runs
              inputs={"prompts": prompts_dir, "synthesizer": model_dir,
                      **({"reference": reference_dir} if reference_dir else {})}, output=Output(out))
