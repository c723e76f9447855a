"""Learning-rate schedules as pure functions of the step (nothing to save or restore on resume)."""

from __future__ import annotations

import math


def lr_at(step: int, total: int, lr: float, schedule: str, warmup_ratio: float, stable_until: float,
          min_lr_ratio: float) -> float:
    """lr of optimizer step ``step`` (0-based) of ``total``.

    cosine: linear warm-up, then cosine from lr to ``min_lr_ratio * lr`` (synthesizer: no warm-up, to 0).
    wsd: linear warm-up, constant until ``stable_until`` of the steps, then linear decay to
    ``min_lr_ratio * lr`` at the last step (pre-training: 3%, 85%, 0.1).
    linear: linear warm-up, then linear decay to ``min_lr_ratio * lr`` (LESS's warm-up: 3%, to 0).
    """
    warmup = int(round(warmup_ratio * total))
    if step < warmup:
        return lr * (step + 1) / warmup
    floor = lr * min_lr_ratio
    if schedule == "linear":
        progress = (step - warmup) / max(1, total - 1 - warmup)
        return lr - (lr - floor) * min(1.0, progress)
    if schedule == "cosine":
        progress = (step - warmup) / max(1, total - 1 - warmup)
        return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    stable_end = int(round(stable_until * total))
    if step < stable_end:
        return lr
    progress = (step - stable_end) / max(1, total - 1 - stable_end)
    return lr - (lr - floor) * min(1.0, progress)
