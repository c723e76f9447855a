"""The report stage: one table of every benchmark against the paper's published numbers, a bar chart,
a DVC plot, and the cost summary (teacher calls, tokens, USD; synthesis and training work and time).

Every file is built from the stages' deterministic metrics, so the report reproduces byte for byte.
Wall-clock times are facts of one execution, not of the results: they stay in ``metrics/run/`` (and the
table ``jiuzhang repro`` prints); the report only says where to find them.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from jiuzhang.common.io import InputDataError, atomic_write_text, write_csv, write_json
from jiuzhang.evaluation.stats import paired_difference, wilson

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


def _predictions(folder: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """setting -> item index -> prediction row, from an eval stage's predictions.jsonl."""
    path = folder / "predictions.jsonl"
    if not path.is_file():
        raise InputDataError(f"{path}: missing; run the eval stages first (dvc repro)")
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.setdefault(row["setting"], {})[row["idx"]] = row
    return out


def _item_value(row: dict[str, Any], setting: str) -> float | None:
    return row.get("nll") if setting == "loss" else float(bool(row["correct"]))


def compare_base(name: str, settings: list[str], trained_dir: Path, base_dir: Path) -> list[dict[str, Any]]:
    """Base vs trained on the same items, per setting: each side's mean and the paired difference
    (trained - base) with its paired-bootstrap 95% interval. Accuracy in %, loss in nats per token."""
    trained, base = _predictions(trained_dir / name), _predictions(base_dir / name)
    out = []
    for s in settings:
        t, b = trained.get(s, {}), base.get(s, {})
        items = sorted(i for i in set(t) & set(b)
                       if _item_value(t[i], s) is not None and _item_value(b[i], s) is not None)
        if not items:
            continue
        scale = 1.0 if s == "loss" else 100.0
        after = [scale * _item_value(t[i], s) for i in items]
        before = [scale * _item_value(b[i], s) for i in items]
        diff, lo, hi = paired_difference(after, before)
        out.append({"benchmark": name, "setting": s, "items": len(items), "base": round(sum(before) / len(items), 4),
                    "trained": round(sum(after) / len(items), 4), "diff": round(diff, 4),
                    "diff_ci95": [round(lo, 4), round(hi, 4)]})
    return out


def collect(metrics_dir: Path, benchmarks: dict[str, list[str]], paper: dict[str, Any],
            base_benchmarks: list[str] = (), eval_dir: Path | None = None,
            base_dir: Path | None = None) -> dict[str, Any]:
    published = paper_numbers(paper)
    rows = []
    for name, settings in benchmarks.items():
        m = _read(metrics_dir / "eval" / f"{name}.json")
        row = {"benchmark": name, "items": m["items"], "paper_nl": published.get(name)}
        for s in ("nl", "tool"):
            if s in settings:
                correct, total = m[s]["correct"], m[s]["total"]
                row[s] = 100 * correct / total if total else 0.0
                row[f"{s}_correct"], row[f"{s}_total"] = correct, total
                row[f"{s}_ci95"] = [round(100 * x, 1) for x in wilson(correct, total)]
                row[f"{s}_invalid"] = m[s]["invalid"]
                row[f"{s}_cut_off"] = m[s].get("cut_off", 0)
        if "loss" in settings:
            row["loss"], row["loss_ci95"], row["loss_items"] = m["loss"]["mean_nll"], m["loss"]["ci95"], m["loss"]["items"]
        rows.append(row)
    comparisons = [c for name in base_benchmarks
                   for c in compare_base(name, benchmarks[name], eval_dir, base_dir)] if base_benchmarks else []
    kd = {r: _read(metrics_dir / f"kd_{r}.json") for r in ("initial", "boost")}
    synth, filt = _read(metrics_dir / "synthesize.json"), _read(metrics_dir / "filter.json")
    training = {s: _read(metrics_dir / f"{s}.json") for s in ("synthesizer_initial", "synthesizer", "pretrain")
                if (metrics_dir / f"{s}.json").is_file()}
    teacher = next(iter(kd.values())).get("teacher", {})
    costs = {
        "teacher": {"label": teacher.get("label") or teacher.get("model"),
                    "calls": sum(k["items"] for k in kd.values()),
                    "prompt_tokens": sum(k["prompt_tokens"] for k in kd.values()),
                    "completion_tokens": sum(k["completion_tokens"] for k in kd.values()),
                    "usd": round(sum(k["cost_usd"] for k in kd.values()), 2)},
        "synthesis": {"records": synth["records"], "new_tokens": synth["new_tokens"], "kept_after_filter": filt["kept"],
                      "paper_projection": synth["projection"]},
        "training": {s: {"steps": t.get("steps"), "tokens_seen": t.get("tokens_seen")} for s, t in training.items()},
    }
    return {"benchmarks": rows, "base_vs_trained": comparisons, "costs": costs, "paper_model": PAPER_MODEL}


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


SETTING_NAMES = {"nl": "NL", "tool": "tool"}


