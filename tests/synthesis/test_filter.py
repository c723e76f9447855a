"""The filter stage: every drop reason on a fixture of generations, tool code really executed in the
sandbox, 'replace' mode, the stage end to end on raw shards, and its refusal of unfinished input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jiuzhang.config.loader import validate_params
from jiuzhang.synthesis.cleaning import clean
from jiuzhang.synthesis.filtering import REASONS
from jiuzhang.synthesis.records import outputs_match, parse_generation, to_record, with_output
from jiuzhang.synthesis.shards import ShardStore

from conftest import ROOT, SHARED, run_cli, tiny_params

FIXTURE = ROOT / "tests" / "fixtures" / "filter_generations.jsonl"


def fixture_rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def params(**filter_over):
    raw = tiny_params({"x": "unused.jsonl"})
    raw["filter"].update({"exec_timeout_s": 1.0, **filter_over})
    return validate_params(raw, "test")


def run_filter(p, rows, folder: Path, runner=None):
    """The filter's datatrove pipeline on ``rows`` (a raw shard), decontaminated against GSM8K: (kept, drops, metrics)."""
    p = p.model_copy(update={"benchmarks": p.benchmarks.model_copy(update={"root": str(SHARED / "benchmarks"),
                                                                          "decontaminate": ("gsm8k",)})})
    raw = _raw_folder(folder / "raw", rows)
    metrics = clean(p, raw, folder / "clean", runner)
    kept = [r for f in sorted((folder / "clean").glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    return kept, pq.read_table(folder / "clean" / "drops.parquet").to_pylist(), metrics


def test_every_drop_reason_on_the_fixture(tmp_path):
    rows = fixture_rows()
    kept, drops, report = run_filter(params(), rows, tmp_path)
    got = {d["id"]: d["reason"] for d in drops} | {k["id"]: None for k in kept}
    assert got == {r["id"]: r["expect"] for r in rows}
    assert {r["expect"] for r in rows} - {None} == set(REASONS), "the fixture must cover every drop reason"
    assert report["overlap_by_benchmark"] == {"gsm8k": 1}
    assert report["executions"]["ok"] >= 3 and report["executions"]["timeout"] == 1
    tool = next(k for k in kept if k["id"] == "g02")
    assert tool["input"].startswith("## Question\nA box holds") and tool["input"].endswith("\n\n## Code Solution\n")
    nl = next(k for k in kept if k["id"] == "g01")
    assert nl["input"].endswith("\n\n## Solution\n") and nl["output"].endswith("$\\boxed{27}$.")


def test_replace_mode_writes_the_real_output(tmp_path):
    rows = [r for r in fixture_rows() if r["id"] == "g15"]  # stored 0.5, the code prints 0.6
    kept, drops, _ = run_filter(params(tool_output="replace"), rows, tmp_path)
    assert not drops and "```output\n0.6\n```" in kept[0]["output"] and "0.5" not in kept[0]["output"]


def test_switches_turn_checks_off(tmp_path):
    rows = [r for r in fixture_rows() if r["expect"] in ("truncated", "missing_answer", "benchmark_overlap",
                                                          "near_duplicate", None)]
    kept, drops, _ = run_filter(params(drop_truncated=False, require_answer=False, decontaminate=False,
                                       near_dedup=False), rows, tmp_path)
    assert {k["id"] for k in kept} >= {"g10", "g11", "g17"}


def test_paper_preset_keeps_what_the_paper_kept(tmp_path):
    """preset paper: no answer requirement, no truncation, parse or duplicate drops, tool code not run (outputs
    as written); the test-sets filter stays (and empty generations go). A runner that fails proves nothing is executed."""
    p = params(preset="paper")
    assert (p.filter.require_answer, p.filter.tool_output, p.filter.near_dedup) == (False, "keep", False)
    rows = fixture_rows()
    def no_run(code):
        raise AssertionError("preset paper must not run tool code")
    kept, drops, report = run_filter(p, rows, tmp_path, no_run)
    reasons = {d["reason"] for d in drops}
    kept_ids = {k["id"] for k in kept}
    only_ours = ("missing_answer", "output_mismatch", "code_error", "code_timeout", "near_duplicate", "truncated",
                 "missing_problem", "missing_solution", "refusal", "no_code", "exact_duplicate")
    ours = {r["id"] for r in rows if r["expect"] in only_ours}
    assert ours <= kept_ids                                # what only our checks drop is kept (issue 25)
    assert "benchmark_overlap" in reasons and not reasons & set(only_ours)
    unparsed = [k for k in kept if k["id"] in {r["id"] for r in rows if r["expect"] in ("missing_problem", "refusal")}]
    assert unparsed and all(k["input"] == "" and k["output"] for k in unparsed)  # kept as the model wrote them
    assert report["executions"] == {}
    raw = tiny_params({"x": "unused.jsonl"})
    raw["filter"].update(preset="paper", require_answer=True)
    assert "filter.require_answer: True -> False (filter.preset paper sets it)" in validate_params(raw, "t").warnings()


@pytest.mark.parametrize("stored, printed, same", [("10", "10.0\n", True), ("0.5", "0.6", False),
                                                    ("a = 1\nb = 2", "a = 1  \nb = 2\n", True), ("x", "", False)])
def test_output_matching(stored, printed, same):
    assert outputs_match(stored, printed) is same


def test_parsing_and_record_format():
    d = parse_generation("**Problem:** What is 2 + 2 if we add them?\n**Solution:** 4. The answer is 4.", "stop", 10)
    assert d.reason is None and d.problem == "What is 2 + 2 if we add them?"
    assert to_record("Q?", "A.", "nl") == {"input": "## Question\nQ?\n\n## Solution\n", "output": "A."}
    sol = "```python\nprint(1)\n```\nSo \\boxed{1}."
    assert with_output(sol, "1\n") == "```python\nprint(1)\n```\n```output\n1\n```\nSo \\boxed{1}."


def _raw_folder(folder: Path, rows: list[dict]) -> Path:
    from jiuzhang.synthesis.shards import SCHEMA

    store = ShardStore(folder)
    full = [{"seed": 0, "prompt_tokens": 10, "new_tokens": 10, "truncated_prompt": False,
             **{k: v for k, v in r.items() if k != "expect"}} for r in rows]
    store.finish(0, "fp", [{k: r[k] for k in SCHEMA.names} for r in full])
    return folder


def test_filter_stage_end_to_end(tmp_path, write_params):
    rows = fixture_rows()
    raw = _raw_folder(tmp_path / "raw", rows)
    p = tiny_params({"x": "unused.jsonl"})
    p["benchmarks"]["decontaminate"] = ["gsm8k", "math500"]
    params_file = write_params(p)
    run_cli("filter", "--params", str(params_file), "--raw", str(raw), "--out", str(tmp_path / "clean"),
            "--metrics", str(tmp_path / "filter.json"), cwd=tmp_path)
    metrics = json.loads((tmp_path / "filter.json").read_text())
    expected = sum(1 for r in rows if r["expect"] is None)
    assert metrics["input"] == len(rows) and metrics["kept"] == expected
    assert all(metrics["dropped_by_reason"][r] >= 1 for r in REASONS)
    clean = pq.read_table(tmp_path / "clean" / "part-00000.parquet").to_pylist()
    assert [r["id"] for r in clean] == [r["id"] for r in rows if r["expect"] is None]
    drops = pq.read_table(tmp_path / "clean" / "drops.parquet").to_pylist()
    assert len(drops) == len(rows) - expected and {d["reason"] for d in drops} == set(REASONS)


def test_filter_refuses_an_unfinished_synthesis(tmp_path, write_params):
    raw = _raw_folder(tmp_path / "raw", fixture_rows()[:2])
    (raw / "part-00000.done.json").unlink()
    res = run_cli("filter", "--params", str(write_params(tiny_params({"x": "u.jsonl"}))), "--raw", str(raw), "--out",
                  str(tmp_path / "clean"), "--metrics", str(tmp_path / "m.json"), cwd=tmp_path, check=False)
    assert res.returncode == 2 and "synthesize has not finished" in res.stderr and "resumes" in res.stderr
