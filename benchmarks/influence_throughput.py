"""Per-example LoRA gradients + projection (LESS features) on CPU, in one run.

    python benchmarks/influence_throughput.py [--examples 64] [--dim 8192]

Model: the smoke base's shape (Llama, hidden 128, 4 layers; LoRA r=8 on q/k/v/o = 32,768 weights), randomly
initialised. Examples: GSM8K train problems with their worked answers (loss on the answer), <= 256 tokens.
Compares (1) the per-example loop (one backward per example, what LESS's code does) with the batched hook
method, and (2) the count-sketch projection with a dense Rademacher projection at the same dimension.
Prints examples/s, the ratios, and the projected CPU-hours of the paper's pool at the measured rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from jiuzhang.influence.gradients import per_example_batched, per_example_loop  # noqa: E402
from jiuzhang.influence.less import tokenize_all, with_lora  # noqa: E402
from jiuzhang.influence.projection import CountSketch, DenseRademacher  # noqa: E402
from jiuzhang.training.packing import Example  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=64)
    ap.add_argument("--dim", type=int, default=8192)
    ap.add_argument("--pool", type=int, default=100_000, help="paper-scale candidate pool for the projection")
    ap.add_argument("--checkpoints", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(2)
    from test_less import smoke_like_model

    model, tok = smoke_like_model()
    model = with_lora(model, 8, 32, 0)
    model.eval()
    rows = [json.loads(x) for x in (ROOT / ".." / "shared" / "benchmarks" / "gsm8k" / "train.jsonl").read_text().splitlines()]
    data = tokenize_all([Example(str(i), f"## Question\n{r['question']}\n\n## Solution\n", r["answer"])
                         for i, r in enumerate(rows[:args.examples])], tok, 256)
    per_example_batched(model, data[:4])  # warm-up
    start = time.perf_counter()
    loop = per_example_loop(model, data)
    t_loop = time.perf_counter() - start
    start = time.perf_counter()
    batched = per_example_batched(model, data, batch_size=16)
    t_batched = time.perf_counter() - start
    n_params = loop.shape[1]
    sketch, dense = CountSketch(n_params, args.dim, 0), DenseRademacher(n_params, args.dim, 0)
    start = time.perf_counter()
    for _ in range(5):
        sketch(batched)
    t_sketch = (time.perf_counter() - start) / 5
    start = time.perf_counter()
    for _ in range(5):
        dense(batched)
    t_dense = (time.perf_counter() - start) / 5
    rate = len(data) / (t_batched + t_sketch)
    result = {
        "device": f"cpu ({torch.get_num_threads()} threads)", "examples": len(data), "lora_params": n_params,
        "max_abs_diff_loop_vs_batched": float((loop - batched).abs().max()),
        "loop_examples_per_s": round(len(data) / t_loop, 1), "batched_examples_per_s": round(len(data) / t_batched, 1),
        "batched_speedup": round(t_loop / t_batched, 2),
        "projection_dim": args.dim, "count_sketch_ms": round(t_sketch * 1000, 2), "dense_rademacher_ms": round(t_dense * 1000, 2),
        "projection_speedup": round(t_dense / t_sketch, 2),
        "dense_matrix_mb": round(n_params * args.dim * 4 / 2**20, 1),
        "paper_pool_projection": {"candidates": args.pool, "checkpoints": args.checkpoints,
                                  "cpu_hours_at_this_rate_tiny_model": round(args.pool * args.checkpoints / rate / 3600, 2)},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
