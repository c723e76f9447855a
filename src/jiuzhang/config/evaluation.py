"""Typed config of the ``eval`` params section."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from jiuzhang.config.base_model import Section
from jiuzhang.config.synthesis import VllmConfig

SETTINGS = ("nl", "tool", "loss")


class GradingConfig(Section):
    """How a generated answer is graded."""

    rules: Literal["ours", "paper"] = Field("ours", description=(
        "'ours': jiuzhang.evaluation.grading (explicit statements first; JSON answer fields, Markdown, Unicode "
        "math, word answers, equations, requested forms, looping or cut-off outputs). 'paper': as JiuZhang3.0's "
        "evaluation code grades (RUCAIBox/JiuZhang3.0 eval/parser.py + grader.py at aae2f91, MIT; "
        "jiuzhang.evaluation.paper_rules), so a number can be put next to the paper's."))


class EvalConfig(Section):
    """Evaluation: every benchmark in its settings ('nl' chain of thought, 'tool' with code execution)."""

    benchmarks: dict[str, list[Literal["nl", "tool", "loss"]]] = Field(description=(
        "Benchmark -> settings to run. Paper: the ten NL benchmarks, and the tool setting on GSM8K, MATH, "
        "SVAMP, ASDiv, MAWPS, TabMWP plus GSM-Hard. 'loss' adds the held-out loss (mean NLL per token of "
        "each item's gold solution given its question; forward passes only). Each benchmark is one DVC "
        "stage (eval@<name>)."))
    base_benchmarks: list[str] = Field(default_factory=list, description=(
        "Benchmarks on which the base model (models/base) is evaluated too, in the same settings and items "
        "(DVC stages eval_base@<name>), so the report can show base vs trained with paired intervals."))
    arm_benchmarks: list[str] = Field(default_factory=list, description=(
        "Benchmarks on which each control arm (pretrain.arms.names) is evaluated, in the same settings and items "
        "(DVC stages eval_arm@<arm>-<benchmark>); each must be in base_benchmarks, so every arm pairs with the "
        "base model and the synthetic arm."))
    limit: int | None = Field(None, ge=1, description="Evaluate the first N test items of each benchmark "
                              "(smoke profile: a small slice; paper: null = all).")
    limits: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict, strict=False, description=(
        "Per-benchmark overrides of limit (each >= 1; a benchmark listed here must be in 'benchmarks')."))
    loss_limit: int | None = Field(None, ge=1, description="Items of the 'loss' setting (the first N of each "
                                   "test set); null = the benchmark's limit. Forward passes are cheap next to "
                                   "generation, so the held-out loss can afford more items (narrower intervals).")
    loss_formats: list[Literal["paper", "neutral"]] = Field(["paper", "neutral"], min_length=1, description=(
        "Prompt formats the 'loss' setting scores each gold solution under: 'paper' is the eval template "
        "('## Question ... ## Solution', which the synthetic pre-training records share), 'neutral' is "
        "'Question: ...' / 'Answer:' (a format no arm trains on). A gain under one format only is the model "
        "learning the format, not the math; the report shows both (metrics 'loss' and 'loss_neutral')."))
    chat_template: bool = Field(False, description="Wrap each prompt in the model's chat template (an instruct "
                                "model, e.g. the mini profile's SmolLM2-Instruct base) instead of plain text.")
    max_new_tokens: int = Field(1024, ge=1, description="Per generation round (paper: 1,024).")
    stop: tuple[str, ...] = Field(("\n\n## Question", "</s>"), strict=False, description=(
        "Stop strings: the model starting the next question. Not '---' (it cuts solutions with a rule)."))
    tool_rounds: int = Field(4, ge=1, description="Code blocks run per problem in the tool setting; after the "
                             "last, 'Reach max function call limit.' ends the problem (paper: 4).")
    tool_output_chars: int = Field(400, ge=8, description="Fed-back program output is cut to this many characters, "
                                   "head and tail kept around '...' (paper: 400).")
    exec_timeout_s: float = Field(5.0, gt=0, description="Sandbox wall-clock limit per program (paper: 5 s).")
    exec_memory_mb: int = Field(1024, ge=64, description="Sandbox address-space limit per program.")
    exec_workers: int = Field(2, ge=1, description="Programs run at once.")
    batch_size: int = Field(16, ge=1, description="Prompts per generate() call (HF engine).")
    loss_batch_size: int = Field(1, ge=1, description="Sequences per forward pass of the held-out loss. 1 on a CPU: "
                                 "no padding, and SmolLM2 scores 2.2x the tokens/s of 16 per pass on 2 cores "
                                 "(benchmarks/heldout_batch.py); larger on a GPU. Any value gives the same losses up to float rounding.")
    shard_size: int = Field(64, ge=1, description="Items per unit of resume: each finished shard of generations is "
                            "kept in .cache/eval/ until the stage writes its predictions, so a killed eval reruns only "
                            "its unfinished shards.")
    fewshot_dir: str = Field("templates/eval/fewshot", description="<benchmark>.jsonl exemplars {question, "
                             "solution} for the few-shot benchmarks (AQuA, SAT-Math, MMLU-STEM: 5-shot).")
    dtype: Literal["fp32", "bf16"] = Field("fp32", description="Generation precision: bf16 weights on GPU; on a "
                                           "CPU, bf16 autocast over the fp32 weights (the held-out loss then still "
                                           "scores the exact weights, see loss_dtype).")
    loss_dtype: Literal["fp32", "bf16"] = Field("fp32", description="Precision of the held-out loss. fp32: bf16 "
                                                "moved one paired difference from +0.037 to +0.015 nats on the same "
                                                "60 items here, larger than the effects at stake.")
    engine: Literal["hf", "vllm"] = Field("hf", description=(
        "Engine of the generating settings (nl, tool): 'hf' (transformers, CPU or one GPU) or 'vllm' (the "
        "synthesis engine's vLLM worker, settings in eval.vllm; the paper profile's 7B models). Greedy either way; "
        "the held-out loss is scored on a local HF copy whatever generates (exact weights, eval.loss_dtype)."))
    vllm: VllmConfig = Field(default_factory=VllmConfig, description="vLLM settings when engine is 'vllm' "
                             "(same keys as synthesize.vllm).")
    grading: GradingConfig = Field(default_factory=GradingConfig, description="Grading rules of the generating "
                                   "settings (the held-out loss has none).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="HF engine device.")
    threads: int = Field(2, ge=1, description="CPU threads.")

    @field_validator("benchmarks")
    @classmethod
    def _known(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from jiuzhang.config.benchmarks import unknown_benchmarks

        problem = unknown_benchmarks(value)
        if problem:
            raise ValueError(problem)
        empty = [n for n, s in value.items() if not s]
        if empty:
            raise ValueError(f"benchmark(s) {empty} have no setting; list 'nl' and/or 'tool'")
        return value

    @model_validator(mode="after")
    def _limits_name_evaluated_benchmarks(self) -> "EvalConfig":
        if self.engine == "vllm" and self.chat_template:
            raise ValueError("engine 'vllm' sends plain prompts (token ids, as synthesis does) and does not apply a "
                             "chat template; set chat_template: false or engine: hf")
        stray = sorted(set(self.limits) - set(self.benchmarks))
        if stray:
            raise ValueError(f"limits names {stray}, which 'benchmarks' does not evaluate; remove them or add the "
                             f"benchmarks")
        stray = sorted(set(self.arm_benchmarks) - set(self.base_benchmarks))
        if stray:
            raise ValueError(f"arm_benchmarks names {stray}, which base_benchmarks does not list; an arm is compared "
                             f"with the base model and the synthetic arm on the same benchmarks")
        stray = sorted(set(self.base_benchmarks) - set(self.benchmarks))
        if stray:
            raise ValueError(f"base_benchmarks names {stray}, which 'benchmarks' does not evaluate; the base model "
                             f"is compared with the trained one on the same benchmarks")
        return self

    def limit_for(self, name: str, setting: str | None = None) -> int | None:
        """Items of ``name`` evaluated in ``setting``; with no setting, the items to load for all of them."""
        if setting is None:
            wanted = [self.limit_for(name, s) for s in self.benchmarks.get(name, ["nl"])]
            limited = [n for n in wanted if n is not None]
            return None if len(limited) < len(wanted) else max(limited)
        if setting == "loss" and self.loss_limit is not None:
            return self.loss_limit
        return self.limits.get(name, self.limit)
