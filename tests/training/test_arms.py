"""Control arms (issue 23): each arm's data at the synthetic arm's token budget, and the paired comparison of
base, synthetic and the controls that the report and `jiuzhang compare --arms` show."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from transformers import AutoTokenizer

from jiuzhang.common.io import InputDataError
from jiuzhang.evaluation.arm_comparison import budgets, compare_arms, verdict_lines
from jiuzhang.evaluation.stats import paired_proportions
from jiuzhang.report.data import MEASURE_NAMES
from jiuzhang.report.page import arms_markdown
from jiuzhang.training.arms import arm_examples, target_tokens

from conftest import SHARED, make_tiny_model, run_cli, tiny_params

RELEASED = SHARED / "corpus" / "jiuzhang3_samples" / "cot_pretrain_data_sampled.jsonl"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return AutoTokenizer.from_pretrained(make_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def _table(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "part-00000.parquet")
    return folder


def test_paired_accuracy_interval_is_not_certain_when_no_item_differs():
    """0 of 30 vs 0 of 30: a paired bootstrap would print [0, 0]; Newcombe's interval says what 30 items
    cannot rule out (about +-11 points), and McNemar's p is 1."""
    same = paired_proportions([False] * 30, [False] * 30)
    assert same["diff"] == 0 and same["lo"] == pytest.approx(-0.1135, abs=1e-3) and same["hi"] == -same["lo"]
    assert same["p_mcnemar"] == 1.0
    gained = paired_proportions([True] * 10 + [False] * 20, [True] * 5 + [False] * 25)
    assert gained["gained"] == 5 and gained["lost"] == 0 and 0 < gained["lo"] < gained["diff"] < gained["hi"]
    assert gained["p_mcnemar"] == pytest.approx(2 / 2 ** 5)  # exact binomial, two-sided
    swapped = paired_proportions([True, False] * 15, [False, True] * 15)  # 15 gained, 15 lost
    assert swapped["diff"] == 0 and swapped["hi"] > 0.3 and swapped["p_mcnemar"] == 1.0


def test_raw_arm_takes_the_kept_records_snippets_first_and_meets_the_budget(tmp_path, tokenizer):
    corpus = _table(tmp_path / "corpus", [{"id": f"s{i}", "text": f"Snippet {i} about fractions: {i}/7 plus {i}/3. " * 3}
                                          for i in range(40)])
    prompts = _table(tmp_path / "prompts", [{"id": f"s{i}@grade_school", "snippet_id": f"s{i}"} for i in range(40)])
    synthetic = _table(tmp_path / "clean", [{"id": "s7@grade_school"}, {"id": "s3@grade_school"}])
    one = target_tokens(arm_examples("raw", 10_000, tokenizer, 64, 1, corpus=corpus, prompts=prompts,
                                     synthetic=synthetic)[0][0], tokenizer, 64)
    budget = 5 * one + one // 3
    examples, facts = arm_examples("raw", budget, tokenizer, 64, 1, corpus=corpus, prompts=prompts, synthetic=synthetic)
    assert [e.id for e in examples[:2]] == ["raw/s7", "raw/s3"]  # the source text of what was kept, first
    assert all(e.prompt == "" for e in examples)  # plain text: loss on the whole snippet
    assert abs(facts["counted_target_tokens"] - budget) <= one / 2 and not facts["source_exhausted"]
    again, _ = arm_examples("raw", budget, tokenizer, 64, 1, corpus=corpus, prompts=prompts, synthetic=synthetic)
    other, _ = arm_examples("raw", budget * 4, tokenizer, 64, 2, corpus=corpus, prompts=prompts, synthetic=synthetic)
    assert again == examples and [e.id for e in other[2:6]] != [e.id for e in examples[2:6]]  # seeded order
    _, short = arm_examples("raw", 10 ** 7, tokenizer, 64, 1, corpus=corpus, prompts=prompts, synthetic=synthetic)
    assert short["source_exhausted"] and short["records"] == 40  # said, not silently short
    stray = _table(tmp_path / "stray", [{"id": "nowhere@aime"}])
    with pytest.raises(InputDataError, match="names no prompt"):
        arm_examples("raw", budget, tokenizer, 64, 1, corpus=corpus, prompts=prompts, synthetic=stray)


def test_released_arm_is_the_released_sample_in_its_own_format(tokenizer):
    examples, facts = arm_examples("released", 20_000, tokenizer, 1024, 5, released=RELEASED)
    assert len(examples) > 3 and all(e.prompt.startswith("## Question") for e in examples)
    assert abs(facts["counted_target_tokens"] - 20_000) <= 512
    with pytest.raises(InputDataError, match="run the pretrain stage first"):
        arm_examples("released", 0, tokenizer, 1024, 5, released=RELEASED)


