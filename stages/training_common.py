"""What the three training stages share: options, the loss-curve plot and the MLflow step logging."""

import os

import click

from jiuzhang.training.world import World

out_model_option = click.option("--out", required=True, type=click.Path(file_okay=False),
                                help="Output HF model folder (AutoModelForCausalLM / AutoTokenizer load it).")
checkpoints_option = click.option("--checkpoints", required=True, type=click.Path(file_okay=False),
                                  help="Scratch folder for resumable checkpoints (deleted when training ends).")
loss_curve_option = click.option("--loss-curve", "loss_path", type=click.Path(dir_okay=False), default=None,
                                 help="CSV of step, loss, lr (declared as a DVC plot).")


def started_as_gang(stage: str, params_path: str, train_of) -> bool:
    """With ``train.nodes x train.processes_per_node > 1``, and not already a rank: start this very command
    as a torchrun gang on the Ray cluster (``cluster`` params section), wait for it, and return True (the
    ranks wrote the outputs and metrics). Otherwise False: train in this process."""
    import shutil
    import sys
    from pathlib import Path

    from jiuzhang.cluster.gang import GANG_ENV, run_gang
    from jiuzhang.config.loader import load_params

    if os.environ.get(GANG_ENV) or "RANK" in os.environ:  # torchrun started us: we are a rank
        return False
    params = load_params(params_path)
    train = train_of(params)
    if train.world_size == 1:
        return False
    program = Path(sys.argv[0])
    program = program.absolute() if program.is_file() else Path(shutil.which(sys.argv[0]) or sys.argv[0])
    click.echo(f"{stage}: starting {train.nodes} node(s) x {train.processes_per_node} process(es) on the Ray cluster",
               err=True)
    run_gang(["--no-python", str(program), *sys.argv[1:]], train.nodes, train.processes_per_node, params.cluster,
             stage)
    return True


def world() -> World:
    """Rank and world size from the launcher's environment (torchrun / deepspeed); 0 of 1 otherwise."""
    return World.from_env(dict(os.environ))
