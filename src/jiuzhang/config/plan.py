"""Typed config of the ``plan`` params section: the stated hardware facts `jiuzhang plan` prices work with.

No stage reads this section (it never changes an output); `jiuzhang plan` does. Every figure here is a
*statement* (the paper profile cannot be measured on a CPU machine), printed next to the estimate it
feeds; `jiuzhang plan --measured DIR` replaces them with throughputs measured by a real run.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from jiuzhang.config.base_model import Section

Kind = Literal["nl", "tool"]


def _by_kind(nl: float, tool: float) -> dict[Kind, float]:
    return {"nl": nl, "tool": tool}


Role = Literal["synthesizer", "base"]  # the two models a plan sizes


class AcceleratorConfig(Section):
    """The device training and generation run on."""

    name: str = Field("NVIDIA A100-SXM4-80GB", min_length=1, description="Label printed with every estimate.")
    peak_tflops: float = Field(312.0, gt=0, description="Dense bf16 peak TFLOP/s of one device (A100: 312, "
                               "H100 SXM: 989).")
    hour_usd: float = Field(2.0, ge=0, description="Price of one device-hour (cloud list price or your internal rate).")
    memory_gib: float = Field(80.0, gt=0, description="Memory of one device in GiB; `config check` refuses a training "
                              "stage whose estimated weights + optimizer + activations exceed it (plan/memory.py).")


class ModelShapeConfig(Section):
    """A hub model's shape, from its config.json: what the memory estimate needs."""

    hidden_size: int = Field(ge=1, description="config.json hidden_size.")
    num_layers: int = Field(ge=1, description="config.json num_hidden_layers.")
    num_heads: int = Field(ge=1, description="config.json num_attention_heads.")
    num_kv_heads: int | None = Field(None, ge=1, description="config.json num_key_value_heads (grouped-query "
                                     "attention); null = num_heads. Sizes the LoRA k/v weights of LESS.")
    intermediate_size: int = Field(ge=1, description="config.json intermediate_size (the MLP width).")
    vocab_size: int = Field(ge=1, description="config.json vocab_size.")

    def params_estimate(self) -> float:
        """Parameters of a Llama-style model of this shape: layers x (attention + MLP) + embeddings and head."""
        h, i = self.hidden_size, self.intermediate_size
        return float(self.num_layers * (4 * h * h + 3 * h * i) + 2 * self.vocab_size * h)


class PlanConfig(Section):
    """Inputs of `jiuzhang plan` that params elsewhere do not hold."""

    accelerator: AcceleratorConfig = Field(default_factory=AcceleratorConfig, description="Training/inference device.")
    mfu: float = Field(0.35, gt=0, le=1, description="Stated model-FLOPs utilisation of training "
                       "(7B bf16 with DeepSpeed ZeRO-1/2 typically reaches 0.3-0.45).")
    model_params: dict[Literal["synthesizer", "base"], Annotated[float, Field(gt=0)]] = Field(default_factory=dict, strict=False, description=(
        "Parameter counts of hub models by role ('synthesizer', 'base'), from their config.json "
        "(deepseek-math-7b: 6.91e9, Mistral-7B: 7.24e9). Roles missing here are counted from base.arch "
        "(smoke profile)."))
    model_context: dict[Literal["synthesizer", "base"], Annotated[int, Field(ge=16)]] = Field(default_factory=dict, strict=False, description=(
        "Context length (max_position_embeddings) of hub models by role, from their config.json "
        "(deepseek-math-7b: 4,096; Mistral-7B: 32,768); `config check` refuses settings that cannot fit it. "
        "A local model folder's config.json is read instead."))
    model_shape: dict[Literal["synthesizer", "base"], ModelShapeConfig] = Field(default_factory=dict, strict=False, description=(
        "Shapes of hub models by role, from their config.json, for the memory estimate of each training stage "
        "(`config check` refuses what cannot fit plan.accelerator.memory_gib). A local model folder's config.json "
        "is read instead; a role with neither is not checked."))
    keep_rates: dict[Literal["nl", "tool"], Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: _by_kind(0.246, 0.296), strict=False, description=(
            "Share of generations the filter keeps with filter.preset 'ours', by kind (measured on the paper's "
            "released records by benchmarks/filter_keep_rates.py: the answer requirement drops 75.4% of CoT, "
            "output verification 69.6% of tool). 'plan --measured' reads a run's results/filter.json instead; "
            "preset 'paper' keeps all."))
    tokens_per_record: dict[Literal["nl", "tool"], Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: _by_kind(598.0, 341.1), strict=False, description=(
            "Mean tokens of a kept record (question + solution), by kind; pre-training tokens = kept records x "
            "this (default: the released records at 4 chars per token, benchmarks/filter_keep_rates.py)."))
    eval_tokens_per_item: float = Field(400.0, gt=0, description="Stated mean generated tokens per benchmark item "
                                        "and setting (capped at eval.max_new_tokens).")
    sandbox_s_per_program: float = Field(0.08, gt=0, description="Seconds one sandboxed program takes "
                                         "(measured here: benchmarks/eval_throughput.py, 79.9 ms for a trivial "
                                         "program); the filter and the tool setting use it.")
