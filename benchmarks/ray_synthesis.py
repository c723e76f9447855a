"""Synthesis on Ray vs in-process, in one run on this machine: records/s with 1 and 2 Ray workers, and
the driver's overhead (Ray with 1 worker vs today's in-process path), with byte-identical shards.

    python benchmarks/ray_synthesis.py [--prompts 512] [--model models/synthesizer] [--pool data/prompts]

Uses the smoke profile's synthesizer and prompt pool (run `make repro` first), the smoke sampling settings
(params.yaml) with 1 CPU thread per engine, so the 2 workers of the last run use this machine's 2 cores.
Each run writes to a fresh folder and includes everything the stage pays: the Ray cluster's start, the
workers' start and model load, generation, commits. Prints records/s, the ratios and whether the three
runs' shards are identical.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only


def shards_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.glob("part-*.parquet")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=512)
    ap.add_argument("--model", default=str(ROOT / "models" / "synthesizer"))
    ap.add_argument("--pool", default=str(ROOT / "data" / "prompts"))
    args = ap.parse_args()
    if not (Path(args.model) / "config.json").is_file():
        sys.exit(f"{args.model}: no model; run `make repro` (the smoke profile) first")

    from jiuzhang.config.cluster import ClusterConfig
    from jiuzhang.config.loader import load_params
    from jiuzhang.kd.items import load_pool
    from jiuzhang.synthesis.engine import EngineSettings, HFEngine
    from jiuzhang.synthesis.job import run_job

    params = load_params(ROOT / "params.yaml")
    cfg = params.synthesize.model_copy(update={"threads": 1, "max_prompts": args.prompts})
    pool = load_pool(Path(args.pool))
    make = partial(HFEngine, args.model, EngineSettings.of_synthesize(cfg))
    runs = {"in-process": ClusterConfig(executor="inline"),
            "ray, 1 worker": ClusterConfig(workers=1, cpus_per_worker=1, local_cpus=2),
            "ray, 2 workers": ClusterConfig(workers=2, cpus_per_worker=1, local_cpus=2)}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cluster in runs.items():
            out = Path(tmp) / name.replace(" ", "_").replace(",", "")
            started = time.perf_counter()
            made = run_job(cfg, pool, args.model, out, cluster, make, progress=False)
            seconds = time.perf_counter() - started
            results[name] = (made["records"], seconds, shards_digest(out))
            print(f"{name:>15}: {made['records']} records in {seconds:6.1f} s = {made['records'] / seconds:6.2f} "
                  f"records/s  (shards {results[name][2]})", flush=True)
    inline, one, two = (results[k][1] for k in runs)
    print(f"driver overhead, ray 1 worker vs in-process: {one / inline - 1:+.1%}")
    print(f"speed-up, 2 workers vs 1: {one / two:.2f}x")
    print(f"identical shards in all three runs: {len({r[2] for r in results.values()}) == 1}")


if __name__ == "__main__":
    main()
