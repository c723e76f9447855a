"""Side-by-side comparison of pipeline runs in MLflow: what `jiuzhang compare` prints.

A *pipeline* is every stage run of one configuration (the parent run ``pipeline <profile> <id>``, see
mlflow_run.py). ``dvc exp run -S key=value`` changes the configuration, so the variant's stage runs hang
under a parent of their own. DVC reruns only the stages downstream of the changed key; the others' outputs
(and metrics) are reused from the baseline, so a stage missing from one pipeline takes the other's
figures, marked ``=``.

We read MLflow with ``MlflowClient.search_runs`` (no pandas round trip) and print plain text so the
output pastes into a review or a notebook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jiuzhang.errors import UserError
from jiuzhang.tracking.mlflow_run import EXP_TAG, PIPELINE_TAG, ROLE_TAG, STAGE_TAG


@dataclass
class Pipeline:
    """One pipeline run in MLflow: its parent run id, name, params and stage runs with their metrics."""
    pid: str
    name: str
    params: dict[str, str]
    stages: dict[str, dict[str, float]]   # stage -> metrics of its latest finished run
    exp_names: set[str]
    last_start: int


def _all(client: Any, experiment_id: str, query: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=query, max_results=1000, page_token=token,
                                  order_by=["attributes.start_time DESC"])
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def load_pipelines(client: Any, experiment: str) -> dict[str, Pipeline]:
    """Every pipeline of ``experiment``, by parent run id; a missing experiment names the tracking URI."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise UserError(f"MLflow experiment '{experiment}' not found in {client.tracking_uri}: run the pipeline "
                        f"(dvc repro) with tracking on, or pass --experiment (tracking.experiment)")
    out: dict[str, Pipeline] = {}
    for run in _all(client, exp.experiment_id, f"tags.`{ROLE_TAG}` = 'pipeline'"):
        pid = run.data.tags[PIPELINE_TAG]
        out[pid] = Pipeline(pid, run.info.run_name, dict(run.data.params), {}, set(), run.info.start_time)
    for run in _all(client, exp.experiment_id, f"tags.`{ROLE_TAG}` = 'stage' and attributes.status = 'FINISHED'"):
        pipe = out.get(run.data.tags.get(PIPELINE_TAG, ""))
        if pipe is None:
            continue
        stage = run.data.tags.get(STAGE_TAG, run.info.run_name)
        pipe.stages.setdefault(stage, dict(run.data.metrics))  # runs come newest first
        pipe.last_start = max(pipe.last_start, run.info.start_time)
        if EXP_TAG in run.data.tags:
            pipe.exp_names.add(run.data.tags[EXP_TAG])
    return out


def select(pipelines: dict[str, Pipeline], selectors: list[str]) -> list[Pipeline]:
    """Each selector is a DVC experiment name or a pipeline id (prefix); none = the two latest pipelines."""
    if not selectors:
        ran = sorted((p for p in pipelines.values() if p.stages), key=lambda p: p.last_start, reverse=True)
        if len(ran) < 2:
            raise UserError(f"found {len(ran)} pipeline(s) with finished stage runs; compare needs two "
                            f"(run a variant: dvc exp run -S influence.method=random)")
        return ran[:2][::-1]
    chosen = []
    for sel in selectors:
        hits = [p for p in pipelines.values() if sel in p.exp_names] or \
               [p for p in pipelines.values() if p.pid.startswith(sel)]
        if len(hits) != 1:
            known = ", ".join(sorted({p.pid for p in pipelines.values()} |
                                     {n for p in pipelines.values() for n in p.exp_names}))
            what = "no pipeline" if not hits else f"{len(hits)} pipelines"
            raise UserError(f"'{sel}' matches {what}; give a DVC experiment name or a pipeline id: {known}")
        chosen.append(hits[0])
    return chosen


def param_diff(pipes: list[Pipeline]) -> list[tuple[str, list[str]]]:
    """The params whose values differ between the pipelines."""
    keys = sorted(set().union(*(p.params for p in pipes)))
    rows = [(k, [p.params.get(k, "-") for p in pipes]) for k in keys]
    return [(k, vals) for k, vals in rows if len(set(vals)) > 1]


def interval(metrics: dict[str, float], name: str) -> tuple[float, float] | None:
    """The 95% interval that goes with a metric: a logged ``<x>.ci95.0/1`` pair next to ``<x>.mean_nll``,
    or the Wilson interval of an accuracy from its ``correct`` and ``total``."""
    head, _, leaf = name.rpartition(".")
    prefix = f"{head}." if head else ""
    if leaf == "mean_nll" and f"{prefix}ci95.0" in metrics:
        return metrics[f"{prefix}ci95.0"], metrics[f"{prefix}ci95.1"]
    if leaf == "accuracy" and f"{prefix}correct" in metrics and f"{prefix}total" in metrics:
        from jiuzhang.evaluation.stats import wilson

        return wilson(int(metrics[f"{prefix}correct"]), int(metrics[f"{prefix}total"]))
    return None


def metric_table(pipes: list[Pipeline], every: bool = False) -> list[tuple[str, list[str]]]:
    """Rows ``stage: metric`` -> one cell per pipeline. By default: eval accuracies and held-out losses
    (each with its 95% interval) and what differs; facts of one execution (``run.*``: wall time,
    throughput) only with ``every``. Interval bounds are shown in their metric's cell, not as rows."""
    stages = sorted(set().union(*(p.stages for p in pipes)))
    rows = []
    for stage in stages:
        names = sorted(set().union(*(p.stages.get(stage, {}) for p in pipes)))
        for name in names:
            if (name.startswith("run.") and not every) or ".ci95." in f".{name}":
                continue
            cells, values = [], []
            for p in pipes:
                own = p.stages.get(stage)
                source = own if own is not None else next((q.stages[stage] for q in pipes if stage in q.stages), {})
                value = source.get(name)
                values.append(value)
                ci = interval(source, name) if value is not None else None
                cell = "-" if value is None else f"{value:.6g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")
                cells.append(cell + ("" if own is not None or value is None else " ="))
            if every or len(set(values)) > 1 or name.split(".")[-1] in ("accuracy", "mean_nll"):
                rows.append((f"{stage}: {name}", cells))
    return rows


def render(pipes: list[Pipeline], every: bool = False) -> str:
    """The side-by-side comparison as text: labels, differing params, then each stage's metrics."""
    labels = [chr(ord("A") + i) for i in range(len(pipes))]
    lines = [f"{label} = {p.name}" + "".join(f"; dvc exp {n}" for n in sorted(p.exp_names) if n not in p.name)
             + f"; {len(p.stages)} stage runs" for label, p in zip(labels, pipes)]
    for title, rows in (("params that differ", param_diff(pipes)), ("metrics", metric_table(pipes, every))):
        lines += ["", f"{title}:"]
        if not rows:
            lines.append("  (none)")
            continue
        width = max(len(k) for k, _ in rows)
        cols = [max([len(labels[i])] + [len(v[i]) for _, v in rows]) for i in range(len(pipes))]
        lines.append("  " + " " * width + "  " + "  ".join(l.rjust(c) for l, c in zip(labels, cols)))
        lines += ["  " + k.ljust(width) + "  " + "  ".join(v.rjust(c) for v, c in zip(vals, cols)) for k, vals in rows]
    lines += ["", "'=' : the stage did not rerun in that pipeline (DVC reused its output); the other's figure."]
    return "\n".join(lines)
