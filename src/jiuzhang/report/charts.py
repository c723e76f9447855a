"""The report's charts as deterministic PNG bytes (matplotlib, Agg, no timestamps): accuracy and held-out loss."""

from __future__ import annotations

import io
from typing import Any

from jiuzhang.evaluation.heldout import LOSS_KEYS
from jiuzhang.report.data import FORMAT_NAMES, SETTING_NAMES


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
        ys, values, texts = [], [], []
        err: list[list[float]] = [[], []]  # distance to the interval's lower and upper end, per bar
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


