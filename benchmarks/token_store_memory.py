"""Peak memory of the training data path as the data grows: in-memory tensors (the baseline) vs the on-disk
token store (training/tokenstore.py), each in a fresh process, at N and 10 x N examples.

    python benchmarks/token_store_memory.py [--examples 20000] [--max-length 512]

Each child process builds a tokenizer (BPE, trained here on a few lines: nothing downloaded), then
- ``memory``: tokenizes and packs all examples into int64 tensors (what run_training did before the
  store), then reads every row once;
- ``store``: streams the same examples (generated, never held as a list) into a store on disk, maps it
  and reads every row once in micro-batches, as a rank does;
- ``records-list`` / ``records-stream``: the pretrain stage's whole data path from a records file on disk
  (written before the baseline is taken) to the store: loading every record into a list and mixing it
  (what the stage did before) vs :class:`~jiuzhang.training.records.PretrainMix` (scan, spool, stream).
It prints the child's peak RSS (VmHWM; ru_maxrss would inherit the parent's peak at exec) minus the RSS after imports and tokenizer, per mode and size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r'''
import json, sys, tempfile
from jiuzhang.common.memory import peak_rss_kib
from pathlib import Path
mode, n, max_length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
from jiuzhang.base.tokenizer import train_tokenizer
from jiuzhang.training.packing import Example, PackStats, pack, tokenize
from jiuzhang.training.tokenstore import build_store
tok = train_tokenizer([f"Problem {i}: what is {i} plus {i + 1}? Solution: it is {2 * i + 1}." for i in range(300)], 400, 1)
def examples():
    for i in range(n):
        yield Example(f"e{i}", f"Problem {i}: what is {i} plus {i + 1}? " * 3, f" Solution: it is {2 * i + 1}. " * 6)
base = peak_rss_kib()
stats = PackStats()
records = Path(sys.argv[4]) / "records.jsonl"
if mode.startswith("records"):
    with records.open("w") as fh:
        for e in examples():
            fh.write(json.dumps({"id": e.id, "input": e.prompt, "output": e.target}) + "\n")
base = peak_rss_kib()
if mode == "records-list":
    from jiuzhang.training.records import load_examples, pretrain_mix
    mixed, _ = pretrain_mix(load_examples(records, "input", "output"), [], 1, None, None)
    data = build_store(tokenize(mixed, tok, max_length, "truncate", stats), max_length, tok.pad_token_id,
                       Path(tempfile.mkdtemp(dir=sys.argv[4])) / "store", stats=stats)
elif mode == "records-stream":
    from jiuzhang.training.records import PretrainMix, iter_examples
    mix = PretrainMix(synthetic=lambda: iter_examples(records, "input", "output"), supplement=None, tail=None, seed=1)
    mix.digest()
    data = build_store(tokenize(mix.iterate(Path(sys.argv[4]) / "spool"), tok, max_length, "truncate", stats),
                       max_length, tok.pad_token_id, Path(tempfile.mkdtemp(dir=sys.argv[4])) / "store", stats=stats)
elif mode == "memory":
    data = pack(tokenize(list(examples()), tok, max_length, "truncate", stats), max_length, tok.pad_token_id, stats)
else:
    data = build_store(tokenize(examples(), tok, max_length, "truncate", stats), max_length, tok.pad_token_id,
                       Path(tempfile.mkdtemp(dir=sys.argv[4])) / "store", stats=stats)
total = 0
for start in range(0, len(data), 8):
    ids, labels, pos, real = data.gather(list(range(start, min(start + 8, len(data)))))
    total += int(real.sum())
peak = peak_rss_kib()
print(json.dumps({"rows": len(data), "tokens": total, "peak_mib": round((peak - base) / 1024, 1)}))
'''


def run(mode: str, n: int, max_length: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        out = subprocess.run([sys.executable, "-c", CHILD, mode, str(n), str(max_length), scratch],
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=20000)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--modes", default="memory,store,records-list,records-stream", help="comma-separated subset")
    args = ap.parse_args()
    rows = []
    for n in (args.examples, 10 * args.examples):
        for mode in args.modes.split(","):
            r = run(mode, n, args.max_length)
            rows.append({"mode": mode, "examples": n, **r})
            print(json.dumps(rows[-1]), flush=True)
    by = {(r["mode"], r["examples"]): r["peak_mib"] for r in rows}
    small, big = args.examples, 10 * args.examples
    print(json.dumps({f"{mode}_growth_x": round(by[mode, big] / max(by[mode, small], 0.1), 2)
                      for mode in args.modes.split(",")}))


if __name__ == "__main__":
    main()
