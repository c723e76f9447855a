"""``jiuzhang kd_initial``: round 1 of knowledge distillation (a seeded sample of the prompt pool)."""

from pathlib import Path

import click

from jiuzhang.config.loader import load_params
from jiuzhang.kd.builder import run_round
from jiuzhang.kd.items import initial_items, load_pool
from jiuzhang.runtime import run_stage
from stages.options import metrics_option, params_option
from stages.teacher_endpoint import teacher_endpoint


@click.command("kd_initial")
@params_option
@click.option("--prompts", "prompts_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Prompt pool written by the prompts stage.")
@click.option("--templates", "templates_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Prompt templates (the offline teacher recognises levels by them).")
@click.option("--journal", "journal_path", required=True, type=click.Path(dir_okay=False),
              help="SQLite request journal (a persistent DVC output: answers are never paid for twice).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder of the KD set.")
@metrics_option
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar on stderr.")
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
          --journal data/journal/kd_initial.sqlite --out data/kd/initial --metrics metrics/kd_initial.json
    """
    params = load_params(params_path)
    endpoint = teacher_endpoint(params.teacher, templates_dir)
    items = initial_items(load_pool(Path(prompts_dir)), params.kd)
    run_stage("kd_initial", params_path, ("teacher", "kd"), {"kd_initial": params.kd.initial.seed},
              lambda p, run: run_round(p.teacher, items, endpoint, Path(journal_path), Path(out), progress,
                                       seed=p.kd.initial.seed),
              metrics_path, params=params, tags={"jiuzhang.teacher": params.teacher.kind})
