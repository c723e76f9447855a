"""The control arms' training data: what the base model is pre-trained on instead of the synthetic records,
at the synthetic arm's target-token budget, so that the comparison is of content, not of training per se.

- ``raw``: the corpus snippets the prompts were built from. The snippets of the kept synthetic records come
  first (in the clean table's order: the same source text, before and after the synthesizer), then the
  other snippets of the corpus in a seeded order, until the budget is met. Each is a plain-text record
  (empty input, loss on the whole snippet): raw text has no question/solution split, so this arm cannot
  share the synthetic records' ``## Question ... ## Solution`` format; the report says so.
- ``released``: the paper's released JiuZhang3.0 sample only (``{input, output}`` in the synthetic records'
  own format), in a seeded order.

The budget is the synthetic arm's ``target_tokens_per_epoch`` (``results/pretrain.json``), counted with the
same tokenizer and length cap as training counts it; rows are taken while that brings the total closer to
the budget, so an arm ends within half a record of it. The arm's own training metrics give the exact count.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jiuzhang.common.io import InputDataError, read_shards
from jiuzhang.common.seeding import keyed_uniform
from jiuzhang.training.packing import Example, prompt_ids
from jiuzhang.training.records import iter_examples


def _raw_rows(corpus: Path, prompts: Path, synthetic: Path, seed: int) -> Iterator[Example]:
    """The kept records' snippets in the clean table's order, then every other snippet in a seeded order."""
    snippet_of = {r["id"]: r["snippet_id"] for r in read_shards(prompts, columns=["id", "snippet_id"])}
    texts = {r["id"]: r["text"] for r in read_shards(corpus, columns=["id", "text"])}
    seen: set[str] = set()
    for r in read_shards(synthetic, columns=["id"]):
        sid = snippet_of.get(r["id"])
        if sid is None:
            raise InputDataError(f"{synthetic}: record {r['id']!r} names no prompt of {prompts}; the tables are "
                                 f"from different runs (dvc repro)")
        if sid in texts and sid not in seen:
            seen.add(sid)
            yield Example(f"raw/{sid}", "", texts[sid])
    rest = sorted((keyed_uniform(seed, "raw-arm", sid), sid) for sid in texts if sid not in seen)
    for _, sid in rest:
        yield Example(f"raw/{sid}", "", texts[sid])


def _released_rows(path: str | Path, seed: int) -> Iterator[Example]:
    rows = list(iter_examples(path, "input", "output"))
    random.Random(seed).shuffle(rows)
    yield from rows


def target_tokens(example: Example, tokenizer, max_length: int) -> int:
    """Target tokens training counts for ``example`` (its target + ``<eos>``, cut to fit ``max_length``)."""
    t = len(tokenizer(example.target, add_special_tokens=False)["input_ids"]) + 1
    return max(0, min(t, max_length - len(prompt_ids(tokenizer, example.prompt))))


def arm_examples(arm: str, budget: int, tokenizer, max_length: int, seed: int, *, corpus: Path | None = None,
                 prompts: Path | None = None, synthetic: Path | None = None,
                 released: str | Path | None = None) -> tuple[list[Example], dict[str, Any]]:
    """(examples, facts) of one arm: rows of its source taken in order until their target tokens are
    closest to ``budget``."""
    if budget <= 0:
        raise InputDataError(f"the synthetic arm trained on {budget} target tokens; the {arm} arm is sized to match "
                             f"it, so run the pretrain stage first (results/pretrain.json)")
    if arm == "raw":
        if corpus is None or prompts is None or synthetic is None:
            raise InputDataError("the raw arm needs the corpus, prompts and clean synthetic tables")
        rows = _raw_rows(corpus, prompts, synthetic, seed)
    elif arm == "released":
        if released is None:
            raise InputDataError("the released arm needs pretrain.arms.released (the released sample's path)")
        rows = _released_rows(released, seed)
    else:
        raise InputDataError(f"unknown arm {arm!r}; known: raw, released (pretrain.arms.names)")
    chosen: list[Example] = []
    total, exhausted = 0, True
    for ex in rows:
        n = target_tokens(ex, tokenizer, max_length)
        if n == 0:
            continue  # its prompt fills the window: training would skip it too
        if abs(total + n - budget) >= abs(total - budget):
            exhausted = False
            break
        chosen.append(ex)
        total += n
    if not chosen:
        raise InputDataError(f"the {arm} arm has no rows to train on (its source is empty)")
    return chosen, {"arm": arm, "budget_target_tokens": budget, "records": len(chosen),
                    "counted_target_tokens": total, "source_exhausted": exhausted and total < budget}
