"""What ``jiuzhang eval`` does: build the engine once, evaluate each benchmark, write predictions and metrics."""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import click

from jiuzhang.common.io import atomic_write_text, write_json
from jiuzhang.config.evaluation import EvalConfig
from jiuzhang.config.root import Params
from jiuzhang.config.synthesis import SynthesizeConfig
from jiuzhang.errors import UserError
from jiuzhang.evaluation.eval_model import EvalModel
from jiuzhang.evaluation.evaluator import evaluate
from jiuzhang.evaluation.heldout import is_loss, loss_keys
from jiuzhang.evaluation.tasks import TASKS, load_rows
from jiuzhang.synthesis.engine import EngineSettings, VllmSettings

TOOL_DEFAULT = {"gsm8k", "math500", "math", "svamp", "asdiv", "mawps", "tabmwp", "gsm_hard"}


def settings_for(params: Params, name: str, endpoint: bool = False) -> tuple[str, ...]:
    """The benchmark's settings from eval.benchmarks; an endpoint gives no likelihoods, so no 'loss' there."""
    if name in params.eval.benchmarks:
        settings = tuple(params.eval.benchmarks[name])
    else:
        settings = ("nl", "tool") if name in TOOL_DEFAULT else ("nl",)
    return tuple(s for s in settings if not (endpoint and s == "loss"))


def eval_engine_settings(ev: EvalConfig, synth: SynthesizeConfig) -> EngineSettings:
    """The eval stages' engine: eval's engine, precision, device, batch and vLLM settings; greedy (seed 0); a
    prompt too long for the context is cut at its start (truncate), never skipped; the context rules
    (fill_context, min_new_tokens) as synthesis."""
    return EngineSettings("eval", ev.engine, 0, ev.dtype, ev.device, ev.threads, ev.batch_size, "truncate",
                          synth.fill_context, synth.min_new_tokens, cpu_autocast=ev.dtype == "bf16",
                          chat_template=ev.chat_template, vllm=VllmSettings.of(ev.vllm))


def build_eval_engine(params: Params, model: str, revision: str | None, endpoint: str | None,
                      api_key: str | None) -> EvalModel:
    """The model under evaluation: generation on ``eval.engine`` (or an endpoint), likelihoods on HF."""
    if endpoint:
        from jiuzhang.evaluation.endpoint import EndpointEngine

        return EvalModel("endpoint", lambda: EndpointEngine(endpoint, model, api_key))
    from jiuzhang.synthesis.engine import HFEngine, VllmEngine

    settings = eval_engine_settings(params.eval, params.synthesize)
    hf: list[HFEngine] = []

    def hf_engine() -> HFEngine:
        if not hf:
            hf.append(HFEngine(model, settings, revision=revision))
        return hf[0]

    if settings.engine == "vllm":
        VllmEngine.interpreter(settings)  # no vLLM: the error now, before any model loads
        make = partial(VllmEngine, model, settings, 0, revision)
        return EvalModel("vllm", make, hf_engine, generator_factory=make)
    return EvalModel("hf", hf_engine, hf_engine, generator_factory=partial(HFEngine, model, settings, 0, revision))


def model_key(model: str, revision: str | None, endpoint: str | None) -> str:
    """What identifies the answers' model: a folder's bytes, a hub id at its revision, an endpoint's model."""
    from jiuzhang.common.digest import folder_sha256

    if endpoint:
        return f"{endpoint}#{model}"
    return folder_sha256(Path(model)) if Path(model).is_dir() else f"{model}@{revision or 'main'}"


def run_eval(params: Params, names: tuple[str, ...], model: str, revision: str | None, endpoint: str | None,
             api_key: str | None, out: Path, single: bool, resume: Path | None = None) -> dict[str, Any]:
    """Evaluate ``model`` on ``names``; with ``resume``, finished shards of generations are kept there until
    the predictions are written (a killed run's rerun generates only the rest), then the folder is removed."""
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise UserError(f"unknown benchmark(s) {unknown}; known: {', '.join(sorted(TASKS))}")
    rows = {n: load_rows(params.benchmarks.root, n, params.eval.limit_for(n)) for n in names}  # fail before loading
    engine = build_eval_engine(params, model, revision, endpoint, api_key)
    key = model_key(model, revision, endpoint) if resume is not None else ""
    summary: dict[str, Any] = {}
    for name in names:
        if endpoint and "loss" in settings_for(params, name):
            click.echo(f"eval {name}: the 'loss' setting is skipped (an endpoint gives no likelihoods)", err=True)
        settings = settings_for(params, name, endpoint=bool(endpoint))
        preds, metrics = evaluate(TASKS[name], rows[name], settings, engine, params.eval, resume=resume, model_key=key,
                                  cluster=params.cluster)
        folder = out if single else out / name
        atomic_write_text(folder / "predictions.jsonl",
                          "".join(json.dumps(p, ensure_ascii=False, sort_keys=True) + "\n" for p in preds))
        if not single:
            write_json(folder / "metrics.json", {k: v for k, v in metrics.items() if k != "timing"})
        shown = [k for s in settings for k in (loss_keys(params.eval.loss_formats) if s == "loss" else [s])]
        line = ", ".join(f"{s} mean NLL {metrics[s]['mean_nll']:.3f} over {metrics[s]['items']} items" if is_loss(s)
                         else f"{s} {metrics[s]['accuracy']:.1%} ({metrics[s]['correct']}/{metrics[s]['total']})"
                         for s in shown)
        click.echo(f"eval {name}: {line}", err=True)
        summary[name] = metrics
    engine.close()
    if resume is not None:  # every answer is in a predictions file now: the scratch copies have done their job
        shutil.rmtree(resume, ignore_errors=True)
    if single:
        return summary[names[0]]
    return {"benchmarks": {n: {k: v for k, v in m.items() if k != "timing"} for n, m in summary.items()},
            "timing": {f"{n}_{k}": v for n, m in summary.items() for k, v in m["timing"].items()}}
