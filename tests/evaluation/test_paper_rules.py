"""eval.grading.rules: paper grades as JiuZhang3.0's evaluation code does (its documented behaviours, each in
text written here), and the switch reaches the eval stage and `jiuzhang grade`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jiuzhang.evaluation import paper_rules
from jiuzhang.evaluation.agreement import summarize, three_verdicts
from jiuzhang.evaluation.grading import grade
from jiuzhang.evaluation.tasks import TASKS, load_rows

from conftest import ROOT as REPO
from conftest import SHARED

BENCH = SHARED / "benchmarks"
GSM = {"question": "q", "answer": "Some steps.\n#### 125"}


@pytest.mark.parametrize("output, benchmark, extracted", [
    ("So the total is \\boxed{\\dfrac{3}{4}} cups.", "math", "\\frac{3}{4}"),
    ("The final answer is $\\frac{1}{2}$. I hope it is correct.", "minerva_math", "\\frac{1}{2}"),
    ("The answer is $18.", "gsm8k", "18"),
    ("The answer is five.", "gsm8k", "5"),                       # number words, as the harness reads them
    ("The answer is 18. Next we rest.", "gsm8k", "18Nextwerest"),  # everything after 'he answer is'
    ("She has 3 apples and then 7", "gsm8k", "7"),               # the last number
    ("So $x = 5$ works.", "gsm8k", "5"),
    ("The answer is (B) because ...", "aqua", "B"),
    ("Option A fails and option C works", "mmlu_stem", "C"),     # no 'answer is': the last letter
])
def test_extraction(output, benchmark, extracted):
    assert paper_rules.extract(output, benchmark) == extracted


@pytest.mark.parametrize("pred, gold, equal", [
    ("12500", "125", True),           # the gold x 100 counts (a percentage either way)
    ("1.25", "125", True),            # ... and the gold / 100
    ("124.99", "125", True),          # relative 1e-4
    ("124.9", "125", False),
    ("\\frac{14}{3}", "4.6667", True),
    ("(1,2)", "(1, 2)", True),
    ("x^2+y^2-13", "y^2+x^2-13", True),
    ("5", "x=5", True),
    ("\\sqrt{8}", "2\\sqrt{2}", True),   # no requested-form check in the paper's code
    ("7", "8", False),
])
def test_math_equal(pred, gold, equal):
    assert paper_rules.equal(pred, gold) is equal


def test_gold_parsing_follows_the_harness():
    row = load_rows(BENCH, "gsm8k", 1)[0]
    assert paper_rules.gold("gsm8k", row) == "18"
    m5 = load_rows(BENCH, "math500", 3)[2]
    assert paper_rules.gold("math500", m5) == "\\frac{14}{3}"    # from the solution's \boxed{}
    assert paper_rules.gold("mmlu_stem", {"answer": 2}) == "C"
    with pytest.raises(KeyError, match="no rule"):
        paper_rules.gold("nope", {})


def test_gold_solutions_grade_correct_under_the_paper_rules():
    for name in ("gsm8k", "math500", "svamp"):
        task, rows = TASKS[name], load_rows(BENCH, name, 200)
        ok = sum(paper_rules.grade(name, r, task.solution(r))[2] for r in rows)
        assert ok >= 198, (name, ok)


def test_where_the_rules_part():
    """The same outputs, graded both ways: each difference is a documented rule."""
    task = TASKS["gsm8k"]
    assert grade(task, GSM, "The answer is 12500.", rules="paper").correct        # gold x 100
    assert not grade(task, GSM, "The answer is 12500.").correct
    cut = "Step 1: 100 + 25 = 125. Step 2: 125 +"                                # stops mid-sum
    assert grade(task, GSM, cut, rules="paper").correct                          # the last number
    assert not grade(task, GSM, cut).correct and grade(task, GSM, cut).extracted is None
    math = TASKS["math500"]
    row = {"problem": "Simplify $\\sqrt{8}$.", "solution": "\\boxed{2\\sqrt{2}}", "answer": "2\\sqrt{2}"}
    assert grade(math, row, "\\boxed{\\sqrt{8}}", rules="paper").correct          # no form check there
    assert not grade(math, row, "\\boxed{\\sqrt{8}}").correct


def test_agreement_summary_counts_each_kind_of_disagreement():
    task = TASKS["gsm8k"]
    outputs = ["The answer is 125.", "The answer is 12500.", "so 100 + 25 = 125 and", "The answer is 7."]
    verdicts = [three_verdicts(task, GSM, o, False) for o in outputs]
    summary = summarize(verdicts)
    paper = summary["paper"]
    assert paper["compared"] == 4 and paper["agree"] == 2
    assert paper["ours_wrong_other_right"] == 2 and paper["ours_right_other_wrong"] == 0
    assert summary["math_verify"]["compared"] == 4
    choice = summarize([three_verdicts(TASKS["aqua"], {"correct": "B", "options": "[]", "question": "q"},
                                       "The answer is (B).", False)])
    assert choice["math_verify"]["compared"] == 0 and "not comparable" in choice["math_verify"]["note"]


def test_grade_command_rules_and_agreement(tmp_path):
    preds = tmp_path / "p.jsonl"
    rows = [{"idx": 0, "setting": "nl", "prediction": "The answer is 1800.", "cut_off": False},
            {"idx": 1, "setting": "nl", "prediction": "The answer is \\boxed{3}.", "cut_off": False},
            {"idx": 0, "setting": "loss", "nll": 1.2}]                  # a held-out-loss row: skipped
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = lambda *extra: json.loads(subprocess.run(  # noqa: E731
        [sys.executable, "-m", "jiuzhang.cli", "grade", "--benchmark", "gsm8k", "--predictions", str(preds),
         "--root", str(BENCH), *extra], cwd=REPO, capture_output=True, text=True, check=True).stdout)
    ours, paper = run(), run("--rules", "paper")
    assert (ours["correct"], ours["total"]) == (1, 2) and ours["rules"] == "ours"
    assert (paper["correct"], paper["total"]) == (2, 2)                  # 1800 = 18 x 100 under the paper's rules
    agreed = run("--agreement")
    assert agreed["agreement"]["paper"] == {**agreed["agreement"]["paper"], "compared": 2, "agree": 1}


def test_paper_profile_reads_the_papers_exemplars():
    from jiuzhang.config.loader import load_params
    from jiuzhang.evaluation.prompting import load_fewshot

    cfg = load_params(REPO / "configs" / "paper.yaml")
    assert cfg.eval.fewshot_dir == "templates/eval/fewshot_paper" and cfg.eval.grading.rules == "paper"
    folder = REPO / cfg.eval.fewshot_dir
    aqua = load_fewshot(folder, TASKS["aqua"])
    assert len(aqua) == 4 and aqua[0]["question"].startswith("John found that the average of 15 numbers is 40")
    assert load_fewshot(folder, TASKS["sat_math"]) == load_fewshot(folder, TASKS["mmlu_stem"])  # as the harness maps it
    assert "\x0crac{1}{729}" in load_fewshot(folder, TASKS["mmlu_stem"])[0]["question"]  # its bytes, kept
    assert "aae2f9119f57ccaa71c2780c6d63de93a5ee7cba" in (folder / "SOURCE.md").read_text()
    assert "MIT License" in (folder / "LICENSE").read_text()


def test_paper_profile_settings_rows():
    """The README's settings table rows fixed by issue 25, as the paper profile loads them."""
    from jiuzhang.config.loader import load_params

    cfg = load_params(REPO / "configs" / "paper.yaml")
    src = {s.name: s for s in cfg.corpus.sources}
    assert src["mmiqc_stackexchange"].field_max_chars == 1000 and src["mmiqc_stackexchange"].max_chars >= 2002
    assert src["proofwiki_nl"].all_levels and "proofwiki" in cfg.prompts.tool_sources
    assert (cfg.corpus.dedup.exact, cfg.corpus.dedup.near, cfg.corpus.min_chars) == (False, False, 1)
    f = cfg.filter
    assert (f.preset, f.drop_truncated, f.parse_drops, f.exact_dedup, f.near_dedup, f.require_answer) == \
        ("paper", False, False, False, False, False)
    assert (cfg.influence.less.warmup_batch, cfg.influence.less.lora_dropout) == (128, 0.1)


def test_less_warmup_batch_must_be_whole_passes():
    from pydantic import ValidationError

    from jiuzhang.config.influence import LessConfig

    target = {"gsm8k": {"path": "x.jsonl", "n": 1}}
    assert LessConfig(batch_size=8, warmup_batch=128, targets=target).warmup_batch == 128
    with pytest.raises(ValidationError, match="multiple of batch_size"):
        LessConfig(batch_size=8, warmup_batch=100, targets=target)
