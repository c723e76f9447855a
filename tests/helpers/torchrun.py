"""torchrun on this machine for the multi-process training tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def torchrun_workers(args: list[str], nproc: int, port: int) -> list[dict]:
    """Run tests/ds_worker.py under torchrun with ``nproc`` ranks; the METRICS lines each rank printed."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    torchrun = Path(sys.executable).parent / "torchrun"
    worker = Path(__file__).resolve().parents[1] / "ds_worker.py"
    res = subprocess.run([str(torchrun), "--nproc_per_node", str(nproc), "--master_port", str(port), str(worker),
                          *args], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return [json.loads(line[len("METRICS "):]) for line in res.stdout.splitlines() if line.startswith("METRICS ")]
