"""Eval and report tests' helpers: eval params and the stage outputs the report reads."""

from __future__ import annotations

import json

from jiuzhang.config.loader import validate_params
from jiuzhang.evaluation.tasks import TASKS, load_rows
from jiuzhang.report.page import write_report

from conftest import ROOT, SHARED, tiny_params


def params(**eval_over):
    raw = tiny_params({"x": "u.jsonl"})
    raw["benchmarks"]["root"] = str(SHARED / "benchmarks")
    raw["eval"].update({"limit": 3, "max_new_tokens": 12, "fewshot_dir": str(ROOT / "templates/eval/fewshot"),
                        **eval_over})
    return raw


def report_fixture(tmp_path, with_base: bool = False):
    """Stage outputs as the report reads them: metrics, per-item predictions, params (the smoke profile's
    shape, eval on gsm8k + aqua)."""
    m = tmp_path / "metrics"
    (m / "eval").mkdir(parents=True)
    rows = {n: load_rows(SHARED / "benchmarks", n, 2) for n in ("gsm8k", "aqua")}
    for name in ("gsm8k", "aqua"):
        settings = {"nl": {"accuracy": 0.5, "correct": 1, "total": 2, "invalid": 1, "cut_off": 1}}
        if name == "gsm8k":
            settings["tool"] = {"accuracy": 1.0, "correct": 2, "total": 2, "invalid": 0, "executions": {"ok": 2}}
        (m / "eval" / f"{name}.json").write_text(json.dumps({"benchmark": name, "items": 2, **settings}))
        preds = [{"idx": r["_idx"], "setting": s, "prediction": f"Step 1 <b>{name}</b>. The answer is {TASKS[name].gold(r)}."
                  if (i == 0 or s == "tool") else "", "extracted": TASKS[name].gold(r) if (i == 0 or s == "tool") else None,
                  "gold": TASKS[name].gold(r), "correct": i == 0 or s == "tool", "cut_off": i == 1 and s == "nl"}
                 for s in settings for i, r in enumerate(rows[name])]
        (tmp_path / "eval" / name).mkdir(parents=True)
        (tmp_path / "eval" / name / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    kd = {"items": 10, "kept": 10, "prompt_tokens": 100, "completion_tokens": 200, "cost_usd": 1.5,
          "teacher": {"label": "OFFLINE TEACHER (stand-in)"}}
    (m / "kd_initial.json").write_text(json.dumps(kd))
    (m / "kd_boost.json").write_text(json.dumps(kd))
    (m / "synthesize.json").write_text(json.dumps({"records": 5, "new_tokens": 50, "projection": {
        "problems": 6000000, "gpu_hours": 300.0, "gpu_tokens_per_s": 2500}}))
    by_kind = {"nl": {"input": 4, "kept": 1, "keep_rate": 0.25, "dropped_by_reason": {"truncated": 3}},
               "tool": {"input": 1, "kept": 0, "keep_rate": 0.0, "dropped_by_reason": {"code_error": 1}}}
    (m / "filter.json").write_text(json.dumps({"input": 5, "kept": 1, "keep_rate": 0.2, "by_kind": by_kind,
                                               "dropped_by_reason": {"truncated": 3, "code_error": 1, "empty": 0}}))
    (m / "filter_init.json").write_text(json.dumps({"input": 5, "kept": 0, "keep_rate": 0.0, "by_kind": {
        "nl": {"input": 4, "kept": 0, "keep_rate": 0.0, "dropped_by_reason": {"missing_problem": 4}},
        "tool": {"input": 1, "kept": 0, "keep_rate": 0.0, "dropped_by_reason": {"no_code": 1}}}}))
    (m / "pretrain.json").write_text(json.dumps({"steps": 3, "tokens_seen": 1200, "final_loss": 2.5,
                                                 "used_records": 6, "synthetic_records": 1, "supplement_records": 9}))
    raw = params(benchmarks={"gsm8k": ["nl", "tool"], "aqua": ["nl"]}, base_benchmarks=[], arm_benchmarks=[])
    if with_base:
        raw["eval"].update(benchmarks={"gsm8k": ["nl", "tool", "loss"], "aqua": ["nl"]}, base_benchmarks=["gsm8k"],
                           arm_benchmarks=[])
        gsm = json.loads((m / "eval" / "gsm8k.json").read_text())
        gsm["loss"] = {"mean_nll": 1.5, "ci95": [1.2, 1.8], "items": 2, "total": 2}
        gsm["loss_neutral"] = {"mean_nll": 3.3, "ci95": [3.0, 3.6], "items": 2, "total": 2}
        (m / "eval" / "gsm8k.json").write_text(json.dumps(gsm))
        (m / "eval_base").mkdir()
        (m / "eval_base" / "gsm8k.json").write_text(json.dumps({
            "benchmark": "gsm8k", "items": 2, "nl": {"correct": 0, "total": 2, "invalid": 2},
            "tool": {"correct": 0, "total": 2, "invalid": 2}, "loss": {"mean_nll": 3.25, "ci95": [3.0, 3.5], "items": 2},
            "loss_neutral": {"mean_nll": 3.25, "ci95": [3.0, 3.5], "items": 2}}))
        # the trained model gains under the paper's template only (a learnt format): neutral 3.0/3.6 vs 3.0/3.5
        for folder, correct, nll, neutral in (("eval", [True, False], [1.0, 2.0], [3.0, 3.6]),
                                              ("eval_base", [False, False], [3.0, 3.5], [3.0, 3.5])):
            (tmp_path / folder / "gsm8k").mkdir(parents=True, exist_ok=True)
            out = [{"idx": r["_idx"], "setting": s, "correct": c, "prediction": "The answer is 1." if c else "x",
                    "extracted": "1" if c else None, "gold": "18", "cut_off": False}
                   for s in ("nl", "tool") for r, c in zip(rows["gsm8k"], correct)]
            out += [{"idx": r["_idx"], "setting": "loss", "nll": v} for r, v in zip(rows["gsm8k"], nll)]
            out += [{"idx": r["_idx"], "setting": "loss_neutral", "nll": v} for r, v in zip(rows["gsm8k"], neutral)]
            (tmp_path / folder / "gsm8k" / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in out))
    return m, validate_params(raw, "test")


def build_report(tmp_path, m, p, name: str):
    base = tmp_path / "eval_base" if p.eval.base_benchmarks else None
    return write_report(m, ROOT / "templates" / "eval" / "paper_results.json", p, tmp_path / name, tmp_path / "eval",
                        base, ROOT / "templates" / "report" / "report.html.j2", ROOT)