def _predictions(folder: Path, correct: list[bool], nll: list[float], neutral: list[float]) -> None:
    folder.mkdir(parents=True)
    rows = [{"idx": i, "setting": "nl", "correct": c} for i, c in enumerate(correct)]
    rows += [{"idx": i, "setting": "loss", "nll": v} for i, v in enumerate(nll)]
    rows += [{"idx": i, "setting": "loss_neutral", "nll": v} for i, v in enumerate(neutral)]
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_tie_crowns_no_arm(tmp_path):
    """0 of 30 everywhere: the page says no arm wins (not 'base wins', the first arm of the list)."""
    n = 30
    for a in ("base", "synthetic", "raw"):
        _predictions(tmp_path / a / "gsm8k", [False] * n, [2.0] * n, [2.0] * n)
    metrics = tmp_path / "results"
    (metrics / "pretrain_arms").mkdir(parents=True)
    for f in ("pretrain.json", "pretrain_arms/raw.json"):
        (metrics / f).write_text(json.dumps({"examples": 8, "target_tokens_per_epoch": 100, "steps": 2}))
    result = compare_arms(["gsm8k"], {"gsm8k": ["nl"]}, metrics, tmp_path / "synthetic", tmp_path / "base",
                          tmp_path, ["raw"])
    row = result["rows"][0]
    assert row["winner"] is None and row["tied"] == ["base", "raw", "synthetic"]
    (line,) = verdict_lines(result, MEASURE_NAMES)
    assert line.startswith("gsm8k NL accuracy (30 items): no arm wins: base, raw, synthetic tie") and "[-11.4, +11.4] points" in line


def test_arm_comparison_pairs_every_arm_and_names_the_winner(tmp_path):
    n = 40
    base = [2.0 + 0.01 * (i % 7) for i in range(n)]
    arms = {  # synthetic: better than raw under both formats; released: best under the template only
        "base": ([False] * n, base, base),
        "synthetic": ([i < 4 for i in range(n)], [v - 0.30 for v in base], [v - 0.10 for v in base]),
        "raw": ([False] * n, [v - 0.05 for v in base], [v - 0.05 for v in base]),
        "released": ([i < 2 for i in range(n)], [v - 0.40 for v in base], [v + 0.02 for v in base]),
    }
    data = tmp_path / "data"  # the DAG's layout, so `jiuzhang compare --arms` reads it with its defaults
    dirs = {"base": data / "eval_base", "synthetic": data / "eval", "raw": data / "eval_arms" / "raw",
            "released": data / "eval_arms" / "released"}
    for a, (c, nll, neutral) in arms.items():
        _predictions(dirs[a] / "gsm8k", c, nll, neutral)
    metrics = tmp_path / "results"
    (metrics / "pretrain_arms").mkdir(parents=True)
    (metrics / "pretrain.json").write_text(json.dumps({"examples": 48, "target_tokens_per_epoch": 12000, "steps": 8}))
    for a, k in (("raw", 11950), ("released", 12040)):
        (metrics / "pretrain_arms" / f"{a}.json").write_text(json.dumps({"examples": 60, "target_tokens_per_epoch": k,
                                                                         "steps": 8}))
    result = compare_arms(["gsm8k"], {"gsm8k": ["nl", "loss", "loss_neutral"]}, metrics, dirs["synthetic"],
                          dirs["base"], data / "eval_arms", ["raw", "released"])
    rows = {r["setting"]: r for r in result["rows"]}
    assert result["arms"] == ["base", "synthetic", "raw", "released"]
    assert result["budgets"]["raw"]["target_tokens"] == 11950 and result["budgets"]["base"]["target_tokens"] == 0
    assert "mixed in" not in result["budgets"]["synthetic"]["data"]  # no supplement used: none claimed
    (metrics / "pretrain.json").write_text(json.dumps({"examples": 48, "target_tokens_per_epoch": 12000, "steps": 8,
                                                       "supplement_used": 16}))
    assert "with 16 records of pretrain.supplement" in budgets(metrics, ["raw"])["synthetic"]["data"]
    neutral = rows["loss_neutral"]
    assert neutral["winner"] == "synthetic" and neutral["vs_raw"]["synthetic"]["diff"] == pytest.approx(-0.05)
    assert neutral["vs_raw"]["synthetic"]["verdict"] == "better" and neutral["winner_vs_runner_up"]["excludes_0"]
    assert neutral["vs_base"]["released"]["verdict"] == "worse"
    assert rows["loss"]["winner"] == "released"  # the template alone would crown another arm
    acc = rows["nl"]
    assert acc["arms"]["synthetic"]["correct"] == 4 and acc["vs_raw"]["synthetic"]["gained"] == 4
    assert acc["vs_base"]["synthetic"]["method"] == "Newcombe paired interval"
    assert acc["vs_raw"]["released"]["ci95"][0] < 0 < acc["vs_raw"]["released"]["ci95"][1]  # 2 of 40: not certain
    lines = verdict_lines(result, MEASURE_NAMES)
    assert any(line.startswith("gsm8k held-out loss, neutral prompt (40 items): synthetic wins") and
               "the interval excludes 0" in line for line in lines)
    result["verdicts"] = lines
    md = "\n".join(arms_markdown(result))
    assert "| raw | the corpus snippets the prompts were built from" in md and "| 11,950 |" in md
    assert "synthetic -0.050 [-0.050, -0.050] better" in md

    # the same comparison in the terminal, from the workspace's outputs
    raw = tiny_params({"x": "unused.jsonl"})
    raw["eval"].update({"benchmarks": {"gsm8k": ["nl", "loss"]}, "base_benchmarks": ["gsm8k"],
                        "arm_benchmarks": ["gsm8k"]})
    raw["pretrain"]["arms"] = {"names": ["raw", "released"], "released": str(RELEASED)}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    text = run_cli("compare", "--arms", cwd=tmp_path).stdout
    assert "gsm8k held-out loss, neutral prompt (40 items; nats/token, lower is better):" in text
    assert "vs raw -0.050 [-0.050, -0.050] better" in text and "synthetic wins" in text
    raw["pretrain"]["arms"] = {"names": []}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    res = run_cli("compare", "--arms", cwd=tmp_path, check=False)
    assert res.returncode == 2 and "no control arms to compare" in res.stderr
