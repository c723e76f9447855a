"""``jiuzhang kd_initial``: round 1 of knowledge distillation (a seeded sample of the prompt pool)."""

from pathlib import Path

import click

from jiuzhang.config.loader import load_params
from jiuzhang.kd.items import initial_items, load_pool
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


@click.command("kd_initial")
@params_option
@prompts_option
@templates_option
@journal_option
@out_dir_option
@metrics_option
@progress_option
def command(params_path: str, prompts_dir: str, templates_dir: str, journal_path: str, out: str, metrics_path: str,
            progress: bool) -> None:
    """Send kd.initial.n sampled prompts to the teacher; write the KD set.

    Every answer is committed to the journal before it is used: a rerun, or a run after a crash or
    kill -9, sends only the prompts without a committed answer. Answers are parsed into [Problem] and
    [Solution]; truncated, empty, refused or malformed answers are listed in rejected.jsonl with the
    reason. With teacher.kind: offline a loopback stand-in teacher is started (NOT a real LLM).

    \b
    Example:
      jiuzhang kd_initial --prompts data/prompts --templates templates/prompts \\
          --journal data/journal/kd_initial.sqlite --out data/kd/initial --results results/kd_initial.json
    """
    params = load_params(params_path)
    endpoint = teacher_endpoint(params.teacher, templates_dir)
    items = initial_items(load_pool(Path(prompts_dir)), params.kd)
    with as_stage("kd_initial", params_path, ("teacher", "kd"), seeds={"kd_initial": params.kd.initial.seed},
                  results_path=metrics_path, params=params, tags={"jiuzhang.teacher": params.teacher.kind},
                  inputs={"prompts": prompts_dir}, output=Output(out)) as s:
        s.results = run_round(s.params.teacher, items, endpoint, Path(journal_path), Path(out), progress,
                              seed=s.params.kd.initial.seed)
