"""Held-out loss (issue 14): the NLL of gold solutions given their questions, built as training builds a
sequence; intervals for small evaluations; the base-vs-trained paired comparison in the report."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from jiuzhang.config.training import ModelSource, TrainConfig
from jiuzhang.evaluation.heldout import gold_target, heldout_nll
from jiuzhang.evaluation.stats import bootstrap_mean, paired_difference, wilson
from jiuzhang.evaluation.tasks import TASKS, load_rows
from jiuzhang.report.data import compare_base
from jiuzhang.training.packing import Example, PackStats, tokenize
from jiuzhang.training.trainer import run_training
from jiuzhang.training.world import World

from conftest import SHARED, make_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = make_tiny_model(tmp_path_factory.mktemp("heldout") / "model")
    return folder, AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def examples(n: int = 6) -> list[Example]:
    rows = load_rows(SHARED / "benchmarks", "gsm8k", n)
    task = TASKS["gsm8k"]
    return [Example(f"g{r['_idx']}", f"## Question\n{task.question(r)}\n\n## Solution\n", gold_target(task, r))
            for r in rows]


def test_gold_targets_are_solutions_or_answer_statements():
    gsm, svamp = TASKS["gsm8k"], TASKS["svamp"]
    row = load_rows(SHARED / "benchmarks", "gsm8k", 1)[0]
    target = gold_target(gsm, row)
    assert "<<" not in target and "#### 18" in target  # calculator notes removed, the answer kept
    srow = load_rows(SHARED / "benchmarks", "svamp", 1)[0]
    assert gold_target(svamp, srow) == "( 290.0 / 2.0 ) = 145. The answer is 145."  # its gold equation
    mrow = load_rows(SHARED / "benchmarks", "mawps", 1)[0]
    assert gold_target(TASKS["mawps"], mrow) == "The answer is 43."  # no worked solution in the file


def test_heldout_nll_is_the_training_loss_and_does_not_depend_on_the_batch(tiny):
    _, model, tok = tiny
    exs = examples()
    one = heldout_nll(model, tok, exs, 1, 1024)
    many = heldout_nll(model, tok, exs, 4, 1024)
    assert one.keys() == many.keys() == {e.id for e in exs}
    for k in one:
        assert one[k][1] == many[k][1] and one[k][0] == pytest.approx(many[k][0], abs=1e-5)
    # the same number the trainer's loss gives for that example alone
    item = next(iter(tokenize(exs[:1], tok, 1024, "truncate", PackStats())))
    ids, labels = torch.tensor([item.input_ids]), torch.tensor([item.labels])
    with torch.no_grad():
        loss = model(input_ids=ids, labels=labels).loss.item()
    assert one[exs[0].id][0] == pytest.approx(loss, rel=1e-5)


def test_training_on_the_solutions_lowers_their_heldout_loss_measurably(tiny, tmp_path):
    """The measure sees what accuracy cannot at this scale: a few steps on gold solutions of *other*
    items lower the loss on the held-out ones, and the paired interval excludes 0."""
    folder, model, tok = tiny
    rows = load_rows(SHARED / "benchmarks", "gsm8k", 60)
    task = TASKS["gsm8k"]
    exs = [Example(f"g{r['_idx']}", f"## Question\n{task.question(r)}\n\n## Solution\n", gold_target(task, r))
           for r in rows]
    train, held = exs[:40], exs[40:]
    cfg = TrainConfig.model_validate(dict(max_length=512, micro_batch=4, global_batch=8, epochs=3, lr=3e-3,
                                          weight_decay=0.0, schedule="cosine", save_every=1000, log_every=5,
                                          seed_data=1, seed_dropout=2, threads=2, on_overlong="truncate"))
    run_training(ModelSource(path=str(folder)), train, cfg, tmp_path / "trained", tmp_path / "ck", World())
    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "trained").eval()
    before = heldout_nll(model, tok, held, 8, 1024)
    after = heldout_nll(trained, tok, held, 8, 1024)
    diff, lo, hi = paired_difference([after[e.id][0] for e in held], [before[e.id][0] for e in held])
    assert diff < 0 and hi < 0, (diff, lo, hi)


def test_intervals():
    lo, hi = wilson(0, 8)
    assert lo == 0.0 and 0.30 < hi < 0.35          # 0/8 is not "0 with certainty"
    assert wilson(8, 8)[1] == 1.0 and wilson(4, 8)[0] == pytest.approx(1 - wilson(4, 8)[1])
    mean, lo, hi = bootstrap_mean([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and lo < 2.5 < hi and bootstrap_mean([1.0, 2.0, 3.0, 4.0]) == (mean, lo, hi)  # seeded
    # paired: a constant shift is certain, whatever the spread across items
    d, lo, hi = paired_difference([x + 0.5 for x in (1.0, 9.0, 3.0, 7.0)], [1.0, 9.0, 3.0, 7.0])
    assert d == lo == hi == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same items"):
        paired_difference([1.0], [1.0, 2.0])


def test_base_vs_trained_comparison_pairs_items(tmp_path):
    def write(folder, rows):
        (folder / "gsm8k").mkdir(parents=True)
        (folder / "gsm8k" / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    trained = [{"idx": i, "setting": "nl", "correct": i < 3} for i in range(6)] + \
              [{"idx": i, "setting": "loss", "nll": 1.0 + 0.1 * i} for i in range(6)]
    base = [{"idx": i, "setting": "nl", "correct": i < 1} for i in range(6)] + \
           [{"idx": i, "setting": "loss", "nll": 2.0 + 0.1 * i} for i in range(6)]
    write(tmp_path / "t", trained)
    write(tmp_path / "b", base)
    rows = {c["setting"]: c for c in compare_base("gsm8k", ["nl", "loss"], tmp_path / "t", tmp_path / "b")}
    assert rows["nl"]["base"] == pytest.approx(100 / 6, abs=1e-3) and rows["nl"]["trained"] == 50.0
    assert rows["nl"]["diff"] == pytest.approx(100 * 2 / 6, abs=1e-3) and rows["nl"]["items"] == 6
    assert rows["loss"]["diff"] == pytest.approx(-1.0) and rows["loss"]["diff_ci95"] == [-1.0, -1.0]


def test_loss_limit_scores_more_items_than_generation_and_counts_them(tiny):
    """eval.loss_limit: the cheap loss setting takes its own item count; generation keeps eval.limit."""
    from jiuzhang.config.evaluation import EvalConfig
    from jiuzhang.config.loader import validate_params
    from jiuzhang.evaluation.evaluator import evaluate
    from jiuzhang.evaluation.suite import build_eval_engine

    from conftest import tiny_params

    folder, _, _ = tiny
    raw = tiny_params({"x": "unused.jsonl"})
    raw["eval"].update({"benchmarks": {"svamp": ["nl", "loss"]}, "base_benchmarks": [], "arm_benchmarks": [], "limit": 3, "loss_limit": 7,
                        "max_new_tokens": 4})
    p = validate_params(raw, "test")
    cfg: EvalConfig = p.eval
    assert (cfg.limit_for("svamp", "nl"), cfg.limit_for("svamp", "loss"), cfg.limit_for("svamp")) == (3, 7, 7)
    rows = load_rows(SHARED / "benchmarks", "svamp", cfg.limit_for("svamp"))
    preds, metrics = evaluate(TASKS["svamp"], rows, ("nl", "loss"), build_eval_engine(p, str(folder), None, None, None),
                              cfg)
    assert metrics["nl"]["total"] == 3 and metrics["loss"]["items"] == 7
    assert sum(p["setting"] == "nl" for p in preds) == 3 and sum(p["setting"] == "loss" for p in preds) == 7


def test_chat_template_needs_a_model_that_has_one(tiny):
    from dataclasses import replace

    from jiuzhang.common.io import InputDataError
    from jiuzhang.config.loader import validate_params
    from jiuzhang.evaluation.suite import eval_engine_settings
    from jiuzhang.synthesis.engine import HFEngine

    from conftest import tiny_params

    folder, _, _ = tiny
    p = validate_params(tiny_params({"x": "unused.jsonl"}), "test")
    with pytest.raises(InputDataError, match="eval.chat_template: true, but .* has no chat template"):
        HFEngine(folder, replace(eval_engine_settings(p.eval, p.synthesize), chat_template=True))


def test_the_report_names_what_each_loss_scores():
    from jiuzhang.evaluation.heldout import target_kind
    from jiuzhang.evaluation.tasks import TASKS
    assert target_kind(TASKS["gsm8k"]) == target_kind(TASKS["math500"]) == "worked solution"
    assert target_kind(TASKS["svamp"]) == "gold equation + answer"
    assert target_kind(TASKS["mawps"]) == "answer statement only"
