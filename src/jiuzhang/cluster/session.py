"""The Ray session of one stage: start a private local cluster, or join the one ``cluster.address`` names
(with address '', the one ``jiuzhang repro`` started for the run, named by ``RAY_ADDRESS``: cluster/local.py).

Reentrant: when Ray is already initialised (a stage that runs several pools, or a test that built a
multi-node :class:`ray.cluster_utils.Cluster`), the session reuses it and leaves it running.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from jiuzhang.config.cluster import ClusterConfig
from jiuzhang.errors import UserError


@contextmanager
def ray_session(cfg: ClusterConfig) -> Iterator[None]:
    """Ray initialised for the block; a cluster started here is stopped after it (even on an error)."""
    address = cfg.address or os.environ.get("RAY_ADDRESS", "")
    if not address or address.split(":")[0] in ("127.0.0.1", "localhost"):
        # A private cluster stays on loopback: Ray's own switch for single-machine clusters (read when ray is
        # imported, hence set first) binds and advertises 127.0.0.1 instead of the machine's address; joining
        # a loopback cluster needs it too, or Ray rewrites 127.0.0.1 to the machine's address.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    # Every worker's log line reaches the stage's log: Ray would fold lines repeated across workers into one.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray

    if ray.is_initialized():
        yield
        return
    # The dashboard, usage stats and the log monitor's colour codes are of no use to a stage; its workers'
    # stderr (model loading, tracebacks) still reaches the stage's log, prefixed with the worker's pid.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    common = {"include_dashboard": False, "log_to_driver": True, "logging_level": "WARNING"}
    try:
        if address:
            ray.init(address=address, **common)
        else:
            # "local": a new cluster even where `ray start` ran before (ray.init() alone would join the cluster
            # named in /tmp/ray/ray_current_cluster, or fail on a stale entry there).
            ray.init(address="local", num_cpus=cfg.local_cpus or os.cpu_count() or 1,
                     object_store_memory=cfg.object_store_mib * 2**20, **common)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = (f"cluster.address {cfg.address!r}" if cfg.address else f"RAY_ADDRESS {address!r}" if address
                 else "a local Ray cluster (cluster.address '')")
        raise UserError(f"could not start or join {where}: {exc}. For an existing cluster run `ray status` on "
                        f"its head node; '' starts a private one here") from exc
    try:
        yield
    finally:
        ray.shutdown()
