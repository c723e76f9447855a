"""A training gang: one torchrun agent per node, started together on the Ray cluster by the stage itself.

The trainer is unchanged (torchrun + DeepSpeed or the plain path, ``training/``); what changes is who
starts it. The stage (``jiuzhang pretrain ...``, run by ``dvc repro`` on the head node) reserves a Ray
placement group of ``train.nodes`` bundles, one per node (``STRICT_SPREAD``), each with the node's share of
CPUs and GPUs, and places an agent actor in each. Agent 0 names the rendezvous (its node's address and a
free port); every agent then runs ``torchrun --nnodes N --node-rank i --nproc-per-node P --master-addr
... <the stage's own command>``, streaming its log to the stage's log (prefixed by Ray with the agent's
pid and node). The stage waits for all; when any agent exits non-zero the others are stopped and the stage
fails naming the node, its exit code and the last lines of its log. A torchrun child is in its own
process group and dies with its agent (``PR_SET_PDEATHSIG``), so a failed or killed stage leaves no
training processes behind.

Written on Ray core rather than ``ray.train.TorchTrainer``: that trainer would own the training loop (its
own process group setup, checkpoint and data APIs), while ours is the same torchrun entry point a user runs
by hand and that the tests run with one process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from jiuzhang.config.cluster import ClusterConfig
from jiuzhang.errors import UserError

# Set in every process the gang starts: a stage that sees it is a rank, never a launcher again.
GANG_ENV = "JIUZHANG_GANG"


class GangFailed(UserError, RuntimeError):
    """A node's agent exited non-zero; the message names the node, the code and its log's last lines."""


def _die_with_parent() -> None:
    """In the torchrun child, before exec: its own process group, and SIGTERM when the agent dies."""
    import ctypes

    os.setsid()
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Agent:
    """One node's torchrun; a threaded actor so that :meth:`stop` can run while :meth:`run` waits."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def rendezvous(self) -> tuple[str, int]:
        """This node's address and a port free on it, for ``--master-addr/--master-port``."""
        import socket

        import ray

        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def run(self, argv: list[str], env: dict[str, str], cwd: str, tail_lines: int = 40) -> dict:
        import ray

        child_env = {**os.environ, **env}
        self.proc = subprocess.Popen(argv, cwd=cwd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace", preexec_fn=_die_with_parent)
        tail: deque[str] = deque(maxlen=tail_lines)
        assert self.proc.stdout is not None  # stdout=PIPE
        for line in self.proc.stdout:
            sys.stderr.write(line)
            tail.append(line)
        code = self.proc.wait()
        return {"code": code, "tail": "".join(tail), "node": ray.util.get_node_ip_address()}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # torchrun passes it on to its workers
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def torchrun_argv(command: Sequence[str], nodes: int, per_node: int, node_rank: int, addr: str, port: int) -> list[str]:
    """The agent's command line: torchrun from this interpreter's environment (the same venv on every node)."""
    torchrun = str(Path(sys.executable).parent / "torchrun")
    return [torchrun, "--nnodes", str(nodes), "--node-rank", str(node_rank), "--nproc-per-node", str(per_node),
            "--master-addr", addr, "--master-port", str(port), *command]


def run_gang(command: Sequence[str], nodes: int, per_node: int, cfg: ClusterConfig, what: str,
             env: dict[str, str] | None = None, cwd: str | Path | None = None) -> list[dict]:
    """Run ``torchrun ... command`` on ``nodes`` nodes x ``per_node`` processes; wait; raise
    :class:`GangFailed` when any agent fails. Returns each agent's {code, node, tail}, by node rank."""
    from jiuzhang.cluster.session import ray_session

    with ray_session(cfg):
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        gpus = per_node * cfg.training_gpus_per_process
        bundle = {"CPU": cfg.training_cpus_per_node, **({"GPU": gpus} if gpus else {})}
        group = placement_group([dict(bundle) for _ in range(nodes)], strategy="STRICT_SPREAD" if nodes > 1 else "PACK")
        ready, _ = ray.wait([group.ready()], timeout=cfg.schedule_timeout_s)
        if not ready:
            remove_placement_group(group)
            raise GangFailed(f"{what}: the cluster cannot place {nodes} node(s) with {bundle} each (one per node) "
                             f"within cluster.schedule_timeout_s={cfg.schedule_timeout_s:g} s; it has "
                             f"{ray.cluster_resources()} in {len([n for n in ray.nodes() if n['Alive']])} node(s). "
                             f"Add nodes, or lower train.nodes / cluster.training_cpus_per_node")
        agent_class = ray.remote(_Agent)
        agents = [agent_class.options(num_cpus=bundle["CPU"], num_gpus=gpus, max_concurrency=2,
                                      scheduling_strategy=PlacementGroupSchedulingStrategy(group, i)).remote()
                  for i in range(nodes)]
        try:
            addr, port = ray.get(agents[0].rendezvous.remote())
            child_env = {GANG_ENV: "1", **(env or {})}
            where = str(Path(cwd or Path.cwd()).absolute())
            refs = {agents[i].run.remote(torchrun_argv(command, nodes, per_node, i, addr, port), child_env, where): i
                    for i in range(nodes)}
            results: dict[int, dict] = {}
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                i = refs.pop(done[0])
                try:
                    results[i] = ray.get(done[0])
                except ray.exceptions.RayError as exc:
                    results[i] = {"code": None, "node": f"node rank {i}", "tail": f"the agent was lost: {exc}"}
                if results[i]["code"] != 0:
                    r = results[i]
                    raise GangFailed(f"{what}: the agent of node rank {i} ({r['node']}) exited with code {r['code']}; "
                                     f"the other node(s) were stopped. Its last lines:\n{r['tail']}")
            return [results[i] for i in range(nodes)]
        finally:
            stops = [a.stop.remote() for a in agents]
            ray.wait(stops, num_returns=len(stops), timeout=60)
            for a in agents:
                ray.kill(a, no_restart=True)
            remove_placement_group(group)
