"""The report stage: what was run, every benchmark's result with its interval against the base model and
the paper, the held-out loss, the filter's keep rate before and after KD, sample predictions, costs (actual
next to planned) and charts, as one self-contained HTML page (charts are embedded PNGs: it renders offline),
plus results.md, summary.json and a DVC plot.

Every file is built from the stages' deterministic metrics and outputs, so the report reproduces byte for
byte. Wall-clock times are facts of one execution, not of the results: they stay in ``results/run/`` (and
the table ``jiuzhang repro`` prints); the report only says where to find them. The page is rendered with
Jinja2 (autoescaped) from ``templates/report/report.html.j2``.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path
from typing import Any

from jiuzhang.common.io import InputDataError, atomic_write_text, write_csv, write_json
from jiuzhang.config.root import Params
from jiuzhang.evaluation.arm_comparison import compare_arms, item_value, paired_delta, read_predictions, verdict_lines
from jiuzhang.evaluation.heldout import LOSS_KEYS, is_loss, loss_keys
from jiuzhang.evaluation.stats import wilson

PAPER_MODEL = "JiuZhang3.0-7B"


def _read(path: Path) -> dict[str, Any]:
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
        after = [item_value(t[i], s) for i in items]
        before = [item_value(b[i], s) for i in items]
        d = paired_delta(after, before, is_loss(s))
        out.append({"benchmark": name, "setting": s, "items": len(items),
                    "base": round(scale * sum(before) / len(items), 4),
                    "trained": round(scale * sum(after) / len(items), 4), "diff": d["diff"], "diff_ci95": d["ci95"]})
    return out


def scored_settings(settings: list[str], formats) -> list[str]:
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


def benchmark_rows(metrics_dir: Path, benchmarks: dict[str, list[str]], published: dict[str, float],
                   base_benchmarks: list[str]) -> list[dict[str, Any]]:
    """One row per benchmark: each setting's correct/total, accuracy with its Wilson interval, no-answer and
    cut-off counts, the held-out loss; the base model's figures where it was evaluated too."""
    rows = []
    for name, settings in benchmarks.items():
        m = _read(metrics_dir / "eval" / f"{name}.json")
        b = _read(metrics_dir / "eval_base" / f"{name}.json") if name in base_benchmarks else None
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


