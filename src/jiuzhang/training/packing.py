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
from jiuzhang.common.scored_logits import IGNORE  # noqa: F401 - re-exported: the label of unscored tokens


@dataclass(frozen=True)
class Example:
    """One training example: id, prompt (not trained on) and target (trained on)."""
    id: str
    prompt: str
    target: str


@dataclass
class Tokenized:
    """A tokenized example: input ids and labels (IGNORE over the prompt)."""
    id: str
    input_ids: list[int]
    labels: list[int]


@dataclass
class PackStats:
    """Counts from tokenizing and packing: examples, truncated, skipped, tokens, padding."""
    examples: int = 0
    truncated: int = 0
    skipped: int = 0
    sequences: int = 0
    tokens: int = 0            # real (non-padding) tokens
    target_tokens: int = 0
    padding: int = 0

    @property
    def padding_share(self) -> float:
        """Padding tokens as a share of all tokens."""
        total = self.tokens + self.padding
        return self.padding / total if total else 0.0


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """``<bos> prompt`` as token ids, exactly as training sees a prompt (generation must feed the same)."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos + tokenizer(prompt, add_special_tokens=False)["input_ids"]


def tokenize(examples: Iterable[Example], tokenizer, max_length: int, on_overlong: str,
             stats: PackStats) -> Iterator[Tokenized]:
    """Tokenize ``examples``; an example over ``max_length`` is truncated or skipped as ``on_overlong`` says."""
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
    """Packed sequences held in memory (tests, small data); :class:`~jiuzhang.training.tokenstore.TokenStore`
    serves the same ``gather`` from memory-mapped shards on disk."""

    input_ids: torch.Tensor     # [n, max_length]
    labels: torch.Tensor
    position_ids: torch.Tensor
    real: torch.Tensor          # True on real tokens, False on padding

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def gather(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input ids, labels, position ids, real-token mask) of the packed rows ``idx``."""
        return self.input_ids[idx], self.labels[idx], self.position_ids[idx], self.real[idx]

    def target_counts(self, idx: list[int]) -> int:
        """Supervised tokens of rows ``idx`` (labels after the shift): the loss's denominator."""
        return int((self.labels[idx][:, 1:] != IGNORE).sum())


Row = tuple[list[int], list[int], list[int], int]   # ids, labels, position ids (all max_length), real length


def pack_rows(items: Iterable[Tokenized], max_length: int, pad_id: int, stats: PackStats,
              packing: bool = True) -> Iterator[Row]:
    """Greedy in-order packing, one row at a time (``packing=False``: one example per row). Padding goes at
    the end of a row and is its own segment (position ids restart): it attends to nothing real."""
    cur_ids: list[int] = []
    cur_labels: list[int] = []
    cur_pos: list[int] = []

    def close() -> Row:
        pad = max_length - len(cur_ids)
        stats.padding += pad
        stats.tokens += len(cur_ids)
        stats.sequences += 1
        return (cur_ids + [pad_id] * pad, cur_labels + [IGNORE] * pad, cur_pos + list(range(pad)), len(cur_ids))

    for item in items:
        if cur_ids and (not packing or len(cur_ids) + len(item.input_ids) > max_length):
            yield close()
            cur_ids, cur_labels, cur_pos = [], [], []
        cur_ids += item.input_ids
        cur_labels += item.labels
        cur_pos += list(range(len(item.input_ids)))
    if cur_ids:
        yield close()


def pack(items: Iterable[Tokenized], max_length: int, pad_id: int, stats: PackStats, packing: bool = True) -> Packed:
    """All rows of :func:`pack_rows` as in-memory tensors."""
    rows = list(pack_rows(items, max_length, pad_id, stats, packing))
    if not rows:
        raise InputDataError("the training set is empty after tokenization (no examples, or all skipped); "
                             "check the input records and on_overlong")
    ids, labels, pos, real = zip(*rows)
    return Packed(torch.tensor(ids), torch.tensor(labels), torch.tensor(pos),
                  torch.tensor([[True] * n + [False] * (len(r) - n) for r, n in zip(ids, real)]))
