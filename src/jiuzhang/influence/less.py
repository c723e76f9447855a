"""Gradient-based influence selection (LESS, Xia et al. 2024) for the boosting round, docs/method.md, 'Influence estimation'.

1. Warm up a LoRA on a seeded fraction of the candidates' data, saving at each epoch end the LoRA
   weights, the Adam moments *keyed by parameter name* (LESS keys them by position), the step and the
   epoch's mean learning rate.
2. Per checkpoint: per-example LoRA gradients (answer tokens only, model in eval mode); candidates take
   the Adam update direction, targets the plain gradient; count-sketch projection (seeded on the CPU);
   L2 normalisation.
3. score = sum over checkpoints of (normalised lr) x cosine(candidate, mean target of a task); max over
   tasks. Candidates are processed in shards of ``shard_size`` so memory stays bounded; the stage hands
   the warm-up, the target directions and the shards to a worker pool (``selection.select_less``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from jiuzhang.influence.gradients import lora_parameters, per_example_projected
from jiuzhang.influence.projection import CountSketch, Identity
from jiuzhang.influence.scoring import adam_direction, lr_weights, normalise, task_direction
from jiuzhang.training.packing import IGNORE, Example, PackStats, Tokenized, tokenize
from jiuzhang.training.world import World


@dataclass
class Checkpoint:
    """One warm-up checkpoint: the LoRA weights and Adam's moments, and the learning rate at that step."""
    lora: dict[str, torch.Tensor]
    exp_avg: dict[str, torch.Tensor]
    exp_avg_sq: dict[str, torch.Tensor]
    step: int
    lr: float


