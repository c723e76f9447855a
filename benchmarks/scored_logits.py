"""Training tokens/s with logits at every position vs at the scored (answer) positions only, one run.

    python benchmarks/scored_logits.py --model .mini/proj/models/base [--prompt 400 --answer 250 --steps 3]

A KD example of the mini profile is a ~400-token prompt (instruction + corpus snippet) and a ~250-token
answer, with the loss on the answer alone. Both variants run the same fp32-master/bf16-autocast AdamW step on
the same random ids (the first step warms up and is not counted): 'full' computes the LM head and the fp32
loss over every position (what the trainer did), 'scored' passes ``logits_to_keep`` with the answer
positions (``jiuzhang.common.scored_logits``, what it does now). Prints tokens/s, the ratio, and the losses
of the first step (they must agree). Runs under the same kernel pins as `jiuzhang`.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")  # as jiuzhang.cli pins it, before torch is imported
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from jiuzhang.common.scored_logits import IGNORE, scored_logits  # noqa: E402


def rate(path: str, ids: torch.Tensor, labels: torch.Tensor, steps: int, scored: bool, bf16: bool) -> tuple[float, float]:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    times, first = [], None
    for _ in range(steps + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if scored:
                logits, targets = scored_logits(model, labels, input_ids=ids, use_cache=False)
            else:
                logits = model(input_ids=ids, use_cache=False).logits
                targets = F.pad(labels, (0, 1), value=IGNORE)[:, 1:]
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
        first = loss.item() if first is None else first
    return ids.numel() / (sum(times[1:]) / steps), first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=".mini/proj/models/base")
    ap.add_argument("--prompt", type=int, default=400)
    ap.add_argument("--answer", type=int, default=250)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ids = torch.randint(0, 40000, (1, args.prompt + args.answer))
    labels = ids.clone()
    labels[:, :args.prompt] = IGNORE
    full, full_loss = rate(args.model, ids, labels, args.steps, False, not args.fp32)
    scored, scored_loss = rate(args.model, ids, labels, args.steps, True, not args.fp32)
    print(f"prompt {args.prompt} + answer {args.answer} tokens, {'fp32' if args.fp32 else 'bf16 autocast'}, "
          f"{args.threads} threads")
    print(f"full logits:   {full:6.0f} tokens/s  (first loss {full_loss:.6f})")
    print(f"scored logits: {scored:6.0f} tokens/s  (first loss {scored_loss:.6f})  {scored / full:.2f}x")


if __name__ == "__main__":
    main()
