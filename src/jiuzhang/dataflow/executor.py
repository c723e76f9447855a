"""Run a record pipeline's phases on datatrove's executors: local processes, or Ray when a cluster is set.

A phase is one datatrove executor (``tasks`` ranks of the same step list). Each phase logs under
``<work>/logs/<phase>/``, where datatrove writes one completion marker per finished rank: a stage that
was killed resumes there, and the finished ranks are not run again. The work folder lives outside the
DVC outputs (``dvc repro`` deletes those before a stage starts) and is named by the stage's inputs, so a
changed input never reuses stale pieces; it is deleted once the stage has written its outputs.

Where it runs changes no output byte: ``tasks`` (a params key) fixes how records are split; ``workers``
(this machine's cores) or Ray only decide how many ranks run at once.

The console stays short: datatrove's per-rank logs go to ``<work>/logs/<phase>/logs/task_*.log`` only (the
console shows their errors), its merged stats table is not printed (our metrics files hold the counts), and
each phase prints one line per 10% of its tasks with rate and ETA (``jiuzhang.common.progress``), e.g.
``corpus minhash-signatures: 32/64 task (50%), 0.8 task/s, elapsed 0:00:40, ETA 0:00:40``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datatrove.executor import LocalPipelineExecutor
from datatrove.executor.ray import RayPipelineExecutor
from datatrove.utils.logging import logger

from jiuzhang.common.progress import QUIET_S, Progress
from jiuzhang.config.cluster import ClusterConfig
from jiuzhang.errors import UserError

WORK_ROOT = Path(".cache") / "datatrove"


def quiet_console() -> None:
    """datatrove's console logger at warnings only (its task logs keep everything, in files)."""
    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="datatrove {level}: {message}")


def _quiet_dedup_bars() -> None:
    """datatrove's dedup steps draw a tqdm bar per rank over a handful of files ("Reading dup files",
    "Initializing pq..."), always on, a dozen lines per stage in a CI log; its blocks take no switch for it,
    so their modules' ``tqdm`` name is given ``disable=True`` (a no-op if a later datatrove drops the name)."""
    import functools
    import importlib

    tqdm: Any = importlib.import_module("tqdm").tqdm
    quiet = functools.partial(tqdm, disable=True)
    for name in ("datatrove.pipeline.dedup.exact_dedup", "datatrove.pipeline.dedup.minhash"):
        module = importlib.import_module(name)
        if getattr(module, "tqdm", None) is tqdm:
            setattr(module, "tqdm", quiet)


class _QuietRanks:
    """Each rank logs to its file only (datatrove prints a rank's log to the console when its local_rank is 0)
    and reports the phase's progress as ranks finish. ``label`` and ``phase_started`` are set before run()."""

    label = "datatrove"
    phase_started = 0.0
    finished_before = 0
    progress_dir = ""

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):  # noqa: D401 - datatrove's hook
        try:
            return super()._run_for_rank(rank, 1, node_rank)  # type: ignore[misc]
        finally:
            quiet_console()  # datatrove re-adds a verbose console logger after each rank

    def _launch_run_for_rank(self, rank: int, ranks_q, completed=None, completed_lock=None):
        stats = super()._launch_run_for_rank(rank, ranks_q, completed, completed_lock)  # type: ignore[misc]
        if completed is not None:
            done = completed.value  # shared by the worker processes; counts the skipped ranks too
        else:  # one worker: ranks run in this process, one after another
            self.finished_before += 1
            done = self.finished_before
        total = self.world_size  # type: ignore[attr-defined]
        every = max(1, total // 10)
        due = done == total or (done % every == 0 and time.perf_counter() - self.phase_started >= QUIET_S)
        if due and self._claim_line(done):
            line = Progress(self.label, total, "task", initial=0, form="off", started=self.phase_started)
            line.done = done
            print(line.line(), file=sys.stderr, flush=True)
        return stats

    def _claim_line(self, done: int) -> bool:
        """True for the one worker that prints the line for ``done`` finished tasks: workers read the shared
        count after their own increment, so two can read the same value (a file created exclusively decides)."""
        if not self.progress_dir:
            return True
        os.makedirs(self.progress_dir, exist_ok=True)
        try:
            os.close(os.open(os.path.join(self.progress_dir, str(done)), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True


class QuietLocalExecutor(_QuietRanks, LocalPipelineExecutor):
    """datatrove's local executor with a short console."""


class QuietRayExecutor(_QuietRanks, RayPipelineExecutor):
    """datatrove's Ray executor with a short console."""


@dataclass(frozen=True)
class Phases:
    """How a stage's phases run: ``tasks`` ranks each, ``workers`` at once; on Ray when ``ray`` is set."""

    work: Path
    tasks: int
    workers: int
    ray: ClusterConfig | None = None

    def run(self, name: str, pipeline: Sequence[Any], tasks: int | None = None, label: str | None = None) -> None:
        """Run one phase to completion (ranks with a completion marker are skipped). ``label`` names it in
        progress lines (default: ``name``)."""
        n = tasks or self.tasks
        logs = str(self.work / "logs" / name)
        if self.ray is not None:
            executor: Any = QuietRayExecutor(list(pipeline), tasks=n, workers=-1, logging_dir=logs,
                                             cpus_per_task=1, mem_per_cpu_gb=1)
        else:
            # fork: the pipeline's objects reach the workers as they are, without a pickling round trip.
            executor = QuietLocalExecutor(list(pipeline), tasks=n, workers=min(self.workers, n), logging_dir=logs,
                                          start_method="fork")
        before = n - len(executor.get_incomplete_ranks(skip_completed=True))
        executor.label, executor.phase_started, executor.finished_before = label or name, time.perf_counter(), before
        executor.progress_dir = str(self.work / "logs" / name / f"progress-{time.time_ns()}")
        report = Progress(label or name, n, "task", initial=before, form="off")  # MLflow's figures of the phase
        if before == n:
            print(f"{label or name}: all {n} tasks were finished by an earlier run (kept)", file=sys.stderr, flush=True)
        quiet_console()
        _quiet_dedup_bars()
        try:
            executor.run()
        finally:
            quiet_console()
        missing = executor.get_incomplete_ranks(skip_completed=True)
        report.set(n - len(missing))
        if self.ray is not None and before < n:  # Ray ranks report nothing back while they run
            line = Progress(label or name, n, "task", initial=before, form="off", started=executor.phase_started)
            line.done = n - len(missing)
            print(line.line(), file=sys.stderr, flush=True)
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