def with_lora(model, r: int, alpha: int, seed: int, dropout: float = 0.0):
    """``model`` with a seeded LoRA adapter of rank ``r`` on the attention and MLP projections."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, bias="none",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    # LoRA A is drawn at random: redraw it from our own seeded generator (peft uses the global RNG), in
    # name order, as peft does (Kaiming uniform); B stays zero.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in lora_parameters(model).items():
            if ".lora_A." in name:
                torch.nn.init.kaiming_uniform_(p, a=math.sqrt(5), generator=g)
    return model


def tokenize_all(examples: list[Example], tokenizer, max_length: int) -> list[Tokenized]:
    """``examples`` tokenized and truncated to ``max_length``; those left without an answer token are dropped."""
    out = list(tokenize(examples, tokenizer, max_length, "truncate", PackStats()))
    return [t for t in out if any(label != IGNORE for label in t.labels)]


def warmup(model, data: list[Tokenized], epochs: int, lr: float, warmup_ratio: float, batch_size: int,
           seed: int, checkpoints_dir: Path | None = None, step_batch: int | None = None) -> list[Checkpoint]:
    """Train the LoRA weights with the project's one training loop (``training/sft.py``: AdamW, schedule,
    loss on answer tokens); one checkpoint per epoch end. LESS's settings: AdamW (0.9, 0.999), no weight
    decay, linear schedule with warm-up, gradient clip 1.0 (HF Trainer's default, which LESS runs on)."""
    import tempfile

    from jiuzhang.config.training import TrainConfig
    from jiuzhang.training.engine import TorchEngine
    from jiuzhang.training.packing import pack
    from jiuzhang.training.sft import train_sft

    width = max(len(t.input_ids) for t in data)
    cfg = TrainConfig(max_length=width, micro_batch=batch_size, global_batch=step_batch or batch_size, epochs=epochs, lr=lr,
                      weight_decay=0.0, adam_betas=[0.9, 0.999], schedule="linear", warmup_ratio=warmup_ratio,
                      min_lr_ratio=0.0, grad_clip=1.0, packing=False, seed_data=seed, seed_dropout=seed,
                      threads=torch.get_num_threads(), save_every=10**9, log_every=10**9)
    packed = pack(data, width, 0, PackStats(), packing=False)  # one example per row, as LESS trains
    params = lora_parameters(model)
    engine = TorchEngine(model, cfg)
    checkpoints: list[Checkpoint] = []

    def keep(epoch: int, eng, lrs: list[float]) -> None:
        # kept on the CPU in fp32: device memory holds the model, and checkpoints load on any device
        state = {name: eng.optimizer.state[p] for name, p in params.items()}
        checkpoints.append(Checkpoint({n: p.detach().float().cpu() for n, p in params.items()},
                                      {n: st["exp_avg"].float().cpu() for n, st in state.items()},
                                      {n: st["exp_avg_sq"].float().cpu() for n, st in state.items()},
                                      int(state[next(iter(state))]["step"]), sum(lrs) / len(lrs)))

    with tempfile.TemporaryDirectory(dir=checkpoints_dir) as scratch:  # never resumed: a fresh run each time
        train_sft(engine, packed, cfg, World(), Path(scratch) / "ck", on_epoch_end=keep)
    model.eval()
    return checkpoints


def _load(model, ckpt: Checkpoint) -> None:
    with torch.no_grad():
        for name, p in lora_parameters(model).items():
            p.copy_(ckpt.lora[name])  # CPU fp32 -> the parameter's device and dtype


def _flat(d: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([d[n].reshape(-1) for n in sorted(d)])


def features(model, ckpt: Checkpoint, data: list[Tokenized], projector, adam: bool, variant: str,
             batch_size: int) -> torch.Tensor:
    """Normalised projected features (n, dim) of ``data`` at ``ckpt``; gradients are projected block by
    block as the backward pass produces them (``per_example_projected``), never held whole. In eval mode:
    LoRA dropout (``influence.less.lora_dropout``) is for the warm-up, not the features."""
    _load(model, ckpt)
    model.eval()
    transform = None
    if adam:
        device = next(model.parameters()).device
        m, v = _flat(ckpt.exp_avg).to(device), _flat(ckpt.exp_avg_sq).to(device)

        def transform(grads: torch.Tensor, coords: slice) -> torch.Tensor:
            return adam_direction(grads, m[coords], v[coords], ckpt.step, (0.9, 0.999), 1e-8, variant)
    return normalise(per_example_projected(model, data, projector, batch_size, transform))


def target_directions(model, ckpt: Checkpoint, targets: dict[str, list[Tokenized]], projector, variant: str,
                      batch_size: int) -> dict[str, torch.Tensor]:
    """Each target task's mean normalised gradient feature at ``ckpt`` (on the CPU)."""
    return {t: task_direction(features(model, ckpt, ex, projector, False, variant, batch_size)).cpu()
            for t, ex in targets.items()}


def score_shard(model, checkpoints: list[Checkpoint], directions: list[dict[str, torch.Tensor]],
                shard: list[Tokenized], projector, variant: str, batch_size: int) -> dict[str, torch.Tensor]:
    """Per task, the shard's scores: sum over checkpoints of (normalised lr) x cosine with the task's direction."""
    weights = lr_weights([c.lr for c in checkpoints])
    part = {t: torch.zeros(len(shard)) for t in directions[0]}
    for w, c, dirs in zip(weights, checkpoints, directions):
        feats = features(model, c, shard, projector, True, variant, batch_size)
        for t, d in dirs.items():
            part[t] += w * (feats @ d.to(feats.device)).cpu()  # scores gather on the CPU
    return part


def score_candidates(model, checkpoints: list[Checkpoint], candidates: list[Tokenized],
                     targets: dict[str, list[Tokenized]], dim: int, seed: int, variant: str, batch_size: int,
                     shard_size: int, project: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(final scores (n,), per-task scores {task: (n,)}) in this process; ``project=False`` gives the exact
    cosines. The stage runs the same two steps on a worker pool (:func:`jiuzhang.influence.selection.select_less`)."""
    n_params = sum(p.numel() for p in lora_parameters(model).values())
    projector = CountSketch(n_params, dim, seed) if project else Identity(n_params)
    directions = [target_directions(model, c, targets, projector, variant, batch_size) for c in checkpoints]
    parts = [score_shard(model, checkpoints, directions, candidates[i:i + shard_size], projector, variant, batch_size)
             for i in range(0, len(candidates), shard_size)]  # memory bounded by one shard's features
    return merge(parts)


def merge(parts: list[dict[str, torch.Tensor]]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Shards' per-task scores (in candidate order) -> (final = max over tasks, per task)."""
    per_task = {t: torch.cat([p[t] for p in parts]) for t in parts[0]}
    return torch.stack(list(per_task.values())).max(0).values, per_task


def report(final: torch.Tensor, per_task: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The influence figures for the results file: mean and max score, and the target tasks."""
    return {"score_mean": round(float(final.mean()), 6), "score_max": round(float(final.max()), 6),
            "tasks": sorted(per_task)}
