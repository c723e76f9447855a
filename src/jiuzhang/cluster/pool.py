"""A pool of long-lived workers that pull units of work (shards) from the driver, with bounded retries.

Each worker is a Ray actor that builds its state once (an engine: one vLLM or HF replica, within one
node) on its first unit and keeps it for the rest. The driver hands the next pending unit to whichever
worker is free, so a slow or dead worker holds back nobody (no fixed ``k % world`` assignment). A unit
whose worker died (its process, or its node) or raised is queued again, at most ``cluster.max_retries``
times; a dead worker is replaced. Results come back to the driver, which alone commits them
(``on_done``): two attempts of one unit can never both commit, and a late duplicate is dropped.

Written here rather than with ``ray.util.ActorPool``: that pool has no retries, no replacement of dead
actors and no scheduling deadline, which are the point of this module.

``executor: inline`` runs the same units through the same ``build``/``work`` functions in this process
(no Ray), with the same retry rule: one code path from 1 process to N machines.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jiuzhang.config.cluster import ClusterConfig
from jiuzhang.errors import UserError


class UnitFailed(UserError, RuntimeError):
    """A unit failed on every attempt (or no worker could be placed); the message names it and the error."""


@dataclass(frozen=True)
class Unit:
    """One piece of work: ``index`` orders the results, ``label`` names it in messages ('shard 3 (64 prompts)')."""

    index: int
    label: str
    payload: Any
    size: int = 1           # what progress counts (records, items)


@dataclass
class PoolStats:
    """What the run did, for the stage's metrics."""

    executor: str
    workers: int
    units: int = 0
    retries: int = 0
    workers_lost: int = 0
    nodes: list[str] = field(default_factory=list)   # where the workers ran (node ids), in start order

    def as_dict(self) -> dict[str, Any]:
        """The pool's facts for the results file: executor, workers, units, retries, workers lost, nodes used."""
        return {"executor": self.executor, "workers": self.workers, "units": self.units, "retries": self.retries,
                "workers_lost": self.workers_lost, "nodes": len(set(self.nodes))}


def attempt_id(run: str, unit: Unit, n: int) -> str:
    """Names one attempt of one unit: unique across runs and drivers, so partial files never collide."""
    return f"{run}-{unit.index}-{n}"


