"""What every stage does around its one library call: load and validate params, seed, open the MLflow
run, write the metrics file and a provenance record, and log both.

Stage modules (``stages/<name>.py``) stay a few lines each, read top to bottom, by running their work inside
:func:`as_stage`. This is the only place outside ``stages/`` that sees environment variables.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jiuzhang.common.cards import CardFacts, headline_counts, write_card
from jiuzhang.common.digest import content_digest, json_sha256
from jiuzhang.common.headline import take_target, write_headline
from jiuzhang.common.io import write_json
from jiuzhang.common.progress import mode as progress_mode
from jiuzhang.common.progress import quiet_library_bars, reporting_to
from jiuzhang.common.provenance import artifact_provenance, cpu_model, package_versions, run_provenance
from jiuzhang.config.loader import active_overrides, load_params
from jiuzhang.config.root import Params
from jiuzhang.tracking.mlflow_run import StageRun, TrackingTarget, resolve_tracking, stage_run


def tracking_target(params: Params, env: dict[str, str] | None = None) -> TrackingTarget | None:
    """Where this stage logs; None when tracking is off (params, or JIUZHANG_TRACKING=off)."""
    env = dict(os.environ) if env is None else env
    if not params.tracking.enabled or env.get("JIUZHANG_TRACKING", "").lower() in {"0", "off", "false"}:
        return None
    return resolve_tracking(env.get("MLFLOW_TRACKING_URI"), Path.cwd(), params.tracking.store)


# results/<stage>.json layout version: 2 added the "about" block (1: the metrics alone)
RESULTS_SCHEMA = 2
# the libraries whose versions a results file names (those that compute what it reports)
RESULT_PACKAGES = ("jiuzhang", "torch", "transformers", "datatrove", "math-verify")


def run_facts_path(metrics_path: str | Path) -> Path:
    """``results/base.json`` -> ``results/run/base.json``; ``results/eval/gsm8k.json`` ->
    ``results/run/eval/gsm8k.json``: run facts live under one ``run/`` folder in the top results
    folder, never inside a folder that a stage declares as a dependency (``report`` depends on
    ``results/eval``; facts in there would rerun it for nothing)."""
    p = Path(metrics_path)
    parts = p.parts
    if "results" in parts[:-1]:
        top = len(parts) - 1 - parts[::-1].index("results", 1)
        return Path(*parts[:top + 1], "run", *parts[top + 1:])
    return p.parent / "run" / p.name


@dataclass(frozen=True)
class Output:
    """The folder a stage writes, described by a card: ``kind`` 'dataset' or 'model' (a model is also
    registered in MLflow); ``base_model``: what a model was trained from (a hub id or a folder)."""

    folder: str
    kind: Literal["dataset", "model"] = "dataset"
    base_model: str | None = None


def stand_in(params: Params) -> str | None:
    """What in this profile is not the real thing, for the cards (None: nothing)."""
    parts = []
    if params.profile == "smoke":
        parts.append("smoke profile: tiny models trained on this machine in minutes; figures are not comparable "
                     "to the paper's")
    if params.teacher.kind == "offline":
        parts.append("the teacher is an offline stand-in (a loopback server answering from real data, not an LLM)")
    return "; ".join(parts) or None


@dataclass
class StageContext:
    """What a stage's body gets from :func:`as_stage`: the validated params, its MLflow run, and the place for its
    results (set ``results`` before the block ends; :func:`as_stage` writes them out)."""

    params: Params
    run: StageRun
    results: dict[str, Any] | None = None


@contextmanager
def as_stage(name: str, params_path: str, sections: tuple[str, ...], *, seeds: dict[str, int] | None = None,
          results_path: str | None = None, provenance_dir: str | None = None, params: Params | None = None,
          tags: dict[str, str] | None = None, inputs: dict[str, str] | None = None,
          output: Output | None = None) -> Iterator[StageContext]:
    """Run the block as stage ``name``, so a stage command reads top to bottom::

        with as_stage("prompts", params_path, ("prompts",), results_path=..., output=Output(out)) as s:
            s.results = build_prompts(s.params.prompts, ...)

    ``sections`` are the params sections the stage reads (logged as MLflow params, recorded as
    provenance); ``seeds`` are its named seeds, recorded here and applied by the library code that
    uses each one (no hidden global seeding: every random draw names its seed).
    The results go to ``results_path`` (with an ``about`` block) and the headline figures to the command's
    ``--headline``; facts of this execution (times, cache hits) to ``results/run/``. ``inputs`` ({name: path})
    are logged as the MLflow run's dataset inputs (with content digests). ``output``, the folder the stage
    writes, gets a card (``README.md``, :mod:`jiuzhang.common.cards`); a model folder also becomes a version
    of the registered model ``jiuzhang-<stage>`` (``jiuzhang.tracking.lineage``). A block that raises leaves
    nothing written and its MLflow run marked failed.
    """
    seeds = seeds or {}
    headline_path = take_target()  # the command's --headline, if any
    params = params or load_params(params_path)
    full = params.model_dump(mode="json")
    config = {s: full[s] for s in sections}
    params_digest = json_sha256(config)[:16]  # named by the output's card and by the results file
    env = dict(os.environ)
    set_by_hand = active_overrides()
    tags = {**(tags or {}), **({"jiuzhang.set": "; ".join(set_by_hand)[:5000]} if set_by_hand else {}),
            **{k: env[v] for k, v in (("dvc.exp_name", "DVC_EXP_NAME"), ("dvc.exp_baseline", "DVC_EXP_BASELINE_REV"))
               if env.get(v)}}
    # Under torchrun/deepspeed every rank runs the stage; only rank 0 tracks and writes metrics.
    main_rank = env.get("RANK", "0") == "0"
    with stage_run(tracking_target(params, env) if main_rank else None, params.tracking.experiment, name, full,
                   sections, run_provenance(name, config, seeds), tags) as run:
        if progress_mode() != "bar":
            quiet_library_bars()
        # an optional input a stage did not get (None, or a path that is not there) is left out
        digests = {n: content_digest(Path(path)) for n, path in (inputs or {}).items()
                   if main_rank and path and Path(path).exists()}
        if main_rank:
            run.log_inputs({n: p for n, p in (inputs or {}).items() if n in digests}, name.split("@")[0], Path.cwd(),
                           digests)
        ctx = StageContext(params, run)
        started = time.perf_counter()
        # every Progress inside the stage also reports to its MLflow run (progress.<name>.* metrics)
        with reporting_to(run.log_metrics if run.client is not None else None, name):
            yield ctx
        if ctx.results is None:
            raise RuntimeError(f"stage {name}: the block ended without setting its results")
        metrics = ctx.results
        stage_seconds = round(time.perf_counter() - started, 2)
        if provenance_dir is not None and main_rank:
            write_json(Path(provenance_dir) / "_provenance.json", artifact_provenance(name, config, seeds))
        # Facts of this execution (wall time, throughput, cache hits) differ run to run; they go to a
        # separate file (results/run/, not a DVC output) so the stage's results stay byte-identical.
        facts = {"stage_seconds": stage_seconds, **metrics.pop("timing", {}), **metrics.pop("run", {})}
        if output is not None and main_rank and Path(output.folder).is_dir():
            # after the run facts left the metrics: the card holds only what is the same on a rerun
            write_card(output.folder, output.kind, CardFacts(
                name, params.profile, params_digest, sections, digests, headline_counts(metrics),
                {s.name: s.license or "" for s in params.corpus.sources} if name == "corpus" else {},
                output.base_model, stand_in(params)))
            if output.kind == "model":
                run.register_model(output.folder, Path.cwd())
        run.log_metrics({**metrics, "run": facts})
        if results_path is not None and main_rank:
            # the file says what it is: its layout's version, the stage, the digest of the params it was made
            # with and the versions of the libraries that computed it (the same on a rerun: no times, no host)
            write_json(results_path, {**metrics, "about": {
                "schema_version": RESULTS_SCHEMA, "stage": name, "params_sections": list(sections),
                "params_digest": params_digest, "packages": package_versions(RESULT_PACKAGES)}})
            if headline_path is not None:  # the few figures `dvc metrics show` displays
                write_headline(name, metrics, headline_path)
            # every package version of this execution (the output holds only those that shape it)
            write_json(run_facts_path(results_path), {**facts, "packages": package_versions(), "cpu_model": cpu_model()})
