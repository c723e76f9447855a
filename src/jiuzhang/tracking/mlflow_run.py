"""MLflow tracking for stage runs: params, metrics, per-step curves and a provenance record.

Grouping: every run of one pipeline configuration (the params file minus ``tracking``) shares a
``jiuzhang.pipeline_id`` and hangs under one parent run named ``pipeline <profile> <id>``, so two
configurations show side by side in the MLflow UI (tick the two parents, "Compare").

We talk to MLflow through ``MlflowClient`` (explicit run ids) rather than the fluent API, because a stage
may log from callbacks and the fluent API's global active-run state is easy to leak between runs.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PIPELINE_TAG = "jiuzhang.pipeline_id"
ROLE_TAG = "jiuzhang.role"
STAGE_TAG = "jiuzhang.stage"
PROFILE_TAG = "jiuzhang.profile"
EXP_TAG = "dvc.exp_name"        # set by runtime.py from DVC_EXP_NAME under `dvc exp run`


def project_root_for(cwd: str | Path) -> Path:
    """The real project folder, also from inside a DVC temp experiment workspace.

    ``dvc exp run --temp/--queue`` runs stages in ``<project>/.dvc/tmp/exps/...``; a store relative to that
    folder would be deleted with it (docs/method.md, measured facts), so we log to the enclosing project instead.
    """
    parts = Path(cwd).resolve().parts
    for i, part in enumerate(parts):
        if part == ".dvc" and parts[i + 1:i + 3] == ("tmp", "exps"):
            return Path(*parts[:i])
    return Path(cwd).resolve()


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs are logged: the tracking URI and the artifact root (None: the server decides)."""
    uri: str
    artifact_root: str | None  # None: the tracking server decides


def resolve_tracking(env_uri: str | None, cwd: str | Path, store: str) -> TrackingTarget:
    """``MLFLOW_TRACKING_URI`` if set, else an absolute ``sqlite:///`` path to ``store`` in the project,
    with artifacts in ``<project>/mlartifacts`` (absolute too: a relative default would land in the
    DVC temp workspace and vanish with it)."""
    if env_uri:
        return TrackingTarget(env_uri, None)
    root = project_root_for(cwd)
    return TrackingTarget(f"sqlite:///{root / store}", (root / "mlartifacts").as_uri())


def relocate_store(target: TrackingTarget) -> dict[str, int]:
    """Point a project-local store's artifact paths at the project's current ``mlartifacts`` folder.

    MLflow records absolute artifact locations (experiments, runs, logged models). After the project folder
    is moved or copied, the store in it would still point at the old place: its artifacts would be
    unreadable, and new runs' artifacts would land in the other folder. MLflow has no API to change an
    experiment's artifact location, so the SQLite file (the project's own store, ``tracking.store``) is
    rewritten: every ``artifact_location``/``artifact_uri`` under the old ``.../mlartifacts`` gets the new
    prefix. Remote stores (``MLFLOW_TRACKING_URI``) are never touched. Returns rows changed per table.
    """
    import sqlite3

    if target.artifact_root is None or not target.uri.startswith("sqlite:///"):
        return {}
    db = Path(target.uri[len("sqlite:///"):])
    if not db.is_file():
        return {}
    new = target.artifact_root.rstrip("/")
    changed: dict[str, int] = {}
    with sqlite3.connect(db) as con:
        columns = [(t, c) for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                   for (_, c, *_) in con.execute(f'PRAGMA table_info("{t}")')
                   if c in ("artifact_location", "artifact_uri")]
        olds = {row[0].split("/mlartifacts", 1)[0] + "/mlartifacts"
                for t, c in columns for row in con.execute(f'SELECT "{c}" FROM "{t}" WHERE "{c}" LIKE ?',
                                                           ("file://%/mlartifacts%",))}
        for old in sorted(olds - {new}):
            for t, c in columns:
                cur = con.execute(f'UPDATE "{t}" SET "{c}" = ? || substr("{c}", ?) WHERE "{c}" = ? OR "{c}" LIKE ?',
                                  (new, len(old) + 1, old, old + "/%"))
                if cur.rowcount:
                    changed[t] = changed.get(t, 0) + cur.rowcount
    return changed


