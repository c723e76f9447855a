"""The one causal-LM training loop: ``synthesizer_initial``, ``synthesizer`` and ``pretrain`` (packed
examples, loss on targets), the ``base`` stage (full windows, every token a target) and LESS's LoRA
warm-up (one example per row, a checkpoint per epoch through ``on_epoch_end``) differ only in their data,
loss mask and settings; the loop, optimiser, schedules, resume and distribution are this one.

Why our own loop instead of HF ``Trainer``: it is ~100 lines, reads top to bottom (nanoGPT style), is
faster on this CPU (docs/method.md, measured facts; ``benchmarks/trainer_throughput.py`` measures it against
``Trainer``), resumes to bit-identical weights (model, optimizer, RNG and data position are all it
has), and drives a DeepSpeed engine through the same three calls as a plain optimizer.

Loss: summed cross-entropy over target tokens of the global batch, divided by their count, so every
target token weighs the same whatever the micro-batching or number of processes.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from jiuzhang.common.io import write_json
from jiuzhang.common.precision import warn_slow_bf16
from jiuzhang.common.progress import Progress
from jiuzhang.common.scored_logits import scored_logits
from jiuzhang.config.training import TrainConfig
from jiuzhang.training.packing import IGNORE, Packed
from jiuzhang.training.schedule import lr_at
from jiuzhang.training.tokenstore import TokenStore
from jiuzhang.training.world import World, collective_device

FINGERPRINT_FILE = "fingerprint.json"


@dataclass
class SftResult:
    """What an SFT run did: steps, where it resumed, tokens, the loss curve and timing."""
    steps: int
    resumed_from: int | None
    tokens: int
    target_tokens: int
    seconds: float
    losses: list[tuple[int, float, float]]


def plan_steps(n_sequences: int, cfg: TrainConfig) -> tuple[int, int]:
    """(batches per epoch, total optimizer steps)."""
    per_epoch = math.ceil(n_sequences / cfg.global_batch)
    return per_epoch, cfg.max_steps or max(1, math.ceil(per_epoch * cfg.epochs))


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The example order of ``epoch``: a shuffle seeded by ``seed`` and the epoch."""
    order = list(range(n))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def discard_stale(checkpoints: Path, fingerprint: str, world: World) -> None:
    """Delete a checkpoint folder that was not written by this exact run (other params, data, starting
    model or trainer code), saying so; a folder without a fingerprint is stale too."""
    if world.is_main and checkpoints.exists() and any(checkpoints.iterdir()):
        marker = checkpoints / FINGERPRINT_FILE
        found = json.loads(marker.read_text()).get("fingerprint") if marker.is_file() else None
        if found != fingerprint:
            print(f"training: discarding the checkpoint in {checkpoints}: it belongs to another run (its params, "
                  f"data, starting model or trainer code differ); training starts from the beginning",
                  file=sys.stderr)
            shutil.rmtree(checkpoints)
    _barrier(world)  # no rank looks for a checkpoint before the main rank has decided


