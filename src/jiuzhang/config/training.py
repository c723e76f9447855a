"""Typed configs of the training sections (``synthesizer``, ``pretrain``): one trainer serves all three
training stages, from fp32 on a 2-core CPU to bf16 + DeepSpeed ZeRO on many GPUs."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from jiuzhang.config.base_model import Section


class DeepSpeedConfig(Section):
    """DeepSpeed ZeRO; the JSON config is generated from these fields (never hand-edited)."""

    enabled: bool = Field(False, description="Train through a DeepSpeed engine (launch with deepspeed/torchrun).")
    zero_stage: int = Field(1, ge=0, le=2, description="ZeRO stage 0-2 (paper: 1 for the synthesizer, 2 for "
                            "pre-training). Stage 3 is refused: it partitions the weights themselves, and the saved "
                            "HF folder would hold empty tensors unless they are gathered on save.")
    offload_optimizer: bool = Field(False, description="Refused (must be false): ZeRO-Offload needs DeepSpeed's own "
                                    "CPU Adam, but this trainer hands DeepSpeed a torch AdamW (one optimizer for both "
                                    "paths); use gradient_checkpointing and ZeRO-2 to save memory instead.")
    offload_params: bool = Field(False, description="Refused (must be false): parameter offload needs ZeRO-3.")

    @model_validator(mode="after")
    def _check(self) -> "DeepSpeedConfig":
        # Refused here, so `config check` stops them before a GPU is rented: each crashes or writes a broken
        # model in DeepSpeed (issue 22.6) rather than failing cleanly at start.
        if self.offload_optimizer:
            raise ValueError("offload_optimizer: true is not supported: DeepSpeed's ZeRO-Offload refuses the "
                             "client torch AdamW this trainer uses (it needs DeepSpeedCPUAdam); set it to false and "
                             "save memory with gradient_checkpointing: true or zero_stage: 2")
        if self.offload_params:
            raise ValueError("offload_params: true is not supported (it needs ZeRO-3, which is refused); set it to "
                             "false")
        return self


class TrainConfig(Section):
    """Supervised causal-LM training with packing; loss on target tokens only."""

    max_length: int = Field(ge=16, description="Tokens per packed sequence (paper: 2,048).")
    micro_batch: int = Field(ge=1, description="Packed sequences per process per forward pass.")
    global_batch: int = Field(ge=1, description="Packed sequences per optimizer step over all processes "
                              "(paper: 32); gradient accumulation = global / (micro x world size).")
    epochs: float = Field(gt=0, description="Passes over the data (paper: 5 synthesizer, 1 pre-training).")
    lr: float = Field(gt=0, description="Peak learning rate (paper: 1e-5).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay on matrices (paper: 0.1 synthesizer, "
                                "0 pre-training).")
    adam_betas: list[float] = Field([0.9, 0.95], min_length=2, max_length=2, description="AdamW (beta1, beta2). Default: nanoGPT's and "
                                            "LLaMA's 0.95; paper: [0.9, 0.999] (HF Trainer's default, both stages).")
    schedule: Literal["cosine", "wsd", "linear"] = Field(description="'cosine': warm-up then cosine to "
                                                         "min_lr_ratio; 'wsd': warm-up, stable to stable_until, "
                                                         "linear decay to min_lr_ratio; 'linear': warm-up, then "
                                                         "linear decay to min_lr_ratio.")
    max_steps: int | None = Field(None, ge=1, description="Total optimizer steps instead of epochs x batches per "
                                  "epoch (the base stage's fixed step budget); null = from epochs.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of steps warming up (synthesizer 0, WSD 0.03).")
    stable_until: float = Field(0.85, gt=0, le=1, description="wsd: end of the stable phase as a share of steps.")
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="Final lr as a share of lr (WSD: 0.1).")
    grad_clip: float = Field(1.0, gt=0, description="Gradient-norm clip.")
    packing: bool = Field(True, description="Pack examples greedily into max_length sequences (no cross-attention, "
                          "positions restart). false: one example per sequence, each micro-batch cut to its longest "
                          "example, as the paper's synthesizer training ran (2 x 5.3k examples -> ~1,455 steps at "
                          "batch 32 over 5 epochs, where packing gives far fewer).")
    dtype: Literal["auto", "fp32", "bf16"] = Field("fp32", description="bf16: bf16 compute with fp32 master "
                                           "weights and AdamW state (DeepSpeed's bf16 mode, or autocast over fp32 "
                                           "weights without it). On a CPU with AVX512-BF16/AMX it is ~1.5x fp32's "
                                           "tokens/s (benchmarks/precision_cpu.py), on one without them ~24x "
                                           "slower; on GPU the paper's setting. auto: bf16 on a GPU or a CPU with "
                                           "native bf16, fp32 elsewhere (the run's results record which).")
    save_dtype: Literal["fp32", "bf16"] | None = Field(None, description="dtype of the saved model; null = dtype. "
                                                       "fp32 keeps a CPU bf16 run's master weights exactly: rounding "
                                                       "them to bf16 would undo updates below half a bf16 ulp (most "
                                                       "of a short fine-tune at lr 1e-5..1e-4).")
    gradient_checkpointing: bool = Field(False, description="Recompute each layer's activations in the backward "
                                         "pass (transformers' gradient checkpointing): activation memory per "
                                         "micro-batch falls to about one layer's, for ~1/3 more compute. The paper's "
                                         "7B runs need it on 80 GB GPUs (`jiuzhang plan` estimates the memory).")
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = Field(None, description="Attention "
                                         "kernel (transformers' attn_implementation): null = its default (sdpa); "
                                         "'flash_attention_2' needs the flash-attn package on the GPU machines. "
                                         "'eager' stores the seq x seq attention matrix of every layer (plan counts it).")
    on_overlong: Literal["error", "truncate", "skip"] = Field("error", description="An example longer than "
                                                              "max_length: stop naming it, or truncate/skip and count it.")
    seed_data: int = Field(0, ge=0, description="Seed of the example order.")
    seed_dropout: int = Field(0, ge=0, description="Seed of the torch RNG during training (dropout).")
    threads: int = Field(2, ge=1, description="torch intra-op threads on CPU (fixed: it changes float sums).")
    save_every: int = Field(50, ge=1, description="Checkpoint every N optimizer steps (resume after a crash).")
    log_every: int = Field(5, ge=1, description="Log loss and lr every N steps.")
    deepspeed: DeepSpeedConfig = Field(default_factory=DeepSpeedConfig, description="DeepSpeed ZeRO.")
    rank_wait_s: float = Field(21600, gt=0, description="How long the other ranks wait for the main rank's token "
                               "store (it tokenizes and packs the data once, on disk) before failing.")
    nodes: int = Field(1, ge=1, description="Machines the training runs on. Above 1 (or with processes_per_node "
                       "above 1) the stage starts one torchrun agent per node on the Ray cluster (cluster section) "
                       "and waits for them; a DVC param because the world size changes float sums.")
    processes_per_node: int = Field(1, ge=1, description="Training processes per node (one per GPU).")

    @property
    def world_size(self) -> int:
        """Processes in all: nodes x processes per node."""
        return self.nodes * self.processes_per_node

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if self.global_batch % self.micro_batch:
            raise ValueError(f"global_batch ({self.global_batch}) must be a multiple of micro_batch "
                             f"({self.micro_batch})")
        if not all(0 <= b < 1 for b in self.adam_betas):
            raise ValueError(f"adam_betas must each be in [0, 1), got {list(self.adam_betas)}")
        if self.schedule == "wsd" and self.stable_until <= self.warmup_ratio:
            raise ValueError("stable_until must be above warmup_ratio")
        return self


class ModelSource(Section):
    """Where a model to fine-tune comes from: a local HF folder (a DVC output) or a pinned hub model."""

    path: str | None = Field(None, description="Local HF folder, e.g. models/base (spell it in dvc.yaml deps).")
    model_id: str | None = Field(None, description="Hub id, e.g. deepseek-ai/deepseek-math-7b-rl.")
    revision: str | None = Field(None, description="Hub commit SHA (40 hex chars).")

    @model_validator(mode="after")
    def _check(self) -> "ModelSource":
        if (self.path is None) == (self.model_id is None):
            raise ValueError("set exactly one of 'path' (a local HF folder) or 'model_id' (+ 'revision')")
        if self.model_id is not None and not self.revision:
            raise ValueError("a hub model needs 'revision' (a commit SHA)")
        return self

    def unpinned(self) -> bool:
        """True for a hub model whose revision is not a full commit hash."""
        return self.model_id is not None and not re.fullmatch(r"[0-9a-f]{40}", self.revision or "")


class SynthesizerConfig(Section):
    """The data-synthesis model, fine-tuned on the KD sets (round 1, then round 1 + boost)."""

    init: ModelSource = Field(description="Model to fine-tune (paper: deepseek-ai/deepseek-math-7b-rl).")
    train: TrainConfig = Field(description="Paper: lr 1e-5 cosine, no warm-up, wd 0.1, 5 epochs, batch 32, "
                               "2,048 tokens, bf16, ZeRO-1.")


class SftTailConfig(Section):
    """Records read after the synthetic ones: a local JSONL/Parquet file or a pinned HF hub dataset,
    shuffled once with a named seed (the paper shuffles its SFT mix before concatenating it)."""

    format: Literal["jsonl", "hf"] = Field(description="'jsonl': a local JSONL file or Parquet-shard folder "
                                           "(spell it in dvc.yaml's pretrain deps); 'hf': a hub dataset.")
    path: str | None = Field(None, description="jsonl: the file or folder, relative to the project root.")
    dataset: str | None = Field(None, description="hf: dataset id, e.g. ToheartZhang/JiuZhang3.0-Corpus-SFT.")
    revision: str | None = Field(None, description="hf: the dataset commit (config check warns until it is a SHA).")
    split: str = Field("train", description="hf: split to read.")
    data_files: tuple[str, ...] | None = Field(None, strict=False, description="hf: files inside the dataset repo.")
    input_field: str = Field("input", description="Field holding the prompt (the paper: '## Question ...').")
    output_field: str = Field("output", description="Field holding the target.")
    shuffle_seed: int | None = Field(0, ge=0, description="Seed of the one shuffle of the tail; null = file order.")
    max_rows: int | None = Field(None, ge=1, description="Use the first N rows after the shuffle (null = all).")
    planned_rows: int | None = Field(None, ge=1, description="hf: rows the plan counts (the paper: 2,860,000); "
                                     "a local file is counted exactly.")
    planned_tokens_per_row: float | None = Field(None, gt=0, description="hf: mean tokens per row for the plan "
                                                 "(the paper: 0.77B / 2.86M = 269).")

    @model_validator(mode="after")
    def _check(self) -> "SftTailConfig":
        if self.format == "jsonl" and (not self.path or self.dataset):
            raise ValueError("a jsonl sft_tail needs 'path' (and no 'dataset')")
        if self.format == "hf" and (not self.dataset or not self.revision or self.path):
            raise ValueError("an hf sft_tail needs 'dataset' and 'revision' (and no 'path')")
        return self

    def unpinned(self) -> bool:
        """True for a hub dataset whose revision is not a full commit hash."""
        return self.format == "hf" and not re.fullmatch(r"[0-9a-f]{40}", self.revision or "")


class ArmsConfig(Section):
    """Control arms: the base model pre-trained on other data at the synthetic arm's target-token budget."""

    names: list[Literal["raw", "released"]] = Field(default_factory=list, description=(
        "Arms trained next to the synthetic one (`pretrain`), each a DVC stage pretrain_arm@<name> evaluated by "
        "eval_arm@<name>-<benchmark> on eval.arm_benchmarks: 'raw' = the corpus snippets the prompts were built "
        "from (the kept records' own snippets first), as plain text; 'released' = the paper's released "
        "JiuZhang3.0 sample only. [] = no arms."))
    released: str | None = Field(None, description="JSONL/Parquet {input, output} of the 'released' arm (the paper's "
                                 "released sample, read in place); required when 'released' is listed.")
    seed: int = Field(53, description="Order in which each arm's source rows are taken until the budget is met.")

    @model_validator(mode="after")
    def _released_path(self) -> "ArmsConfig":
        if "released" in self.names and not self.released:
            raise ValueError("names lists 'released' but released (the records' path) is null; set it or drop the arm")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"names lists an arm twice: {self.names}")
        return self