# Sections that never change an output: two runs differing only there are the same pipeline.
NOT_PIPELINE = ("tracking", "plan")


def pipeline_params(params: dict[str, Any]) -> dict[str, Any]:
    """The params that define a pipeline: what its id hashes and its parent run logs."""
    return {k: v for k, v in params.items() if k not in NOT_PIPELINE}


def pipeline_id(params: dict[str, Any]) -> str:
    """A short stable hash of the pipeline configuration (tracking and plan settings excluded)."""
    return hashlib.sha256(json.dumps(pipeline_params(params), sort_keys=True, default=str).encode()).hexdigest()[:12]


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1]}}`` -> ``{"a.b.0": 1}`` (MLflow keys allow dots, not brackets)."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(data, (list, tuple)):
        for i, v in enumerate(data):
            out.update(flatten(v, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = data
    return out


def numeric_leaves(metrics: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of ``metrics`` under flattened dotted keys (booleans left out)."""
    return {k: float(v) for k, v in flatten(metrics).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}


@dataclass
class StageRun:
    """Handle given to a stage for logging into its MLflow run (a no-op when tracking is off)."""

    client: Any
    run_id: str | None
    parent_id: str | None = None
    stage: str = ""
    results: dict[str, Any] | None = None  # the stage's final metrics (logged without a step)

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Log the numeric leaves of ``metrics`` (no-op when tracking is off)."""
        if self.client is None or self.run_id is None:
            return
        _log_metrics(self.client, self.run_id, numeric_leaves(metrics), step)
        if step is None:  # the stage's result (step metrics are curves); its run facts stay on the stage run
            self.results = {k: v for k, v in metrics.items() if k != "run"}

    def log_to_parent(self) -> None:
        """The stage's result metrics also on its ``pipeline ...`` parent run, keyed ``<stage>.<metric>``
        (``eval@gsm8k`` -> ``eval.gsm8k.nl.accuracy``), so the MLflow UI's Compare of two pipelines shows
        them side by side (called when the stage finishes)."""
        if self.client is None or self.parent_id is None or not self.results:
            return
        prefix = self.stage.replace("@", ".")
        _log_metrics(self.client, self.parent_id,
                     {f"{prefix}.{k}": v for k, v in numeric_leaves(self.results).items()})

    def log_artifact(self, path: str | Path) -> None:
        """Log a file as an artifact of this run (no-op when tracking is off)."""
        if self.client is not None:
            self.client.log_artifact(self.run_id, str(path))

    def log_inputs(self, inputs: dict[str, str | Path], context: str, root: Path,
                   digests: dict[str, str] | None = None) -> None:
        """The stage's input data as MLflow dataset inputs (name, content digest, path; :mod:`.lineage`)."""
        if self.client is None or not inputs:
            return
        from jiuzhang.tracking.lineage import dataset_inputs

        datasets = dataset_inputs(inputs, context, root, digests)
        if datasets:
            self.client.log_inputs(self.run_id, datasets=datasets)

    def register_model(self, folder: str | Path, root: Path) -> Any:
        """A new version of the registered model ``jiuzhang-<stage>`` pointing at the DVC output ``folder``."""
        if self.client is None or self.run_id is None:
            return None
        from jiuzhang.tracking.lineage import register_model

        return register_model(self.client, self.run_id, self.stage, Path(folder), root)


def _log_metrics(client: Any, run_id: str, values: dict[str, float], step: int | None = None) -> None:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(k, v, now, step or 0) for k, v in values.items()]
    for i in range(0, len(batch), 1000):  # MLflow's per-request limit
        client.log_batch(run_id, metrics=batch[i:i + 1000])


def _log_params(client: Any, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in sorted(flatten(params).items())]
    for i in range(0, len(items), 100):  # MLflow allows 100 params per batch
        client.log_batch(run_id, params=items[i:i + 100])


def _parent_run(client: Any, experiment_id: str, pid: str, params: dict[str, Any], profile: str,
                exp_name: str | None) -> str:
    found = client.search_runs([experiment_id], filter_string=f"tags.`{PIPELINE_TAG}` = '{pid}' and "
                               f"tags.`{ROLE_TAG}` = 'pipeline'", max_results=1)
    if found:
        if exp_name and EXP_TAG not in found[0].data.tags:
            client.set_tag(found[0].info.run_id, EXP_TAG, exp_name)
        return found[0].info.run_id
    # a `dvc exp run` variant is named after its experiment, so the UI's run list tells variants apart
    suffix = f" ({exp_name})" if exp_name else ""
    tags = {PIPELINE_TAG: pid, ROLE_TAG: "pipeline", PROFILE_TAG: profile, **({EXP_TAG: exp_name} if exp_name else {})}
    run = client.create_run(experiment_id, run_name=f"pipeline {profile} {pid}{suffix}", tags=tags)
    _log_params(client, run.info.run_id, pipeline_params(params))
    client.log_dict(run.info.run_id, params, "params.json")
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


@contextmanager
def stage_run(target: TrackingTarget | None, experiment: str, stage: str, params: dict[str, Any],
              sections: tuple[str, ...], provenance: dict[str, Any], extra_tags: dict[str, str] | None = None
              ) -> Iterator[StageRun]:
    """Open an MLflow run for one stage execution; mark it FAILED (and re-raise) if the stage fails.

    ``target=None`` disables tracking. The run is created before the stage's work starts, so an
    unreachable tracking server fails the stage at once, not after an hour of work.
    """
    if target is None:
        yield StageRun(None, None)
        return
    from mlflow.tracking import MlflowClient

    moved = relocate_store(target)
    if moved:
        import sys

        print(f"tracking: the project moved; pointed {sum(moved.values())} artifact path(s) of {target.uri} at "
              f"{target.artifact_root}", file=sys.stderr)
    client = MlflowClient(tracking_uri=target.uri)
    exp = client.get_experiment_by_name(experiment)
    experiment_id = (exp.experiment_id if exp is not None
                     else client.create_experiment(experiment, artifact_location=target.artifact_root))
    pid = pipeline_id(params)
    profile = str(params.get("profile", "unknown"))
    parent = _parent_run(client, experiment_id, pid, params, profile, (extra_tags or {}).get(EXP_TAG))
    tags = {PIPELINE_TAG: pid, ROLE_TAG: "stage", STAGE_TAG: stage, PROFILE_TAG: profile,
            "mlflow.parentRunId": parent, **(extra_tags or {})}
    run = client.create_run(experiment_id, run_name=stage, tags=tags)
    run_id = run.info.run_id
    monitor = _system_metrics(run_id, target.uri, float(params.get("tracking", {}).get("system_metrics_s", 0) or 0))
    try:
        _log_params(client, run_id, {s: params[s] for s in sections if s in params})
        client.log_dict(run_id, provenance, "provenance.json")
        handle = StageRun(client, run_id, parent, stage)
        yield handle
        handle.log_to_parent()
    except BaseException as exc:
        client.set_tag(run_id, "jiuzhang.error", f"{type(exc).__name__}: {exc}"[:5000])
        client.set_terminated(run_id, "FAILED")
        raise
    finally:
        if monitor is not None:
            monitor.finish()
    client.set_terminated(run_id, "FINISHED")


def _system_metrics(run_id: str, uri: str, every_s: float) -> Any:
    """MLflow's system metrics (CPU, memory, disk, network; GPU where there is one) for the stage run,
    sampled every ``every_s`` seconds (tracking.system_metrics_s; 0 = off) by MLflow's own monitor thread."""
    if every_s <= 0:
        return None
    import logging

    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # not 3 INFO lines per stage
    monitor = SystemMetricsMonitor(run_id, sampling_interval=every_s, samples_before_logging=1, tracking_uri=uri)
    monitor.start()
    return monitor