class _Worker:
    """The actor: builds its state on the first unit, then runs units of any phase with it."""

    def __init__(self, build: Callable[[], Any], cwd: str):
        # The stage's paths (models/..., data/...) are relative to the project folder, which every node
        # sees at the same path (README, "Several machines"); a worker starts wherever Ray starts it.
        if os.path.isdir(cwd):
            os.chdir(cwd)
        self._build = build
        self._state: Any = None  # what build() returns (an engine), made at the first unit

    def where(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def run(self, work: Callable[[Any, Any, str], Any], payload: Any, attempt: str) -> Any:
        if self._state is None:
            self._state = self._build()
        return work(self._state, payload, attempt)

    def close(self) -> None:
        if hasattr(self._state, "close"):  # a vLLM worker process holds its memory until told to leave
            self._state.close()
        self._state = None


def run_units(units: list[Unit], build: Callable[[], Any], work: Callable[[Any, Any, str], Any],
              on_done: Callable[[Unit, Any], None], cfg: ClusterConfig, what: str,
              on_progress: Callable[[int], None] | None = None) -> PoolStats:
    """Run every unit (``work(state, payload, attempt_id)``, ``state = build()`` once per worker) and hand
    each result to ``on_done`` in the driver as it arrives. Raises :class:`UnitFailed` naming the unit when
    one fails ``cfg.max_retries + 1`` times. ``what`` names the stage in messages."""
    with WorkerPool(build, cfg, what, len(units)) as pool:
        return pool.run(units, work, on_done, on_progress)


class WorkerPool:
    """Workers that keep their state across several :meth:`run` calls (phases of one stage, e.g. LESS's
    warm-up, target directions and candidate shards on one loaded model); a context manager."""

    def __init__(self, build: Callable[[], Any], cfg: ClusterConfig, what: str, most: int | None = None):
        """``most``: at most this many workers are useful (e.g. the number of units)."""
        self.build, self.cfg, self.what = build, cfg, what
        self.workers = max(1, min(cfg.workers, most if most is not None else cfg.workers))
        self.run_id = uuid.uuid4().hex[:8]
        self._driver: _Driver | None = None
        self._state: Any = None
        self._session: Any = None

    def __enter__(self) -> "WorkerPool":
        return self

    def _join_ray(self) -> None:
        """Ray is joined (or a private cluster started) at the first unit, not before: a stage with nothing
        to run (every shard already done, a loss-only eval) pays nothing for Ray."""
        if self._session is None:
            from jiuzhang.cluster.session import ray_session

            self._session = ray_session(self.cfg)
            self._session.__enter__()

    def __exit__(self, *exc) -> None:
        try:
            if self._driver is not None:
                self._driver.stop()
            if hasattr(self._state, "close"):
                self._state.close()
        finally:
            if self._session is not None:
                self._session.__exit__(*exc)

    def share(self, obj: Any) -> Any:
        """A large object many units read (e.g. LESS checkpoints): stored once in Ray's object store and
        passed by reference (a worker reads it with :func:`fetch`); in this process, the object itself."""
        if self.cfg.executor == "ray":
            import ray

            self._join_ray()
            return ray.put(obj)
        return obj

    def one(self, label: str, payload: Any, work: Callable[[Any, Any, str], Any]) -> Any:
        """Run a single unit (e.g. a warm-up) on one worker and return its result."""
        got: list[Any] = []
        self.run([Unit(0, label, payload)], work, lambda u, r: got.append(r))
        return got[0]

    def run(self, units: list[Unit], work: Callable[[Any, Any, str], Any], on_done: Callable[[Unit, Any], None],
            on_progress: Callable[[int], None] | None = None) -> PoolStats:
        """Run every unit on the workers (in this process when inline), calling ``on_done`` with each result here."""
        if self.cfg.executor == "inline" or not units:
            return self._run_inline(units, work, on_done, on_progress)
        if self._driver is None:
            self._join_ray()
            self._driver = _Driver(self.build, self.cfg, self.what, self.run_id, self.workers)
        return self._driver.run(units, work, on_done, on_progress)

    def _run_inline(self, units, work, on_done, on_progress) -> PoolStats:
        stats = PoolStats("inline", 1, nodes=["this process"])
        for unit in units:
            for n in range(self.cfg.max_retries + 1):
                if self._state is None:
                    self._state = self.build()
                try:
                    result = work(self._state, unit.payload, attempt_id(self.run_id, unit, n))
                except Exception as exc:
                    if n == self.cfg.max_retries:
                        raise UnitFailed(f"{self.what}: {unit.label} failed {n + 1} time(s); last error: "
                                         f"{type(exc).__name__}: {exc}") from exc
                    stats.retries += 1
                    continue
                on_done(unit, result)
                stats.units += 1
                if on_progress:
                    on_progress(unit.size)
                break
        return stats


class _Driver:
    """The Ray side of :class:`WorkerPool`: actors started once, fed unit by unit, replaced when lost."""

    def __init__(self, build, cfg: ClusterConfig, what: str, run: str, workers: int):
        import ray

        self.ray = ray
        self.cfg, self.what, self.run_id, self.workers = cfg, what, run, workers
        self.nodes: list[str] = []
        options: dict[str, Any] = {"num_cpus": cfg.cpus_per_worker, "num_gpus": cfg.gpus_per_worker, "max_restarts": 0}
        if cfg.resources:
            options["resources"] = dict(cfg.resources)
        self.actor_class = ray.remote(**options)(_Worker)
        self.build = ray.put(build)
        self.starting: dict[Any, Any] = {}   # ready ref -> actor not yet placed
        self.idle: list[Any] = []
        self.spare = workers * (cfg.max_retries + 1)  # replacements allowed for lost workers, over all phases
        for _ in range(workers):
            self._start_worker()

    def _start_worker(self) -> None:
        actor = self.actor_class.remote(self.build, os.getcwd())
        self.starting[actor.where.remote()] = actor

    def run(self, units, work, on_done, on_progress) -> PoolStats:
        ray = self.ray
        self.stats = PoolStats("ray", self.workers, nodes=self.nodes)
        self.work, self.on_done, self.on_progress = ray.put(work), on_done, on_progress
        self.pending: deque[tuple[Unit, int]] = deque((u, 0) for u in units)
        self.done: set[int] = set()
        self.busy: dict[Any, tuple[Any, Unit, int]] = {}
        self.last_placed = time.monotonic()
        try:
            while self.pending or self.busy:
                while self.idle and self.pending:
                    unit, n = self.pending.popleft()
                    if unit.index in self.done:
                        continue
                    actor = self.idle.pop()
                    ref = actor.run.remote(self.work, unit.payload, attempt_id(self.run_id, unit, n))
                    self.busy[ref] = (actor, unit, n)
                if not self.pending and not self.busy:
                    break
                self._check_placement()
                ready, _ = ray.wait(list(self.busy) + list(self.starting), num_returns=1, timeout=5.0)
                for ref in ready:
                    if ref in self.starting:
                        self._placed(ref)
                    else:
                        self._finished(ref)
        except BaseException:
            for actor, _, _ in self.busy.values():  # a unit still running when the run fails is abandoned
                ray.kill(actor, no_restart=True)
            self.busy.clear()
            raise
        return self.stats

    def _placed(self, ref) -> None:
        actor = self.starting.pop(ref)
        try:
            self.nodes.append(self.ray.get(ref))
        except self.ray.exceptions.RayError:
            self._lost(None)
            return
        self.idle.append(actor)
        self.last_placed = time.monotonic()

    def _finished(self, ref) -> None:
        ray = self.ray
        actor, unit, n = self.busy.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:   # the unit raised; the worker lives on
            self.idle.append(actor)
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            self._retry(unit, n, f"{type(cause).__name__}: {_first_line(cause)}", exc)
            return
        except ray.exceptions.RayError as exc:  # the worker's process or node is gone (or it was OOM-killed)
            self._lost(actor)
            self._retry(unit, n, f"its worker was lost ({type(exc).__name__}: {_first_line(exc)})")
            return
        self.idle.append(actor)
        if unit.index in self.done:  # a duplicate attempt: the first result was committed
            return
        self.on_done(unit, result)
        self.done.add(unit.index)
        self.stats.units += 1
        if self.on_progress:
            self.on_progress(unit.size)

    def _lost(self, actor) -> None:
        self.stats.workers_lost += 1
        if actor is not None:
            self.ray.kill(actor, no_restart=True)
        if self.spare > 0:
            self.spare -= 1
            self._start_worker()

    def _retry(self, unit: Unit, n: int, why: str, exc: BaseException | None = None) -> None:
        if n >= self.cfg.max_retries:
            raise UnitFailed(f"{self.what}: {unit.label} failed {n + 1} time(s) (cluster.max_retries="
                             f"{self.cfg.max_retries}); last: {why}") from exc
        self.stats.retries += 1
        self.pending.appendleft((unit, n + 1))  # next: a redone unit resumes from its partial file

    def _check_placement(self) -> None:
        """No worker can run and none has been placed for ``schedule_timeout_s``: fail, naming the request."""
        if self.idle or self.busy:
            self.last_placed = time.monotonic()
            return
        if not self.starting:
            raise UnitFailed(f"{self.what}: every worker was lost and no replacement is left "
                             f"({self.stats.workers_lost} lost); {len(self.pending)} unit(s) not done")
        if time.monotonic() - self.last_placed > self.cfg.schedule_timeout_s:
            ask = {"CPU": self.cfg.cpus_per_worker, "GPU": self.cfg.gpus_per_worker, **self.cfg.resources}
            raise UnitFailed(f"{self.what}: no worker could be placed within cluster.schedule_timeout_s="
                             f"{self.cfg.schedule_timeout_s:g} s; each asks for {ask}, the cluster has "
                             f"{self.ray.available_resources()} free of {self.ray.cluster_resources()}; lower "
                             f"cluster.cpus_per_worker/gpus_per_worker/resources or add nodes")

    def stop(self) -> None:
        ray = self.ray
        closing = [actor.close.remote() for actor in self.idle]  # a clean close lets vLLM free its memory
        if closing:
            ray.wait(closing, num_returns=len(closing), timeout=60)
        for actor in self.idle + list(self.starting.values()):
            ray.kill(actor, no_restart=True)
        self.idle, self.starting = [], {}


_FETCHED: dict[str, Any] = {}  # per worker process: the shared objects it has read, by object id


def fetch(value: Any) -> Any:
    """In a unit's work: the object :meth:`WorkerPool.share` shared (read once per worker process)."""
    try:
        from ray import ObjectRef
    except ImportError:  # pragma: no cover - ray is a dependency; inline values pass through
        return value
    if not isinstance(value, ObjectRef):
        return value
    key = value.hex()
    if key not in _FETCHED:
        import ray

        if len(_FETCHED) >= 4:  # objects of earlier phases or runs
            _FETCHED.pop(next(iter(_FETCHED)))
        _FETCHED[key] = ray.get(value)
    return _FETCHED[key]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""
