"""Random projection of gradient vectors to ``dim`` dimensions, the same on every device.

A count sketch (each coordinate i goes to bucket h(i) with sign s(i)) is a sparse Johnson-Lindenstrauss
projection: inner products are preserved in expectation, it costs one scatter-add per vector instead of
a dense matmul, and its (h, s) are drawn from a seeded CPU generator, so CPU and GPU (any model of GPU)
give the same features. LESS's own code falls back silently between projectors and generates the dense
matrix on the GPU, which makes features depend on the hardware; docs/method.md, 'Influence estimation'.
The dense Rademacher projection is kept as the baseline (benchmarks/influence_throughput.py).
"""

from __future__ import annotations

import torch


class CountSketch:
    def __init__(self, input_dim: int, dim: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.input_dim, self.dim = input_dim, dim
        self.buckets = torch.randint(0, dim, (input_dim,), generator=g)
        self.signs = torch.randint(0, 2, (input_dim,), generator=g).float() * 2 - 1

    def __call__(self, grads: torch.Tensor) -> torch.Tensor:
        """(n, input_dim) -> (n, dim), on the gradients' device (the sketch is copied there once)."""
        grads = grads.float()
        if self.buckets.device != grads.device:
            self.buckets, self.signs = self.buckets.to(grads.device), self.signs.to(grads.device)
        out = torch.zeros(grads.shape[0], self.dim, dtype=torch.float32, device=grads.device)
        out.index_add_(1, self.buckets, grads * self.signs)
        return out


class DenseRademacher:
    """The baseline: a dense +-1/sqrt(dim) matrix (what LESS uses, generated here on the CPU)."""

    def __init__(self, input_dim: int, dim: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.matrix = (torch.randint(0, 2, (input_dim, dim), generator=g).float() * 2 - 1) / dim ** 0.5

    def __call__(self, grads: torch.Tensor) -> torch.Tensor:
        return grads.float() @ self.matrix.to(grads.device)
