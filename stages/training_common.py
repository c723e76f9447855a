"""What the three training stages share: options, the loss-curve plot and the MLflow step logging."""

import os

import click

from jiuzhang.common.io import write_csv
from jiuzhang.training.world import World

out_model_option = click.option("--out", required=True, type=click.Path(file_okay=False),
                                help="Output HF model folder (AutoModelForCausalLM / AutoTokenizer load it).")
checkpoints_option = click.option("--checkpoints", required=True, type=click.Path(file_okay=False),
                                  help="Scratch folder for resumable checkpoints (deleted when training ends).")
loss_curve_option = click.option("--loss-curve", "loss_path", type=click.Path(dir_okay=False), default=None,
                                 help="CSV of step, loss, lr (declared as a DVC plot).")


def world() -> World:
    """Rank and world size from the launcher's environment (torchrun / deepspeed); 0 of 1 otherwise."""
    return World.from_env(dict(os.environ))


def train_and_report(run, name: str, train, loss_path: str | None) -> dict:
    """Run ``train(on_log)``, log each step to MLflow and stderr, write the loss curve; return metrics."""

    def on_log(step: int, loss: float, lr: float) -> None:
        run.log_metrics({"train.loss": loss, "train.lr": lr}, step=step)
        click.echo(f"{name}: step {step + 1} loss {loss:.4f} lr {lr:.2e}", err=True)

    metrics = train(on_log)
    curve = metrics.pop("loss_curve", [])
    if loss_path:
        write_csv(loss_path, curve, ("step", "loss", "lr"))
    return metrics


