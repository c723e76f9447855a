"""Tokenize (prompt, target) examples and pack them into fixed-length sequences without cross-talk.

Each example is ``<bos> prompt target <eos>``; labels are -100 on the prompt (loss on the target only,
as in the paper). Examples are packed greedily, in order, into sequences of ``max_length``; every
example's ``position_ids`` restart at 0. With no attention mask, transformers' Llama/Mistral code turns
restarting position ids into a block-diagonal causal mask (``masking_utils.find_packed_sequence_indices``),
so no token attends across an example boundary; a test checks logits equal the unpacked ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from jiuzhang.common.io import InputDataError

IGNORE = -100


@dataclass(frozen=True)
class Example:
    id: str
    prompt: str
    target: str


@dataclass
class Tokenized:
    id: str
    input_ids: list[int]
    labels: list[int]


@dataclass
class PackStats:
    examples: int = 0
    truncated: int = 0
    skipped: int = 0
    sequences: int = 0
    tokens: int = 0            # real (non-padding) tokens
    target_tokens: int = 0
    padding: int = 0

    @property
    def padding_share(self) -> float:
        total = self.tokens + self.padding
        return self.padding / total if total else 0.0


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """``<bos> prompt`` as token ids, exactly as training sees a prompt (generation must feed the same)."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos + tokenizer(prompt, add_special_tokens=False)["input_ids"]


def tokenize(examples: Iterable[Example], tokenizer, max_length: int, on_overlong: str,
             stats: PackStats) -> Iterator[Tokenized]:
    for ex in examples:
        if not ex.target.strip():
            raise InputDataError(f"example {ex.id!r} has an empty target; every record needs a target "
                                 f"(the KD completion or the record's output)")
        p = prompt_ids(tokenizer, ex.prompt)
        t = tokenizer(ex.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids, labels = p + t, [IGNORE] * len(p) + t
        stats.examples += 1
        if len(ids) > max_length:
            if on_overlong == "error":
                raise InputDataError(f"example {ex.id!r} has {len(ids)} tokens > max_length={max_length}; raise "
                                     f"max_length or set on_overlong: truncate (or skip) in the training params")
            if on_overlong == "skip":
                stats.skipped += 1
                continue
            stats.truncated += 1
            ids, labels = ids[:max_length], labels[:max_length]
            if all(label == IGNORE for label in labels):
                stats.skipped += 1  # a prompt that fills the whole window leaves nothing to learn
                continue
        stats.target_tokens += sum(1 for label in labels if label != IGNORE)
        yield Tokenized(ex.id, ids, labels)


@dataclass
class Packed:
    input_ids: torch.Tensor     # [n, max_length]
    labels: torch.Tensor
    position_ids: torch.Tensor
    real: torch.Tensor          # True on real tokens, False on padding


def pack(items: Iterable[Tokenized], max_length: int, pad_id: int, stats: PackStats, packing: bool = True) -> Packed:
    """Greedy in-order packing (``packing=False``: one example per sequence, for comparison)."""
    rows_ids, rows_labels, rows_pos, rows_real = [], [], [], []
    cur_ids: list[int] = []
    cur_labels: list[int] = []
    cur_pos: list[int] = []

    def close() -> None:
        pad = max_length - len(cur_ids)
        stats.padding += pad
        stats.tokens += len(cur_ids)
        rows_ids.append(cur_ids + [pad_id] * pad)
        rows_labels.append(cur_labels + [IGNORE] * pad)
        rows_pos.append(cur_pos + list(range(pad)))  # padding is its own segment: it attends to nothing real
        rows_real.append([True] * len(cur_ids) + [False] * pad)

    for item in items:
        if cur_ids and (not packing or len(cur_ids) + len(item.input_ids) > max_length):
            close()
            cur_ids, cur_labels, cur_pos = [], [], []
        cur_ids += item.input_ids
        cur_labels += item.labels
        cur_pos += list(range(len(item.input_ids)))
    if cur_ids:
        close()
    if not rows_ids:
        raise InputDataError("the training set is empty after tokenization (no examples, or all skipped); "
                             "check the input records and on_overlong")
    stats.sequences = len(rows_ids)
    return Packed(torch.tensor(rows_ids), torch.tensor(rows_labels), torch.tensor(rows_pos), torch.tensor(rows_real))
