"""The report's files: results.md, the HTML page (Jinja2, charts embedded), summary.json, accuracy.csv/png."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from jiuzhang.common.io import InputDataError, atomic_write_text, write_csv, write_json
from jiuzhang.config.root import Params
from jiuzhang.evaluation.heldout import LOSS_KEYS, is_loss
from jiuzhang.report.charts import chart, loss_chart
from jiuzhang.report.data import FORMAT_NAMES, MEASURE_NAMES, SETTING_NAMES, collect, read_json


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"




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
    paper = read_json(paper_path)
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
