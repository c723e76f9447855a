"""The headline figures: the few numbers per stage that `dvc metrics show` displays."""

from __future__ import annotations

import json

from jiuzhang.common.headline import headline, set_target, take_target, write_headline


def test_each_stage_kind_gets_its_figures():
    assert headline("corpus", {"kept": 4991, "dropped": {"too_short": 3}}) == {"records": 4991}
    assert headline("filter_init", {"kept": 12, "input": 64, "keep_rate": 0.1875}) == {"records": 12, "keep": 0.188}
    assert headline("pretrain_arm@raw", {"examples": 144, "final_loss": 5.85391}) == {"records": 144, "loss": 5.854}
    assert headline("base", {"mode": "hub", "parameters": 134515008}) == {}  # nothing trained: no figure made up
    evaluated = {"nl": {"accuracy": 0.25, "correct": 2, "total": 8},
                 "loss": {"mean_nll": 7.207681, "ci95": [6.978996, 7.455144]}}
    assert headline("eval@gsm8k", evaluated) == {"acc": 0.25, "acc_ci": "0.071-0.591", "n": 8, "loss": 7.208,
                                                 "loss_ci": "6.979-7.455"}
    # no graded items: no accuracy (not a 0.0 without its reason)
    assert "acc" not in headline("eval@aqua", {"nl": {"accuracy": 0.0, "correct": 0, "total": 0}})


def test_the_target_is_taken_once(tmp_path):
    set_target(str(tmp_path / "h.json"))
    assert take_target() == str(tmp_path / "h.json") and take_target() is None
    write_headline("influence", {"selected": 80, "candidates": 160}, tmp_path / "h.json")
    assert json.loads((tmp_path / "h.json").read_text()) == {"records": 80}


def test_a_tool_only_benchmark_shows_its_tool_accuracy():
    """gsm_hard is graded in the tool setting only: its headline row is that accuracy, not empty."""
    from jiuzhang.common.headline import headline

    results = {"benchmark": "gsm_hard", "items": 8,
               "tool": {"accuracy": 0.25, "correct": 2, "total": 8, "invalid": 1}}
    assert headline("eval@gsm_hard", results) == {"acc": 0.25, "acc_ci": "0.071-0.591", "n": 8}
    both = {"nl": {"accuracy": 0.5, "correct": 4, "total": 8}, "tool": results["tool"]}
    assert headline("eval@gsm8k", both)["acc"] == 0.5  # NL first where there is one
