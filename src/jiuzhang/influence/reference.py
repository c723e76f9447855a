"""The LESS reference model as a pool worker holds it, and the three kinds of work it does for the stage:
the warm-up (one unit), the target directions (one unit per checkpoint) and the candidate shards.

Every worker loads the same reference model and draws the same LoRA A from the same seed, then takes the
warm-up's checkpoints from the driver (:func:`jiuzhang.cluster.pool.fetch`), so any worker scores any
shard with identical weights; a shard's scores do not depend on which worker ran it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from jiuzhang.cluster.pool import fetch
from jiuzhang.config.influence import LessConfig
from jiuzhang.config.training import ModelSource
from jiuzhang.influence.gradients import lora_parameters
from jiuzhang.influence.less import Checkpoint, score_shard, target_directions, warmup, with_lora
from jiuzhang.influence.projection import CountSketch
from jiuzhang.models.loading import load_model, pick_device
from jiuzhang.training.packing import Tokenized


def placement(device: str, dtype: str, local_rank: int) -> tuple[str, str]:
    """(torch device, weights dtype) of this rank's LESS run: one rank per GPU, bf16 there; fp32 on a CPU."""
    where = pick_device(device, local_rank, "influence.less.device")
    return str(where), ("bf16" if where.type == "cuda" else "fp32") if dtype == "auto" else dtype


@dataclass
class Reference:
    """A worker's reference model with its LoRA, on the worker's device, and its projector."""

    model: Any
    less: LessConfig
    _projector: CountSketch | None = None

    @property
    def projector(self) -> CountSketch:
        """The CountSketch for this LoRA, built once, seeded on the CPU so every worker draws the same."""
        if self._projector is None:  # seeded on the CPU: the same on every worker and device
            n = sum(p.numel() for p in lora_parameters(self.model).values())
            self._projector = CountSketch(n, self.less.dim, self.less.projection_seed)
        return self._projector

    def scoring_mode(self) -> None:
        """transformers recomputes activations only in training mode; the gradient features are the same
        there because LoRA dropout is 0 and a Llama-style model's attention dropout is 0 (tests/influence/test_less.py)."""
        self.model.train() if self.less.gradient_checkpointing else self.model.eval()


def load_reference(reference: str, less: LessConfig, seed: int) -> Reference:
    """Build a worker's state: the reference model in LESS's dtype on this worker's device (a GPU Ray gave
    it, else the CPU), LoRA A drawn from ``seed`` on the CPU first."""
    device, dtype = placement(less.device, less.dtype, 0)
    torch.use_deterministic_algorithms(True, warn_only=True)
    model, _ = load_model(ModelSource(path=reference), dtype, less.attn_implementation)
    model = with_lora(model, less.r, less.alpha, seed, less.lora_dropout).to(device)
    if less.gradient_checkpointing:  # warm-up and gradient features alike (the hooks see the first forward)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return Reference(model, less)


def warm_up(ref: Reference, payload: tuple[list[Tokenized], int], attempt: str) -> list[dict[str, Any]]:
    """The LoRA warm-up on the seeded sample; its checkpoints as plain dicts (CPU fp32 tensors)."""
    data, seed = payload
    less = ref.less
    checkpoints = warmup(ref.model, data, less.epochs, less.lr, less.warmup_ratio, less.batch_size, seed,
                         step_batch=less.warmup_batch)
    return [vars(c) for c in checkpoints]


def directions_at(ref: Reference, payload: tuple[Any, int, Any], attempt: str) -> dict[str, torch.Tensor]:
    """Target directions at one checkpoint: payload = (shared checkpoints, index, shared targets)."""
    checkpoints, index, targets = payload
    ref.scoring_mode()
    ckpt = Checkpoint(**fetch(checkpoints)[index])
    return target_directions(ref.model, ckpt, fetch(targets), ref.projector, ref.less.adam_variant, ref.less.batch_size)


def score(ref: Reference, payload: tuple[Any, Any, list[Tokenized]], attempt: str) -> dict[str, torch.Tensor]:
    """One candidate shard's per-task scores: payload = (shared checkpoints, shared directions, shard)."""
    checkpoints, directions, shard = payload
    ref.scoring_mode()
    ckpts = [Checkpoint(**c) for c in fetch(checkpoints)]
    return score_shard(ref.model, ckpts, fetch(directions), shard, ref.projector, ref.less.adam_variant,
                       ref.less.batch_size)
