"""The report's data: one summary dict gathered from the stages' results, predictions and params."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jiuzhang.common.io import InputDataError
from jiuzhang.config.root import Params
from jiuzhang.evaluation.arm_comparison import compare_arms, item_value, paired_delta, read_predictions, verdict_lines
from jiuzhang.evaluation.heldout import LOSS_KEYS, is_loss, loss_keys
from jiuzhang.evaluation.stats import wilson

PAPER_MODEL = "JiuZhang3.0-7B"
SETTING_NAMES = {"nl": "NL", "tool": "tool"}
FORMAT_NAMES = {LOSS_KEYS["paper"]: "paper template", LOSS_KEYS["neutral"]: "neutral prompt"}
MEASURE_NAMES = {"nl": "NL accuracy", "tool": "tool accuracy", **{k: f"held-out loss, {v}" for k, v in FORMAT_NAMES.items()}}


def read_json(path: Path) -> dict[str, Any]:
    """A stage's results file; a missing one is an InputDataError naming it."""
    if not path.is_file():
        raise InputDataError(f"{path}: missing; run the stage that writes it first (dvc repro)")
    return json.loads(path.read_text())


def paper_numbers(paper: dict[str, Any]) -> dict[str, float]:
    """The 7B model's published NL accuracy per benchmark (the main table, then the other-seed figures)."""
    out: dict[str, float] = {}
    for model, scores in paper.items():
        if model.startswith(PAPER_MODEL) and isinstance(scores, dict):
            for name, value in scores.items():
                out.setdefault(name, value)
    return out


def compare_base(name: str, settings: list[str], trained_dir: Path, base_dir: Path) -> list[dict[str, Any]]:
    """Base vs trained on the same items, per scored setting (``loss`` and ``loss_neutral`` are the held-out
    loss in its two prompt formats): each side's mean and the paired difference (trained - base) with its
    95% interval (:func:`paired_delta`: bootstrap for a loss, Newcombe's paired interval for an accuracy, so
    0 of n vs 0 of n is not printed as a certain 0). Accuracy in %, loss in nats per token."""
    trained, base = read_predictions(trained_dir / name), read_predictions(base_dir / name)
    out = []
    for s in settings:
        t, b = trained.get(s, {}), base.get(s, {})
        items = sorted(i for i in set(t) & set(b)
                       if item_value(t[i], s) is not None and item_value(b[i], s) is not None)
        if not items:
            continue
        scale = 1.0 if is_loss(s) else 100.0
        # set on every item kept above: the filters only tell the type checker
        after = [v for v in (item_value(t[i], s) for i in items) if v is not None]
        before = [v for v in (item_value(b[i], s) for i in items) if v is not None]
        d = paired_delta(after, before, is_loss(s))
        out.append({"benchmark": name, "setting": s, "items": len(items),
                    "base": round(scale * sum(before) / len(items), 4),
                    "trained": round(scale * sum(after) / len(items), 4), "diff": d["diff"], "diff_ci95": d["ci95"]})
    return out


def scored_settings(settings: Sequence[str], formats) -> list[str]:
    """The settings as scored: 'loss' becomes one entry per prompt format ('loss', 'loss_neutral')."""
    return [k for s in settings for k in (loss_keys(formats) if s == "loss" else [s])]


def annotate_losses(comparisons: list[dict[str, Any]]) -> None:
    """Name each loss row's gold text and prompt format, and flag a *format effect*: a loss that improves
    (interval below 0) under the paper's template while the neutral prompt's does not on the same
    benchmark, so the page cannot present a learnt template as better math."""
    from jiuzhang.evaluation.heldout import target_kind
    from jiuzhang.evaluation.tasks import TASKS

    by_key = {(c["benchmark"], c["setting"]): c for c in comparisons}
    for c in comparisons:
        if not is_loss(c["setting"]):
            continue
        c["target"] = target_kind(TASKS[c["benchmark"]])  # an answer-only target measures answer format
        c["format"] = FORMAT_NAMES[c["setting"]]
        neutral = by_key.get((c["benchmark"], LOSS_KEYS["neutral"]))
        c["format_effect"] = (c["setting"] == LOSS_KEYS["paper"] and neutral is not None
                              and c["diff_ci95"][1] < 0 and not neutral["diff_ci95"][1] < 0)


