"""LESS scoring: candidates' Adam update directions and targets' gradients, projected and normalised, scored
by sum over checkpoints of (normalised lr weight) x cosine(candidate, mean target of a task), max over tasks.
"""

from __future__ import annotations

import torch


def adam_direction(grads: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, step: int,
                   betas: tuple[float, float], eps: float, variant: str) -> torch.Tensor:
    """The update Adam would make from each example's gradient alone, given the checkpoint's moments.

    ``paper``: bias-corrected (m_hat / (sqrt(v_hat) + eps)) with t = step + 1, as in the LESS paper;
    ``less_code``: LESS's released code, which skips the bias correction.
    """
    b1, b2 = betas
    m = b1 * exp_avg + (1 - b1) * grads
    v = b2 * exp_avg_sq + (1 - b2) * grads ** 2
    if variant == "paper":
        t = step + 1
        m = m / (1 - b1 ** t)
        v = v / (1 - b2 ** t)
    return m / (v.sqrt() + eps)


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Each row scaled to unit length (zero rows stay zero)."""
    norms = x.norm(dim=-1, keepdim=True)
    return torch.where(norms > 0, x / norms.clamp(min=1e-30), torch.zeros_like(x))


def task_direction(target_features: torch.Tensor) -> torch.Tensor:
    """Mean of a task's normalised target features: cand . mean = mean of the cosines with each target."""
    if target_features.shape[0] == 0:
        raise ValueError("a target task has no examples; remove it or give it data")
    return normalise(target_features).mean(0)


def lr_weights(lrs: list[float]) -> list[float]:
    """The checkpoints' learning rates normalised to sum to 1 (LESS weights each checkpoint by its rate)."""
    total = sum(lrs)
    if total <= 0:
        raise ValueError("checkpoint learning rates must be positive")
    return [lr / total for lr in lrs]


def rank(ids: list[str], scores: list[float]) -> list[int]:
    """Indices by descending score, ties broken by id (deterministic)."""
    return sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation of ``a`` and ``b``."""
    ra = a.argsort().argsort().double()
    rb = b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))
