"""vLLM (our worker process) vs our HF engine on the same model and prompts, in one run.

    python benchmarks/vllm_vs_hf.py --model .mini/proj/models/base --prompts-dir .mini/proj/data/prompts \
        [--prompts 32] [--max-new-tokens 256] [--batch-size 16] [--vllm-python .venv-vllm/bin/python]

Both engines decode greedily (temperature 0) from the same token ids, so they do the same work (greedy vLLM
writes what greedy HF writes: tests/synthesis/test_vllm_engine.py) and the ratio compares engines, not outputs.
The vLLM side runs in its worker process (``synthesize.vllm.python``) with enforce_eager, unchunked prefill
and a 2 GiB KV cache, as the mini profile sets it; its start-up (model load) is timed apart from generation.
Prints one JSON object: records/s and generated tokens/s of each, and vLLM/HF ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from jiuzhang.config.loader import load_params
from jiuzhang.kd.items import load_pool
from jiuzhang.synthesis.engine import EngineSettings, HFEngine, VllmEngine
from jiuzhang.synthesis.requests import plan_requests

ROOT = Path(__file__).resolve().parents[1]


def timed(engine, requests) -> tuple[float, int, dict[str, str]]:
    start = time.perf_counter()
    tokens, texts = 0, {}
    for batch in engine.plan(requests):
        for g in engine.generate(batch):
            tokens += g.new_tokens
            texts[g.id] = g.text
    return time.perf_counter() - start, tokens, texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / ".mini" / "proj" / "models" / "base"))
    ap.add_argument("--prompts-dir", default=str(ROOT / "data" / "prompts"))
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--vllm-python", default=str(ROOT / ".venv-vllm" / "bin" / "python"))
    ap.add_argument("--reserved-cores", type=int, nargs="*", default=[None],
                    help="vLLM runs, one per value of synthesize.vllm.cpu_reserved_cores (e.g. 1 0)")
    args = ap.parse_args()

    p = load_params(ROOT / "configs" / "mini.yaml")
    greedy = p.synthesize.nl.model_copy(update={"temperature": 0.0, "top_p": 1.0, "max_new_tokens": args.max_new_tokens})
    cfg = p.synthesize.model_copy(update={
        "batch_size": args.batch_size, "shard_size": max(args.prompts, args.batch_size), "max_prompts": args.prompts,
        "device": "cpu", "threads": args.threads, "nl": greedy, "tool": greedy, "dtype": "fp32",
        "vllm": p.synthesize.vllm.model_copy(update={"python": args.vllm_python, "cpu_reserved_cores": None})})
    requests = plan_requests(load_pool(Path(args.prompts_dir)), cfg)

    hf = HFEngine(args.model, EngineSettings.of_synthesize(cfg))
    hf.generate(requests[:2])  # warm-up (allocations, first-call overheads)
    t_hf, n_hf, texts_hf = timed(hf, requests)
    del hf

    runs = {}
    for reserved in args.reserved_cores:
        c = cfg.model_copy(update={"vllm": cfg.vllm.model_copy(update={"cpu_reserved_cores": reserved})})
        started = time.perf_counter()
        vllm = VllmEngine(args.model, EngineSettings.of_synthesize(c))
        t_start = time.perf_counter() - started
        vllm.generate(requests[:2])
        t_vllm, n_vllm, texts_vllm = timed(vllm, requests)
        vllm.close()
        same = sum(texts_hf[k] == texts_vllm.get(k) for k in texts_hf)
        runs[f"vllm (cpu_reserved_cores={reserved})"] = {
            "seconds": round(t_vllm, 2), "records_per_s": round(len(requests) / t_vllm, 3),
            "tokens_per_s": round(n_vllm / t_vllm, 1), "new_tokens": n_vllm, "startup_s": round(t_start, 1),
            "version": vllm.version, "identical_texts_to_hf": f"{same}/{len(texts_hf)}",
            "ratio_tokens_per_s_vs_hf": round((n_vllm / t_vllm) / (n_hf / t_hf), 2),
            "ratio_records_per_s_vs_hf": round(t_hf / t_vllm, 2)}
    result = {
        "device": f"cpu ({platform.processor() or platform.machine()}, {args.threads} threads)",
        "model": args.model, "prompts": len(requests), "max_new_tokens": args.max_new_tokens,
        "hf": {"seconds": round(t_hf, 2), "records_per_s": round(len(requests) / t_hf, 3),
               "tokens_per_s": round(n_hf / t_hf, 1), "new_tokens": n_hf, "batch_size": args.batch_size},
        **runs,
        "torch": torch.__version__,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
