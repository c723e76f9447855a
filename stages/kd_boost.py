"""``jiuzhang kd_boost``: round 2 of knowledge distillation (the texts the influence stage selected)."""

from pathlib import Path

import click

from jiuzhang.config.loader import load_params
from jiuzhang.kd.items import boost_items, load_pool
from jiuzhang.kd.teacher_round import run_round
from jiuzhang.runtime import Output, as_stage
from stages.options import (
    journal_option,
    metrics_option,
    out_dir_option,
    params_option,
    progress_option,
    prompts_option,
    templates_option,
)
from stages.teacher_endpoint import teacher_endpoint


@click.command("kd_boost")
@params_option
@prompts_option
@click.option("--selection", "selection_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Selection written by the influence stage.")
@templates_option
@journal_option
@out_dir_option
@metrics_option
@progress_option
def command(params_path: str, prompts_dir: str, selection_dir: str, templates_dir: str, journal_path: str, out: str,
            metrics_path: str, progress: bool) -> None:
    """Send the influence-selected prompts to the teacher; write the boost KD set.

    Same client, journal, budget and parsing as kd_initial (see `jiuzhang kd_initial --help`).

    \b
    Example:
      jiuzhang kd_boost --prompts data/prompts --selection data/influence/selection --templates templates/prompts \\
          --journal data/journal/kd_boost.sqlite --out data/kd/boost --results results/kd_boost.json
    """
    params = load_params(params_path)
    endpoint = teacher_endpoint(params.teacher, templates_dir)
    items = boost_items(load_pool(Path(prompts_dir)), Path(selection_dir))
    with as_stage("kd_boost", params_path, ("teacher", "kd"), results_path=metrics_path, params=params,
                  tags={"jiuzhang.teacher": params.teacher.kind},
                  inputs={"prompts": prompts_dir, "selection": selection_dir}, output=Output(out)) as s:
        s.results = run_round(s.params.teacher, items, endpoint, Path(journal_path), Path(out), progress)
