"""Logits only where a loss is scored: the LM head and the softmax skip prompt positions.

Training on (prompt, answer) pairs, LESS gradients and the held-out loss all score the answer tokens only,
yet a full forward pass projects every position onto the vocabulary (SmolLM2: 49,152 x 576, a fifth of the
model's multiply-adds) and keeps a [batch, length, vocab] fp32 tensor for the loss. Transformers' causal LMs
take ``logits_to_keep`` (a tensor of sequence positions): we pass the positions whose next token is scored,
so the result is the same loss on fewer, identical logits. A model without that argument gets the full
logits (same loss, slower).
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

IGNORE = -100  # the label of a position no loss scores (torch's cross_entropy ignore_index default)


def _takes_logits_to_keep(model) -> bool:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT wraps the HF model
    return "logits_to_keep" in inspect.signature(inner.forward).parameters


def scored_logits(model, labels: torch.Tensor, **inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, targets)`` of a causal LM: ``targets[b, k]`` is the token that ``logits[b, k]`` predicts
    (IGNORE where nothing is scored). Positions no row scores are left out of both when the model can skip
    them; ``labels`` are aligned with the inputs (a position's label is its own token, as in ``input_ids``)."""
    targets = F.pad(labels, (0, 1), value=IGNORE)[:, 1:]  # position t predicts the token at t + 1
    keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(1)
    if keep.numel() and _takes_logits_to_keep(model):
        logits = model(**inputs, logits_to_keep=keep).logits
        return logits, targets[:, keep]
    return model(**inputs).logits, targets
