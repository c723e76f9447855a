"""The few figures per stage that `dvc metrics show` and `dvc exp show` display (``metrics/``).

Every stage writes all its results to ``results/<stage>.json`` (a plain DVC output, read by the report,
``jiuzhang compare`` and the tests); its headline is a handful of those numbers under one small vocabulary
shared by all stages, so DVC's table (one column per key, one row per file) fits a terminal:

======== ==================================================================================
records  rows the stage produced (snippets, prompts, KD pairs, selected, generated, kept, trained on)
keep     the filter's keep rate (kept / input)
loss     training: the final training loss; eval: the held-out loss (mean NLL per answer token)
loss_ci  eval: the held-out loss's 95% bootstrap interval, ``low-high``
acc      eval: natural-language (CoT) accuracy, greedy decoding (a tool-only benchmark: its tool accuracy)
acc_ci   eval: its 95% Wilson interval, ``low-high``
n        eval: the items graded
======== ==================================================================================

Intervals are one text column each (``0.000-0.324``) rather than two numeric ones: that keeps the table
within 100 columns. The other tool-setting accuracies and everything else stay in ``results/`` and the report.
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Any

from jiuzhang.common.intervals import wilson
from jiuzhang.common.io import write_json

# the result key that counts each stage's rows (stage name without its @variant)
RECORDS = {"corpus": "kept", "prompts": "prompts", "kd_initial": "kept", "kd_boost": "kept", "influence": "selected",
           "synthesize": "records", "synthesize_init": "records", "filter": "kept", "filter_init": "kept",
           "synthesizer_initial": "examples", "synthesizer": "examples", "pretrain": "examples",
           "pretrain_arm": "examples"}

# set by the stage's --headline option (stages/options.py), taken by as_stage
_target: ContextVar[str | None] = ContextVar("headline_target", default=None)


def set_target(path: str | None) -> None:
    """Where the running command writes its headline (None: nowhere)."""
    _target.set(path)


def take_target() -> str | None:
    """The headline path set for this command, cleared so that a later command in the process does not reuse it."""
    path = _target.get()
    _target.set(None)
    return path


def _span(low: float, high: float) -> str:
    return f"{low:.3f}-{high:.3f}"


def headline(stage: str, results: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of ``results`` (a stage's metrics) for stage ``stage`` (``eval@gsm8k`` style names ok)."""
    name = stage.split("@")[0]
    out: dict[str, Any] = {}
    key = RECORDS.get(name)
    if key is not None and isinstance(results.get(key), int):
        out["records"] = results[key]
    if name.startswith("filter") and isinstance(results.get("keep_rate"), (int, float)):
        out["keep"] = round(results["keep_rate"], 3)
    if isinstance(results.get("final_loss"), (int, float)):
        out["loss"] = round(results["final_loss"], 3)
    loss = results.get("loss")
    if isinstance(loss, dict) and isinstance(loss.get("mean_nll"), (int, float)):
        out["loss"] = round(loss["mean_nll"], 3)
        if loss.get("ci95"):
            out["loss_ci"] = _span(*loss["ci95"])
    # the benchmark's first scored setting: NL, or tool for a tool-only benchmark (gsm_hard)
    scored = next((results[k] for k in ("nl", "tool") if isinstance(results.get(k), dict) and results[k].get("total")),
                  None)
    if scored is not None:
        out["acc"] = round(scored["accuracy"], 3)
        out["acc_ci"] = _span(*wilson(scored["correct"], scored["total"]))
        out["n"] = scored["total"]
    return out


def write_headline(stage: str, results: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Write the headline of ``results`` to ``path`` (a DVC metrics file) and return it."""
    figures = headline(stage, results)
    write_json(path, figures)
    return figures
