"""Device memory of one training process, estimated from the model's shape and the training settings:
`jiuzhang config check` and `jiuzhang plan` refuse a stage whose estimate exceeds the accelerator's memory
(``plan.accelerator.memory_gib``), before a GPU is rented.

What is counted (bytes per device):

* **weights, gradients, optimizer**: bf16 training keeps fp32 master weights and two fp32 AdamW moments
  (12 bytes/parameter) plus 16-bit weights and gradients (DeepSpeed) or fp32 weights and gradients (the
  plain path). ZeRO-1 divides the 12 master/moment bytes over the data-parallel processes, ZeRO-2 the
  gradients too.
* **activations of one micro-batch** (b sequences x s tokens) kept for the backward pass, per Llama-style
  layer (hidden h, MLP width i, heads a): ~(10 h + 4 i) x s x b elements (norm inputs and outputs, q/k/v,
  attention output, the SwiGLU gate/up/product), plus the s x s attention matrix per head when the
  attention is 'eager' (sdpa and flash attention recompute it). Gradient checkpointing keeps only each
  layer's input (h x s x b) and one layer's full set at a time.
* **logits**: b x s x vocab in 16 bits, their fp32 copy for the loss and its gradient (10 bytes each).

* **LESS gradient features**: the LoRA weights' per-example gradients are projected block by block as the
  backward pass produces them (``influence/gradients.py``), so one block's gradients of one batch (b x r x h
  fp32, and the Adam direction's temporaries) are held, never b x P; plus the count-sketch projector (5
  bytes per LoRA weight), the checkpoint's Adam moments (8 bytes per LoRA weight) and a shard's features.

It is an estimate of the dominant terms (Korthikanti et al. 2022 count the same way); the CUDA context,
allocator fragmentation and temporary buffers come on top, so a stage is refused only when the estimate
alone is over the device's memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from jiuzhang.common.precision import resolve_dtype
from jiuzhang.config.plan import Role
from jiuzhang.config.root import Params
from jiuzhang.config.training import TrainConfig

BASE_OUTPUT = "models/base"  # the base stage's output (dvc.yaml); the smoke and mini synthesizers start from it

GIB = 1024 ** 3


@dataclass(frozen=True)
class Shape:
    """The facts of a decoder-only model the estimate needs (from its config.json or stated)."""

    params: float
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    kv_heads: int = 0    # 0 = heads (no grouped-query attention)

    def lora_parameters(self, r: int) -> float:
        """LoRA weights at rank ``r`` on q, k, v, o of every layer: r x (in + out) each."""
        kv = (self.kv_heads or self.heads) * (self.hidden // self.heads)
        return float(self.layers * r * (2 * self.hidden + 2 * (self.hidden + kv) + 2 * self.hidden))


@dataclass(frozen=True)
class Memory:
    """One stage's memory per device: model states, activations and (LESS) gradient features, in bytes."""
    stage: str
    states: float        # bytes: weights, gradients, optimizer state
    activations: float   # bytes: one micro-batch's activations and logits
    capacity: float      # bytes: plan.accelerator.memory_gib
    features: float = 0.0  # bytes: LESS's gradient features (one block's gradients, projector, moments, shard)

    @property
    def total(self) -> float:
        """Bytes in all."""
        return self.states + self.activations + self.features

    def describe(self) -> str:
        """The estimate in words, in GiB, split by kind."""
        extra = f" + {self.features / GIB:,.1f} GiB gradient features" if self.features else ""
        return (f"{self.stage}: ~{self.total / GIB:,.1f} GiB per device ({self.states / GIB:,.1f} GiB weights, "
                f"gradients and optimizer + {self.activations / GIB:,.1f} GiB activations of one micro-batch"
                f"{extra}) of {self.capacity / GIB:,.0f} GiB")


def less_feature_bytes(shape: Shape, r: int, batch: int, dim: int, shard: int, whole: bool = False) -> float:
    """Peak bytes of LESS's gradient features beyond the model (module docstring). ``whole``: the
    per-example gradients of a whole shard held as one (shard x P) matrix before projection, as this code
    did before issue 24 (the comparison in the README)."""
    p = shape.lora_parameters(r)
    rows, block = (shard, p) if whole else (batch, r * shape.hidden)  # the largest LoRA weight: r x hidden
    gradients = 4 * rows * block * 4  # fp32 gradients + the Adam direction's m, v and result
    return float(gradients + 5 * p + 8 * p + 4 * dim * (shard + batch))


