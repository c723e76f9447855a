"""Does a documented setting make CPU training byte-identical across x86 machines? A proxy on one machine.

Different x86 CPU models make PyTorch and oneDNN pick different kernels (AVX2, AVX512, AMX), which sum in
different orders; that is how two machines of "the same kind" drift in the 6th digit. One machine can run the
kernels another would pick: ATEN_CPU_CAPABILITY (PyTorch's own kernels: default/avx2/avx512) and
ONEDNN_MAX_CPU_ISA (oneDNN's: AVX2, AVX512_CORE, AVX512_CORE_BF16, AVX512_CORE_AMX), MKL_ENABLE_INSTRUCTIONS
(MKL's sgemm, which fp32 matmuls use: AVX512 on this Intel CPU, AVX2 on an AVX2-only one), MKL's conditional
numerical reproducibility (MKL_CBWR), plus the thread count (which splits reductions). This trains the same small Llama (fp32, and bf16 autocast) for a few AdamW steps
under each setting, each in a fresh process, and compares the final weights with the pinned setting jiuzhang
uses (avx2 + AVX512_CORE_BF16, 2 threads): byte-identical or not, and max abs/rel difference.

    python benchmarks/cpu_dispatch_drift.py [--steps 20]

Prints one JSON object per setting. Pure torch + transformers: it measures the kernels, not our code.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16", "OMP_NUM_THREADS": "2"}
SETTINGS = [  # (name, environment on top of the pinned one)
    ("pinned (jiuzhang's default)", {}),
    ("1 thread", {"OMP_NUM_THREADS": "1"}),
    ("ATen AVX512", {"ATEN_CPU_CAPABILITY": "avx512"}),
    ("ATen no SIMD", {"ATEN_CPU_CAPABILITY": "default"}),
    ("oneDNN AVX2 only (a CPU without AVX512-BF16)", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
    ("oneDNN AMX allowed", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}),
    ("MKL AVX2 only (an AVX2 CPU's sgemm)", {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}),
    ("MKL_CBWR=AVX2", {"MKL_CBWR": "AVX2"}),
    ("MKL_CBWR=AVX2 + MKL AVX2 only", {"MKL_CBWR": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}),
    ("MKL_CBWR=COMPATIBLE", {"MKL_CBWR": "COMPATIBLE"}),
]


def train(out: str, steps: int, precision: str) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    cfg = LlamaConfig(vocab_size=2048, hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512)
    model = LlamaForCausalLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        ids = torch.randint(0, cfg.vocab_size, (4, 256), generator=g)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
    print(json.dumps({"kernels": torch.backends.cpu.get_cpu_capability(), "loss": loss.item()}))


def compare(a: str, b: str) -> dict:
    from safetensors.torch import load_file

    ta, tb = load_file(a), load_file(b)
    max_abs = max_rel = 0.0
    for k in ta:
        d = (ta[k].double() - tb[k].double()).abs()
        max_abs = max(max_abs, d.max().item())
        nz = tb[k].double().abs() > 0
        if nz.any():
            max_rel = max(max_rel, (d[nz] / tb[k].double().abs()[nz]).max().item())
    return {"identical": Path(a).read_bytes() == Path(b).read_bytes(), "max_abs": max_abs, "max_rel": max_rel}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--train", nargs=2, metavar=("OUT", "PRECISION"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.train:
        train(args.train[0], args.steps, args.train[1])
        return
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "bf16"):
            ref = None
            for name, extra in SETTINGS:
                out = str(Path(tmp) / f"{precision}-{len(os.listdir(tmp))}.safetensors")
                env = {k: v for k, v in os.environ.items() if not k.startswith("MKL_")}
                env.update({**PINNED, **extra})
                res = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--train", out, precision],
                                     env=env, capture_output=True, text=True)
                if res.returncode:
                    print(json.dumps({"precision": precision, "setting": name, "error": res.stderr[-300:]}))
                    continue
                run = json.loads(res.stdout.strip().splitlines()[-1])
                ref = ref or out
                print(json.dumps({"precision": precision, "setting": name, **run, **compare(out, ref)}), flush=True)


if __name__ == "__main__":
    main()
