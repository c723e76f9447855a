"""``jiuzhang eval``: benchmarks x settings on a model folder, a hub model or an OpenAI-compatible endpoint."""

import os
from pathlib import Path

import click

from jiuzhang.errors import UserError
from jiuzhang.runtime import Output, as_stage
from stages.options import headline_option, params_option


@click.command("eval")
@params_option
@click.option("--benchmark", "benchmarks", multiple=True,
              help="Benchmark folder name (repeatable); default: every benchmark in eval.benchmarks.")
@click.option("--model", required=True, help="Model folder (e.g. models/jiuzhang), hub id, or with --endpoint the "
              "served model's name.")
@click.option("--revision", default=None, help="Hub revision (commit SHA) when --model is a hub id.")
@click.option("--endpoint", default=None, help="Base URL of an OpenAI-compatible server (completions API), e.g. "
              "http://127.0.0.1:8000/v1; the key is read from $OPENAI_API_KEY if set.")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Output folder: <benchmark>/predictions.jsonl + metrics.json (default eval-results/<model>).")
@click.option("--results", "--metrics", "metrics_path", default=None, type=click.Path(dir_okay=False),
              help="With one --benchmark: where to write all its results as JSON (results/eval/<benchmark>.json).")
@headline_option
@click.option("--stage", "stage_name", default=None,
              help="Name of this run in MLflow (default eval@<benchmark>; the DAG's base-model runs: eval_base@...).")
@click.option("--resume-dir", default=None, type=click.Path(file_okay=False),
              help="Where finished shards of generations wait for the predictions file (default "
                   ".cache/eval/<stage>): a killed eval's rerun generates only the unfinished shards.")
def command(params_path: str, benchmarks: tuple[str, ...], model: str, revision: str | None, endpoint: str | None,
            out: str | None, metrics_path: str | None, stage_name: str | None, resume_dir: str | None) -> None:
    """Evaluate a model on the paper's benchmarks, natural-language and tool settings, greedy decoding.

    Prompts are the paper's (`## Question ... ## Solution`, tool: `## Code Solution`), zero-shot except
    AQuA, SAT-Math and MMLU-STEM (5-shot from eval.fewshot_dir). Tool-setting code runs in the sandbox.
    Answers are graded as `jiuzhang grade` does. The 'loss' setting scores the held-out loss instead:
    the mean NLL per token of each item's gold solution given its question (a local model only).
    eval.limit / eval.limits take a slice of each test set. Generations are kept shard by shard
    (eval.shard_size items) in --resume-dir until the predictions are written: rerun a killed eval and it
    generates only what it had not finished.

    \b
    Examples:
      jiuzhang eval --model models/jiuzhang --benchmark gsm8k --benchmark math500
      jiuzhang eval --model deepseek-ai/deepseek-math-7b-rl --revision <sha> --out eval-results/dsm
      jiuzhang eval --endpoint http://127.0.0.1:8000/v1 --model my-model
    """
    from jiuzhang.config.loader import load_params
    from jiuzhang.evaluation.suite import run_eval

    params = load_params(params_path)
    names = benchmarks or tuple(params.eval.benchmarks)
    if metrics_path and len(names) != 1:
        raise UserError("--metrics takes exactly one --benchmark (the DAG runs one stage per benchmark)")
    target = Path(out or Path("eval-results") / Path(model).name.replace("/", "_"))
    stage = stage_name or (f"eval@{names[0]}" if len(names) == 1 else "eval")
    from jiuzhang.benchmarks.registry import BENCHMARKS

    inputs = {f"benchmark_{n}": str(Path(params.benchmarks.root) / BENCHMARKS[n].file) for n in names if n in BENCHMARKS}
    if Path(model).is_dir():  # a hub name or an endpoint's model is not a local input
        inputs["model"] = model
    with as_stage(stage, params_path, ("eval", "benchmarks"), results_path=metrics_path, params=params,
                  tags={"jiuzhang.model": model}, inputs=inputs, output=Output(str(target))) as s:
        s.results = run_eval(s.params, names, model, revision, endpoint, os.environ.get("OPENAI_API_KEY"), target,
                             single=metrics_path is not None,
                             resume=Path(resume_dir or Path(".cache") / "eval" / stage.replace("/", "_")))
        for predictions in sorted(target.rglob("predictions.jsonl")):  # per-item outputs, answers, verdicts
            s.run.log_artifact(predictions)
