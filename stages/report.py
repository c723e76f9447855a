"""``jiuzhang report``: the results table against the paper, plots, and the cost summary."""

from pathlib import Path

import click

from jiuzhang.runtime import as_stage
from stages.options import params_option


@click.command("report")
@params_option
@click.option("--results-dir", "--metrics-dir", "metrics_dir", default="results", show_default=True,
              type=click.Path(file_okay=False),
              help="Folder holding the stages' results (eval/<benchmark>.json, kd_*.json, synthesize.json, ...).")
@click.option("--paper", default="templates/eval/paper_results.json", show_default=True,
              type=click.Path(dir_okay=False), help="The paper's published numbers (data file).")
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="Output folder: report.html, results.md, summary.json, accuracy.csv, accuracy.png.")
@click.option("--predictions", "eval_dir", default="data/eval", show_default=True, type=click.Path(file_okay=False),
              help="The trained model's per-item predictions (<benchmark>/predictions.jsonl).")
@click.option("--base-predictions", "base_dir", default="data/eval_base", show_default=True,
              type=click.Path(file_okay=False),
              help="The base model's per-item predictions on eval.base_benchmarks, for the paired comparison.")
@click.option("--arm-predictions", "arm_dir", default="data/eval_arms", show_default=True,
              type=click.Path(file_okay=False),
              help="The control arms' per-item predictions (<arm>/<benchmark>/predictions.jsonl, pretrain.arms).")
@click.option("--template", default="templates/report/report.html.j2", show_default=True,
              type=click.Path(dir_okay=False), help="Jinja2 template of report.html.")
def command(params_path: str, metrics_dir: str, paper: str, out: str, eval_dir: str, base_dir: str,
            arm_dir: str, template: str) -> None:
    """Build the run's report: what was run (profile, code commit, experiment, models, volumes), every
    benchmark and setting with its interval next to the base model and the paper, the base-vs-trained paired
    differences (eval.base_benchmarks), the control arms side by side (pretrain.arms: base, synthetic, raw
    corpus, released sample at one token budget, paired differences vs base and vs raw, the winner in
    words), the held-out loss under two prompt formats, the filter's keep rate before and after KD, sample
    predictions, teacher cost actual vs planned, and charts.

    Open reports/report.html in a browser (self-contained: it renders offline); results.md is the same
    tables as Markdown, summary.json the numbers; `dvc plots show` renders reports/accuracy.csv.

    \b
    Example:
      jiuzhang report --results-dir results --out reports
    """
    from jiuzhang.report.page import write_report

    with as_stage("report", params_path, ("eval", "synthesizer", "base", "teacher", "kd", "plan")) as s:
        p = s.params
        s.results = write_report(Path(metrics_dir), Path(paper), p, Path(out), Path(eval_dir),
                                 Path(base_dir) if p.eval.base_benchmarks else None, Path(template),
                                 arm_dir=Path(arm_dir))
        for name in ("report.html", "results.md", "accuracy.png", "summary.json"):
            s.run.log_artifact(Path(out) / name)
