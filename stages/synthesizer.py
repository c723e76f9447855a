"""``jiuzhang synthesizer``: fine-tune the synthesizer on round 1 + the boost KD set."""

import click

from stages.options import metrics_option, params_option
from stages.synthesizer_initial import train_synthesizer
from stages.training_common import checkpoints_option, loss_curve_option, out_model_option


@click.command("synthesizer")
@params_option
@click.option("--kd", "kd_dirs", required=True, multiple=True, type=click.Path(exists=True, file_okay=False),
              help="KD sets (repeat: --kd data/kd/initial --kd data/kd/boost).")
@out_model_option
@checkpoints_option
@metrics_option
@loss_curve_option
def command(params_path: str, kd_dirs: tuple[str, ...], out: str, checkpoints: str, metrics_path: str,
            loss_path: str | None) -> None:
    """Fine-tune the synthesizer (from synthesizer.init, as in the paper) on all KD sets.

    Same trainer and settings as synthesizer_initial (see `jiuzhang synthesizer_initial --help`).

    \b
    Example:
      jiuzhang synthesizer --kd data/kd/initial --kd data/kd/boost --out models/synthesizer \\
          --checkpoints .cache/checkpoints/synthesizer --results results/synthesizer.json
    """
    train_synthesizer("synthesizer", params_path, kd_dirs, out, checkpoints, metrics_path, loss_path)
