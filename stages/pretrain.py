"""``jiuzhang pretrain``: pre-train the base model on the synthetic records (then the SFT tail)."""

from pathlib import Path

import click

from jiuzhang.runtime import run_stage
from jiuzhang.config.training import ModelSource
from stages.options import metrics_option, params_option
from stages.training_common import (checkpoints_option, loss_curve_option, out_model_option, train_and_report,
                                    world)


@click.command("pretrain")
@params_option
@click.option("--init", "init_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Base model folder written by the base stage (a hub pointer in the paper profile).")
@click.option("--synthetic", required=True, type=click.Path(exists=True),
              help="Synthetic records {input, output}: a Parquet folder or a JSONL file.")
@out_model_option
@checkpoints_option
@metrics_option
@loss_curve_option
def command(params_path: str, init_dir: str, synthetic: str, out: str, checkpoints: str, metrics_path: str,
            loss_path: str | None) -> None:
    """Pre-train on the shuffled synthetic records (+ pretrain.supplement), then pretrain.sft_tail (shuffled once
    with its own seed) after them, in one run.

    1 epoch, WSD schedule.

    Loss on each record's output only; records are packed into pretrain.train.max_length tokens.

    \b
    Example:
      jiuzhang pretrain --init models/base --synthetic data/synthetic/clean --out models/jiuzhang \\
          --checkpoints .cache/checkpoints/pretrain --metrics metrics/pretrain.json
    """
    from jiuzhang.training.records import load_examples, load_sft_tail, pretrain_mix
    from jiuzhang.training.runner import run_training

    def work(p, run):
        cfg = p.pretrain.train
        synthetic_examples = load_examples(synthetic, "input", "output", allow_empty=bool(p.pretrain.supplement))
        supplement = load_examples(p.pretrain.supplement, "input", "output") if p.pretrain.supplement else []
        mixed, synthetic_used = pretrain_mix(synthetic_examples, supplement, cfg.seed_data,
                                             p.pretrain.supplement_max_records, p.pretrain.max_records)
        examples = list(mixed)
        tail = load_sft_tail(p.pretrain.sft_tail, Path.cwd()) if p.pretrain.sft_tail else []
        examples += tail
        counts = {"synthetic_records": len(synthetic_examples), "supplement_records": len(supplement),
                  "synthetic_used": synthetic_used, "supplement_used": len(mixed) - synthetic_used,
                  "sft_tail_records": len(tail), "used_records": len(examples)}
        click.echo(f"pretrain: {len(synthetic_examples)} synthetic records + {len(supplement)} supplement records "
                   f"-> {len(mixed)} mixed ({synthetic_used} synthetic), {len(examples)} used with the SFT tail",
                   err=True)
        return counts | train_and_report(run, "pretrain", lambda on_log: run_training(
            ModelSource(path=init_dir), examples, cfg, Path(out), Path(checkpoints), world(), on_log,
            shuffle=False), loss_path)

    run_stage("pretrain", params_path, ("pretrain",), {}, work, metrics_path)