def _optional(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def benchmark_rows(metrics_dir: Path, benchmarks: Mapping[str, Sequence[str]], published: dict[str, float],
                   base_benchmarks: list[str]) -> list[dict[str, Any]]:
    """One row per benchmark: each setting's correct/total, accuracy with its Wilson interval, no-answer and
    cut-off counts, the held-out loss; the base model's figures where it was evaluated too."""
    rows = []
    for name, settings in benchmarks.items():
        m = read_json(metrics_dir / "eval" / f"{name}.json")
        b = read_json(metrics_dir / "eval_base" / f"{name}.json") if name in base_benchmarks else None
        row: dict[str, Any] = {"benchmark": name, "items": m["items"], "paper_nl": published.get(name)}
        for s in ("nl", "tool"):
            if s not in settings:
                continue
            correct, total = m[s]["correct"], m[s]["total"]
            row[s] = 100 * correct / total if total else 0.0
            row[f"{s}_correct"], row[f"{s}_total"] = correct, total
            row[f"{s}_ci95"] = [round(100 * x, 1) for x in wilson(correct, total)]
            row[f"{s}_invalid"] = m[s]["invalid"]
            row[f"{s}_cut_off"] = m[s].get("cut_off", 0)
            if b is not None and s in b:
                bc, bt = b[s]["correct"], b[s]["total"]
                row[f"base_{s}"] = 100 * bc / bt if bt else 0.0
                row[f"base_{s}_correct"], row[f"base_{s}_total"] = bc, bt
                row[f"base_{s}_ci95"] = [round(100 * x, 1) for x in wilson(bc, bt)]
        for key in (k for k in LOSS_KEYS.values() if "loss" in settings and k in m):  # each scoring format
            row[key], row[f"{key}_ci95"], row[f"{key}_items"] = m[key]["mean_nll"], m[key]["ci95"], m[key]["items"]
            if b is not None and key in b:
                row[f"base_{key}"], row[f"base_{key}_ci95"] = b[key]["mean_nll"], b[key]["ci95"]
        rows.append(row)
    return rows


def samples(benchmarks: Mapping[str, Sequence[str]], root: Path, eval_dir: Path, base_dir: Path | None,
            base_benchmarks: list[str], per_benchmark: int = 3) -> list[dict[str, Any]]:
    """The first few items of each benchmark's generation setting: question, each model's output, the
    answer extracted from it, the gold answer and the verdict."""
    from jiuzhang.evaluation.tasks import TASKS, load_rows

    out = []
    for name, settings in benchmarks.items():
        setting = next((s for s in ("nl", "tool") if s in settings), None)
        if setting is None:
            continue
        trained = read_predictions(eval_dir / name).get(setting, {})
        base = (read_predictions(base_dir / name).get(setting, {})
                if base_dir is not None and name in base_benchmarks else {})
        rows = {r["_idx"]: r for r in load_rows(root, name, per_benchmark)}
        for idx in sorted(trained)[:per_benchmark]:
            t = trained[idx]
            item = {"benchmark": name, "setting": setting, "idx": idx,
                    "question": TASKS[name].question(rows[idx]) if idx in rows else "", "gold": t["gold"],
                    "models": [{"model": "trained", **_shown(t)}]}
            if idx in base:
                item["models"].insert(0, {"model": "base", **_shown(base[idx])})
            out.append(item)
    return out


def _shown(p: dict[str, Any], cap: int = 1200) -> dict[str, Any]:
    text = p["prediction"]
    return {"output": text if len(text) <= cap else text[:cap] + f" [... {len(text) - cap:,} more characters]",
            "empty": not text.strip(), "extracted": p["extracted"], "correct": bool(p["correct"]),
            "cut_off": bool(p.get("cut_off"))}


def keep_rates(metrics_dir: Path) -> dict[str, Any] | None:
    """The filter's keep rate per kind, with drop reasons, for the synthesizer's init model (before KD) and
    the KD-trained synthesizer on the same prompts (the first synthesize.init_prompts of the sample)."""
    before = _optional(metrics_dir / "filter_init.json")
    after = read_json(metrics_dir / "filter.json")
    if before is None:
        return None
    rows = []
    for kind in sorted(set(before.get("by_kind", {})) | set(after.get("by_kind", {}))):
        for label, m in (("init model (before KD)", before), ("KD-trained synthesizer", after)):
            k = m.get("by_kind", {}).get(kind, {"input": 0, "kept": 0, "dropped_by_reason": {}})
            lo, hi = wilson(k["kept"], k["input"]) if k["input"] else (0.0, 0.0)
            rows.append({"kind": kind, "model": label, "input": k["input"], "kept": k["kept"],
                         "keep_rate": round(100 * k["kept"] / k["input"], 1) if k["input"] else None,
                         "ci95": [round(100 * lo, 1), round(100 * hi, 1)],
                         "drops": sorted(k["dropped_by_reason"].items(), key=lambda kv: (-kv[1], kv[0]))})
    return {"rows": rows, "init_prompts": before["input"], "synthesize_prompts": after["input"]}


def planned_costs(params: Params, root: Path) -> dict[str, Any]:
    """What `jiuzhang plan` predicts for this profile (teacher calls and USD per round), or why it cannot."""
    from jiuzhang.errors import UserError
    from jiuzhang.plan.estimate import Planner

    try:
        plan = Planner(params, root, root / "templates" / "prompts").build()
    except (UserError, InputDataError, OSError) as exc:
        return {"error": str(exc)}
    rounds = {s.stage: {"calls": s.amounts.get("teacher_calls"), "prompt_tokens": round(s.amounts["prompt_tokens"]),
                        "completion_tokens": round(s.amounts["completion_tokens"]), "usd": round(s.usd or 0.0, 2)}
              for s in plan.stages if s.stage in ("kd_initial", "kd_boost")}
    rates = "teacher.prices" if params.teacher.mode == "online" else "teacher.batch.prices (Batch API)"
    return {"rounds": rounds, "basis": "estimated prompt length from the templates + teacher.budget."
            f"expected_output_tokens per call, at {rates}"}


def collect(metrics_dir: Path, params: Params, paper: dict[str, Any], eval_dir: Path, base_dir: Path | None,
            root: Path = Path("."), arm_dir: Path | None = None) -> dict[str, Any]:
    """Everything the report shows, gathered from the results and prediction files into one summary dict."""
    e = params.eval
    published = paper_numbers(paper)
    rows = benchmark_rows(metrics_dir, e.benchmarks, published, e.base_benchmarks)
    comparisons = [c for name in e.base_benchmarks
                   for c in compare_base(name, scored_settings(e.benchmarks[name], e.loss_formats), eval_dir,
                                         base_dir)] if base_dir else []
    annotate_losses(comparisons)
    arm_names = params.pretrain.arms.names
    arms = compare_arms(e.arm_benchmarks, {b: scored_settings(e.benchmarks[b], e.loss_formats) for b in e.arm_benchmarks},
                        metrics_dir, eval_dir, base_dir, arm_dir, arm_names) if (
        arm_names and arm_dir is not None and base_dir is not None) else None
    if arms is not None:
        arms["verdicts"] = verdict_lines(arms, MEASURE_NAMES)
    kd = {r: read_json(metrics_dir / f"kd_{r}.json") for r in ("initial", "boost")}
    synth, filt = read_json(metrics_dir / "synthesize.json"), read_json(metrics_dir / "filter.json")
    training = {s: read_json(metrics_dir / f"{s}.json") for s in ("synthesizer_initial", "synthesizer", "pretrain")
                if (metrics_dir / f"{s}.json").is_file()}
    base = _optional(metrics_dir / "base.json") or {}
    corpus, prompts = _optional(metrics_dir / "corpus.json") or {}, _optional(metrics_dir / "prompts.json") or {}
    teacher = next(iter(kd.values())).get("teacher", {})
    planned = planned_costs(params, root)
    # the modes the answers were paid at (from the journal), not the mode set now
    actual_rounds = {f"kd_{r}": {"mode": ", ".join(k.get("cost_usd_by_mode") or {}) or k.get("teacher", {}).get("mode", "online"),
                                 "usd_by_mode": k.get("cost_usd_by_mode", {}),
                                 "calls": k["items"], "prompt_tokens": k["prompt_tokens"],
                                 "completion_tokens": k["completion_tokens"], "usd": round(k["cost_usd"], 2)}
                     for r, k in kd.items()}
    init = params.synthesizer.init
    pre = training.get("pretrain", {})
    # No git commit here: the page is a DVC output and must follow from its declared deps alone (a commit
    # hash changes with every later commit: a fresh clone's rerun would differ). The commit of each stage
    # run is in its MLflow provenance.json.
    run: dict[str, Any] = {"profile": params.profile, "experiment": os.environ.get("DVC_EXP_NAME") or "workspace (no DVC experiment)",
           "models": {"base": _describe_base(params, base),
                      "synthesizer_init": init.path or f"{init.model_id}@{init.revision}",
                      "teacher": teacher.get("label") or teacher.get("model") or params.teacher.model}}
    volumes = {"corpus_snippets": corpus.get("kept"), "prompt_pool": prompts.get("prompts"),
               "kd_examples": {r: k["kept"] for r, k in kd.items()}, "synthesized": synth["records"],
               "kept": filt["kept"], "pretrain_records": pre.get("used_records"),
               "pretrain_synthetic_available": pre.get("synthetic_records"),
               "pretrain_supplement_available": pre.get("supplement_records"),
               "pretrain_synthetic_used": pre.get("synthetic_used"),
               "pretrain_supplement_used": pre.get("supplement_used"),
               "pretrain_tokens": pre.get("tokens_seen")}
    costs = {
        "teacher": {"label": run["models"]["teacher"], "actual": actual_rounds, "planned": planned,
                    "calls": sum(k["items"] for k in kd.values()),
                    "prompt_tokens": sum(k["prompt_tokens"] for k in kd.values()),
                    "completion_tokens": sum(k["completion_tokens"] for k in kd.values()),
                    "usd": round(sum(k["cost_usd"] for k in kd.values()), 2)},
        "synthesis": {"records": synth["records"], "new_tokens": synth["new_tokens"], "kept_after_filter": filt["kept"],
                      "keep_rate": filt.get("keep_rate"), "dropped_by_reason": {k: v for k, v in
                                                                              filt["dropped_by_reason"].items() if v},
                      "paper_projection": synth["projection"]},
        "training": {s: {"steps": t.get("steps"), "tokens_seen": t.get("tokens_seen"),
                         "final_loss": t.get("final_loss")} for s, t in training.items()},
    }
    return {"run": run, "volumes": volumes, "benchmarks": rows, "base_vs_trained": comparisons, "arms": arms,
            "keep_rates": keep_rates(metrics_dir),
            "samples": samples(e.benchmarks, Path(params.benchmarks.root), eval_dir, base_dir, e.base_benchmarks),
            "costs": costs, "paper_model": PAPER_MODEL, "paper_source": paper.get("_source", "")}


def _describe_base(params: Params, base: dict[str, Any]) -> str:
    gguf, hub = params.base.gguf, params.base.hub  # the mode's section is required by the config
    if params.base.mode == "gguf" and gguf is not None:
        return (f"{base.get('source_file', gguf.file)} ({base.get('parameters', 0) / 1e6:.1f}M parameters, "
                f"dequantized to fp32; sha256 {gguf.sha256[:12]})")
    if params.base.mode == "hub" and hub is not None:
        return f"{hub.model_id}@{hub.revision}"
    return f"tiny Llama trained here ({base.get('parameters', 0) / 1e6:.1f}M parameters): a stand-in, not a real LM"