class PretrainConfig(Section):
    """Pre-training the base model on the synthetic records (then an optional SFT tail, in order)."""

    train: TrainConfig = Field(description="Paper: lr 1e-5, WSD (3% warm-up, stable to 85%, decay to 0.1x), "
                               "1 epoch, 2,048 tokens, bf16.")
    supplement: str | None = Field(None, description="JSONL/Parquet of extra {input, output} records mixed into "
                                   "the synthetic set before the shuffle. Smoke profile only: the paper's released "
                                   "sample of its synthetic data, because a tiny synthesizer's output rarely survives "
                                   "the filter. Paper: null.")
    supplement_max_records: int | None = Field(None, ge=0, description="Take at most this many supplement records "
                                               "(a seeded sample, pretrain.train.seed_data) so that our own kept "
                                               "records are not drowned out: 48 kept records shuffled with the "
                                               "1,000-record sample and cut to 64 leave ~3 of ours. null = all.")
    sft_tail: SftTailConfig | None = Field(None, description="The SFT mix trained after the synthetic records, "
                                           "in the same run (the paper: ToheartZhang/JiuZhang3.0-Corpus-SFT, "
                                           "~2.86M rows, ~0.77B tokens; its published scores are after it).")
    max_records: int | None = Field(None, ge=1, description="Use at most this many synthetic records (after the "
                                    "seeded shuffle; smoke profile only, null = all).")
    arms: ArmsConfig = Field(default_factory=ArmsConfig, description="Control arms at the same token budget "
                             "(raw corpus, released sample), so the report can tell content from training per se.")
    planned_tokens: float | None = Field(None, gt=0, description="Expected training tokens (paper: 4.6e9 synthetic "
                                         "+ 0.77e9 SFT), used only to print the step budget in 'config check'.")
