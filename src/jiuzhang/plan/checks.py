"""Settings that validate but cannot run: `jiuzhang config check` and `jiuzhang plan` refuse them.

Each check needs a model fact (context length): read from a local model folder's ``config.json`` when
there is one, else stated in ``plan.model_context`` (hub models are not downloaded to be checked).
"""

from __future__ import annotations

import json
from pathlib import Path

from jiuzhang.config.plan import Role
from jiuzhang.config.root import Params
from jiuzhang.plan.estimate import Planner
from jiuzhang.plan.memory import BASE_OUTPUT, memory_blockers


def model_context(params: Params, role: Role, root: Path) -> tuple[int | None, str]:
    """(context length, where it came from) of the 'synthesizer' or 'base' model; (None, why) if unknown.

    A stated ``plan.model_context`` wins; the base stage's own output is judged by how this profile
    builds it (its folder on disk may come from another profile's run); another local folder by its
    config.json."""
    stated = params.plan.model_context.get(role)
    if stated:
        return stated, f"plan.model_context.{role}"
    local = params.synthesizer.init.path if role == "synthesizer" else BASE_OUTPUT
    if local is not None and Path(local).as_posix().rstrip("/") == BASE_OUTPUT:
        if params.base.mode == "train":
            return params.base.arch.max_position_embeddings, "base.arch.max_position_embeddings"
        return None, f"plan.model_context.{role} is not set"
    if local:
        config = (Path(local) if Path(local).is_absolute() else root / local) / "config.json"
        if config.is_file():
            value = json.loads(config.read_text()).get("max_position_embeddings")
            return (int(value), str(config)) if value else (None, f"{config} has no max_position_embeddings")
    return None, f"plan.model_context.{role} is not set"


def blockers(params: Params, root: Path, templates: Path) -> list[str]:
    """Each setting that would make a stage fail or silently do nothing, with the key to change."""
    out: list[str] = []
    ctx, where = model_context(params, "synthesizer", root)
    s = params.synthesize
    if ctx is not None:
        if s.engine == "vllm" and s.vllm.max_model_len and s.vllm.max_model_len > ctx:
            out.append(f"synthesize.vllm.max_model_len {s.vllm.max_model_len:,} exceeds the synthesizer's context "
                       f"{ctx:,} ({where}): vLLM refuses to start (synthesize, synthesize_init, influence); set it "
                       f"to {ctx:,} or less")
        context = min(ctx, s.vllm.max_model_len or ctx) if s.engine == "vllm" else ctx
        prompts = Planner(params, root, templates).prompt_tokens_by_kind()
        for kind in ("nl", "tool"):
            need_new = s.min_new_tokens if s.fill_context else getattr(s, kind).max_new_tokens
            if prompts[kind] + need_new > context and s.on_overlong == "skip":
                fix = ("lower synthesize.min_new_tokens or corpus.max_chars" if s.fill_context else
                       f"set synthesize.fill_context: true (generate until the context is full, as the paper did) "
                       f"or lower synthesize.{kind}.max_new_tokens")
                out.append(f"synthesize.{kind}: a full {kind} prompt (~{prompts[kind]:,.0f} tokens) + "
                           f"{need_new:,} new tokens exceeds the context {context:,}: every {kind} prompt would be "
                           f"skipped as overlong (synthesize.on_overlong: skip); {fix}")
        lengths = [("synthesizer.train.max_length", params.synthesizer.train.max_length)]
        if params.influence.less is not None:  # method 'random' needs no less section
            lengths.append(("influence.less.max_length", params.influence.less.max_length))
        for key, length in lengths:
            if length > ctx:
                out.append(f"{key} {length:,} exceeds the synthesizer's context {ctx:,} ({where}); lower it")
    out += memory_blockers(params, root)
    base_ctx, base_where = model_context(params, "base", root)
    if base_ctx is not None and params.pretrain.train.max_length > base_ctx:
        out.append(f"pretrain.train.max_length {params.pretrain.train.max_length:,} exceeds the base model's "
                   f"context {base_ctx:,} ({base_where}); lower it")
    return out


def undeclared_inputs(params: Params, root: Path) -> list[str]:
    """Local files the params name that dvc.yaml does not list as deps of the stage reading them: DVC
    would not rerun the stage when they change (a warning: the run itself works)."""
    dvc = root / "dvc.yaml"
    if not dvc.is_file():
        return []
    import yaml

    stages = yaml.safe_load(dvc.read_text()).get("stages", {})
    wanted: list[tuple[str, str, str]] = []
    tail = params.pretrain.sft_tail
    if tail is not None and tail.format == "jsonl" and tail.path:
        wanted.append(("pretrain", tail.path, "pretrain.sft_tail.path"))
    if params.pretrain.supplement:
        wanted.append(("pretrain", params.pretrain.supplement, "pretrain.supplement"))
    out = []
    for stage, path, key in wanted:
        deps = {str(d).split("#")[0].strip().rstrip("/") for d in stages.get(stage, {}).get("deps", [])}
        if Path(path).as_posix().rstrip("/") not in deps:
            out.append(f"{key} {path!r} is not a dep of the {stage} stage in dvc.yaml: add it under "
                       f"stages.{stage}.deps so a change to it reruns the stage")
    return out
