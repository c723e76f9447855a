"""The Wilson interval of a proportion, in ``common`` because every stage's headline figures use it
(:mod:`jiuzhang.common.headline`); the evaluation's other intervals are in :mod:`jiuzhang.evaluation.stats`."""

from __future__ import annotations

import math


def wilson(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound at 0/n and n/n, where the normal one is not)."""
    if total == 0:
        return 0.0, 1.0
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)
