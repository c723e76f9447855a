"""Held-out loss: the mean negative log-likelihood per token of each test item's gold solution, given the
evaluation prompt of its question (forward passes only, batched).

Why next to accuracy: a small model's accuracy barely moves after minutes of training (and greedy outputs
of an undertrained model loop to the token cap), while the likelihood it gives correct solutions does, at
a fraction of generation's cost. The sequence is built as training builds one (``<bos> prompt target
<eos>``, loss on the target tokens only, the same tokenizer calls), so the number is the training loss
measured on benchmark items. When prompt and target exceed the model's context, the prompt is cut from
the left (keeping ``<bos>`` and the question's end, as generation does) so the whole target is scored; a
target that alone fills the context is left unscored (counted in the metrics).

Each item is scored under every format of ``eval.loss_formats``: the paper's eval template (metric
``loss``) and a neutral ``Question:``/``Answer:`` prompt (``loss_neutral``). The synthetic pre-training
records are written in the template, so a model can lower ``loss`` by learning the template alone; a
difference that shows under ``loss`` but not ``loss_neutral`` is a format effect, not better math.

The target is the item's worked gold solution where the test file has one (GSM8K, MATH, MATH-500, ...;
GSM8K's ``<<48/2=24>>`` calculator notes removed; SVAMP: its gold equation, "( 30.0 - 11.0 ) = 19. The answer
is 19."), else the answer statement "The answer is {gold}." (MAWPS, ASDiv, ...). A bare answer statement
mostly measures how readily a model states an answer at once: a model trained to write worked solutions
can score worse on it while its reasoning improved, so read those rows with that in mind.
"""

from __future__ import annotations

import re
from typing import Any

from jiuzhang.common.progress import Progress
from jiuzhang.evaluation.tasks import Task
from jiuzhang.training.packing import IGNORE, Example, Tokenized, prompt_ids

# The scoring formats (eval.loss_formats) and the metric / prediction-setting key each writes. Two formats
# because one can be faked: the synthetic records' input is the paper's eval template, so a model that
# learnt only the template scores better under it; under the neutral one it must have learnt the math.
LOSS_KEYS = {"paper": "loss", "neutral": "loss_neutral"}


def loss_keys(formats) -> list[str]:
    """The metric keys of the 'loss' setting for ``formats`` (eval.loss_formats), in a fixed order."""
    return [LOSS_KEYS[f] for f in LOSS_KEYS if f in formats]


def is_loss(setting: str) -> bool:
    """Whether a metric / prediction setting is a held-out loss (any format)."""
    return setting in LOSS_KEYS.values()


_CALCULATOR = re.compile(r"<<[^<>]*>>")


def target_kind(task: Task) -> str:
    """What the held-out loss of ``task`` scores, as the report names it next to the number."""
    if task.solution is None:
        return "answer statement only"
    return "gold equation + answer" if task.name == "svamp" else "worked solution"


def gold_target(task: Task, row: dict[str, Any]) -> str:
    """The scored target of a row: its worked solution (calculator annotations removed), else the gold answer."""
    solution = task.solution(row) if task.solution else None
    if solution and solution.strip():
        return _CALCULATOR.sub("", solution).strip()
    return f"The answer is {task.gold(row)}."


def _fit(example: Example, tokenizer, max_length: int, min_prompt: int = 8) -> Tokenized | None:
    p = prompt_ids(tokenizer, example.prompt)
    t = tokenizer(example.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    room = max_length - len(t)
    if room < min_prompt:
        return None
    if len(p) > room:
        p = p[:1] + p[len(p) - room + 1:]  # keep <bos> and the end of the question, as generation does
    return Tokenized(example.id, p + t, [IGNORE] * len(p) + t)


def heldout_nll(model, tokenizer, examples: list[Example], batch_size: int, max_length: int,
                bf16: bool = False, name: str = "held-out loss") -> dict[str, tuple[float, int]]:
    """{example id: (mean NLL per target token, target tokens)}; an example whose target alone does not fit
    ``max_length`` (with a few prompt tokens) is left out. ``bf16``: under bf16 autocast (eval.loss_dtype).
    Progress is reported as ``name``."""
    import torch
    import torch.nn.functional as F

    from jiuzhang.common.precision import autocast
    from jiuzhang.common.scored_logits import scored_logits

    items = [t for t in (_fit(e, tokenizer, max_length) for e in examples) if t is not None]
    items.sort(key=lambda t: (len(t.input_ids), t.id))  # similar lengths together: little padding
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out: dict[str, tuple[float, int]] = {}
    model.eval()
    bar = Progress(name, len(items), "item")
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        width = max(len(t.input_ids) for t in batch)
        ids = torch.tensor([t.input_ids + [pad] * (width - len(t.input_ids)) for t in batch], device=device)
        labels = torch.tensor([t.labels + [IGNORE] * (width - len(t.labels)) for t in batch], device=device)
        mask = torch.tensor([[1] * len(t.input_ids) + [0] * (width - len(t.input_ids)) for t in batch], device=device)
        with torch.inference_mode(), autocast(device.type, bf16):
            logits, targets = scored_logits(model, labels, input_ids=ids, attention_mask=mask, use_cache=False)
        nll = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE,
                              reduction="none").view(targets.shape)
        counts = (targets != IGNORE).sum(dim=1)
        for t, total, n in zip(batch, nll.sum(dim=1).tolist(), counts.tolist()):
            out[t.id] = (total / n, int(n))
        bar.update(len(batch))
    bar.close()
    return out
