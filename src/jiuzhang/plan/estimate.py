"""Per-stage work, cost and launch of a params profile: what `jiuzhang plan` prints.

Every figure is derived, never typed in: amounts of work from the params (teacher calls, pool and
candidate sizes, epochs, token budgets) and the data files they name (prompt templates, benchmark test
sets, influence targets); rates from stated hardware facts (the ``plan`` section: accelerator peak,
MFU, price; ``synthesize.projection.gpu_tokens_per_s``) or, with ``measured``, from a real run's
``results/run/<stage>.json``. Each estimate carries the formula it came from.

Cost model (standard, see e.g. Kaplan et al. 2020): training = 6 x parameters FLOPs per token; a LoRA
pass with frozen weights (influence warm-up, per-example gradients) = 4 x parameters; generation at a
stated decode rate per device (prefill not counted: prompts are short next to 450+ new tokens).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from jiuzhang.common.precision import resolve_dtype
from jiuzhang.config.plan import Role
from jiuzhang.config.root import Params
from jiuzhang.config.training import TrainConfig
from jiuzhang.errors import UserError
from jiuzhang.plan.launch import Launch
from jiuzhang.teacher.budget import Prices, estimate_prompt_tokens


@dataclass(frozen=True)
class Rate:
    """A throughput in tokens per second over a whole launch, with where the figure came from."""
    tokens_per_s: float    # over the whole launch
    source: str            # how it was obtained, printed with the estimate


@dataclass
class StagePlan:
    """One stage's predicted work, launch, device and wall hours and cost, with the basis of the estimate."""
    stage: str
    work: str
    launch: str
    device: str                        # accelerator name, 'CPU', 'teacher API' or '-'
    device_hours: float | None = None  # summed over devices
    wall_hours: float | None = None
    usd: float | None = None
    basis: str = ""
    amounts: dict[str, float] = field(default_factory=dict)  # the work as numbers (for --json and tests)


@dataclass
class Plan:
    """What a whole profile will cost: one StagePlan per stage, and warnings where stated figures disagree."""
    profile: str
    accelerator: str
    stages: list[StagePlan]
    warnings: list[str] = field(default_factory=list)   # stated figures that disagree with the derived ones

    def totals(self) -> dict[str, float]:
        """Teacher calls and USD, accelerator and CPU hours, total USD and sequential wall hours over all stages."""
        def total(key: str, device: str | None = None) -> float:
            return sum(getattr(s, key) or 0.0 for s in self.stages if device is None or s.device == device)
        amounts = [s.amounts for s in self.stages]
        return {"teacher_calls": sum(a.get("teacher_calls", 0) for a in amounts),
                "teacher_usd": round(total("usd", "teacher API"), 2),
                "accelerator_hours": round(total("device_hours", self.accelerator), 1),
                "accelerator_usd": round(total("usd", self.accelerator), 2),
                "cpu_hours": round(total("device_hours", "CPU"), 2),
                "usd": round(total("usd"), 2),
                "wall_hours_sequential": round(total("wall_hours"), 1)}

    def as_dict(self) -> dict[str, Any]:
        """The plan as plain JSON-ready values (``jiuzhang plan --json``)."""
        return {"profile": self.profile, "accelerator": self.accelerator,
                "stages": [asdict(s) for s in self.stages], "totals": self.totals(), "warnings": self.warnings}


def arch_parameters(params: Params, vocab_size: int) -> float:
    """Exact parameter count of the tiny Llama ``base.arch`` builds (tied embeddings, as base/model.py)."""
    a = params.base.arch
    head = a.hidden_size // a.num_heads
    attn = 2 * a.hidden_size * a.hidden_size + 2 * a.hidden_size * a.num_kv_heads * head
    layer = attn + 3 * a.hidden_size * a.intermediate_size + 2 * a.hidden_size
    return float(vocab_size * a.hidden_size + a.num_layers * layer + a.hidden_size)


