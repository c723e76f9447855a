"""The two ways a training step is executed: a plain torch optimizer (one or several processes) or a
DeepSpeed engine (ZeRO, many GPUs). The loop in :mod:`.sft` is the same for both.

Several processes without DeepSpeed are real data parallelism: every rank computes the gradients of its
share of the global batch and :class:`TorchEngine` averages them over the ranks (one all-reduce per
optimizer step) before clipping and stepping, so every rank holds the same weights, equal to a single
process's. Why an explicit all-reduce instead of wrapping the model in ``DistributedDataParallel``: DDP
reduces inside every ``backward()`` and needs every rank to run the same number of them, but the last
global batch of an epoch can leave one rank with fewer micro-batches than another (DDP would hang
there); one reduce per step is the same arithmetic (DDP with ``no_sync`` on all but the last micro-batch).

The DeepSpeed JSON config is generated from :class:`~.config.TrainConfig` by :func:`deepspeed_config`.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import torch

from jiuzhang.config.training import TrainConfig


def adamw(model: torch.nn.Module, lr: float, weight_decay: float,
          betas: tuple[float, float] | list[float] = (0.9, 0.95)) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (biases and norms undecayed), the usual LM recipe."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=tuple(betas), eps=1e-8,
                             fused=True)  # one kernel for all parameters, on CPU as on GPU


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])


class TorchEngine:
    """Plain AdamW; gradients accumulate over micro-batches, one step per global batch. With several
    processes (an initialised process group) the gradients are averaged over the ranks before the step."""

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, world_size: int = 1, rank: int = 0):
        self.model = model
        self.optimizer = adamw(model, cfg.lr, cfg.weight_decay, cfg.adam_betas)
        self.grad_clip = cfg.grad_clip
        self.world_size, self.rank = world_size, rank
        if world_size > 1 and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            raise RuntimeError(f"world size {world_size} without a process group: every rank would train its "
                               f"own model (init_distributed() first)")

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of every parameter group for the next step."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate the gradients of ``loss`` (already normalised over the global batch)."""
        loss.backward()

    def finish_step(self) -> None:
        """End a global step: average gradients over the ranks, clip, step the optimizer, zero the gradients."""
        if self.world_size > 1:
            self._average_gradients()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _average_gradients(self) -> None:
        """Mean of every rank's gradients, in one flat buffer (a rank with no micro-batch adds zeros)."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        torch.distributed.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def save(self, folder: Path, step: int, extra: dict[str, Any]) -> None:
        """Write the checkpoint for ``step`` (weights, optimizer, RNG and ``extra``) atomically, main rank only."""
        # Every rank holds the same weights and optimizer state (gradients are averaged), and the data
        # position is the step: the main rank alone writes the checkpoint that every rank resumes from
        # (two ranks renaming one temporary file would race).
        if self.rank != 0:
            return
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "last.pt.tmp"
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": step,
                    "rng": _rng_state(), "extra": extra}, tmp)
        os.replace(tmp, folder / "last.pt")  # a kill during the save leaves the previous checkpoint intact

    def load(self, folder: Path) -> tuple[int, dict[str, Any]] | None:
        """(step, extra) of the checkpoint in ``folder`` after restoring it, or None when there is none."""
        path = folder / "last.pt"
        if not path.is_file():
            return None
        state = torch.load(path, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        return int(state["step"]), state["extra"]

    def module(self) -> torch.nn.Module:
        """The model being trained (without any wrapper)."""
        return self.model


def deepspeed_config(cfg: TrainConfig, world_size: int) -> dict[str, Any]:
    """The DeepSpeed JSON, derived from the params (ZeRO stage, batch sizes, precision)."""
    accum = cfg.global_batch // (cfg.micro_batch * world_size)
    zero: dict[str, Any] = {"stage": cfg.deepspeed.zero_stage}  # offload and ZeRO-3 are refused by the config
    return {
        "train_batch_size": cfg.global_batch,
        "train_micro_batch_size_per_gpu": cfg.micro_batch,
        "gradient_accumulation_steps": accum,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": cfg.dtype == "bf16"},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


class DeepSpeedEngine:
    """DeepSpeed ZeRO with our AdamW as the client optimizer (no JIT-compiled fused Adam needed).

    Checkpoints: each save goes to a new tag ``step-N``; the pointer file ``COMPLETE`` names the last tag every
    rank finished writing and is switched (atomically) only after all have; the previous tag is deleted only
    then. A kill mid-save leaves the pointer on the previous, whole checkpoint, and the half-written tag is
    ignored and later removed (DeepSpeed's own ``latest`` file is written before the other ranks are done)."""

    POINTER = "COMPLETE"

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, world_size: int, rank: int = 0):
        import deepspeed  # optional at import time: only the DeepSpeed path needs it

        self.engine, self.optimizer, _, _ = deepspeed.initialize(
            model=model, optimizer=adamw(model, cfg.lr, cfg.weight_decay, cfg.adam_betas),
            config=deepspeed_config(cfg, world_size))
        self.rank = rank
        # DeepSpeed steps the optimizer after exactly this many backward() calls: every rank must make them
        # all at every step, also in an epoch's short last batch (train_sft pads with zero-weight micro-batches)
        self.micro_steps = cfg.global_batch // (cfg.micro_batch * world_size)

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of every parameter group for the next step."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr  # read at the accumulation boundary of this global step

    def backward(self, loss: torch.Tensor) -> None:
        """Backward through DeepSpeed (no second division by the accumulation steps); it steps at the boundary."""
        # Our loss is already normalised over the global batch, so DeepSpeed must not divide it again.
        self.engine.backward(loss, scale_wrt_gas=False)
        self.engine.step()  # DeepSpeed applies the optimizer only at the accumulation boundary

    def finish_step(self) -> None:
        """Nothing to do: DeepSpeed stepped in backward() at the accumulation boundary."""
        pass  # the boundary engine.step() in backward() already stepped

    def save(self, folder: Path, step: int, extra: dict[str, Any]) -> None:
        """Save a DeepSpeed checkpoint tagged with ``step`` on every rank, then the pointer that marks it complete."""
        import torch.distributed as dist

        tag = f"step-{step}"
        self.engine.save_checkpoint(str(folder), tag=tag, save_latest=False,
                                    client_state={"step": step, "rng": _rng_state(), "extra": extra})
        dist.barrier()  # every rank's shard of this tag is on disk before the pointer moves to it
        if self.rank == 0:
            tmp = folder / (self.POINTER + ".tmp")
            tmp.write_text(tag)
            os.replace(tmp, folder / self.POINTER)
            self._prune(folder, keep=tag)
        dist.barrier()

    @staticmethod
    def _prune(folder: Path, keep: str) -> None:
        import shutil

        for old in folder.iterdir():
            if old.is_dir() and old.name != keep:
                shutil.rmtree(old)  # the previous checkpoint, or a tag a killed save left half-written

    def load(self, folder: Path) -> tuple[int, dict[str, Any]] | None:
        """(step, extra) of the last complete DeepSpeed checkpoint after loading it, or None."""
        pointer = folder / self.POINTER
        if not pointer.is_file():
            return None  # nothing complete: tags without the pointer are half-written saves
        tag = pointer.read_text().strip()
        if not (folder / tag).is_dir():
            raise RuntimeError(f"{pointer} names checkpoint {tag!r}, which is missing from {folder}; delete "
                               f"{folder} to train from the start")
        _, client = self.engine.load_checkpoint(str(folder), tag=tag)
        _set_rng_state(client["rng"])
        return int(client["step"]), client["extra"]

    def module(self) -> torch.nn.Module:
        """The model inside the DeepSpeed engine."""
        return self.engine.module
