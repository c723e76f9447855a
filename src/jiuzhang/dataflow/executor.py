"""Run a record pipeline's phases on datatrove's executors: local processes, or Ray when a cluster is set.

A phase is one datatrove executor (``tasks`` ranks of the same step list). Each phase logs under
``<work>/logs/<phase>/``, where datatrove writes one completion marker per finished rank: a stage that
was killed resumes there, and the finished ranks are not run again. The work folder lives outside the
DVC outputs (``dvc repro`` deletes those before a stage starts) and is named by the stage's inputs, so a
changed input never reuses stale pieces; it is deleted once the stage has written its outputs.

Where it runs changes no output byte: ``tasks`` (a params key) fixes how records are split; ``workers``
(this machine's cores) or Ray only decide how many ranks run at once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jiuzhang.config.cluster import ClusterConfig
from jiuzhang.errors import UserError

WORK_ROOT = Path(".cache") / "datatrove"


@dataclass(frozen=True)
class Phases:
    """How a stage's phases run: ``tasks`` ranks each, ``workers`` at once; on Ray when ``ray`` is set."""

    work: Path
    tasks: int
    workers: int
    ray: ClusterConfig | None = None

    def run(self, name: str, pipeline: Sequence[Any], tasks: int | None = None) -> None:
        """Run one phase to completion (ranks with a completion marker are skipped)."""
        from datatrove.executor import LocalPipelineExecutor

        n = tasks or self.tasks
        logs = str(self.work / "logs" / name)
        if self.ray is not None:
            from datatrove.executor.ray import RayPipelineExecutor

            executor: Any = RayPipelineExecutor(list(pipeline), tasks=n, workers=-1, logging_dir=logs,
                                                cpus_per_task=1, mem_per_cpu_gb=1)
        else:
            # fork: the pipeline's objects reach the workers as they are, without a pickling round trip.
            executor = LocalPipelineExecutor(list(pipeline), tasks=n, workers=min(self.workers, n), logging_dir=logs,
                                             start_method="fork")
        executor.run()
        missing = executor.get_incomplete_ranks(skip_completed=True)
        if missing:
            raise UserError(f"datatrove phase '{name}': ranks {missing[:10]} did not finish (logs in "
                            f"{logs}/logs); rerun the stage: finished ranks are kept")

    def totals(self, phase: str, step: str) -> Counter[str]:
        """Sum of every counter the step named ``step`` of ``phase`` recorded over all ranks (those of this run
        and those a killed run finished: datatrove keeps each rank's stats beside its completion marker)."""
        out: Counter[str] = Counter()
        for f in sorted((self.work / "logs" / phase / "stats").glob("*.json")):
            for entry in json.loads(f.read_text()):
                if entry.get("name", "").split(": ", 1)[-1] == step:  # "<type>: <name>"
                    for key, value in entry.get("stats", {}).items():
                        out[key] += value["total"] if isinstance(value, dict) else value
        return out

    @contextmanager
    def cluster(self) -> Iterator[None]:
        """Ray initialised around the phases when they run on Ray (the GPU stages' session code)."""
        if self.ray is None:
            yield
            return
        from jiuzhang.cluster.session import ray_session

        with ray_session(self.ray):
            yield


def resolve_tasks(tasks: int | str) -> int:
    """``auto`` = this machine's cores (then outputs depend on the machine: fix a number to share them)."""
    return (os.cpu_count() or 1) if tasks == "auto" else int(tasks)


def phases_for(stage: str, inputs: Any, tasks: int | str, cluster: ClusterConfig | None) -> Phases:
    """The phases of ``stage``: a work folder named by ``inputs`` (JSON-able: params and input files' sizes)."""
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]
    use_ray = cluster is not None and (cluster.data_executor == "ray" or
                                       (cluster.data_executor == "auto" and bool(cluster.address)))
    return Phases(WORK_ROOT / f"{stage}-{key}", resolve_tasks(tasks), os.cpu_count() or 1,
                  cluster if use_ray else None)


def file_facts(paths: Sequence[Path]) -> list[list[Any]]:
    """Names, sizes and modification times: what names a work folder (cheap; content hashes are DVC's job)."""
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] if p.exists() else [str(p), None, None]
            for p in paths]



