"""The control-arm comparison: base, synthetic and each control arm (pretrain.arms) on the same items,
every measure side by side, with paired differences vs the base model and vs the raw-corpus arm.

Read from the eval stages' per-item predictions (not from their summary metrics), so every difference is
paired on the items all arms scored: a paired bootstrap for held-out losses, Newcombe's paired score
interval (with McNemar's exact p) for accuracies, whose interval stays honest when no item differs
(0 of 30 vs 0 of 30 is about +-11 points, not a certain 0). Each measure names its winner and whether
the winner's interval against the runner-up excludes 0; the page states the verdict in words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jiuzhang.common.io import InputDataError
from jiuzhang.evaluation.heldout import is_loss
from jiuzhang.evaluation.stats import bootstrap_mean, paired_difference, paired_proportions, wilson

# What each arm trained on, in words (the page's table of arms).
DATA = {
    "base": "no further training",
    "synthetic": "our kept synthetic records: '## Question ... ## Solution' records, loss on the solution",
    "raw": "the corpus snippets the prompts were built from, as plain text, loss on every token (raw text has no "
           "question/solution split, so it cannot share the records' format)",
    "released": "the paper's released JiuZhang3.0 sample only: '## Question ... ## Solution' records, loss on the "
                "solution",
}


def read_predictions(folder: Path) -> dict[str, dict[int, dict[str, Any]]]:
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


def item_value(row: dict[str, Any], setting: str) -> float | None:
    """The per-item figure a setting is scored by: the NLL of a loss setting, 1/0 for an accuracy."""
    return row.get("nll") if is_loss(setting) else float(bool(row["correct"]))


def paired_delta(after: list[float], before: list[float], loss: bool) -> dict[str, Any]:
    """Paired difference ``after - before`` over the same items, with its 95% interval and a verdict: per-item
    NLLs by paired bootstrap (nats), per-item 0/1 correctness by Newcombe's paired interval (points, with
    McNemar's exact p), which is not zero-width when no item differs."""
    if loss:
        d, lo, hi = paired_difference(after, before)
        out: dict[str, Any] = {"diff": round(d, 4), "ci95": [round(lo, 4), round(hi, 4)], "method": "paired bootstrap"}
        better, worse = hi < 0, lo > 0
    else:
        p = paired_proportions([x > 0.5 for x in after], [x > 0.5 for x in before])
        out = {"diff": round(100 * p["diff"], 4), "ci95": [round(100 * p["lo"], 4), round(100 * p["hi"], 4)],
               "method": "Newcombe paired interval", "p_mcnemar": round(p["p_mcnemar"], 4),
               "gained": p["gained"], "lost": p["lost"]}
        better, worse = p["lo"] > 0, p["hi"] < 0
    out["verdict"] = "better" if better else "worse" if worse else "no difference detectable"
    return out


def _summary(values: list[float], loss: bool) -> dict[str, Any]:
    """One arm's mean and 95% interval: bootstrap over items for a loss, Wilson for an accuracy (in %)."""
    if loss:
        m, lo, hi = bootstrap_mean(values)
        return {"mean": round(m, 4), "ci95": [round(lo, 4), round(hi, 4)]}
    k = int(sum(values))
    lo, hi = wilson(k, len(values))
    return {"mean": round(100.0 * k / len(values), 4), "ci95": [round(100 * lo, 4), round(100 * hi, 4)], "correct": k}


def measure_rows(benchmark: str, settings: Sequence[str], dirs: dict[str, Path]) -> list[dict[str, Any]]:
    """One row per scored setting of ``benchmark``: every arm's mean and interval on the items all arms
    scored, differences vs base and vs raw, and the winner."""
    preds = {arm: read_predictions(folder / benchmark) for arm, folder in dirs.items()}
    rows = []
    for s in settings:
        per_arm = {arm: p.get(s, {}) for arm, p in preds.items()}
        items = sorted(set.intersection(*(set(v) for v in per_arm.values())))
        items = [i for i in items if all(item_value(per_arm[a][i], s) is not None for a in per_arm)]
        if not items:
            continue
        loss = is_loss(s)
        # every value is set on these items (the filter above): the comprehension only tells the type checker
        values = {a: [v for v in (item_value(per_arm[a][i], s) for i in items) if v is not None] for a in per_arm}
        arms = {a: _summary(v, loss) for a, v in values.items()}
        row: dict[str, Any] = {"benchmark": benchmark, "setting": s, "items": len(items), "arms": arms,
                               "vs_base": {}, "vs_raw": {}}
        for a in values:
            if a != "base" and "base" in values:
                row["vs_base"][a] = paired_delta(values[a], values["base"], loss)
            if a not in ("raw", "base") and "raw" in values:
                row["vs_raw"][a] = paired_delta(values[a], values["raw"], loss)
        ranked = sorted(values, key=lambda a: (arms[a]["mean"] if loss else -arms[a]["mean"], a))
        winner, runner_up = ranked[0], ranked[1] if len(ranked) > 1 else None
        # equal means (e.g. every arm 0 of 30) crown no one: name the tie instead of the first arm in the list
        row["tied"] = [a for a in ranked if arms[a]["mean"] == arms[winner]["mean"]]
        row["winner"] = winner if len(row["tied"]) == 1 else None
        if runner_up is not None:
            d = paired_delta(values[winner], values[runner_up], loss)
            row["winner_vs_runner_up"] = {"runner_up": runner_up, **d, "excludes_0": d["verdict"] == "better"}
        rows.append(row)
    return rows


