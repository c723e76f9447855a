"""Run the shared trainer through a DeepSpeed engine (CPU, gloo) in its own process; used by
test_deepspeed.py. Args: MODEL_DIR OUT_DIR CHECKPOINTS ZERO_STAGE [STOP_AFTER] [torch].
Test-only environment: DS_WORKER_SETTINGS (JSON merged into the train settings), DS_WORKER_EXAMPLES (how
many examples), DS_WORKER_KILL_AT_SAVE=N (the process dies, as under `kill -9`, in the middle of its N-th
checkpoint: after the model file, before the optimizer file)."""

import json
import os
import sys
from pathlib import Path

from jiuzhang.config.training import ModelSource, TrainConfig
from jiuzhang.training.packing import Example
from jiuzhang.training.trainer import run_training
from jiuzhang.training.world import World

model_dir, out, ckpt, stage = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
stop_after = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] != "-" else None
use_ds = not (len(sys.argv) > 6 and sys.argv[6] == "torch")
settings = dict(
    max_length=64, micro_batch=2, global_batch=4, epochs=2, lr=3e-3, weight_decay=0.1, schedule="cosine",
    save_every=3, log_every=1, seed_data=1, seed_dropout=2, on_overlong="truncate",
    deepspeed={"enabled": use_ds, "zero_stage": stage})
cfg = TrainConfig.model_validate({**settings, **json.loads(os.environ.get("DS_WORKER_SETTINGS", "{}"))})
examples = [Example(f"e{i}", f"Problem {i}: what is {i} plus {i + 1}?", f" Solution: it is {2 * i + 1}.")
            for i in range(int(os.environ.get("DS_WORKER_EXAMPLES", "24")))]
if os.environ.get("DS_WORKER_KILL_AT_SAVE"):
    import torch

    kill_at, seen, real_save = int(os.environ["DS_WORKER_KILL_AT_SAVE"]), [], torch.save

    def dying_save(obj, f, *args, **kwargs):
        if "optim_states" in str(f):
            seen.append(f)
            if len(seen) == kill_at:
                os._exit(137)
        return real_save(obj, f, *args, **kwargs)
    torch.save = dying_save
metrics = run_training(ModelSource(path=model_dir), examples, cfg, out, ckpt, World.from_env(dict(__import__("os").environ)),
                       stop_after=stop_after)
# One write per line: under torchrun every rank prints to the same pipe, and print() writes the text and
# its newline separately, so two ranks' lines could interleave.
__import__("os").write(1, ("METRICS " + json.dumps({k: metrics[k] for k in ("final_loss", "steps", "loss_curve")})
                           + "\n").encode())
