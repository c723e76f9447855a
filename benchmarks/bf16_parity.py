"""Does bf16 training on this CPU reach the fp32 result? One run, same model, data, seeds and steps.

    python benchmarks/bf16_parity.py --model .mini/proj/models/base [--records 32 --items 60]

Trains the model (the mini profile's SmolLM2-135M) on the first ``--records`` records of the paper's released
sample with the mini profile's pre-training settings, once in fp32 and once with ``dtype: bf16`` (fp32 master
weights + bf16 autocast, saved as fp32), then scores both trained models' held-out loss in fp32 on the first
``--items`` GSM8K test items under both prompt formats. Prints the loss curves, wall time and tokens/s of
each run, and the paired held-out difference bf16 - fp32 with its 95% interval: parity is an interval that
includes 0 and is narrow next to the effects the mini report looks at (~0.01-0.06 nats).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")  # as jiuzhang.cli pins them, before torch is imported
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")

import yaml  # noqa: E402

from jiuzhang.config.training import ModelSource, TrainConfig  # noqa: E402
from jiuzhang.evaluation.stats import bootstrap_mean, paired_difference  # noqa: E402
from jiuzhang.training.records import iter_examples  # noqa: E402
from jiuzhang.training.trainer import run_training  # noqa: E402
from jiuzhang.training.world import World  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / ".." / "shared" / "corpus" / "jiuzhang3_samples" / "cot_pretrain_data_sampled.jsonl"


def heldout(model_dir: Path, items: int) -> dict[str, list[float]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from jiuzhang.evaluation.heldout import gold_target, heldout_nll
    from jiuzhang.evaluation.prompting import build_prompt, neutral_prompt
    from jiuzhang.evaluation.tasks import TASKS, load_rows
    from jiuzhang.training.packing import Example

    task = TASKS["gsm8k"]
    rows = load_rows(ROOT / ".." / "shared" / "benchmarks", "gsm8k", items)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(model_dir)
    out = {}
    for fmt, prompt in (("paper", lambda r: build_prompt(task, r, "nl", [])), ("neutral", lambda r: neutral_prompt(task, r, []))):
        ex = [Example(str(r["_idx"]), prompt(r), gold_target(task, r)) for r in rows]
        nll = heldout_nll(model, tok, ex, 8, 2048)
        out[fmt] = [nll[e.id][0] for e in ex]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=".mini/proj/models/base")
    ap.add_argument("--records", type=int, default=32)
    ap.add_argument("--items", type=int, default=60)
    args = ap.parse_args()
    mini = yaml.safe_load((ROOT / "configs" / "mini.yaml").read_text())["pretrain"]["train"]
    data = [e for _, e in zip(range(args.records), iter_examples(SAMPLES, "input", "output"))]
    results, scores = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("fp32", "bf16"):
            cfg = TrainConfig.model_validate({**mini, "dtype": dtype, "save_dtype": "fp32", "launcher": "",
                                              "save_every": 1000})
            out = Path(tmp) / dtype
            results[dtype] = run_training(ModelSource(path=args.model), data, cfg, out, Path(tmp) / f"ck-{dtype}",
                                          World())
            scores[dtype] = heldout(out, args.items)
    for dtype, r in results.items():
        curve = " ".join(f"{x['loss']:.3f}" for x in r["loss_curve"])
        print(f"{dtype}: {r['steps']} steps, {r['timing']['seconds']:.0f} s, {r['timing']['tokens_per_s']:.0f} tokens/s; "
              f"loss {curve}")
    print(f"training speed bf16 / fp32: {results['bf16']['timing']['tokens_per_s'] / results['fp32']['timing']['tokens_per_s']:.2f}x")
    for fmt in ("paper", "neutral"):
        d, lo, hi = paired_difference(scores["bf16"][fmt], scores["fp32"][fmt])
        m32 = bootstrap_mean(scores["fp32"][fmt])[0]
        print(f"held-out GSM8K ({fmt} prompt, {args.items} items, fp32 scoring): fp32-trained {m32:.4f}, "
              f"bf16 - fp32 {d:+.4f} [{lo:+.4f}, {hi:+.4f}] nats/token")


if __name__ == "__main__":
    main()
