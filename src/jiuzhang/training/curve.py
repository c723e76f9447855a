"""A training stage's loss curve: each logged step to the stage's MLflow run, the whole curve to the CSV
that dvc.yaml declares as a plot. (The trainer's progress line shows step, loss, rate and ETA on stderr.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jiuzhang.common.io import write_csv


def train_and_report(run, train: Callable[[Callable[[int, float, float], None]], dict[str, Any]],
                     loss_path: str | None) -> dict[str, Any]:
    """Run ``train(on_log)``, log each logged step to MLflow, write the loss curve; return metrics. (The
    trainer's progress line shows the step, loss, rate and ETA on stderr.)"""

    def on_log(step: int, loss: float, lr: float) -> None:
        run.log_metrics({"train.loss": loss, "train.lr": lr}, step=step)

    metrics = train(on_log)
    curve = metrics.pop("loss_curve", [])
    if loss_path:
        write_csv(loss_path, curve, ("step", "loss", "lr"))
    return metrics
