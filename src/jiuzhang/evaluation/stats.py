"""Intervals for small evaluations: a proportion (Wilson), a mean (bootstrap over items), a paired
difference between two models on the same items (paired bootstrap for losses; Newcombe's paired score
interval and McNemar's exact test for accuracies).

Written here, not taken from scipy, because each is a few lines of numpy and scipy is not otherwise a
dependency; resampling is seeded, so a report is byte-identical from the same per-item results.
"""

from __future__ import annotations

import math

import numpy as np

from jiuzhang.common.intervals import wilson

__all__ = ["RESAMPLES", "bootstrap_mean", "paired_difference", "paired_proportions", "wilson"]

RESAMPLES = 2000


def bootstrap_mean(values: list[float], seed: int = 0, resamples: int = RESAMPLES) -> tuple[float, float, float]:
    """(mean, 2.5th, 97.5th percentile of the bootstrap distribution of the mean over items)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, x.size, size=(resamples, x.size))
    means = x[idx].mean(axis=1)
    return float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def paired_difference(after: list[float], before: list[float], seed: int = 0,
                      resamples: int = RESAMPLES) -> tuple[float, float, float]:
    """Mean of ``after - before`` over the same items, with its paired-bootstrap 95% interval: items are
    resampled together, so what both models find easy or hard cancels out."""
    if len(after) != len(before):
        raise ValueError(f"paired values need the same items ({len(after)} vs {len(before)})")
    return bootstrap_mean([a - b for a, b in zip(after, before)], seed, resamples)


def paired_proportions(after: list[bool], before: list[bool], z: float = 1.96) -> dict[str, float | int]:
    """Accuracy of two models on the same items: the difference (after - before, in [-1, 1]) with
    Newcombe's score interval for paired proportions (his method 10: Wilson intervals of both accuracies,
    corrected for their correlation) and McNemar's exact p-value on the discordant items.

    Unlike a paired bootstrap, this interval is not zero-width when no item differs: 0 of 30 vs 0 of 30
    gives about [-11%, +11%] (what 30 items cannot rule out), not a certain 0."""
    if len(after) != len(before):
        raise ValueError(f"paired values need the same items ({len(after)} vs {len(before)})")
    n = len(after)
    if n == 0:
        return {"diff": 0.0, "lo": -1.0, "hi": 1.0, "p_mcnemar": 1.0, "gained": 0, "lost": 0, "items": 0}
    a = sum(x and y for x, y in zip(after, before))
    b = sum(x and not y for x, y in zip(after, before))   # right only after: gained
    c = sum(y and not x for x, y in zip(after, before))   # right only before: lost
    d = n - a - b - c
    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = wilson(a + b, n, z), wilson(a + c, n, z)
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(denom) if denom else 0.0
    delta = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    eps = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    k, m = min(b, c), b + c
    p = 1.0 if m == 0 else min(1.0, 2 * sum(math.comb(m, i) for i in range(k + 1)) / 2 ** m)
    return {"diff": p1 - p2, "lo": max(-1.0, p1 - p2 - delta), "hi": min(1.0, p1 - p2 + eps), "p_mcnemar": p,
            "gained": b, "lost": c, "items": n}