def train_sft(engine, data: Packed | TokenStore, cfg: TrainConfig, world: World, checkpoints: Path,
              on_log: Callable[[int, float, float], None] | None = None, shuffle: bool = True,
              stop_after: int | None = None, fingerprint: str | None = None,
              on_epoch_end: Callable[[int, Any, list[float]], None] | None = None) -> SftResult:
    """Train until the planned number of steps; checkpoint every ``cfg.save_every`` steps and resume
    from ``checkpoints`` if a checkpoint of this same run (``fingerprint``) is there; a checkpoint of
    another run is discarded. ``shuffle=False`` keeps the data order (pre-training's SFT tail comes
    last). ``stop_after`` ends early (tests simulate an interruption with it). ``on_epoch_end(epoch,
    engine, lrs of the epoch's steps)`` runs after each epoch's last step (LESS keeps a checkpoint there)."""
    n = len(data)
    per_epoch, total = plan_steps(n, cfg)
    if fingerprint is not None:
        discard_stale(checkpoints, fingerprint, world)
    loaded = engine.load(checkpoints)
    resumed = None if loaded is None else loaded[0]
    start = 0 if resumed is None else resumed + 1
    if resumed is None:
        torch.manual_seed(cfg.seed_dropout)
        random.seed(cfg.seed_dropout)
    model = engine.module()
    model.train()
    extra: dict[str, Any] = {"losses": [], "tokens": 0, "target_tokens": 0} if loaded is None else loaded[1]
    losses: list[tuple[int, float, float]] = [tuple(x) for x in extra["losses"]]
    tokens, target_tokens = extra["tokens"], extra["target_tokens"]
    t0 = time.perf_counter()
    order_epoch, order = -1, list(range(n))
    epoch_lrs: list[float] = []
    autocast = cfg.dtype == "bf16" and next(model.parameters()).dtype == torch.float32  # fp32 master weights
    if world.is_main:  # before the first step: at 24x fp32's time a user should not wait to find out
        warn_slow_bf16(_device(model).type, cfg.dtype == "bf16", "training")
    # steps of a resumed run count as done (the ETA is the work left); only the main rank reports
    bar = Progress("train", total, "step", initial=start, form=None if world.is_main else "off")
    tokens_before = tokens
    for step in range(start, total):
        epoch, index = divmod(step, per_epoch)
        if shuffle and epoch != order_epoch:  # one shuffle per epoch, not per step (O(n) each time)
            order_epoch, order = epoch, epoch_order(n, cfg.seed_data, epoch)
        batch = order[index * cfg.global_batch:(index + 1) * cfg.global_batch]
        n_target = data.target_counts(batch)
        mine = batch[world.rank::world.world_size]
        lr = lr_at(step, total, cfg.lr, cfg.schedule, cfg.warmup_ratio, cfg.stable_until, cfg.min_lr_ratio)
        engine.set_lr(lr)
        loss_total = 0.0
        chunks: list[list[int] | None] = [mine[i:i + cfg.micro_batch] for i in range(0, len(mine), cfg.micro_batch)]
        # An epoch's short last batch leaves some ranks fewer micro-batches (or none). DeepSpeed needs the same
        # number of backward() calls on every rank at every step (its collectives would hang, and its
        # accumulation boundary would slide into the next step): pad with zero-weight micro-batches.
        chunks += [None] * (getattr(engine, "micro_steps", 0) - len(chunks))
        for idx in chunks:
            weight = 0.0 if idx is None else 1.0
            ids, labels, pos, real = data.gather(batch[:1] if idx is None else idx)
            # Padding sits at the end of every row, packed or not, and is its own segment (nothing real attends
            # to it): compute only up to the longest real row. Packed rows of ~1.3 examples left 24% of the
            # positions as padding in the mini profile (SmolLM2, max_length 768); each was a wasted forward
            # and backward position.
            width = int(real.sum(dim=1).max())
            ids, labels, pos = ids[:, :width], labels[:, :width], pos[:, :width]
            device = _device(model)
            # bf16 compute over fp32 master weights (the plain path; DeepSpeed's bf16 weights need none)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                # use_cache=False matters: with a KV cache, transformers ignores the restarting position ids
                # and examples packed together would attend to each other (tests/training/test_training.py).
                # logits at the scored positions only (jiuzhang.common.scored_logits): prompts cost no LM head
                logits, targets = scored_logits(model, labels.to(device), input_ids=ids.to(device),
                                                position_ids=pos.to(device), use_cache=False)
            loss_sum = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE,
                                       reduction="sum")
            # gradients are averaged over processes by DDP/DeepSpeed: scale by world size to keep a token mean
            engine.backward(loss_sum * (weight * world.world_size / max(1, n_target)))
            if idx is None:
                continue  # a zero-weight pad: no loss, no tokens
            loss_total += loss_sum.item()
            tokens += int(real.sum())
            target_tokens += int((labels[:, 1:] != IGNORE).sum())
        engine.finish_step()
        epoch_lrs.append(lr)
        if on_epoch_end is not None and (index == per_epoch - 1 or step == total - 1):
            on_epoch_end(epoch, engine, epoch_lrs)
            epoch_lrs = []
        value = _global_sum(loss_total, world) / max(1, n_target)
        if not math.isfinite(value):
            raise FloatingPointError(f"loss became {value} at step {step}; lower the learning rate")
        bar.update(1, loss=value, lr=lr, **{"tok/s": round((tokens - tokens_before) / max(bar.elapsed, 1e-9))})
        if step % cfg.log_every == 0 or step == total - 1:
            losses.append((step, value, lr))
            if on_log is not None:
                on_log(step, value, lr)
        if (step + 1) % cfg.save_every == 0 and step != total - 1:
            engine.save(checkpoints, step, {"losses": losses, "tokens": tokens, "target_tokens": target_tokens})
            if world.is_main and fingerprint is not None:
                write_json(checkpoints / FINGERPRINT_FILE, {"fingerprint": fingerprint})
        if stop_after is not None and step + 1 - start >= stop_after:
            bar.close()
            return SftResult(step + 1, resumed, tokens, target_tokens, time.perf_counter() - t0, losses)
    bar.close()
    _barrier(world)  # every rank is past its last checkpoint use before the main rank deletes them
    if world.is_main and checkpoints.exists():
        shutil.rmtree(checkpoints)  # finished: the model folder is the result
    return SftResult(total, resumed, tokens, target_tokens, time.perf_counter() - t0, losses)


def _distributed(world: World) -> bool:
    return world.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()


def _global_sum(value: float, world: World) -> float:
    """Sum a per-rank number over all ranks (the loss is logged as the global-batch mean)."""
    if not _distributed(world):
        return value
    t = torch.tensor([value], dtype=torch.float64, device=collective_device(world))
    torch.distributed.all_reduce(t)
    return float(t.item())


def _barrier(world: World) -> None:
    if _distributed(world):
        torch.distributed.barrier()


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