class Planner:
    """Builds a :class:`Plan` from a validated params profile. ``root`` resolves the params' relative paths."""

    def __init__(self, params: Params, root: Path, templates: Path, measured: Path | None = None):
        self.p = params
        self.root = root
        self.templates = templates
        self.measured = measured
        self.acc = params.plan.accelerator
        self.prices = Prices.of(params.teacher.active_prices())   # teacher.mode's rates: online or Batch API

    # ---- inputs derived from params and data files ----
    def path(self, p: str) -> Path:
        """``p`` as given when absolute, else relative to the project root."""
        return Path(p) if Path(p).is_absolute() else self.root / p

    def n_params(self, role: Role) -> float:
        """The parameter count of the 'synthesizer' or 'base' model: stated in plan.model_params, else counted."""
        stated = self.p.plan.model_params.get(role)
        if stated:
            return float(stated)
        if self.p.base.mode == "train":
            return arch_parameters(self.p, self.p.base.tokenizer.vocab_size)
        raise UserError(f"plan.model_params.{role}: missing; state the parameter count of the {role} model "
                        f"(from its config.json), e.g. `plan: {{model_params: {{{role}: 7.24e9}}}}`")

    def prompt_tokens(self) -> float:
        """Mean tokens of a filled prompt: each template's text plus a full snippet, weighted by tool_share."""
        files = {f.stem: f.read_text(encoding="utf-8") for f in sorted(self.templates.glob("*.txt"))}
        if "tool" not in files or len(files) < 2:
            raise UserError(f"{self.templates}: expected one template per level plus tool.txt")
        snippet = "x" * self.p.corpus.max_chars
        nl = [estimate_prompt_tokens(t + snippet) for name, t in files.items() if name != "tool"]
        share = self.p.prompts.tool_share
        return (1 - share) * sum(nl) / len(nl) + share * estimate_prompt_tokens(files["tool"] + snippet)

    def prompt_tokens_by_kind(self) -> dict[str, float]:
        """The longest filled prompt of each kind (template + a full snippet): what must fit the context."""
        files = {f.stem: f.read_text(encoding="utf-8") for f in sorted(self.templates.glob("*.txt"))}
        if "tool" not in files or len(files) < 2:
            raise UserError(f"{self.templates}: expected one template per level plus tool.txt")
        snippet = "x" * self.p.corpus.max_chars
        return {"nl": max(estimate_prompt_tokens(t + snippet) for name, t in files.items() if name != "tool"),
                "tool": estimate_prompt_tokens(files["tool"] + snippet)}

    def new_tokens(self) -> float:
        """Mean new tokens per generation: the stated projection figure, capped by what sampling allows."""
        s, share = self.p.synthesize, self.p.prompts.tool_share
        cap = (1 - share) * s.nl.max_new_tokens + share * s.tool.max_new_tokens
        stated = s.projection.new_tokens_per_problem
        return min(stated, cap) if stated else cap

    def pool(self) -> tuple[int, str]:
        """(prompts synthesized, the key that says so): synthesize.max_prompts, else the paper's whole pool."""
        if self.p.synthesize.max_prompts:
            return self.p.synthesize.max_prompts, "synthesize.max_prompts"
        return self.p.synthesize.projection.problems, "the whole pool: synthesize.projection.problems"

    def measured_rate(self, stage: str) -> Rate | None:
        """The rate a finished run of ``stage`` measured (``--measured results/run``), or None."""
        if self.measured is None:
            return None
        f = self.measured / f"{stage}.json"
        value = json.loads(f.read_text()).get("tokens_per_s") if f.is_file() else None
        return Rate(float(value), f"measured: {f}") if value else None

    def train_rate(self, stage: str, n: float, launch: Launch, flops_per_token: int = 6) -> Rate:
        """Training tokens/s: measured if available, else peak FLOP/s x MFU / (flops_per_token x params)."""
        measured = self.measured_rate(stage)
        if measured:
            return measured
        per_device = self.p.plan.mfu * self.acc.peak_tflops * 1e12 / (flops_per_token * n)
        return Rate(per_device * launch.processes,
                    f"{flops_per_token} x {n:.3g} params per token at MFU {self.p.plan.mfu:g} of {self.acc.peak_tflops:g} "
                    f"TFLOP/s = {per_device:,.0f} tokens/s per device (stated: plan)")

    def gen_rate(self, stage: str, devices: int) -> Rate:
        """Generation tokens/s over ``devices``: measured if available, else the stated per-device rate."""
        measured = self.measured_rate(stage)
        if measured:
            return measured
        per = self.p.synthesize.projection.gpu_tokens_per_s
        return Rate(per * devices, f"{per:,.0f} generated tokens/s per device "
                    f"(stated: synthesize.projection.gpu_tokens_per_s)")

    def timed(self, plan: StagePlan, tokens: float, rate: Rate, devices: int) -> StagePlan:
        """``plan`` with wall hours, device hours and USD filled in for ``tokens`` at ``rate`` on ``devices``."""
        wall = tokens / rate.tokens_per_s / 3600
        plan.wall_hours, plan.device_hours = wall, wall * devices
        plan.usd = plan.device_hours * self.acc.hour_usd
        plan.basis = rate.source
        return plan

    # ---- stages ----
    def training(self, stage: str, role: Role, train: TrainConfig, examples: float, tokens_per_example: float,
                 what: str) -> StagePlan:
        """The plan of one training stage: examples x tokens per example (capped at max_length) x epochs."""
        launch = Launch.of(train)
        per_example = min(tokens_per_example, train.max_length)
        tokens = examples * per_example * train.epochs
        # packed: sequences of max_length tokens; unpacked (the paper's synthesizer): one example per sequence
        sequences = math.ceil(examples * per_example / train.max_length) if train.packing else math.ceil(examples)
        steps = int(math.ceil(sequences / train.global_batch) * train.epochs)
        ds = f"DeepSpeed ZeRO-{train.deepspeed.zero_stage}" if train.deepspeed.enabled else "no DeepSpeed"
        plan = StagePlan(stage, f"{examples:,.0f} {what} x {per_example:,.0f} tokens x {train.epochs:g} epoch(s) = "
                         f"{tokens / 1e6:,.1f}M tokens, ~{steps:,} steps of {train.global_batch} x "
                         + (f"{train.max_length} packed" if train.packing else f"1 example (<= {train.max_length})"),
                         f"{launch.describe()}, {ds}, {resolve_dtype(train.dtype, 'cuda')}", self.acc.name,
                         amounts={"train_tokens": tokens, "steps": steps})
        return self.timed(plan, tokens, self.train_rate(stage, self.n_params(role), launch), launch.processes)

    def teacher_round(self, stage: str, n: int) -> StagePlan:
        """The plan of one teacher round of ``n`` calls: prompt and expected completion tokens, priced."""
        prompt = n * self.prompt_tokens()
        completion = n * self.p.teacher.budget.expected_output_tokens
        usd = self.prices.cost(round(prompt), completion)
        t = self.p.teacher
        other_mode: Literal["online", "batch"] = "batch" if t.mode == "online" else "online"
        other_usd = Prices.of(t.active_prices(other_mode)).cost(round(prompt), completion)
        how = (f"{t.concurrency} requests at a time" if t.mode == "online"
               else f"Batch API, <= {t.batch.max_requests_per_batch:,} requests per batch")
        source = "teacher.prices" if t.mode == "online" else "teacher.batch.prices"
        return StagePlan(stage, f"{n:,} teacher calls, ~{prompt / 1e6:.2f}M prompt + {completion / 1e6:.2f}M completion "
                         f"tokens", f"{t.kind} teacher '{t.model}', {t.mode} mode, {how}", "teacher API",
                         usd=usd, basis=f"${self.prices.input_per_million:g}/M in, ${self.prices.output_per_million:g}/M "
                         f"out ({source}; in {other_mode} mode: ${other_usd:,.2f}); "
                         f"completion = teacher.budget.expected_output_tokens per call",
                         amounts={"teacher_calls": n, "prompt_tokens": prompt, "completion_tokens": completion})

    def workers(self) -> Launch:
        """The generation workers of the configured cluster (``cluster.workers``, one replica each)."""
        return Launch("ray", 1, self.p.cluster.workers)

    def generation(self, stage: str, problems: int, what: str) -> StagePlan:
        """The plan of generating ``problems`` texts with the synthesis engine and its workers."""
        s = self.p.synthesize
        launch = self.workers()
        tp = s.vllm.tensor_parallel_size if s.engine == "vllm" else 1
        devices = launch.processes * tp
        tokens = problems * self.new_tokens()
        engine = (f"{launch.processes} vLLM replicas x tensor parallel {tp} = {devices} devices" if s.engine == "vllm"
                  else f"{launch.describe()}, HF engine, batch {s.batch_size}")
        plan = StagePlan(stage, f"{problems:,} {what} x {self.new_tokens():,.0f} new tokens = {tokens / 1e6:,.1f}M "
                         f"generated tokens", engine, self.acc.name,
                         amounts={"problems": problems, "generated_tokens": tokens})
        return self.timed(plan, tokens, self.gen_rate(stage, devices), devices)

    def influence(self) -> StagePlan:
        """The influence stage: generating the candidate texts, then (LESS) warm-up and gradient passes."""
        inf = self.p.influence
        gen = self.generation("influence", inf.pool_size, "candidate texts")
        if inf.method != "less" or inf.less is None:
            gen.work += f"; random selection of {self.p.kd.boost.n:,}"
            return gen
        less = inf.less
        per = min(self.new_tokens(), less.max_length)
        warm = inf.pool_size * less.warmup_fraction * per * less.epochs
        target_tokens = sum(self.target_tokens(t.path, t.question_field, t.answer_field, t.n, less.max_length)
                            for t in less.targets.values())
        grads = (inf.pool_size * per + target_tokens) * less.epochs
        launch = self.workers()
        rate = self.train_rate("influence_lora", self.n_params("base"), launch, flops_per_token=4)
        hours = (warm + grads) / rate.tokens_per_s / 3600
        gen.work += (f"; LoRA r={less.r} warm-up on {less.warmup_fraction:.0%} x {less.epochs} epochs = {warm / 1e6:,.1f}M "
                     f"tokens; gradients of {inf.pool_size:,} candidates + {target_tokens / 1e6:,.2f}M target tokens at "
                     f"{less.epochs} checkpoints = {grads / 1e6:,.1f}M tokens; top {self.p.kd.boost.n:,} kept")
        gen.wall_hours = (gen.wall_hours or 0.0) + hours  # the generation's own hours (timed) plus LESS's
        gen.device_hours = (gen.device_hours or 0.0) + hours * launch.processes
        gen.usd = gen.device_hours * self.acc.hour_usd
        gen.basis += f"; LoRA passes: {rate.source}"
        gen.amounts.update(lora_tokens=warm + grads)
        return gen

    def target_tokens(self, path: str, q: str, a: str, n: int, cap: int) -> float:
        """The prompt tokens of the first ``n`` target examples in ``path`` (question + answer, each capped at ``cap``)."""
        f = self.path(path)
        if not f.is_file():
            raise UserError(f"influence.less.targets: {f} not found")
        total, rows = 0.0, 0
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                if rows >= n:
                    break
                row = json.loads(line)
                total += min(cap, estimate_prompt_tokens(f"{row.get(q, '')}{row.get(a, '')}"))
                rows += 1
        return total

    def evaluation(self) -> StagePlan:
        """The eval stages: items x models (trained, base, arms), generated tokens, tool programs, scored items."""
        from jiuzhang.benchmarks.registry import load_rows

        e = self.p.eval
        items = tool_items = scored = 0
        for name, settings in e.benchmarks.items():
            rows = len(load_rows(self.path(self.p.benchmarks.root), name, e.limit_for(name)))
            n = {s: min(rows, e.limit_for(name, s) or rows) for s in settings}
            # the base model and each control arm are evaluated on the same items too
            models = 1 + (name in e.base_benchmarks) + len(self.p.pretrain.arms.names) * (name in e.arm_benchmarks)
            items += sum(k for s, k in n.items() if s != "loss") * models
            tool_items += n.get("tool", 0) * models
            # held-out loss: forward passes only, no generation; once per prompt format
            scored += n.get("loss", 0) * models * len(e.loss_formats)
        per = min(self.p.plan.eval_tokens_per_item, e.max_new_tokens)
        tokens = items * per
        programs = tool_items * e.tool_rounds
        stages = len(e.benchmarks) + len(e.base_benchmarks) + len(self.p.pretrain.arms.names) * len(e.arm_benchmarks)
        plan = StagePlan("eval", f"{len(e.benchmarks)} benchmarks ({len(e.base_benchmarks)} also on the base model), "
                         f"{items:,} item-settings x {per:,.0f} new tokens = {tokens / 1e6:,.2f}M tokens; <= "
                         f"{programs:,} sandboxed programs; {scored:,} held-out-loss items (forward passes, not "
                         f"timed)", f"{stages} DVC stages (eval@<benchmark>, eval_base@<benchmark>, eval_arm@<arm>-<benchmark>), "
                         f"{'vLLM' if e.engine == 'vllm' else f'HF engine, batch {e.batch_size},'} on 1 device; "
                         f"{e.exec_workers} sandbox workers", self.acc.name,
                         amounts={"items": items, "generated_tokens": tokens, "programs": programs,
                                  "heldout_items": scored})
        plan = self.timed(plan, tokens, self.gen_rate("eval", 1), 1)
        plan.basis += "; mean new tokens per item stated: plan.eval_tokens_per_item"
        return plan

    def keep_rates(self) -> tuple[dict[str, float], str]:
        """The filter's keep rate by kind, and where it came from."""
        if self.p.filter.preset == "paper":
            return {"nl": 1.0, "tool": 1.0}, "filter.preset paper keeps every parsed record"
        if self.measured is not None:
            f = self.measured.parent / "filter.json"
            by_kind = json.loads(f.read_text()).get("by_kind", {}) if f.is_file() else {}
            if all(by_kind.get(k, {}).get("input") for k in ("nl", "tool")):
                return {k: by_kind[k]["kept"] / by_kind[k]["input"] for k in ("nl", "tool")}, f"measured: {f}"
        return {str(k): v for k, v in self.p.plan.keep_rates.items()}, "stated: plan.keep_rates"

    def filtering(self, generations: int) -> StagePlan:
        """The filter: tool programs run in the sandbox and records deduplicated, for ``generations`` records."""
        f = self.p.filter
        share = self.p.prompts.tool_share
        gens = {"nl": generations * (1 - share), "tool": generations * share}
        rates, source = self.keep_rates()
        kept = {k: gens[k] * rates[k] for k in gens}
        programs = gens["tool"] if f.tool_output != "keep" else 0.0
        cpu_h = programs * self.p.plan.sandbox_s_per_program / 3600
        return StagePlan("filter", f"{generations:,} generations -> ~{sum(kept.values()):,.0f} kept records "
                         f"({kept['nl']:,.0f} CoT at {rates['nl']:.1%}, {kept['tool']:,.0f} tool at {rates['tool']:.1%}; "
                         f"filter.preset {f.preset}); ~{programs:,.0f} tool programs run",
                         f"{f.exec_workers} sandbox workers", "CPU", device_hours=cpu_h, wall_hours=cpu_h / f.exec_workers,
                         usd=None, basis=f"keep rates {source}; {self.p.plan.sandbox_s_per_program:g} s per program "
                         "(plan.sandbox_s_per_program)",
                         amounts={"programs": programs, "kept": sum(kept.values()), "kept_nl": kept["nl"],
                                  "kept_tool": kept["tool"]})

    def pretraining(self, kept: dict[str, float]) -> tuple[StagePlan, list[str]]:
        """The pretrain stage from the kept volume (x plan.tokens_per_record); a stated planned_tokens that
        disagrees with it by more than 10% is flagged."""
        pt, warnings = self.p.pretrain, list[str]()
        per = self.p.plan.tokens_per_record
        derived = kept["nl"] * per["nl"] + kept["tool"] * per["tool"]
        if pt.supplement and pt.max_records:
            f = self.path(pt.supplement)
            with f.open(encoding="utf-8") as fh:
                lens = [estimate_prompt_tokens(line) for _, line in zip(range(pt.max_records), fh)]
            return self.training("pretrain", "base", pt.train, len(lens), sum(lens) / max(1, len(lens)),
                                 "records (pretrain.supplement)"), warnings
        tail_rows, tail_tokens = self.sft_tail()
        derived += tail_tokens
        tail_note = f" + SFT tail {tail_rows:,.0f} rows / {tail_tokens / 1e6:,.1f}M tokens" if tail_rows else ""
        if pt.planned_tokens:
            if derived and abs(pt.planned_tokens / derived - 1) > 0.10:
                warnings.append(f"pretrain.planned_tokens {pt.planned_tokens:,.0f} disagrees with the configured volume: "
                                f"~{kept['nl'] + kept['tool']:,.0f} kept records x plan.tokens_per_record = "
                                f"{derived:,.0f} tokens; the plan uses planned_tokens (remove it to use the derived figure)")
            return self.training("pretrain", "base", pt.train, pt.planned_tokens / pt.train.max_length,
                                 pt.train.max_length, "packed sequences (pretrain.planned_tokens)"), warnings
        if not derived:
            raise UserError("pretrain: nothing to plan (no kept records expected); check plan.keep_rates or set "
                            "pretrain.planned_tokens")
        return self.training("pretrain", "base", pt.train, derived / pt.train.max_length, pt.train.max_length,
                             f"packed sequences from ~{kept['nl'] + kept['tool']:,.0f} kept records "
                             f"(x plan.tokens_per_record {per['nl']:g} CoT / {per['tool']:g} tool){tail_note}"), warnings

    def sft_tail(self) -> tuple[float, float]:
        """(rows, tokens) of the configured SFT tail: a local file counted exactly, a hub dataset as stated."""
        t = self.p.pretrain.sft_tail
        if t is None:
            return 0.0, 0.0
        if t.format == "jsonl":
            from jiuzhang.training.records import load_sft_tail
            examples = load_sft_tail(t, self.root)   # the rows training uses: max_rows after the shuffle
            return float(len(examples)), float(sum(estimate_prompt_tokens(e.prompt + e.target) for e in examples))
        if not (t.planned_rows and t.planned_tokens_per_row):
            raise UserError("pretrain.sft_tail: a hub dataset is not downloaded to be planned; state planned_rows "
                            "and planned_tokens_per_row (the paper: 2,860,000 rows x 269 tokens)")
        rows = min(t.planned_rows, t.max_rows or t.planned_rows)
        return float(rows), rows * t.planned_tokens_per_row

    def build(self) -> Plan:
        """The plan of every stage of this profile, in DAG order."""
        p = self.p
        pool, pool_key = self.pool()
        prompt_tokens = self.prompt_tokens()
        kd_tokens = prompt_tokens + p.teacher.budget.expected_output_tokens
        stages = [StagePlan("corpus", f"{len(p.corpus.sources)} sources -> snippets <= {p.corpus.max_chars:,} chars, "
                            f"exact + near dedup, {p.corpus.decontamination.ngram}-gram decontamination", "1 process",
                            "CPU", basis="not costed (CPU, minutes to hours)"),
                  StagePlan("prompts", f"{pool:,} prompts ({pool_key}), ~{prompt_tokens:,.0f} tokens each, "
                            f"{p.prompts.tool_share:.0%} tool", "1 process", "CPU", basis="not costed (CPU)",
                            amounts={"prompts": pool})]
        if p.base.mode == "hub" and p.base.hub is not None:
            stages.append(StagePlan("base", f"pin {p.base.hub.model_id}@{p.base.hub.revision[:12]} (no download "
                                    "in this stage)", "-", "-"))
        elif p.base.mode == "gguf" and p.base.gguf is not None:
            g = p.base.gguf
            stages.append(StagePlan("base", f"dequantize {g.file or g.path} (sha256 {g.sha256[:12]}) to an fp32 HF "
                                    "folder", "1 process", "CPU", basis="not costed (CPU, seconds)"))
        else:
            t = p.base.train
            stages.append(self.training_base(t.steps * t.batch_size * t.seq_len))
        stages.append(self.teacher_round("kd_initial", p.kd.initial.n))
        s = p.synthesizer.train
        stages.append(self.training("synthesizer_initial", "synthesizer", s, p.kd.initial.n, kd_tokens, "KD examples"))
        stages.append(self.influence())
        stages.append(self.teacher_round("kd_boost", p.kd.boost.n))
        stages.append(self.training("synthesizer", "synthesizer", s, p.kd.initial.n + p.kd.boost.n, kd_tokens,
                                    "KD examples"))
        stages.append(self.generation("synthesize", pool, "generations (prompts answered)"))
        stages.append(self.generation("synthesize_init", min(pool, p.synthesize.init_prompts),
                                      "prompts answered by synthesizer.init (before KD)"))
        filtered = self.filtering(pool)
        stages.append(filtered)
        pretrain, warnings = self.pretraining({"nl": filtered.amounts["kept_nl"], "tool": filtered.amounts["kept_tool"]})
        stages.append(pretrain)
        new_tokens = p.synthesize.projection.new_tokens_per_problem
        per = p.plan.tokens_per_record
        record = (1 - p.prompts.tool_share) * per["nl"] + p.prompts.tool_share * per["tool"]
        if new_tokens and new_tokens < 0.5 * record:
            warnings.append(f"synthesize.projection.new_tokens_per_problem {new_tokens:g} is under half a kept record "
                            f"(~{record:,.0f} tokens by plan.tokens_per_record): generation cannot write the records "
                            f"the pre-training volume assumes")
        stages.append(self.evaluation())
        stages.append(StagePlan("report", "one table, plots, costs", "1 process", "-"))
        return Plan(p.profile, self.acc.name, stages, warnings)

    def training_base(self, tokens: float) -> StagePlan:
        """The base stage: a tokenizer and ``base.train.steps`` steps over ``tokens`` tokens in one process."""
        launch = Launch("one process", 1, 1)
        plan = StagePlan("base", f"tokenizer + {self.p.base.train.steps:,} steps = {tokens / 1e6:,.2f}M tokens",
                         "1 process, fp32", self.acc.name, amounts={"train_tokens": tokens})
        return self.timed(plan, tokens, self.train_rate("base", self.n_params("base"), launch), 1)
