"""Typed config of the ``influence`` params section (selection of texts for the boosting round)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from jiuzhang.config.base_model import Section


class TargetTaskConfig(Section):
    """One target task: examples of a benchmark's training split (never its test split)."""

    path: str = Field(description="JSONL of training examples, e.g. ../shared/benchmarks/gsm8k/train.jsonl "
                      "(spell it in the influence stage's deps).")
    question_field: str = Field("question", description="Field holding the question.")
    answer_field: str = Field("answer", description="Field holding the worked answer (the supervised tokens).")
    n: int = Field(ge=1, description="Use the first n examples.")


class LessConfig(Section):
    """Gradient-based selection (LESS). Paper/LESS defaults in the descriptions; the smoke profile scales down."""

    warmup_fraction: float = Field(0.05, gt=0, le=1, description="Seeded share of the candidates' data the "
                                   "reference LoRA warms up on (LESS: 5%).")
    epochs: int = Field(4, ge=1, description="Warm-up epochs = checkpoints (LESS: 4).")
    r: int = Field(128, ge=1, description="LoRA rank (LESS: 128).")
    alpha: int = Field(512, ge=1, description="LoRA alpha (LESS: 512).")
    lr: float = Field(2e-5, gt=0, description="Warm-up peak learning rate (LESS: 2e-5), linear warm-up and decay.")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Share of warm-up steps (LESS: 3%); no weight decay.")
    batch_size: int = Field(8, ge=1, description="Examples per forward/backward pass: the warm-up's micro-batch "
                            "and the gradient-feature batch.")
    warmup_batch: int | None = Field(None, ge=1, description="Examples per warm-up optimizer step (gradients "
                                     "accumulated over batch_size passes); null = batch_size. LESS: 128 (1 per "
                                     "device x 32 accumulation x 4 GPUs).")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout of the LoRA layers in the warm-up (LESS: "
                                "0.1; seeded, so the run stays deterministic).")
    max_length: int = Field(2048, ge=16, description="Tokens per example (truncated).")
    dim: int = Field(8192, ge=16, description="Projection dimension (paper: 8,192).")
    projection_seed: int = Field(0, ge=0, description="Seed of the count-sketch projector (drawn on the CPU).")
    adam_variant: Literal["paper", "less_code"] = Field("paper", description="Candidates' Adam direction: "
                                                          "'paper' bias-corrected, 'less_code' as LESS's code.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where the reference model, LoRA, "
                                                   "gradients and projection run: 'auto' = the rank's GPU "
                                                   "(the one Ray gives each worker: cluster.gpus_per_worker) when there is one.")
    dtype: Literal["auto", "fp32", "bf16"] = Field("auto", description="Model weights: 'auto' = bf16 on a GPU (as "
                                                  "LESS), fp32 on a CPU (bf16 there is slow and lossy).")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the warm-up's backward "
                                         "pass (batch 8 x 2,048 tokens on a 7B model needs it on an 80 GB GPU).")
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = Field(None, description="Attention "
                                         "kernel of the reference model (transformers' attn_implementation; "
                                         "null = its default, sdpa).")
    shard_size: int = Field(1000, ge=1, description="Candidates whose features are held in memory at once.")
    targets: dict[str, TargetTaskConfig] = Field(description="Target tasks; score = max over tasks.")

    @model_validator(mode="after")
    def _warmup_batch_whole(self) -> "LessConfig":
        if self.warmup_batch is not None and self.warmup_batch % self.batch_size:
            raise ValueError(f"warmup_batch ({self.warmup_batch}) must be a multiple of batch_size ({self.batch_size}): "
                             f"each step accumulates whole passes")
        return self


class InfluenceConfig(Section):
    """How the boosting round's texts are chosen from the candidate pool."""

    method: Literal["random", "less"] = Field("random", description="'less': gradient-based influence (the "
                                              "paper's method); 'random': a seeded random selection (its ablation).")
    seed: int = Field(0, ge=0, description="Seed of the candidate-pool sample, the random selection and the "
                      "warm-up (data order, LoRA init).")
    pool_size: int = Field(ge=1, description="Candidate texts (never round-1 ones) that synthesizer_initial "
                           "writes data for, through the synthesize engine and its sampling settings; "
                           "kd.boost.n of them are selected. Paper: a large pool.")
    less: LessConfig | None = Field(None, description="Settings of method 'less' (required for it).")

    @model_validator(mode="after")
    def _less_needs_settings(self) -> "InfluenceConfig":
        if self.method == "less" and self.less is None:
            raise ValueError("method 'less' needs the 'less' settings (see configs/paper.yaml)")
        return self
