"""Explicit, named seeds. Per-item randomness is derived by hashing (seed, key), never from a shared RNG
stream, so a result does not depend on worker count, shard layout or input order."""

from __future__ import annotations

import hashlib


def keyed_uniform(seed: int, *key: str) -> float:
    """A uniform number in [0, 1) determined only by ``seed`` and ``key``."""
    digest = hashlib.sha256("\x1f".join([str(seed), *key]).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def weighted_choice(u: float, options: tuple[str, ...], weights: tuple[float, ...] | None) -> str:
    """Pick from ``options`` with a pre-drawn uniform ``u`` (inverse CDF)."""
    if weights is None:
        return options[min(int(u * len(options)), len(options) - 1)]
    total = sum(weights)
    acc = 0.0
    for option, weight in zip(options, weights):
        acc += weight / total
        if u < acc:
            return option
    return options[-1]
