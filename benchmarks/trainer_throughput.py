"""Our SFT trainer vs a plain HF ``Trainer`` on the same tiny model and the same packed data, in one run.

    python benchmarks/trainer_throughput.py [--steps 30] [--max-length 512]

Data: the paper's released synthetic records (``../shared/corpus/jiuzhang3_samples``), loss on the output.
Model: a tiny Llama (hidden 128, 4 layers, 8k BPE vocab) built from config; fp32 on CPU (bf16 on a GPU).
Prints real (non-padding) tokens/s of both, their ratio, and the padding share with and without packing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from jiuzhang.base.model import build_model
from jiuzhang.base.tokenizer import train_tokenizer
from jiuzhang.config.base import BaseConfig
from jiuzhang.config.training import TrainConfig
from jiuzhang.training.engine import TorchEngine
from jiuzhang.training.packing import Example, PackStats, pack, tokenize
from jiuzhang.training.sft import train_sft
from jiuzhang.training.world import World

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "jiuzhang3_samples" / "cot_pretrain_data_sampled.jsonl"


def run_ours(base, tok, special, data, cfg, device) -> tuple[float, int]:
    model = build_model(base, len(tok), special).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_sft(TorchEngine(model, cfg), data, cfg, World(), Path(tmp) / "ck")
    return result.tokens / result.seconds, result.steps


def run_hf(base, tok, special, data, args, steps: int, device: str) -> float:
    """HF Trainer on the same packed sequences (position ids restart per example, labels -100 on prompts)."""
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    model = build_model(base, len(tok), special).to(device)
    model.config.use_cache = False
    ds = Dataset.from_dict({"input_ids": data.input_ids.tolist(), "labels": data.labels.tolist(),
                            "position_ids": data.position_ids.tolist()})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model=model, train_dataset=ds, args=TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=args.micro_batch, max_steps=steps, learning_rate=1e-3,
            lr_scheduler_type="cosine", logging_steps=10**9, save_strategy="no", report_to=[], use_cpu=device == "cpu",
            bf16=device == "cuda", dataloader_num_workers=0, disable_tqdm=True, seed=0))
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    real_per_seq = float(data.real.sum()) / len(data.real)
    return steps * args.micro_batch * real_per_seq / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    records = [json.loads(line) for line in open(SAMPLES, encoding="utf-8")]
    tok = train_tokenizer([r["input"] + r["output"] for r in records], 8000, 2)
    examples = [Example(str(i), r["input"], r["output"]) for i, r in enumerate(records)]
    packed_stats, plain_stats = PackStats(), PackStats()
    items = list(tokenize(examples, tok, args.max_length, "truncate", packed_stats))
    data = pack(items, args.max_length, tok.pad_token_id, packed_stats)
    pack(items, args.max_length, tok.pad_token_id, plain_stats, packing=False)
    special = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    base = BaseConfig(mode="train", arch={"max_position_embeddings": max(1024, args.max_length)})
    cfg = TrainConfig(max_length=args.max_length, micro_batch=args.micro_batch, global_batch=args.micro_batch,
                      epochs=args.steps * args.micro_batch / len(data.input_ids), lr=1e-3, schedule="cosine",
                      save_every=10**9, log_every=10**9, dtype="bf16" if device == "cuda" else "fp32")

    # warm-up (untimed): the first steps of a process pay for allocations, whichever trainer runs first
    warm = TrainConfig(**{**cfg.model_dump(), "epochs": 3 * args.micro_batch / len(data.input_ids)})
    with tempfile.TemporaryDirectory() as tmp:
        train_sft(TorchEngine(build_model(base, len(tok), special).to(device), warm), data, warm, World(),
                  Path(tmp) / "ck")

    ours_runs, hf_runs = [], []
    for _ in range(args.rounds):  # alternate the two, so drift of the machine hits both alike
        ours_runs.append(run_ours(base, tok, special, data, cfg, device))
        hf_runs.append(run_hf(base, tok, special, data, args, ours_runs[-1][1], device))
    ours = sorted(t for t, _ in ours_runs)[len(ours_runs) // 2]
    hf = sorted(hf_runs)[len(hf_runs) // 2]
    steps = ours_runs[0][1]

    name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; {steps} steps x {args.micro_batch} sequences x {args.max_length} tokens; "
          f"median of {args.rounds} alternating rounds")
    print(f"ours       : {ours:,.0f} real tokens/s  (runs: {', '.join(f'{t:,.0f}' for t, _ in ours_runs)})")
    print(f"HF Trainer : {hf:,.0f} real tokens/s  (runs: {', '.join(f'{t:,.0f}' for t in hf_runs)})")
    print(f"ratio ours/HF: {ours / hf:.2f}x")
    print(f"padding share: packed {packed_stats.padding_share:.3f}, one example per sequence "
          f"{plain_stats.padding_share:.3f} ({packed_stats.sequences} vs {plain_stats.sequences} sequences; "
          f"{packed_stats.truncated} of {packed_stats.examples} truncated at {args.max_length})")


if __name__ == "__main__":
    main()
