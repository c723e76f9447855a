"""``jiuzhang pretrain``: pre-train the base model on the synthetic records (then the SFT tail)."""

from pathlib import Path

import click

from jiuzhang.config.training import ModelSource
from jiuzhang.runtime import Output, as_stage
from jiuzhang.training.curve import train_and_report
from stages.options import metrics_option, params_option
from stages.training_common import checkpoints_option, loss_curve_option, out_model_option, started_as_gang, world


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
          --checkpoints .cache/checkpoints/pretrain --results results/pretrain.json
    """
    from jiuzhang.training.records import pretrain_data
    from jiuzhang.training.trainer import run_training

    if started_as_gang("pretrain", params_path, lambda p: p.pretrain.train):
        return
    with as_stage("pretrain", params_path, ("pretrain",), results_path=metrics_path,
                  inputs={"base": init_dir, "synthetic": synthetic}, output=Output(out, "model", init_dir)) as s:
        data = pretrain_data(s.params.pretrain, synthetic, Path.cwd())
        counts = data.counts()
        click.echo(f"pretrain: {counts['synthetic_records']} synthetic records + {counts['supplement_records']} "
                   f"supplement records -> {counts['synthetic_used'] + counts['supplement_used']} mixed "
                   f"({counts['synthetic_used']} synthetic), {counts['used_records']} used with the SFT tail",
                   err=True)
        s.results = counts | train_and_report(s.run, lambda on_log: run_training(
            ModelSource(path=init_dir), data, s.params.pretrain.train, Path(out), Path(checkpoints), world(), on_log,
            shuffle=False), loss_path)
