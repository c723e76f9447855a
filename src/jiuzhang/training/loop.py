"""A short, readable causal-LM training loop (nanoGPT style) for CPU fp32 runs.

Why our own loop instead of HF ``Trainer`` here: the smoke profile trains a 3M-parameter model for a few
hundred steps; a plain loop is ~20% faster than ``Trainer`` on this CPU (docs/method.md, measured facts), has no hidden
state that would break byte-identical outputs, and reads top to bottom.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LoopSettings:
    steps: int
    lr: float
    warmup_steps: int
    weight_decay: float
    grad_clip: float
    log_every: int
    min_lr_ratio: float = 0.1


def cosine_lr(step: int, s: LoopSettings) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio * lr``."""
    if step < s.warmup_steps:
        return s.lr * (step + 1) / s.warmup_steps
    progress = (step - s.warmup_steps) / max(1, s.steps - s.warmup_steps)
    return s.lr * (s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class LoopResult:
    losses: list[tuple[int, float, float]]  # (step, loss, lr)
    tokens: int
    seconds: float


def train_lm(model: torch.nn.Module, batches: Iterator[torch.Tensor], s: LoopSettings,
             on_log: Callable[[int, float, float], None] | None = None) -> LoopResult:
    """Train ``model`` on ``[batch, seq]`` token batches (labels = inputs, shifted inside the model)."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": s.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=s.lr, betas=(0.9, 0.95))
    model.train()
    losses, tokens, t0 = [], 0, time.perf_counter()
    for step in range(s.steps):
        lr = cosine_lr(step, s)
        for group in opt.param_groups:
            group["lr"] = lr
        batch = next(batches)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += batch.numel()
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"loss became {value} at step {step}; lower base.train.lr")
        if step % s.log_every == 0 or step == s.steps - 1:
            losses.append((step, value, lr))
            if on_log is not None:
                on_log(step, value, lr)
    return LoopResult(losses=losses, tokens=tokens, seconds=time.perf_counter() - t0)
