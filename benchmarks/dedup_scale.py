"""Memory and time of dedup at 1M-4M records: the pre-datatrove path against the datatrove phases.

    python benchmarks/dedup_scale.py [--sizes 1000000 2000000 4000000] [--tasks 2] [--out FILE.json]

Records are generated (seeded): ~500 characters of words from a 5,000-word vocabulary, of which 5% are
exact copies (other case and spacing) and 5% near copies (one word changed) of earlier records. Each
(path, size) runs once, in a fresh process, with the same input file and the corpus stage's dedup settings
(exact, then MinHash at threshold 0.8, 128 permutations, 5-word shingles):

* ``before``: the corpus stage before datatrove: one process, a set of exact digests and a
  ``datasketch.MinHashLSH`` index in memory (the code of ``jiuzhang.corpus.dedup`` as it was, kept here
  as the baseline);
* ``datatrove``: ``jiuzhang.dataflow.dedup.run_dedup``: exact-dedup and MinHash phases on datatrove's
  LocalPipelineExecutor, ``--tasks`` ranks on this machine's cores, signatures on disk.

Peak RSS is the largest sum over the process and all its children, sampled every 0.2 s (psutil); it counts
the pages forked workers share with their parent once per process, so for the datatrove path it is an upper
bound, and the peak PSS sum (each shared page split among its processes) is the tree's real footprint. Time is
wall-clock. Both paths must remove the same number of exact duplicates, and near ones within 1%.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
_WORD = re.compile(r"\w+", re.UNICODE)


def generate(path: Path, n: int, seed: int = 0) -> None:
    """n records of ~500 chars; 5% exact and 5% near copies of earlier records."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}x{(i * 7919) % 997}" for i in range(5000)])
    writer = pq.ParquetWriter(path, pa.schema([("id", pa.string()), ("text", pa.string())]), compression="zstd")
    batch = 100_000
    recent: list[str] = []
    for start in range(0, n, batch):
        m = min(batch, n - start)
        words = vocab[rng.integers(0, len(vocab), size=(m, 62))]
        texts = [" ".join(row) for row in words]
        kinds = rng.random(m)
        for i in range(m):
            if recent and kinds[i] < 0.05:
                texts[i] = recent[rng.integers(len(recent))].upper().replace(" ", "  ", 5)
            elif recent and kinds[i] < 0.10:
                src = recent[rng.integers(len(recent))].split()
                src[2] = "changed"      # Jaccard of 5-word shingles ~0.95: a clear near copy
                texts[i] = " ".join(src)
            if i % 50 == 0:
                recent = (recent + [texts[i]])[-2000:]
        writer.write_table(pa.table({"id": [f"r{start + i}" for i in range(m)], "text": texts}))
    writer.close()


def run_before(data: Path) -> dict:
    from datasketch import MinHash, MinHashLSH

    seen: set[bytes] = set()
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    exact = near = 0
    for batch in pq.ParquetFile(data).iter_batches(batch_size=10_000, columns=["id", "text"]):
        for rid, text in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
            words = _WORD.findall(text.lower())
            digest = hashlib.blake2b(" ".join(words).encode(), digest_size=16).digest()
            if digest in seen:
                exact += 1
                continue
            seen.add(digest)
            shingles = {" ".join(words[i:i + 5]) for i in range(max(1, len(words) - 4))}
            mh = MinHash(num_perm=128, seed=1)
            mh.update_batch([s.encode("utf-8") for s in sorted(shingles)])
            if lsh.query(mh):
                near += 1
                continue
            lsh.insert(rid, mh)
    return {"exact_duplicate": exact, "near_duplicate": near}


def run_datatrove(data: Path, tasks: int, work: Path) -> dict:
    from jiuzhang.dataflow.dedup import DedupSettings, DropLog, run_dedup
    from jiuzhang.dataflow.executor import Phases
    from jiuzhang.dataflow.shards import rank_file

    metadata = pa.struct([("n", pa.int32())])
    schema = pa.schema([("text", pa.string()), ("id", pa.string()), ("metadata", metadata)])
    (work / "in").mkdir(parents=True)
    writers = [pq.ParquetWriter(work / "in" / rank_file(r), schema, compression="zstd") for r in range(tasks)]
    for i, batch in enumerate(pq.ParquetFile(data).iter_batches(batch_size=50_000, columns=["id", "text"])):
        table = pa.table({"text": batch.column(1), "id": batch.column(0),
                          "metadata": pa.array([{"n": 0}] * batch.num_rows, type=metadata)})
        writers[i % tasks].write_table(table)
    for w in writers:
        w.close()
    phases = Phases(work, tasks, os.cpu_count() or 1)
    drops = DropLog(work / "drops", "n")
    run_dedup(phases, work / "in", metadata, DedupSettings(True, True, 0.8, 128, 5, 1), drops, [])
    reasons = drops.table().column("reason").to_pylist()
    return {"exact_duplicate": reasons.count("exact_duplicate"), "near_duplicate": reasons.count("near_duplicate")}


def measure(path: str, data: Path, tasks: int) -> dict:
    """Run one path in a fresh process; sample the RSS of it and its children."""
    with tempfile.TemporaryDirectory(dir=data.parent) as work:
        cmd = [sys.executable, __file__, "--one", path, "--data", str(data), "--tasks", str(tasks), "--work", work]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        root = psutil.Process(proc.pid)
        peak = peak_pss = 0
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
                # PSS shares each page among the processes mapping it: datatrove forks its workers, and
                # the RSS sum counts the pages they share with the parent once per process.
                peak_pss = max(peak_pss, sum(p.memory_full_info().pss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        out = proc.stdout.read() if proc.stdout else ""
        if proc.returncode != 0:
            raise SystemExit(f"{path} failed ({proc.returncode})")
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(peak / 2**20), "peak_pss_mib": round(peak_pss / 2**20),
            **json.loads(out.splitlines()[-1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 2_000_000, 4_000_000])
    ap.add_argument("--paths", nargs="+", default=["before", "datatrove"])
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        result = run_before(args.data) if args.one == "before" else run_datatrove(args.data, args.tasks, args.work)
        print(json.dumps(result))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="dedup-scale-") as tmp:
        for n in args.sizes:
            data = Path(tmp) / f"records-{n}.parquet"
            t = time.perf_counter()
            generate(data, n)
            print(f"{n:,} records generated in {time.perf_counter() - t:.0f} s", file=sys.stderr)
            for path in args.paths:
                row = {"records": n, "path": path, **measure(path, data, args.tasks)}
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
            data.unlink()
    facts = {"cpu_count": os.cpu_count(), "tasks": args.tasks, "rows": rows}
    print(json.dumps(facts, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(facts, indent=2) + "\n")


if __name__ == "__main__":
    main()
