"""Cost of opening a shard's file per read (training/tokenstore.py, issue 22.2) against holding one handle per
file (the baseline, as the store did before: ~5 handles per shard, far above `ulimit -n` at paper scale).

    python benchmarks/token_store_reads.py [--rows 20000] [--shard-rows 256] [--steps 400] [--micro-batch 8]

Builds one store (random token rows, max_length 2,048 as the paper), then times, in this process and
interleaved round by round, `gather` + `target_counts` of the same random micro-batches (the training
loop's reads) through the store as it is and through a subclass that keeps every file open. Prints the
median seconds per micro-batch of each and their ratio (open-per-read / held).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--shard-rows", type=int, default=256)
    ap.add_argument("--max-length", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    from jiuzhang.training import tokenstore
    from jiuzhang.training.packing import IGNORE, PackStats
    from jiuzhang.training.tokenstore import TokenStore, build_store

    class HeldRows(tokenstore._Rows):
        """The baseline: one descriptor per file, opened once and kept."""

        def __init__(self, path: Path):
            super().__init__(path)
            self.fd = os.open(path, os.O_RDONLY)

        def read(self, rows: list[int]) -> np.ndarray:
            buf = b"".join(os.pread(self.fd, self.row_bytes, self.offset + r * self.row_bytes) for r in rows)
            return np.frombuffer(buf, dtype=self.dtype).reshape((len(rows), *self.shape[1:]))

    rng = np.random.default_rng(0)
    width = args.max_length

    def items():
        for _ in range(args.rows):
            ids = rng.integers(0, 32000, width).tolist()
            labels = [IGNORE] * 16 + ids[16:]
            yield ids, labels

    from jiuzhang.training.packing import Tokenized

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "store"
        build_store((Tokenized(f"r{i}", a, b) for i, (a, b) in enumerate(items())), width, 0, folder,
                    packing=False, shard_rows=args.shard_rows, stats=PackStats())
        opened = TokenStore(folder)
        held = TokenStore(folder)
        held._shards = [{name: HeldRows(folder / f"{name}-{k:05d}.npy") for name in TokenStore.NAMES}
                        for k in range(held.meta["shards"])]
        batches = [random.Random(s).sample(range(args.rows), args.micro_batch) for s in range(args.steps)]
        times: dict[str, list[float]] = {"open per read": [], "held handles": []}
        for _ in range(args.rounds):
            for name, store in (("open per read", opened), ("held handles", held)):
                t0 = time.perf_counter()
                for idx in batches:
                    store.gather(idx)
                    store.target_counts(idx)
                times[name].append((time.perf_counter() - t0) / len(batches))
        shards = held.meta["shards"]
        print(f"store: {args.rows:,} rows x {width} tokens in {shards} shards ({shards * 5} files); "
              f"micro-batch {args.micro_batch}, {args.steps} reads x {args.rounds} rounds")
        med = {k: statistics.median(v) for k, v in times.items()}
        for k, v in med.items():
            print(f"  {k:14s}: {v * 1e3:.3f} ms per micro-batch (median; min {min(times[k]) * 1e3:.3f}, "
                  f"max {max(times[k]) * 1e3:.3f})")
        print(f"  ratio open-per-read / held: {med['open per read'] / med['held handles']:.3f}")


if __name__ == "__main__":
    main()
