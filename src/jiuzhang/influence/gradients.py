"""Per-example gradients of the LoRA weights, loss = mean token loss over answer tokens only (LESS).

Three ways, same numbers (tests check it):
- :func:`per_example_loop`: one backward pass per example (the baseline; what LESS's code does);
- :func:`per_example_batched`: one forward/backward per padded batch with hooks on the LoRA ``Linear``
  layers: the gradient of a linear weight for example b is sum_t grad_out[b, t] x in[b, t], so every
  example's gradient falls out of one pass. The batch loss is the *sum* of per-example mean losses, so
  each example's gradient is exactly its own mean-loss gradient (examples do not interact: padding is
  masked and positions restart per row).
- :func:`per_example_projected`: the same pass, but each LoRA weight's per-example gradient block is
  transformed (Adam) and projected the moment the backward pass produces it, then dropped: the (n, P)
  gradient matrix never exists. Peak memory is one block's gradients of one batch plus the (n, dim)
  features and the projector, instead of n x P numbers (16 examples x 109M = 7 GB at 7B, rank 128).
Examples with no supervised token are rejected up front (LESS returns NaN for them).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from jiuzhang.common.scored_logits import scored_logits
from jiuzhang.training.packing import IGNORE, Tokenized


def device_of(model) -> torch.device:
    """Where the model's weights are: every input tensor is built there (one code path, CPU or GPU)."""
    return next(model.parameters()).device


def lora_parameters(model) -> dict[str, torch.nn.Parameter]:
    """The trainable LoRA weights by name (sorted, so flattening order is fixed)."""
    return dict(sorted((n, p) for n, p in model.named_parameters() if p.requires_grad))


def _check(examples: list[Tokenized]) -> None:
    for ex in examples:
        if not any(label != IGNORE for label in ex.labels):
            raise ValueError(f"example {ex.id!r} has no supervised (answer) token; drop it before scoring")


def _example_loss(model, ex: Tokenized) -> torch.Tensor:
    ids = torch.tensor([ex.input_ids], device=device_of(model))
    labels = torch.tensor([ex.labels], device=device_of(model))
    logits, target = scored_logits(model, labels, input_ids=ids)
    logits, mask = logits.float(), target != IGNORE
    losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.clamp(min=0).reshape(-1),
                                               reduction="none").view_as(target)
    return (losses * mask).sum() / mask.sum()


def per_example_loop(model, examples: list[Tokenized]) -> torch.Tensor:
    """(n, P) flattened LoRA gradients, one backward per example."""
    _check(examples)
    params = lora_parameters(model)
    rows = []
    for ex in examples:
        grads = torch.autograd.grad(_example_loss(model, ex), list(params.values()))
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


class _Capture:
    """Hooks on one LoRA Linear: its input, and (through a hook on its output tensor) the gradient there,
    give the per-example weight gradients (b, out*in) of a padded batch, handed to ``sink`` as they appear."""

    def __init__(self, module: torch.nn.Linear, sink: Callable[[torch.Tensor], None]):
        self.sink = sink
        self.handle = module.register_forward_hook(self._fwd)

    def _fwd(self, module, inputs, output):
        x = inputs[0].detach()

        def on_grad(grad_out: torch.Tensor) -> None:
            grad = torch.einsum("bto,bti->boi", grad_out.float(), x.float())
            self.sink(grad.reshape(grad.shape[0], -1))

        output.register_hook(on_grad)

    def close(self) -> None:
        self.handle.remove()


def _lora_linears(model, params: dict[str, torch.nn.Parameter]) -> dict[str, torch.nn.Linear]:
    modules = dict(model.named_modules())
    owners = {}
    for name in params:  # "...lora_A.default.weight" -> its nn.Linear module
        owner = name.rsplit(".", 1)[0]
        if not isinstance(modules.get(owner), torch.nn.Linear) or not name.endswith(".weight"):
            raise ValueError(f"{name}: only LoRA Linear weights are supported (no bias, no embeddings)")
        owners[name] = modules[owner]
    return owners


