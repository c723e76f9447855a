"""The whole params file: one typed section per pipeline area."""

from __future__ import annotations

from pydantic import Field, model_validator

from jiuzhang.config.base import BaseConfig
from jiuzhang.config.base_model import Section
from jiuzhang.config.benchmarks import BenchmarksConfig
from jiuzhang.config.cluster import ClusterConfig
from jiuzhang.config.corpus import CorpusConfig
from jiuzhang.config.evaluation import EvalConfig
from jiuzhang.config.influence import InfluenceConfig
from jiuzhang.config.kd import KdConfig
from jiuzhang.config.plan import PlanConfig
from jiuzhang.config.prompts import PromptsConfig
from jiuzhang.config.synthesis import FilterConfig, SynthesizeConfig
from jiuzhang.config.teacher import TeacherConfig
from jiuzhang.config.tracking import TrackingConfig
from jiuzhang.config.training import PretrainConfig, SynthesizerConfig


class Params(Section):
    """A params file (``params.yaml``: smoke profile; ``configs/paper.yaml``: paper profile)."""

    profile: str = Field(description="Name of this profile, e.g. 'smoke' or 'paper'; tags every MLflow run.")
    benchmarks: BenchmarksConfig = Field(description="Benchmark test sets (decontamination, evaluation).")
    corpus: CorpusConfig = Field(description="The corpus stage.")
    prompts: PromptsConfig = Field(description="The prompts stage.")
    base: BaseConfig = Field(description="The base stage.")
    teacher: TeacherConfig = Field(description="The teacher endpoint (kd_initial, kd_boost).")
    kd: KdConfig = Field(description="The knowledge-distillation rounds.")
    influence: InfluenceConfig = Field(description="The influence stage.")
    synthesizer: SynthesizerConfig = Field(description="The synthesizer_initial and synthesizer stages.")
    synthesize: SynthesizeConfig = Field(description="The synthesize stage.")
    filter: FilterConfig = Field(default_factory=FilterConfig, description="The filter stage.")
    pretrain: PretrainConfig = Field(description="The pretrain stage.")
    eval: EvalConfig = Field(description="The eval stages (one per benchmark) and standalone `jiuzhang eval`.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="MLflow tracking.")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig, description="Where generation work runs (a local "
                                   "or joined Ray cluster and its workers); no stage depends on it as a DVC param.")
    plan: PlanConfig = Field(default_factory=PlanConfig, description="Stated hardware facts for `jiuzhang plan` "
                             "(read by no stage).")

    @model_validator(mode="after")
    def _across_sections(self) -> "Params":
        if self.kd.boost.n > self.influence.pool_size:
            raise ValueError(f"kd.boost.n ({self.kd.boost.n}) exceeds influence.pool_size ({self.influence.pool_size}): "
                             f"the boosting round selects its prompts from that pool; raise pool_size or lower n")
        names = {s.name for s in self.corpus.sources}
        unknown = [t for t in self.prompts.tool_sources if t not in names]
        if unknown:
            raise ValueError(f"prompts.tool_sources {unknown} name no corpus.sources entry; known: {sorted(names)}")
        return self

    def warnings(self) -> list[str]:
        """Things that are valid but risky, printed by ``jiuzhang config check``."""
        out = [f"corpus.sources[{i}] '{s.name}': revision {s.revision!r} is not a commit SHA; the data can "
               f"change under you - pin the dataset commit" for i, s in enumerate(self.corpus.sources) if s.unpinned()]
        out += [f"{o} (filter.preset paper sets it)" for o in self.filter._overridden]
        tail = self.pretrain.sft_tail
        if tail is not None and tail.unpinned():
            out.append(f"pretrain.sft_tail.revision {tail.revision!r} is not a commit SHA; pin the dataset commit")
        if self.synthesizer.init.unpinned():
            out.append(f"synthesizer.init.revision {self.synthesizer.init.revision!r} is not a commit SHA; pin it")
        if self.base.mode == "hub" and self.base.hub is not None and self.base.hub.unpinned():
            out.append(f"base.hub.revision {self.base.hub.revision!r} is not a commit SHA; pin the model commit")
        return out

    def training_plan(self) -> list[str]:
        """Global batch, steps and token budget of each training stage, as `config check` prints them."""
        lines = []
        for name, train, examples in (("synthesizer", self.synthesizer.train, self.kd.initial.n + self.kd.boost.n),
                                      ("pretrain", self.pretrain.train, None)):
            per_step = train.global_batch * train.max_length
            line = (f"{name}: global batch {train.global_batch} sequences x {train.max_length} tokens = {per_step:,} "
                    f"tokens/step, {train.schedule} schedule, lr {train.lr:g}, {train.epochs:g} epoch(s), "
                    f"{train.dtype}, DeepSpeed {'ZeRO-' + str(train.deepspeed.zero_stage) if train.deepspeed.enabled else 'off'}")
            if examples is not None:
                steps = -(-examples // train.global_batch) * train.epochs
                line += f"; <= {steps:,.0f} steps for {examples:,} KD examples (one example per sequence at most)"
            elif self.pretrain.planned_tokens:
                steps = self.pretrain.planned_tokens * train.epochs / per_step
                line += f"; ~{steps:,.0f} steps for {self.pretrain.planned_tokens:,.0f} planned tokens"
            lines.append(line)
        return lines
