"""Intervals for small evaluations: a proportion (Wilson), a mean (bootstrap over items) and a paired
difference between two models on the same items (paired bootstrap).

Written here, not taken from scipy, because each is a few lines of numpy and scipy is not otherwise a
dependency; resampling is seeded, so a report is byte-identical from the same per-item results.
"""

from __future__ import annotations

import math

import numpy as np

RESAMPLES = 2000


def wilson(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound at 0/n and n/n, where the normal one is not)."""
    if total == 0:
        return 0.0, 1.0
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


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