def budgets(metrics_dir: Path, arms: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each trained arm's training volume: records, target tokens (the budget), optimizer steps."""
    out = {"base": {"records": 0, "target_tokens": 0, "steps": 0, "data": DATA["base"]}}
    for arm in ["synthetic", *arms]:
        path = metrics_dir / ("pretrain.json" if arm == "synthetic" else f"pretrain_arms/{arm}.json")
        if not path.is_file():
            raise InputDataError(f"{path}: missing; run the pretrain stages first (dvc repro)")
        m = json.loads(path.read_text())
        data = DATA.get(arm, arm)
        if arm == "synthetic" and m.get("supplement_used"):  # pretrain.supplement mixes other records in: say so
            data += f" (with {m['supplement_used']} records of pretrain.supplement mixed in)"
        out[arm] = {"records": m.get("examples"), "target_tokens": m.get("target_tokens_per_epoch"),
                    "steps": m.get("steps"), "data": data}
    return out


def compare_arms(benchmarks: Sequence[str], settings: Mapping[str, Sequence[str]], metrics_dir: Path, eval_dir: Path,
                 base_dir: Path, arm_dir: Path, arms: Sequence[str]) -> dict[str, Any] | None:
    """The whole comparison (None when no control arm is configured)."""
    if not arms:
        return None
    rows = []
    for b in benchmarks:
        dirs = {"base": base_dir, "synthetic": eval_dir, **{a: arm_dir / a for a in arms}}
        rows += measure_rows(b, settings[b], dirs)
    return {"arms": ["base", "synthetic", *arms], "budgets": budgets(metrics_dir, arms), "rows": rows}


def verdict_lines(comparison: dict[str, Any], names: dict[str, str]) -> list[str]:
    """Plain sentences: per measure, which arm won and whether that is beyond noise."""
    lines = []
    for r in comparison["rows"]:
        w = r.get("winner_vs_runner_up")
        unit, d = ("nats/token", 3) if is_loss(r["setting"]) else ("points", 1)
        measure = f"{r['benchmark']} {names.get(r['setting'], r['setting'])}"
        if w is None:
            lines.append(f"{measure}: {r['winner']} (only arm)")
            continue
        if r["winner"] is None:
            lines.append(f"{measure} ({r['items']} items): no arm wins: {', '.join(r['tied'])} tie (same mean); "
                         f"the interval of their difference is [{w['ci95'][0]:+.{d}f}, {w['ci95'][1]:+.{d}f}] {unit}, "
                         f"so a difference that size cannot be ruled out.")
            continue
        plain = ("the interval excludes 0" if w["excludes_0"] else "the interval includes 0: not distinguishable "
                 "from the runner-up at this sample size")
        lines.append(f"{measure} ({r['items']} items): {r['winner']} wins; vs {w['runner_up']} {w['diff']:+.{d}f} "
                     f"[{w['ci95'][0]:+.{d}f}, {w['ci95'][1]:+.{d}f}] {unit}, {plain}.")
    return lines


def render_text(comparison: dict[str, Any], names: dict[str, str]) -> str:
    """The comparison as plain text for a terminal (what `jiuzhang compare --arms` prints)."""
    arms = comparison["arms"]
    lines = ["arms (same base, settings and seeds; one target-token budget):"]
    width = max(len(a) for a in arms)
    for a, b in comparison["budgets"].items():
        lines.append(f"  {a.ljust(width)}  {b['records']!s:>6} records  {b['target_tokens']:>10,} target tokens  "
                     f"{b['steps']!s:>5} steps  {b['data']}")
    for r in comparison["rows"]:
        loss = is_loss(r["setting"])
        d, unit = (3, "nats/token, lower is better") if loss else (1, "%, higher is better")
        lines += ["", f"{r['benchmark']} {names.get(r['setting'], r['setting'])} ({r['items']} items; {unit}):"]
        for a in arms:
            m = r["arms"][a]
            extra = []
            for label, side in (("vs base", r["vs_base"]), ("vs raw", r["vs_raw"])):
                if a in side:
                    v = side[a]
                    extra.append(f"{label} {v['diff']:+.{d}f} [{v['ci95'][0]:+.{d}f}, {v['ci95'][1]:+.{d}f}] "
                                 f"{v['verdict']}")
            lines.append(f"  {a.ljust(width)}  {m['mean']:.{d}f} [{m['ci95'][0]:.{d}f}, {m['ci95'][1]:.{d}f}]"
                         + (f"   {'; '.join(extra)}" if extra else ""))
    lines += ["", "verdicts:", *[f"  {v}" for v in verdict_lines(comparison, names)],
              "", "A gain under the paper template only (not under the neutral prompt) is a format effect."]
    return "\n".join(lines)
