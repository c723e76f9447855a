"""Peak memory of LESS's gradient features as the batch grows: the whole per-example gradient matrix
(how this code worked before issue 24) vs projection block by block as the backward pass produces it.

    python benchmarks/less_memory.py [--sizes 1 4 16] [--r 256] [--json]

Model: a random Llama (hidden 256, 4 layers, 4 heads) with LoRA r=256 on q/k/v/o = 2,097,152 LoRA weights,
so that a batch's gradient matrix is large enough to see (16 x 2.1M x 4 B = 134 MB, plus the Adam
direction's temporaries). A third column runs the same forward/backward with the gradients dropped: the
activations every backward pass needs, whatever is done with the gradients. Each (method, batch) runs in a
fresh process; the figure is the growth of the
process's peak RSS (VmHWM of /proc/self/status) during one call of Adam-direction features + count-sketch projection over
``batch`` examples of 128 tokens, after a warm-up call with one example. Both methods give the same
features (tests/influence/test_less.py checks it).
(Not ru_maxrss: it inherits the parent's peak at exec; see jiuzhang.common.memory.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

WORKER = r"""
import json, sys, torch
from jiuzhang.common.memory import peak_rss_kib
from jiuzhang.influence.gradients import per_example_batched, per_example_projected
from jiuzhang.influence.less import with_lora
from jiuzhang.influence.projection import CountSketch
from jiuzhang.influence.scoring import adam_direction
from jiuzhang.training.packing import Tokenized
from transformers import LlamaConfig, LlamaForCausalLM

method, batch, r = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
torch.set_num_threads(2)
model = LlamaForCausalLM(LlamaConfig(vocab_size=2000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                                     num_key_value_heads=4, intermediate_size=512, max_position_embeddings=256))
model = with_lora(model, r, 2 * r, 0).eval()
P = sum(p.numel() for p in model.parameters() if p.requires_grad)
m, v = torch.rand(P) * 1e-3, torch.rand(P) * 1e-6
sketch = CountSketch(P, 8192, 0)
g = torch.Generator().manual_seed(1)
def data(n):
    rows = [torch.randint(3, 2000, (128,), generator=g).tolist() for _ in range(n)]
    return [Tokenized(str(i), ids, [-100] * 64 + ids[64:]) for i, ids in enumerate(rows)]
def run(examples):
    if method == "backward":  # the same forward/backward, gradients dropped: what the model alone needs
        from jiuzhang.influence.gradients import _batched_pass
        return _batched_pass(model, examples, batch, lambda size, owners: {n: (lambda g: None) for n in owners})
    if method == "whole":
        return sketch(adam_direction(per_example_batched(model, examples, batch), m, v, 10, (0.9, 0.999), 1e-8, "paper"))
    return per_example_projected(model, examples, sketch, batch,
                                 lambda x, c: adam_direction(x, m[c], v[c], 10, (0.9, 0.999), 1e-8, "paper"))
run(data(1))
before = peak_rss_kib()
run(data(batch))
after = peak_rss_kib()
print(json.dumps({"method": method, "batch": batch, "lora_weights": P, "peak_growth_mib": round((after - before) / 1024, 1),
                  "peak_rss_mib": round(after / 1024, 1)}))
"""


def measure(method: str, batch: int, r: int) -> dict:
    out = subprocess.run([sys.executable, "-c", WORKER, method, str(batch), str(r)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--r", type=int, default=256)
    ap.add_argument("--json", action="store_true", help="one JSON line per measurement")
    args = ap.parse_args()
    rows = [measure(method, b, args.r) for method in ("whole", "blocks", "backward") for b in args.sizes]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    print(f"LESS features, LoRA r={args.r} ({rows[0]['lora_weights']:,} weights), peak RSS growth during one call:")
    print(f"{'batch':>6} {'whole matrix MiB':>17} {'block by block MiB':>19} {'forward+backward only MiB':>26}")
    for b in args.sizes:
        w, k, f = (next(x for x in rows if x["method"] == m and x["batch"] == b) for m in ("whole", "blocks", "backward"))
        print(f"{b:>6} {w['peak_growth_mib']:>17,.1f} {k['peak_growth_mib']:>19,.1f} {f['peak_growth_mib']:>26,.1f}")


if __name__ == "__main__":
    main()
