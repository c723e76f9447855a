"""One local Ray cluster for a whole ``jiuzhang repro`` run, which every stage joins.

With ``cluster.address: ''`` a stage run alone (``dvc repro <stage>``, ``jiuzhang <stage>``) starts a private
Ray cluster and stops it after: ~5 s to start and ~2 s to stop on 2 cores, paid by each of the ~15 Ray
stages of a smoke run. ``jiuzhang repro`` instead starts one head node on loopback with Ray's own CLI
(``ray start --head --block``) before ``dvc repro`` and hands its address to every stage in ``RAY_ADDRESS``
(:func:`jiuzhang.cluster.session.ray_session` joins it); SIGTERM to that ``ray start`` drains the node and
stops every process it started, and other Ray clusters on the machine (a test's, a user's) are left alone,
which ``ray stop`` would not do. The cluster never outlives the run: the end of the block (also on an
error, Ctrl-C or SIGTERM) stops it, and the kernel sends it SIGTERM should the run itself be killed
(``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from jiuzhang.config.cluster import ClusterConfig
from jiuzhang.errors import UserError

ADDRESS_ENV = "RAY_ADDRESS"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it dies, however it died."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def run_cluster(cfg: ClusterConfig, echo=print, start_timeout_s: float = 120.0) -> Iterator[str | None]:
    """A loopback head node for the block when the stages would each start a private one (executor 'ray',
    address '', no ``RAY_ADDRESS`` already set); yields its address, or None when the stages go elsewhere."""
    if cfg.executor != "ray" or cfg.address or os.environ.get(ADDRESS_ENV):
        yield None
        return
    ray = shutil.which("ray")
    if ray is None:
        raise UserError("`ray` is not on PATH: run `make install` and `source .venv/bin/activate` (or set "
                        "cluster.executor: inline in params.yaml to run without Ray)")
    port = _free_port()
    # Its own temp dir: `ray start` records itself there as "the" cluster of the machine
    # (ray_current_cluster), which would make a user's later `ray.init()` try to join a cluster long gone.
    temp = tempfile.mkdtemp(prefix="jz-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    argv = [ray, "start", "--head", "--block", "--temp-dir", temp, "--node-ip-address", "127.0.0.1", "--port", str(port),
            "--num-cpus", str(cfg.local_cpus or os.cpu_count() or 1), "--include-dashboard", "false",
            "--object-store-memory", str(cfg.object_store_mib * 2**20), "--disable-usage-stats"]
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            preexec_fn=_stop_with_parent)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)  # run the finally below on `kill <run>` too
    assert proc.stdout is not None
    output = proc.stdout
    started, lines = threading.Event(), []

    def read() -> None:  # drain Ray's output for the whole run (a full pipe would block it)
        for line in output:
            lines.append(line.rstrip())
            if "Ray runtime started" in line:
                started.set()
        started.set()

    threading.Thread(target=read, daemon=True).start()
    address = f"127.0.0.1:{port}"
    try:
        if not started.wait(start_timeout_s) or proc.poll() is not None:
            raise UserError(f"could not start a local Ray cluster ({' '.join(argv[1:])}); its last lines:\n"
                            + "\n".join(lines[-15:]) + "\nSet cluster.executor: inline to run without Ray")
        echo(f"Ray: one local cluster at {address} for this run (cluster.address ''); stages join it")
        os.environ[ADDRESS_ENV] = address
        yield address
    finally:
        signal.signal(signal.SIGTERM, previous)
        os.environ.pop(ADDRESS_ENV, None)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # ray start --block: drain, then stop what it started
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(temp, ignore_errors=True)  # session logs: the stages' own logs already hold what matters
