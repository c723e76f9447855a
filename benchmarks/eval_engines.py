"""Eval generation on vLLM vs on HF (``eval.engine``): items/s on the same model, benchmark and items, one run.

    python benchmarks/eval_engines.py [--model .mini/proj/models/base] [--benchmark gsm8k] [--items 32]
        [--setting nl] [--vllm-python .venv-vllm/bin/python]

Both sides are the real eval path (``build_eval_engine`` + ``evaluate``, the mini profile's eval section:
greedy, its max_new_tokens, stop strings and batch size), so the figure is what an eval stage gains. vLLM's
start (worker + model load) is timed apart from answering. Prints one JSON object: items/s and seconds of
each engine, the vLLM/HF ratio, accuracy of each and how many predictions are byte-identical (greedy fp32
decoding of one model should agree; bf16 or a different attention kernel can flip a near-tie token).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from jiuzhang.config.loader import load_params
from jiuzhang.evaluation.evaluator import evaluate
from jiuzhang.evaluation.suite import build_eval_engine
from jiuzhang.evaluation.tasks import TASKS, load_rows

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / ".mini" / "proj" / "models" / "base"))
    ap.add_argument("--benchmark", default="gsm8k")
    ap.add_argument("--setting", default="nl", choices=["nl", "tool"])
    ap.add_argument("--items", type=int, default=32)
    ap.add_argument("--vllm-python", default=str(ROOT / ".venv-vllm" / "bin" / "python"))
    args = ap.parse_args()

    p = load_params(ROOT / "configs" / "mini.yaml")
    rows = load_rows(ROOT / p.benchmarks.root if not Path(p.benchmarks.root).is_absolute() else p.benchmarks.root,
                     args.benchmark, args.items)
    out: dict = {"model": args.model, "benchmark": args.benchmark, "setting": args.setting, "items": len(rows),
                 "max_new_tokens": p.eval.max_new_tokens, "batch_size": p.eval.batch_size,
                 "machine": platform.processor() or platform.machine()}
    preds = {}
    for engine in ("hf", "vllm"):
        ev = p.eval.model_copy(update={"engine": engine, "chat_template": False, "shard_size": max(len(rows), 1),
                                       "limit": len(rows), "limits": {},  # every item asked for, not the profile's limit
                                       "vllm": p.synthesize.vllm.model_copy(update={"python": args.vllm_python})})
        params = p.model_copy(update={"eval": ev})
        start = time.perf_counter()
        subject = build_eval_engine(params, args.model, None, None, None)
        subject.generator  # noqa: B018 - load the model / start the worker now, timed apart from answering
        loaded = time.perf_counter() - start
        start = time.perf_counter()
        got, metrics = evaluate(TASKS[args.benchmark], rows, (args.setting,), subject, ev)
        seconds = time.perf_counter() - start
        subject.close()
        preds[engine] = [g["prediction"] for g in got]
        out[engine] = {"start_s": round(loaded, 1), "answer_s": round(seconds, 1),
                       "items_per_s": round(len(rows) / seconds, 4), "accuracy": metrics[args.setting]["accuracy"],
                       "cut_off": metrics[args.setting]["cut_off"]}
    out["vllm_over_hf_items_per_s"] = round(out["vllm"]["items_per_s"] / out["hf"]["items_per_s"], 2)
    out["vllm_over_hf_with_start"] = round((out["hf"]["answer_s"] + out["hf"]["start_s"])
                                           / (out["vllm"]["answer_s"] + out["vllm"]["start_s"]), 2)
    out["identical_predictions"] = f"{sum(a == b for a, b in zip(preds['hf'], preds['vllm']))} of {len(rows)}"
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