def markdown(summary: dict[str, Any]) -> str:
    lines = [f"| benchmark | setting | correct / items | accuracy % [95% CI] | no answer (cut off) | "
             f"{summary['paper_model']} NL, paper |", "|---|---|---:|---:|---:|---:|"]
    for r in summary["benchmarks"]:
        for s in ("nl", "tool"):
            if s not in r:
                continue
            lo, hi = r[f"{s}_ci95"]
            lines.append(f"| {r['benchmark']} | {SETTING_NAMES[s]} | {r[f'{s}_correct']} / {r[f'{s}_total']} | "
                         f"{r[s]:.1f} [{lo:.1f}, {hi:.1f}] | {r[f'{s}_invalid']} ({r[f'{s}_cut_off']}) | "
                         f"{_fmt(r['paper_nl']) if s == 'nl' else ''} |")
    lines += ["", "*no answer*: outputs with no extractable answer; *cut off*: those that hit the generation "
              "budget (eval.max_new_tokens) before stating one, which grade as wrong. A score of 0 with every "
              "output cut off means the model never finished a solution within the budget."]
    losses = [r for r in summary["benchmarks"] if "loss" in r]
    if losses:
        lines += ["", "Held-out loss: mean negative log-likelihood per token of each item's gold solution given its "
                  "question (lower is better; 95% bootstrap interval over items).", "",
                  "| benchmark | items | mean NLL [95% CI] |", "|---|---:|---:|"]
        lines += [f"| {r['benchmark']} | {r['loss_items']} | {r['loss']:.3f} [{r['loss_ci95'][0]:.3f}, "
                  f"{r['loss_ci95'][1]:.3f}] |" for r in losses]
    if summary.get("base_vs_trained"):
        lines += ["", "Base model vs trained model on the same items: the paired difference (trained - base) with "
                  "its paired-bootstrap 95% interval; an interval that excludes 0 is a real change at this "
                  "sample size. Accuracy in %, loss in nats per token (lower is better).", "",
                  "| benchmark | measure | items | base | trained | difference [95% CI] |",
                  "|---|---|---:|---:|---:|---:|"]
        for c in summary["base_vs_trained"]:
            measure = "held-out loss" if c["setting"] == "loss" else f"{SETTING_NAMES[c['setting']]} accuracy"
            digits = 3 if c["setting"] == "loss" else 1
            lines.append(f"| {c['benchmark']} | {measure} | {c['items']} | {c['base']:.{digits}f} | "
                         f"{c['trained']:.{digits}f} | {c['diff']:+.{digits}f} [{c['diff_ci95'][0]:+.{digits}f}, "
                         f"{c['diff_ci95'][1]:+.{digits}f}] |")
    c = summary["costs"]
    t, s = c["teacher"], c["synthesis"]
    lines += ["", f"Teacher ({t['label']}): {t['calls']:,} calls, {t['prompt_tokens']:,} prompt + "
              f"{t['completion_tokens']:,} completion tokens, ${t['usd']:,.2f}.",
              f"Synthesis: {s['records']:,} generations, {s['new_tokens']:,} new tokens, {s['kept_after_filter']:,} "
              f"records kept by the filter. Paper scale: {s['paper_projection']['problems']:,} problems ~ "
              f"{s['paper_projection']['gpu_hours']:,} GPU-hours at {s['paper_projection']['gpu_tokens_per_s']:,} "
              f"tokens/s per GPU."]
    for name, tr in c["training"].items():
        lines.append(f"Training {name}: {tr['steps']} steps, {tr['tokens_seen']:,} tokens.")
    return "\n".join(lines) + "\n"


def chart(summary: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "jiuzhang"  # deterministic output
    rows = summary["benchmarks"]
    names = [r["benchmark"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    width = 0.28
    for i, (key, label) in enumerate((("nl", "NL (ours)"), ("tool", "tool (ours)"),
                                      ("paper_nl", f"NL ({summary['paper_model']}, paper)"))):
        values = [r.get(key) or 0 for r in rows]
        # our bars carry their 95% Wilson interval (tens of items per benchmark in small profiles)
        err = None if key == "paper_nl" else [[v - r[f"{key}_ci95"][0] if key in r else 0 for v, r in zip(values, rows)],
                                              [r[f"{key}_ci95"][1] - v if key in r else 0 for v, r in zip(values, rows)]]
        ax.bar([x + (i - 1) * width for x in range(len(names))], values, width, label=label, yerr=err, capsize=2,
               error_kw={"elinewidth": 0.8})
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("accuracy (%), ours with 95% CI")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})  # no version/time stamps in the file
    plt.close(fig)
    return buf.getvalue()


def write_report(metrics_dir: Path, paper_path: Path, benchmarks: dict[str, list[str]], out: Path,
                 base_benchmarks: list[str] = (), eval_dir: Path | None = None,
                 base_dir: Path | None = None) -> dict[str, Any]:
    paper = _read(paper_path)
    summary = collect(metrics_dir, benchmarks, paper, base_benchmarks, eval_dir, base_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", summary)
    md = markdown(summary)
    atomic_write_text(out / "results.md", md)
    write_csv(out / "accuracy.csv", [{"benchmark": f"{r['benchmark']} ({s})", "accuracy": round(r[s], 2)}
                                     for r in summary["benchmarks"] for s in ("nl", "tool") if s in r],
              ("benchmark", "accuracy"))
    png = chart(summary)
    (out / "accuracy.png").write_bytes(png)
    atomic_write_text(out / "report.html", f"""<!doctype html><meta charset="utf-8"><title>jiuzhang report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:right}}</style>
<h1>jiuzhang: results</h1><p>Profile results against {html.escape(summary['paper_model'])} as published
(natural-language setting). Smoke-profile models are tiny stand-ins; their scores are not comparable.</p>
<pre>{html.escape(md)}</pre>
<img alt="accuracy per benchmark" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Wall time</h2><p>Wall times differ on every run, so they are not part of this reproducible report:
each stage's last run is in <code>metrics/run/&lt;stage&gt;.json</code>, the whole pipeline's in
<code>metrics/run/repro.json</code> (printed by <code>jiuzhang repro</code>).</p>
""")
    return {"benchmarks": len(summary["benchmarks"]), "teacher_usd": summary["costs"]["teacher"]["usd"]}