def samples(benchmarks: dict[str, list[str]], root: Path, eval_dir: Path, base_dir: Path | None,
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
    after = _read(metrics_dir / "filter.json")
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
    arm_names = params.pretrain.arms.names if arm_dir is not None and base_dir is not None else []
    arms = compare_arms(e.arm_benchmarks, {b: scored_settings(e.benchmarks[b], e.loss_formats) for b in e.arm_benchmarks},
                        metrics_dir, eval_dir, base_dir, arm_dir, arm_names) if arm_names else None
    if arms is not None:
        arms["verdicts"] = verdict_lines(arms, MEASURE_NAMES)
    kd = {r: _read(metrics_dir / f"kd_{r}.json") for r in ("initial", "boost")}
    synth, filt = _read(metrics_dir / "synthesize.json"), _read(metrics_dir / "filter.json")
    training = {s: _read(metrics_dir / f"{s}.json") for s in ("synthesizer_initial", "synthesizer", "pretrain")
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
    run = {"profile": params.profile, "experiment": os.environ.get("DVC_EXP_NAME") or "workspace (no DVC experiment)",
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
    if params.base.mode == "gguf":
        return (f"{base.get('source_file', params.base.gguf.file)} ({base.get('parameters', 0) / 1e6:.1f}M parameters, "
                f"dequantized to fp32; sha256 {params.base.gguf.sha256[:12]})")
    if params.base.mode == "hub":
        return f"{params.base.hub.model_id}@{params.base.hub.revision}"
    return f"tiny Llama trained here ({base.get('parameters', 0) / 1e6:.1f}M parameters): a stand-in, not a real LM"


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


SETTING_NAMES = {"nl": "NL", "tool": "tool"}
FORMAT_NAMES = {LOSS_KEYS["paper"]: "paper template", LOSS_KEYS["neutral"]: "neutral prompt"}
MEASURE_NAMES = {"nl": "NL accuracy", "tool": "tool accuracy", **{k: f"held-out loss, {v}" for k, v in FORMAT_NAMES.items()}}


def markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown tables (results.md)."""
    r0 = summary["run"]
    lines = [f"Profile **{r0['profile']}**, {r0['experiment']}.", "",
             f"| benchmark | setting | correct / items | accuracy % [95% CI] | no answer (cut off) | base model % | "
             f"{summary['paper_model']} NL, paper |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in summary["benchmarks"]:
        for s in ("nl", "tool"):
            if s not in r:
                continue
            lo, hi = r[f"{s}_ci95"]
            base = (f"{r[f'base_{s}']:.1f} ({r[f'base_{s}_correct']} / {r[f'base_{s}_total']})"
                    if f"base_{s}" in r else "")
            lines.append(f"| {r['benchmark']} | {SETTING_NAMES[s]} | {r[f'{s}_correct']} / {r[f'{s}_total']} | "
                         f"{r[s]:.1f} [{lo:.1f}, {hi:.1f}] | {r[f'{s}_invalid']} ({r[f'{s}_cut_off']}) | {base} | "
                         f"{_fmt(r['paper_nl']) if s == 'nl' else ''} |")
    lines += ["", "*no answer*: outputs with no extractable answer; *cut off*: those that hit the generation "
              "budget (eval.max_new_tokens) before stating one, which grade as wrong."]
    losses = [(r, k) for r in summary["benchmarks"] for k in LOSS_KEYS.values() if k in r]
    if losses:
        lines += ["", "Held-out loss: mean negative log-likelihood per token of each item's gold solution given its "
                  "question, under the paper's template and a neutral prompt (lower is better; 95% bootstrap "
                  "interval over items). A gain under one format only is a format effect, not better math.", "",
                  "| benchmark | prompt format | items | mean NLL [95% CI] |", "|---|---|---:|---:|"]
        lines += [f"| {r['benchmark']} | {FORMAT_NAMES[k]} | {r[f'{k}_items']} | {r[k]:.3f} [{r[f'{k}_ci95'][0]:.3f}, "
                  f"{r[f'{k}_ci95'][1]:.3f}] |" for r, k in losses]
    if summary.get("base_vs_trained"):
        lines += ["", "Base model vs trained model on the same items: the paired difference (trained - base) with "
                  "its 95% interval (loss: paired bootstrap; accuracy: Newcombe's paired interval); an interval that excludes 0 is a real change at this "
                  "sample size. Accuracy in %, loss in nats per token (lower is better).", "",
                  "| benchmark | measure | items | base | trained | difference [95% CI] |",
                  "|---|---|---:|---:|---:|---:|"]
        for c in summary["base_vs_trained"]:
            measure = (f"held-out loss, {c['format']} ({c['target']})" if is_loss(c["setting"])
                       else f"{SETTING_NAMES[c['setting']]} accuracy")
            digits = 3 if is_loss(c["setting"]) else 1
            lines.append(f"| {c['benchmark']} | {measure} | {c['items']} | {c['base']:.{digits}f} | "
                         f"{c['trained']:.{digits}f} | {c['diff']:+.{digits}f} [{c['diff_ci95'][0]:+.{digits}f}, "
                         f"{c['diff_ci95'][1]:+.{digits}f}]{' (format effect only)' if c.get('format_effect') else ''} |")
    lines += arms_markdown(summary.get("arms"))
    k = summary.get("keep_rates")
    if k:
        lines += ["", f"Filter keep rate before KD (the init model on the first {k['init_prompts']} prompts of the "
                  f"sample) and after KD (the trained synthesizer on all {k['synthesize_prompts']}, those included):", "",
                  "| kind | model | kept / generated | keep rate % [95% CI] | main drop reasons |", "|---|---|---:|---:|---|"]
        for r in k["rows"]:
            rate = "" if r["keep_rate"] is None else f"{r['keep_rate']:.1f} [{r['ci95'][0]:.1f}, {r['ci95'][1]:.1f}]"
            lines.append(f"| {r['kind']} | {r['model']} | {r['kept']} / {r['input']} | {rate} | "
                         f"{', '.join(f'{n} {c}' for n, c in r['drops'][:3])} |")
    c = summary["costs"]
    t, s = c["teacher"], c["synthesis"]
    modes = ", ".join(sorted({m for a in t["actual"].values() for m in a["mode"].split(", ")})) or "-"
    lines += ["", f"Teacher ({t['label']}, {modes} mode): {t['calls']:,} calls, {t['prompt_tokens']:,} prompt + "
              f"{t['completion_tokens']:,} completion tokens, ${t['usd']:,.2f} (actual, from the journal).",
              f"Synthesis: {s['records']:,} generations, {s['new_tokens']:,} new tokens, {s['kept_after_filter']:,} "
              f"records kept by the filter. Paper scale: {s['paper_projection']['problems']:,} problems ~ "
              f"{s['paper_projection']['gpu_hours']:,} GPU-hours at {s['paper_projection']['gpu_tokens_per_s']:,} "
              f"tokens/s per GPU."]
    for name, tr in c["training"].items():
        lines.append(f"Training {name}: {tr['steps']} steps, {tr['tokens_seen']:,} tokens.")
    return "\n".join(lines) + "\n"


def _cell(d: dict[str, Any], digits: int) -> str:
    return f"{d['diff']:+.{digits}f} [{d['ci95'][0]:+.{digits}f}, {d['ci95'][1]:+.{digits}f}] {d['verdict']}"


def arms_markdown(arms: dict[str, Any] | None) -> list[str]:
    """The control arms as Markdown: the budget table, the measures side by side, the verdicts."""
    if not arms:
        return []
    lines = ["", "Control arms: the same base model and training settings at one target-token budget; "
             "differences are paired on the same items (loss: paired bootstrap, nats/token, lower is better; "
             "accuracy: Newcombe's paired interval, points).", "",
             "| arm | trained on | records | target tokens | steps |", "|---|---|---:|---:|---:|"]
    lines += [f"| {a} | {b['data']} | {b['records']} | {b['target_tokens']:,} | {b['steps']} |"
              for a, b in arms["budgets"].items()]
    names = arms["arms"]
    lines += ["", "| benchmark | measure | items | " + " | ".join(names) + " | vs base | vs raw |",
              "|---|---|---:|" + "---:|" * len(names) + "---|---|"]
    for r in arms["rows"]:
        d = 3 if is_loss(r["setting"]) else 1
        cells = [f"{r['arms'][a]['mean']:.{d}f} [{r['arms'][a]['ci95'][0]:.{d}f}, {r['arms'][a]['ci95'][1]:.{d}f}]"
                 for a in names]
        lines.append(f"| {r['benchmark']} | {MEASURE_NAMES[r['setting']]} | {r['items']} | " + " | ".join(cells) + " | "
                     + "; ".join(f"{a} {_cell(v, d)}" for a, v in r["vs_base"].items()) + " | "
                     + "; ".join(f"{a} {_cell(v, d)}" for a, v in r["vs_raw"].items()) + " |")
    lines += ["", "Verdicts:", *[f"- {v}" for v in arms["verdicts"]]]
    return lines


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})  # no version/time stamps in the file
    return buf.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def chart(summary: dict[str, Any]) -> bytes:
    """Accuracy per benchmark and setting, base and trained, with 95% Wilson intervals. The axis is scaled
    to the data (not 0-100), every bar is labelled with correct/total so a 0 is visible as a value, and
    the legend sits below the plot, clear of the bars."""
    plt = _pyplot()
    bars = []
    for r in summary["benchmarks"]:
        for s in ("nl", "tool"):
            if s in r:
                bars.append((f"{r['benchmark']} ({SETTING_NAMES[s]})", r, s))
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.6 * max(len(bars), 1)), dpi=100, layout="constrained")
    if not bars:
        ax.text(0.5, 0.5, "no generation settings evaluated (held-out loss only)", ha="center", va="center")
        ax.set_axis_off()
        data = _png(fig)
        plt.close(fig)
        return data
    height = 0.38
    top = 1.0
    for j, (prefix, label) in enumerate((("base_", "base model"), ("", "trained model"))):
        ys, values, err, texts = [], [], [[], []], []
        for i, (_, r, s) in enumerate(bars):
            key = f"{prefix}{s}"
            if key not in r:
                continue
            v, (lo, hi) = r[key], r[f"{key}_ci95"]
            ys.append(i + (j - 0.5) * height)
            values.append(v)
            err[0].append(max(v - lo, 0))
            err[1].append(max(hi - v, 0))
            texts.append(f"{r[f'{key}_correct']}/{r[f'{key}_total']}")
            top = max(top, hi)
        if not ys:
            continue
        ax.barh(ys, values, height, xerr=err, capsize=3, label=f"{label} (95% CI)", error_kw={"elinewidth": 0.8})
        for y, v, hi_err, text in zip(ys, values, err[1], texts):
            ax.text(v + hi_err + 0.5, y, text, va="center", fontsize=8)
    ax.set_xlim(0, top * 1.25 + 2)
    return _finish(plt, fig, ax, [b[0] for b in bars], "accuracy (%)",
                   "Accuracy per benchmark: base vs trained (the paper's numbers are in the table)")


def loss_chart(summary: dict[str, Any]) -> bytes | None:
    """Held-out loss per benchmark, base and trained, with 95% bootstrap intervals."""
    rows = [(r, k) for r in summary["benchmarks"] for k in LOSS_KEYS.values() if k in r]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.6 * len(rows)), dpi=100, layout="constrained")
    height = 0.38
    for j, (prefix, label) in enumerate((("base_", "base model"), ("", "trained model"))):
        pts = [(i, r[f"{prefix}{k}"], r[f"{prefix}{k}_ci95"]) for i, (r, k) in enumerate(rows) if f"{prefix}{k}" in r]
        if not pts:
            continue
        ax.barh([i + (j - 0.5) * height for i, _, _ in pts], [v for _, v, _ in pts], height,
                xerr=[[v - ci[0] for _, v, ci in pts], [ci[1] - v for _, v, ci in pts]], capsize=3,
                label=f"{label} (95% CI)", error_kw={"elinewidth": 0.8})
    return _finish(plt, fig, ax, [f"{r['benchmark']}, {FORMAT_NAMES[k]} ({r[f'{k}_items']} items)" for r, k in rows],
                   "mean NLL per token of the gold solution (nats; lower is better)",
                   "Held-out loss per benchmark: base vs trained")


def _finish(plt, fig, ax, labels: list[str], xlabel: str, title: str) -> bytes:
    """Rows top to bottom, labelled axes and title, the legend below the plot (clear of the bars)."""
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    data = _png(fig)
    plt.close(fig)
    return data


def render_html(summary: dict[str, Any], charts: dict[str, bytes | None], template: Path) -> str:
    """The self-contained HTML page: ``template`` rendered with the summary and the charts as embedded PNGs."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template.parent)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    images = {k: base64.b64encode(v).decode() for k, v in charts.items() if v is not None}
    return env.get_template(template.name).render(s=summary, images=images, settings=SETTING_NAMES,
                                                  measures=MEASURE_NAMES)


def write_report(metrics_dir: Path, paper_path: Path, params: Params, out: Path, eval_dir: Path,
                 base_dir: Path | None, template: Path = Path("templates/report/report.html.j2"),
                 root: Path = Path("."), arm_dir: Path | None = None) -> dict[str, Any]:
    """Write the report folder (summary.json, results.md, accuracy.csv/png, report.html); returns its headline."""
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "jiuzhang"  # deterministic output
    paper = _read(paper_path)
    if not template.is_file():
        raise InputDataError(f"{template}: the report's page template is missing (restore it from git)")
    summary = collect(metrics_dir, params, paper, eval_dir, base_dir, root, arm_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", summary)
    atomic_write_text(out / "results.md", markdown(summary))
    write_csv(out / "accuracy.csv", [{"benchmark": f"{r['benchmark']} ({s})", "accuracy": round(r[s], 2)}
                                     for r in summary["benchmarks"] for s in ("nl", "tool") if s in r],
              ("benchmark", "accuracy"))
    png = chart(summary)
    (out / "accuracy.png").write_bytes(png)
    atomic_write_text(out / "report.html", render_html(summary, {"accuracy": png, "loss": loss_chart(summary)},
                                                       template))
    return {"benchmarks": len(summary["benchmarks"]), "teacher_usd": summary["costs"]["teacher"]["usd"]}
