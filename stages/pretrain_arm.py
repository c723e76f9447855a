"""``jiuzhang pretrain_arm``: a control arm of the pre-training comparison (pretrain.arms)."""

import json
from pathlib import Path

import click

from jiuzhang.config.training import ModelSource
from jiuzhang.errors import UserError
from jiuzhang.runtime import Output, as_stage
from jiuzhang.training.curve import train_and_report
from stages.options import metrics_option, params_option
from stages.training_common import checkpoints_option, loss_curve_option, out_model_option, started_as_gang, world


@click.command("pretrain_arm")
@params_option
@click.option("--arm", required=True, type=click.Choice(["raw", "released"]), help="Which control arm to train.")
@click.option("--init", "init_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Base model folder (the same start as the synthetic arm).")
@click.option("--budget", "budget_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The synthetic arm's training metrics (results/pretrain.json): its target_tokens_per_epoch is "
                   "this arm's budget.")
@click.option("--corpus", type=click.Path(exists=True, file_okay=False), help="Corpus snippets (raw arm).")
@click.option("--prompts", type=click.Path(exists=True, file_okay=False), help="Prompt pool (raw arm).")
@click.option("--synthetic", type=click.Path(exists=True),
              help="Kept synthetic records (raw arm: their snippets come first).")
@out_model_option
@checkpoints_option
@metrics_option
@loss_curve_option
def command(params_path: str, arm: str, init_dir: str, budget_path: str, corpus: str | None, prompts: str | None,
            synthetic: str | None, out: str, checkpoints: str, metrics_path: str, loss_path: str | None) -> None:
    """Pre-train the base model on a control arm's data, with the synthetic arm's settings and target-token
    budget, so the report can say whether the synthetic records beat what they were made from.

    'raw': the corpus snippets the prompts were built from (the kept records' snippets first), as plain
    text, loss on every token. 'released': the paper's released JiuZhang3.0 sample only
    (pretrain.arms.released). Same base model, pretrain.train settings and seeds as `pretrain`.

    \b
    Example:
      jiuzhang pretrain_arm --arm raw --init models/base --budget results/pretrain.json --corpus data/corpus \\
          --prompts data/prompts --synthetic data/synthetic/clean --out models/arms/raw \\
          --checkpoints .cache/checkpoints/pretrain_arm_raw --results results/pretrain_arms/raw.json
    """
    from transformers import AutoTokenizer

    from jiuzhang.training.arms import arm_examples
    from jiuzhang.training.trainer import run_training

    if started_as_gang(f"pretrain_arm@{arm}", params_path, lambda p: p.pretrain.train):
        return
    with as_stage(f"pretrain_arm@{arm}", params_path, ("pretrain",), results_path=metrics_path,
                  inputs={k: v for k, v in {"base": init_dir, "corpus": corpus, "prompts": prompts,
                                            "synthetic": synthetic}.items() if v},
                  output=Output(out, "model", init_dir)) as s:
        cfg, arms = s.params.pretrain.train, s.params.pretrain.arms
        if arm not in arms.names:
            raise UserError(f"arm {arm!r} is not in pretrain.arms.names {arms.names}; add it there (dvc.yaml runs "
                            f"one stage per listed arm)")
        budget = json.loads(Path(budget_path).read_text())["target_tokens_per_epoch"]
        tokenizer = AutoTokenizer.from_pretrained(init_dir)
        examples, facts = arm_examples(arm, budget, tokenizer, cfg.max_length, arms.seed,
                                       corpus=Path(corpus) if corpus else None,
                                       prompts=Path(prompts) if prompts else None,
                                       synthetic=Path(synthetic) if synthetic else None, released=arms.released)
        click.echo(f"pretrain_arm {arm}: {facts['records']} records, {facts['counted_target_tokens']:,} target "
                   f"tokens for a budget of {budget:,}" + (" (the source ran out)" if facts["source_exhausted"] else ""),
                   err=True)
        s.results = facts | train_and_report(s.run, lambda on_log: run_training(
            ModelSource(path=init_dir), examples, cfg, Path(out), Path(checkpoints), world(), on_log,
            shuffle=True), loss_path)
