"""fp32 vs bf16 on this CPU, one run, same model and tokens: training, held-out loss and HF generation.

    python benchmarks/precision_cpu.py --model .mini/proj/models/base [--seq 512 --batch 2 --steps 3]

Model: a local HF folder (the mini profile's SmolLM2-135M after its `base` stage; any causal LM works).
Training: AdamW steps on random token ids, tokens/s in fp32, fp32 master weights + bf16 autocast (what
``train.dtype: bf16`` runs without DeepSpeed) and bf16 weights (reference only: AdamW on bf16 weights drops
small updates). Held-out loss: forward passes fp32 vs autocast, plus the mean |NLL difference| per token of
the two on the same ids (why eval.loss_dtype stays fp32). Generation: greedy HF decoding of 16 prompts,
fp32 vs bf16 autocast (``eval.dtype: bf16`` on a CPU), new tokens/s. Prints each figure and its ratio to fp32;
``--json`` writes them. Runs under the same kernel pins as `jiuzhang` (ATEN_CPU_CAPABILITY=avx2,
ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 unless set), recorded in the output.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")  # as jiuzhang.cli pins it, before torch is imported
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from jiuzhang.common.precision import autocast, precision_facts  # noqa: E402


def load(path: str, dtype=torch.float32):
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)


def train_rate(model, ids: torch.Tensor, steps: int, bf16: bool) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    times = []
    for _ in range(steps + 1):  # the first step warms up kernels and is not counted
        t = time.perf_counter()
        with autocast("cpu", bf16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    return ids.numel() / (sum(times[1:]) / steps)


def nll_rate(model, ids: torch.Tensor, steps: int, bf16: bool) -> tuple[float, torch.Tensor]:
    times = []
    with torch.inference_mode():
        for _ in range(steps + 1):
            t = time.perf_counter()
            with autocast("cpu", bf16):
                logits = model(input_ids=ids).logits.float()
            nll = F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
            times.append(time.perf_counter() - t)
    return ids.numel() / (sum(times[1:]) / steps), nll


def generate_rate(model, tok, prompts: list[str], new_tokens: int, bf16: bool) -> float:
    tok.padding_side = "left"
    batch = tok(prompts, return_tensors="pt", padding=True)
    with torch.inference_mode(), autocast("cpu", bf16):
        t = time.perf_counter()
        out = model.generate(**batch, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id or tok.eos_token_id)
        seconds = time.perf_counter() - t
    return (out.shape[1] - batch["input_ids"].shape[1]) * len(prompts) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=".mini/proj/models/base")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(args.model)
    ids = torch.randint(0, len(tok), (args.batch, args.seq))
    out: dict = {"model": args.model, "seq": args.seq, "batch": args.batch, "threads": args.threads,
                 "kernels": precision_facts()}
    out["train_tokens_per_s"] = {"fp32": train_rate(load(args.model), ids, args.steps, False),
                                 "bf16_autocast": train_rate(load(args.model), ids, args.steps, True),
                                 "bf16_weights": train_rate(load(args.model, torch.bfloat16), ids, args.steps, False)}
    model = load(args.model).eval()
    fp32_rate, fp32_nll = nll_rate(model, ids, args.steps, False)
    bf16_rate, bf16_nll = nll_rate(model, ids, args.steps, True)
    out["heldout_tokens_per_s"] = {"fp32": fp32_rate, "bf16_autocast": bf16_rate}
    out["heldout_mean_abs_nll_diff"] = float((fp32_nll - bf16_nll).abs().mean())
    out["heldout_mean_nll_diff"] = float((bf16_nll - fp32_nll).mean())
    prompts = [f"## Question\nA shop sells {i + 2} pens for ${3 * i + 5}. How much do {2 * i + 7} pens cost?\n\n"
               f"## Solution\n" for i in range(16)]
    out["generate_new_tokens_per_s"] = {"fp32": generate_rate(model, tok, prompts, args.new_tokens, False),
                                        "bf16_autocast": generate_rate(model, tok, prompts, args.new_tokens, True)}
    for part in ("train_tokens_per_s", "heldout_tokens_per_s", "generate_new_tokens_per_s"):
        base = out[part]["fp32"]
        print(f"{part}: " + ", ".join(f"{k} {v:.0f} ({v / base:.2f}x)" for k, v in out[part].items()))
    print(f"held-out NLL, bf16 autocast - fp32 on the same tokens: mean {out['heldout_mean_nll_diff']:+.4f}, "
          f"mean |diff| {out['heldout_mean_abs_nll_diff']:.4f} nats/token")
    print(f"kernels: {out['kernels']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
