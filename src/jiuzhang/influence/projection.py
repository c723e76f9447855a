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
    """Held as int32 buckets and int8 signs (5 bytes per gradient coordinate: 0.55 GB for the 109M LoRA
    weights of Mistral-7B at rank 128), drawn from the same seeded stream as ever."""

    bytes_per_input = 5

    def __init__(self, input_dim: int, dim: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.input_dim, self.dim = input_dim, dim
        self.buckets = torch.randint(0, dim, (input_dim,), generator=g).to(torch.int32)
        self.signs = (torch.randint(0, 2, (input_dim,), generator=g) * 2 - 1).to(torch.int8)

    def _on(self, device: torch.device) -> None:
        if self.buckets.device != device:  # copied to the gradients' device once
            self.buckets, self.signs = self.buckets.to(device), self.signs.to(device)

    def __call__(self, grads: torch.Tensor) -> torch.Tensor:
        """(n, input_dim) -> (n, dim), on the gradients' device."""
        out = torch.zeros(grads.shape[0], self.dim, dtype=torch.float32, device=grads.device)
        self.add_block(out, grads, 0)
        return out

    def add_block(self, out: torch.Tensor, block: torch.Tensor, offset: int) -> None:
        """Add the sketch of coordinates ``offset .. offset + block.shape[1]`` (n, k) into ``out`` (n, dim):
        the sketch is linear, so summing the blocks of a gradient gives the sketch of the whole."""
        self._on(block.device)
        k = block.shape[1]
        out.index_add_(1, self.buckets[offset:offset + k], block.float() * self.signs[offset:offset + k])


class Identity:
    """No projection (the exact cosines, for tests and small models): blocks are placed side by side."""

    bytes_per_input = 0

    def __init__(self, input_dim: int):
        self.dim = input_dim

    def __call__(self, grads: torch.Tensor) -> torch.Tensor:
        """The gradients as they are (no projection), in fp32."""
        return grads.float()

    def add_block(self, out: torch.Tensor, block: torch.Tensor, offset: int) -> None:
        """Add a block of gradient columns at ``offset`` into ``out`` (the identity projection)."""
        out[:, offset:offset + block.shape[1]] += block.float()


class DenseRademacher:
    """The baseline: a dense +-1/sqrt(dim) matrix (what LESS uses, generated here on the CPU)."""

    def __init__(self, input_dim: int, dim: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.matrix = (torch.randint(0, 2, (input_dim, dim), generator=g).float() * 2 - 1) / dim ** 0.5

    def __call__(self, grads: torch.Tensor) -> torch.Tensor:
        """The gradients times the dense random matrix."""
        return grads.float() @ self.matrix.to(grads.device)
