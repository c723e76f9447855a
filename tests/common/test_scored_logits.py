"""Logits only at scored positions (jiuzhang.common.scored_logits): the same loss and the same gradients as
full logits, for plain, padded and PEFT-wrapped models, and a model without ``logits_to_keep`` still works."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from jiuzhang.common.scored_logits import IGNORE, scored_logits

from conftest import make_tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(make_tiny_model(tmp_path_factory.mktemp("scored") / "m"))


def batch():
    """Two right-padded rows whose prompts (IGNORE labels) have different lengths."""
    ids = torch.tensor([[1, 5, 6, 7, 8, 9, 10, 11], [1, 12, 13, 14, 15, 16, 0, 0]])
    labels = torch.tensor([[IGNORE] * 5 + [9, 10, 11], [IGNORE] * 3 + [14, 15, 16, IGNORE, IGNORE]])
    mask = torch.tensor([[1] * 8, [1] * 6 + [0] * 2])
    return ids, labels, mask


def loss_of(logits, targets):
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum")


def full(model, ids, labels, mask):
    targets = F.pad(labels, (0, 1), value=IGNORE)[:, 1:]
    return model(input_ids=ids, attention_mask=mask).logits, targets


def test_same_loss_and_gradients_as_full_logits_on_fewer_positions(model):
    ids, labels, mask = batch()
    logits, targets = scored_logits(model, labels, input_ids=ids, attention_mask=mask)
    # positions 0-1 predict prompt tokens in both rows and the last predicts past the end: left out
    assert logits.shape[:2] == targets.shape == (2, 5)
    loss = loss_of(logits, targets)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    ref = loss_of(*full(model, ids, labels, mask))
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    for n, p in model.named_parameters():
        assert torch.allclose(grads[n], p.grad, atol=1e-6), n
    model.zero_grad(set_to_none=True)


def test_a_model_without_logits_to_keep_gets_full_logits_and_the_same_loss(model):
    class Plain(torch.nn.Module):  # forward() has no logits_to_keep argument
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    ids, labels, mask = batch()
    with torch.no_grad():
        logits, targets = scored_logits(Plain(model), labels, input_ids=ids, attention_mask=mask)
        assert logits.shape[1] == ids.shape[1]
        assert loss_of(logits, targets).item() == pytest.approx(loss_of(*full(model, ids, labels, mask)).item(), rel=1e-6)


def test_peft_wrapped_model_skips_the_prompt_positions_too(model):
    from peft import LoraConfig, get_peft_model

    lora = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    try:
        ids, labels, mask = batch()
        with torch.no_grad():
            logits, targets = scored_logits(lora, labels, input_ids=ids, attention_mask=mask)
            assert logits.shape[1] == 5
            ref = loss_of(*full(lora, ids, labels, mask)).item()
        assert loss_of(logits, targets).item() == pytest.approx(ref, rel=1e-6)
    finally:
        lora.unload()
