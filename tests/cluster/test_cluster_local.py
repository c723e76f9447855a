"""The one local Ray cluster of a ``jiuzhang repro`` run (cluster/local.py): started on loopback with Ray's own
CLI, joined by every stage through RAY_ADDRESS, stopped at the end; and Ray joined only when there is work."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

pytest.importorskip("ray")

from jiuzhang.cluster.local import ADDRESS_ENV, run_cluster  # noqa: E402
from jiuzhang.cluster.pool import WorkerPool  # noqa: E402
from jiuzhang.config.cluster import ClusterConfig  # noqa: E402

from conftest import BIN  # noqa: E402

# A stage process: it joins whatever RAY_ADDRESS names (cluster.address '') and runs two units on a worker.
STAGE = """
import json
from jiuzhang.cluster.pool import Unit, run_units
from jiuzhang.config.cluster import ClusterConfig
got = {}
def work(state, payload, attempt):  # in the Ray worker: which cluster it belongs to
    import ray
    return [payload * 10, ray.get_runtime_context().gcs_address]
run_units([Unit(i, f"u{i}", i) for i in range(2)], dict, work, lambda u, r: got.update({u.index: r}),
          ClusterConfig(workers=1, cpus_per_worker=1), "test")
import ray  # (a stage imports ray only in its session, after the loopback switch is set)
print(json.dumps({"got": got, "connected_after": ray.is_initialized()}))
"""


def closed(address: str) -> bool:
    host, port = address.split(":")
    with socket.socket() as s:
        return s.connect_ex((host, int(port))) != 0


def test_stages_join_the_run_cluster_and_it_is_gone_after(monkeypatch):
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")
    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    said = []
    with run_cluster(ClusterConfig(local_cpus=2, object_store_mib=128), echo=said.append) as address:
        assert address and address.startswith("127.0.0.1:") and os.environ[ADDRESS_ENV] == address
        assert not closed(address)
        # As under dvc repro: nothing but RAY_ADDRESS tells the stage where the cluster is (conftest's loopback
        # switch is not inherited: a stage must set it itself, or Ray rewrites 127.0.0.1 to the host's address).
        stage_env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
        stage_env["JIUZHANG_TRACKING"] = "off"
        runs = [json.loads(subprocess.run([sys.executable, "-c", STAGE], capture_output=True, text=True, check=True,
                                          env=stage_env, timeout=300).stdout.splitlines()[-1])
                for _ in range(2)]
    print(said, runs)
    # Each stage's worker ran on the run's cluster (not a private one), which outlived the first stage:
    # a stage's ray.shutdown() only disconnects it.
    assert [r["got"] for r in runs] == [{"0": [0, address], "1": [10, address]}] * 2
    assert not any(r["connected_after"] for r in runs)
    assert "stages join it" in said[0]
    assert ADDRESS_ENV not in os.environ and closed(address)


def test_no_run_cluster_where_the_stages_go_elsewhere(monkeypatch):
    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    for cfg in (ClusterConfig(executor="inline"), ClusterConfig(address="10.0.0.1:6379")):
        with run_cluster(cfg) as address:
            assert address is None
    monkeypatch.setenv(ADDRESS_ENV, "127.0.0.1:1")  # a cluster named by the user wins
    with run_cluster(ClusterConfig()) as address:
        assert address is None


def test_a_pool_with_nothing_to_run_does_not_touch_ray():
    import ray

    if ray.is_initialized():
        ray.shutdown()
    with WorkerPool(dict, ClusterConfig(), "test") as pool:
        stats = pool.run([], lambda s, p, a: None, lambda u, r: None)
    assert stats.units == 0 and not ray.is_initialized()


RUN = """
import sys, time
from jiuzhang.cluster.local import run_cluster
from jiuzhang.config.cluster import ClusterConfig
with run_cluster(ClusterConfig(local_cpus=1, object_store_mib=100)) as address:
    print(address, flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_the_run_cluster_stops_when_the_run_is_killed(how, monkeypatch):
    """`kill` of `jiuzhang repro` (SIGTERM: its finally stops the cluster) or `kill -9` (the kernel's
    parent-death signal stops it): no Ray process outlives the run."""
    import signal
    import time

    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")
    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    run = subprocess.Popen([sys.executable, "-c", RUN], stdout=subprocess.PIPE, text=True)
    try:
        said = run.stdout.readline()  # "Ray: one local cluster at ..."
        address = run.stdout.readline().strip()
        assert "stages join it" in said and address.startswith("127.0.0.1:") and not closed(address)
        run.send_signal(getattr(signal, how))
        run.wait(timeout=60)
    finally:
        run.kill()
    deadline = time.monotonic() + 60
    while not closed(address) and time.monotonic() < deadline:
        time.sleep(1)
    assert closed(address), f"the cluster at {address} outlived a {how} of its run"