def shape_of(params: Params, role: Role, root: Path) -> Shape | None:
    """The model's shape: ``plan.model_shape.<role>``, a local folder's config.json, or base.arch when the
    base stage trains the model here; None when none of those says it."""
    from jiuzhang.config.plan import ModelShapeConfig
    from jiuzhang.plan.estimate import arch_parameters

    stated = params.plan.model_shape.get(role)
    local = params.synthesizer.init.path if role == "synthesizer" else BASE_OUTPUT
    if stated is None and local and Path(local).as_posix().rstrip("/") == BASE_OUTPUT and params.base.mode == "train":
        a = params.base.arch
        return Shape(arch_parameters(params, params.base.tokenizer.vocab_size), a.hidden_size, a.num_layers,
                     a.num_heads, a.intermediate_size, params.base.tokenizer.vocab_size, a.num_kv_heads)
    config = (Path(local) if local and Path(local).is_absolute() else root / (local or "")) / "config.json"
    if stated is None and local and config.is_file():
        c = json.loads(config.read_text())
        try:
            stated = ModelShapeConfig(hidden_size=c["hidden_size"], num_layers=c["num_hidden_layers"],
                                      num_heads=c["num_attention_heads"],
                                      intermediate_size=c.get("intermediate_size", 4 * c["hidden_size"]),
                                      vocab_size=c["vocab_size"], num_kv_heads=c.get("num_key_value_heads"))
        except (KeyError, TypeError, ValueError):
            return None
    if stated is None:
        return None
    return Shape(params.plan.model_params.get(role) or stated.params_estimate(), stated.hidden_size,
                 stated.num_layers, stated.num_heads, stated.intermediate_size, stated.vocab_size,
                 stated.num_kv_heads or 0)


def activation_bytes(shape: Shape, micro_batch: int, seq: int, bf16: bool, checkpointing: bool,
                     attention: str | None) -> float:
    """Activations of one micro-batch kept for backward, plus the logits (see the module docstring)."""
    elem = 2 if bf16 else 4
    tokens = micro_batch * seq
    per_layer = (10 * shape.hidden + 4 * shape.intermediate) * tokens * elem
    if attention == "eager":
        per_layer += 2 * shape.heads * seq * seq * micro_batch * elem  # scores and softmax, per head
    if checkpointing:
        layers = shape.layers * shape.hidden * tokens * elem + per_layer  # inputs + the one being recomputed
    else:
        layers = shape.layers * per_layer
    logits = tokens * shape.vocab * 10
    return float(layers + logits)


def state_bytes(shape: Shape, train: TrainConfig, processes: int) -> float:
    """Bytes per device of weights, gradients and Adam moments: 16 per parameter, divided by ZeRO's stage."""
    p, ds = shape.params, train.deepspeed
    if not ds.enabled:
        return 16 * p  # fp32 weights + fp32 gradients + two fp32 moments (bf16 is autocast over them)
    bf16 = resolve_dtype(train.dtype, "cuda") == "bf16"  # planned for the accelerator: 'auto' is bf16 there
    weights = grads = (2 if bf16 else 4) * p
    master = (12 if bf16 else 8) * p  # fp32 master copy (bf16 only) + two moments
    if ds.zero_stage >= 1:
        master /= processes
    if ds.zero_stage >= 2:
        grads /= processes
    return weights + grads + master


def training_memory(params: Params, root: Path) -> list[Memory]:
    """The estimate of each training stage whose model shape is known (the synthesizer stages, pretrain,
    and LESS's LoRA passes on the base model)."""
    cap = params.plan.accelerator.memory_gib * GIB
    out: list[Memory] = []
    trainings: tuple[tuple[str, Role, TrainConfig], ...] = (("synthesizer", "synthesizer", params.synthesizer.train),
                                                            ("pretrain", "base", params.pretrain.train))
    for stage, role, train in trainings:
        shape = shape_of(params, role, root)
        if shape is None:
            continue
        n = train.world_size
        act = activation_bytes(shape, train.micro_batch, train.max_length, resolve_dtype(train.dtype, "cuda") == "bf16",
                               train.gradient_checkpointing, train.attn_implementation)
        out.append(Memory(stage, state_bytes(shape, train, n), act, cap))
    inf = params.influence
    shape = shape_of(params, "base", root)
    if inf.method == "less" and inf.less is not None and shape is not None:
        less = inf.less
        bf16 = less.dtype == "bf16" or (less.dtype == "auto" and less.device != "cpu")
        # frozen 16-bit weights; the LoRA parameters with their gradients and AdamW state (16 bytes each)
        lora = 16 * shape.lora_parameters(less.r)
        act = activation_bytes(shape, less.batch_size, less.max_length, bf16, less.gradient_checkpointing,
                               less.attn_implementation)
        feats = less_feature_bytes(shape, less.r, less.batch_size, less.dim, less.shard_size)
        out.append(Memory("influence (LESS)", (2 if bf16 else 4) * shape.params + lora, act, cap, feats))
    return out


def memory_blockers(params: Params, root: Path) -> list[str]:
    """A line per training stage that cannot fit one device, naming the settings that would make it fit."""
    out = []
    for m in training_memory(params, root):
        if m.total <= m.capacity:
            continue
        prefix = "influence.less" if m.stage.startswith("influence") else f"{m.stage}.train"
        out.append(f"{m.describe()}: it does not fit; set {prefix}.gradient_checkpointing: true, lower "
                   f"{prefix}.{'batch_size' if prefix == 'influence.less' else 'micro_batch'}, or (training) use "
                   f"DeepSpeed ZeRO-2 over more processes (plan.accelerator.memory_gib states the device's memory)")
    return out