def _batched_pass(model, examples: list[Tokenized], batch_size: int,
                  on_batch: Callable[[int, dict[str, torch.nn.Linear]], dict[str, Callable]]) -> None:
    """One forward/backward per batch; ``on_batch(size, linears)`` gives each LoRA weight's gradient sink."""
    _check(examples)
    owners = _lora_linears(model, lora_parameters(model))
    device = device_of(model)
    for start in range(0, len(examples), batch_size):
        batch = examples[start:start + batch_size]
        width = max(len(e.input_ids) for e in batch)
        pad = lambda seq, value: seq + [value] * (width - len(seq))  # noqa: E731 - right padding
        ids = torch.tensor([pad(e.input_ids, 0) for e in batch], device=device)
        labels = torch.tensor([pad(e.labels, IGNORE) for e in batch], device=device)
        mask = torch.tensor([pad([1] * len(e.input_ids), 0) for e in batch], device=device)
        sinks = on_batch(len(batch), owners)
        captures = [_Capture(m, sinks[n]) for n, m in owners.items()]
        try:
            logits, target = scored_logits(model, labels, input_ids=ids, attention_mask=mask)
            logits, sup = logits.float(), target != IGNORE
            losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                       target.clamp(min=0).reshape(-1), reduction="none").view_as(target)
            per_example = (losses * sup).sum(1) / sup.sum(1)
            del logits, losses
            model.zero_grad(set_to_none=True)
            per_example.sum().backward()
        finally:
            for c in captures:
                c.close()
    model.zero_grad(set_to_none=True)


def per_example_batched(model, examples: list[Tokenized], batch_size: int = 16) -> torch.Tensor:
    """(n, P) flattened LoRA gradients, one forward/backward per batch of ``batch_size`` examples."""
    params = lora_parameters(model)
    rows: list[torch.Tensor] = []

    def on_batch(size: int, owners) -> dict[str, Callable]:
        got: dict[str, torch.Tensor] = {}
        rows.append(got)  # filled by the hooks during this batch's backward pass
        return {n: (lambda g, n=n: got.__setitem__(n, g)) for n in owners}

    _batched_pass(model, examples, batch_size, on_batch)
    n_params = sum(p.numel() for p in params.values())
    if not rows:
        return torch.zeros(0, n_params, device=device_of(model))
    return torch.cat([torch.cat([got[n] for n in params], dim=1) for got in rows])


def per_example_projected(model, examples: list[Tokenized], projector, batch_size: int = 16,
                          transform: Callable[[torch.Tensor, slice], torch.Tensor] | None = None) -> torch.Tensor:
    """(n, projector.dim) features: ``projector(transform(per-example gradients))`` computed block by block.

    ``transform(block, coords)`` maps a block's gradients (b, k) at flat coordinates ``coords`` (the Adam
    direction needs the checkpoint's moments there) and must act coordinate-wise; ``projector.add_block``
    must be linear. Blocks follow the flattening order of :func:`per_example_batched`.
    """
    params = lora_parameters(model)
    offsets, at = {}, 0
    for name, p in params.items():
        offsets[name] = at
        at += p.numel()
    parts: list[torch.Tensor] = []

    def on_batch(size: int, owners) -> dict[str, Callable]:
        out = torch.zeros(size, projector.dim, dtype=torch.float32, device=device_of(model))
        parts.append(out)

        def sink(name: str, grad: torch.Tensor) -> None:
            coords = slice(offsets[name], offsets[name] + grad.shape[1])
            projector.add_block(out, transform(grad, coords) if transform else grad, offsets[name])

        return {n: (lambda g, n=n: sink(n, g)) for n in owners}

    _batched_pass(model, examples, batch_size, on_batch)
    return torch.cat(parts) if parts else torch.zeros(0, projector.dim, device=device_of(model))
