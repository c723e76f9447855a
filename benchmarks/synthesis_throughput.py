"""The synthesize path vs a naive per-prompt ``model.generate`` loop, same model, prompts and settings, one run.

    python benchmarks/synthesis_throughput.py [--prompts 128] [--max-new-tokens 128] [--batch-size 32]

Model: ``models/synthesizer`` when the pipeline has built it (the smoke profile's tiny Llama), else
``--model PATH``. Prompts: a seeded sample of ``data/prompts`` (real corpus snippets in the paper's
templates). Both sides sample at the natural-language settings of params.yaml (temperature 1.0) with the
same max_new_tokens and stop at EOS. fp32 on CPU; on a GPU (``--device cuda``) bf16.
Prints records/s and generated tokens/s of both and their ratio as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from jiuzhang.config.loader import load_params
from jiuzhang.kd.items import load_pool
from jiuzhang.synthesis.engine import EngineSettings, HFEngine
from jiuzhang.synthesis.requests import plan_requests

ROOT = Path(__file__).resolve().parents[1]


def naive(engine: HFEngine, requests, max_new: int) -> tuple[float, int]:
    """What most synthesis scripts do: one ``generate(do_sample=True)`` call per prompt, default cache."""
    model, tok = engine.model, engine.tokenizer
    tokens = 0
    start = time.perf_counter()
    for r in requests:
        ids = torch.tensor([engine._prompt_ids(r)], device=engine.device)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                 temperature=r.sampling.temperature, top_p=r.sampling.top_p, max_new_tokens=max_new,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        tokens += out.shape[1] - ids.shape[1]
    return time.perf_counter() - start, tokens


def ours(engine: HFEngine, requests) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = 0
    for batch in engine.plan(requests):
        tokens += sum(g.new_tokens for g in engine.generate(batch))
    return time.perf_counter() - start, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "synthesizer"))
    ap.add_argument("--prompts-dir", default=str(ROOT / "data" / "prompts"))
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()

    p = load_params(ROOT / "params.yaml")
    sampling = p.synthesize.nl.model_copy(update={"max_new_tokens": args.max_new_tokens})
    cfg = p.synthesize.model_copy(update={"batch_size": args.batch_size, "shard_size": max(args.prompts, args.batch_size),
                                          "max_prompts": args.prompts, "device": args.device, "nl": sampling,
                                          "tool": sampling, "dtype": "bf16" if args.device == "cuda" else "fp32"})
    requests = plan_requests(load_pool(Path(args.prompts_dir)), cfg)
    engine = HFEngine(args.model, EngineSettings.of_synthesize(cfg))
    engine.generate(requests[:2])  # warm-up (allocations, first-call overheads) for both sides
    t_ours, n_ours = ours(engine, requests)
    t_naive, n_naive = naive(engine, requests, args.max_new_tokens)
    result = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({platform.processor() or platform.machine()}, "
                                                                           f"{torch.get_num_threads()} threads)",
        "prompts": len(requests), "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
        "naive": {"seconds": round(t_naive, 2), "records_per_s": round(len(requests) / t_naive, 2),
                  "tokens_per_s": round(n_naive / t_naive, 1), "new_tokens": n_naive},
        "ours": {"seconds": round(t_ours, 2), "records_per_s": round(len(requests) / t_ours, 2),
                 "tokens_per_s": round(n_ours / t_ours, 1), "new_tokens": n_ours},
    }
    result["speedup_records"] = round(result["ours"]["records_per_s"] / result["naive"]["records_per_s"], 2)
    result["speedup_tokens"] = round(result["ours"]["tokens_per_s"] / result["naive"]["tokens_per_s"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
