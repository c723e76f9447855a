"""The ``base`` stage: train a BPE tokenizer and a tiny Llama from scratch on the corpus (smoke profile),
or pin a hub model id + revision (paper profile; nothing is downloaded here).

Output is a standard HF folder: ``AutoModelForCausalLM.from_pretrained(out)`` and
``AutoTokenizer.from_pretrained(out)`` load it.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from jiuzhang.base.tokenizer import train_tokenizer
from jiuzhang.common.digest import code_sha256, json_sha256
from jiuzhang.common.io import InputDataError, read_shards, reset_dir, write_json
from jiuzhang.config.base import BaseConfig
from jiuzhang.config.training import TrainConfig
from jiuzhang.training.engine import TorchEngine
from jiuzhang.training.packing import Packed
from jiuzhang.training.sft import train_sft
from jiuzhang.training.world import World


def corpus_texts(corpus_dir: Path, max_chars: int | None) -> list[str]:
    """The corpus snippets' texts in shard order, stopping once ``max_chars`` characters are read (None: all)."""
    texts, total = [], 0
    for row in read_shards(corpus_dir, columns=["text"]):
        texts.append(row["text"])
        total += len(row["text"])
        if max_chars is not None and total >= max_chars:
            break
    return texts


def token_windows(ids: list[int], seq_len: int) -> torch.Tensor:
    """``ids`` cut into consecutive windows of ``seq_len`` tokens (the tail dropped), one row each."""
    n = len(ids) // seq_len
    if n == 0:
        raise InputDataError(f"the corpus has {len(ids)} tokens, fewer than one sequence of "
                             f"base.train.seq_len={seq_len}; lower seq_len or add text")
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len)


def build_model(cfg: BaseConfig, vocab_size: int, special: dict[str, int]) -> LlamaForCausalLM:
    """A randomly initialised Llama of ``cfg.arch`` for ``vocab_size`` tokens, seeded by ``cfg.seed``."""
    a = cfg.arch
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=a.hidden_size, num_hidden_layers=a.num_layers,
                         num_attention_heads=a.num_heads, num_key_value_heads=a.num_kv_heads,
                         intermediate_size=a.intermediate_size, max_position_embeddings=a.max_position_embeddings,
                         rope_theta=a.rope_theta, tie_word_embeddings=True, **special)
    torch.manual_seed(cfg.train.seed_init)
    return LlamaForCausalLM(config)


def base_train_config(cfg: BaseConfig) -> TrainConfig:
    """The base stage's settings in the terms of the one training loop (``training/sft.py``): a fixed step
    budget over shuffled full-length windows, cosine to 10% after a linear warm-up, AdamW (0.9, 0.95)."""
    t = cfg.train
    return TrainConfig(max_length=t.seq_len, micro_batch=t.batch_size, global_batch=t.batch_size, epochs=1,
                       max_steps=t.steps, lr=t.lr, weight_decay=t.weight_decay, schedule="cosine",
                       warmup_ratio=t.warmup_steps / t.steps, min_lr_ratio=0.1, grad_clip=t.grad_clip,
                       seed_data=t.seed_data, seed_dropout=t.seed_init, threads=t.threads,
                       save_every=max(1, t.steps // 4), log_every=t.log_every)


def windows_as_rows(windows: torch.Tensor) -> Packed:
    """Full windows, every token a target (plain next-token loss): rows of the training loop's data."""
    n, width = windows.shape
    return Packed(windows, windows.clone(), torch.arange(width).repeat(n, 1), torch.ones(n, width, dtype=torch.bool))


def build_base(cfg: BaseConfig, corpus_dir: Path, out_dir: Path, on_log=None,
               checkpoints: Path | None = None) -> dict[str, Any]:
    """The base model in ``out_dir``; mode train checkpoints in ``checkpoints`` (resumable; None = a
    temporary folder, no resume)."""
    if cfg.mode == "hub":
        assert cfg.hub is not None  # the config's validator requires the section its mode names
        out = reset_dir(out_dir)
        write_json(out / "hub_model.json", {"model_id": cfg.hub.model_id, "revision": cfg.hub.revision})
        return {"mode": "hub", "model_id": cfg.hub.model_id}
    if cfg.mode == "gguf":
        from jiuzhang.base.gguf import convert

        assert cfg.gguf is not None
        return convert(cfg.gguf, out_dir)

    t = cfg.train
    torch.set_num_threads(t.threads)
    torch.use_deterministic_algorithms(True)
    texts = corpus_texts(corpus_dir, cfg.tokenizer.max_train_chars)
    tokenizer = train_tokenizer(texts, cfg.tokenizer.vocab_size, cfg.tokenizer.min_frequency)
    ids: list[int] = []
    for enc in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids.extend(enc)
        ids.append(tokenizer.eos_token_id)
    windows = token_windows(ids, t.seq_len)
    if len(windows) < t.batch_size:  # not one full batch: the settings do not fit this corpus
        raise InputDataError(f"the corpus gives {len(windows)} windows of base.train.seq_len={t.seq_len} tokens, "
                             f"fewer than base.train.batch_size={t.batch_size}; lower batch_size or seq_len, or "
                             f"add text")

    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    model = build_model(cfg, len(tokenizer), special)
    train = base_train_config(cfg)
    # a checkpoint of other settings, corpus or code is never resumed (as in the other training stages)
    fingerprint = json_sha256({"config": cfg.model_dump(mode="json"), "windows": hashlib.sha256(
        windows.numpy().tobytes()).hexdigest(), "code": code_sha256(__file__)})
    with tempfile.TemporaryDirectory() as scratch:
        result = train_sft(TorchEngine(model, train), windows_as_rows(windows), train, World(),
                           checkpoints or Path(scratch) / "base", on_log, fingerprint=fingerprint)

    out = reset_dir(out_dir)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    tail = [loss for _, loss, _ in result.losses[-3:]]
    return {
        "mode": "train",
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "corpus_tokens": len(ids),
        "tokens_seen": result.tokens,
        "epochs_over_corpus": round(result.tokens / (len(windows) * t.seq_len), 4),
        "first_loss": round(result.losses[0][1], 6),
        "steps": result.steps,
        "final_loss": round(sum(tail) / len(tail), 6),
        "loss_curve": [{"step": s, "loss": round(v, 6), "lr": lr} for s, v, lr in result.losses],
        "timing": {"seconds": round(result.seconds, 2), "tokens_per_s": round(result.tokens / result.seconds, 1)},
    }
