"""``jiuzhang synthesizer_initial``: fine-tune the synthesizer on the round-1 KD set."""

from pathlib import Path

import click

from jiuzhang.config.loader import load_params
from jiuzhang.runtime import Output, as_stage
from jiuzhang.training.curve import train_and_report
from stages.options import metrics_option, params_option
from stages.training_common import checkpoints_option, loss_curve_option, out_model_option, started_as_gang, world


def train_synthesizer(stage: str, params_path: str, kd_dirs: tuple[str, ...], out: str, checkpoints: str,
                      metrics_path: str, loss_path: str | None) -> None:
    """Train the synthesizer on the KD records of ``kd_dirs`` (the body of both synthesizer stages)."""
    from jiuzhang.training.records import load_examples  # torch + transformers: import only when training
    from jiuzhang.training.trainer import run_training

    if started_as_gang(stage, params_path, lambda p: p.synthesizer.train):
        return
    params = load_params(params_path)
    init = params.synthesizer.init
    with as_stage(stage, params_path, ("synthesizer",), results_path=metrics_path, params=params,
                  inputs={f"kd_{Path(d).name}": d for d in kd_dirs},
                  output=Output(out, "model", init.model_id or init.path)) as s:
        examples = [ex for d in kd_dirs for ex in load_examples(d, "prompt", "completion")]
        s.results = train_and_report(s.run, lambda on_log: run_training(
            s.params.synthesizer.init, examples, s.params.synthesizer.train, Path(out), Path(checkpoints), world(),
            on_log), loss_path)


@click.command("synthesizer_initial")
@params_option
@click.option("--kd", "kd_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="KD set written by kd_initial (prompt -> completion).")
@out_model_option
@checkpoints_option
@metrics_option
@loss_curve_option
def command(params_path: str, kd_dir: str, out: str, checkpoints: str, metrics_path: str, loss_path: str | None) -> None:
    """Fine-tune the synthesizer (synthesizer.init) on the round-1 KD set.

    Input = the filled prompt as raw text, target = the teacher's completion, loss on the target only;
    examples are packed into synthesizer.train.max_length tokens without attention across examples.
    Resumes from --checkpoints after a crash. Launch on many GPUs with torchrun/deepspeed and
    synthesizer.train.deepspeed.enabled: true.

    \b
    Example:
      jiuzhang synthesizer_initial --kd data/kd/initial --out models/synthesizer_initial \\
          --checkpoints .cache/checkpoints/synthesizer_initial --results results/synthesizer_initial.json
    """
    train_synthesizer("synthesizer_initial", params_path, (kd_dir,), out, checkpoints, metrics_path, loss_path)
