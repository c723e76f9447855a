"""Held-out loss tokens/s against sequences per forward pass (eval.loss_batch_size), one run, same items.

    python benchmarks/heldout_batch.py --model .mini/proj/models/base [--items 30 --sizes 16 4 1]

Scores the first ``--items`` MATH-500 gold solutions under the paper's eval template with
``jiuzhang.evaluation.heldout.heldout_nll`` (the stage's own code) at each batch size, and prints tokens/s,
the ratio to the first size, and the largest per-item NLL difference from the first size (padding must not
change the losses beyond float rounding). On a 2-core CPU padding and the [batch, length, vocab] logits cost
more than batching wins, hence eval.loss_batch_size: 1 in the CPU profiles. Runs under the same kernel pins as
`jiuzhang` (ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 unless set).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")  # as jiuzhang.cli pins it, before torch is imported
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from jiuzhang.evaluation.heldout import Example, _fit, heldout_nll  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a local HF model folder")
    ap.add_argument("--bench", default="../shared/benchmarks/math500/test.jsonl")
    ap.add_argument("--items", type=int, default=30)
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 4, 1])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(args.model)
    with open(args.bench, encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(args.items), f)]
    examples = [Example(str(i), f"## Question\n{r['problem'].strip()}\n\n## Solution\n", r["solution"])
                for i, r in enumerate(rows)]
    tokens = sum(len(t.input_ids) for t in (_fit(e, tok, 2048) for e in examples) if t is not None)
    heldout_nll(model, tok, examples[:2], 1, 2048)  # warm the kernels up, not counted
    first, base_rate = None, None
    print(f"{len(examples)} items, {tokens} tokens, {args.threads} threads")
    for size in args.sizes:
        t = time.perf_counter()
        nll = heldout_nll(model, tok, examples, size, 2048)
        rate = tokens / (time.perf_counter() - t)
        first, base_rate = first or nll, base_rate or rate
        diff = max(abs(nll[k][0] - first[k][0]) for k in nll)
        print(f"loss_batch_size {size:>3}: {rate:7.0f} tokens/s  {rate / base_rate:4.2f}x  "
              f"max |NLL diff| vs {args.sizes[0]}: {diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
