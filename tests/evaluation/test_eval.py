"""The eval path: the stage on a tiny model, the tool loop running real code in the sandbox, an
OpenAI-compatible endpoint on loopback, the `grade` contract, and the report."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from jiuzhang.config.loader import validate_params
from jiuzhang.evaluation.evaluator import evaluate
from jiuzhang.evaluation.tasks import TASKS, load_rows
from jiuzhang.evaluation.toolloop import LIMIT_MARKER, capped, cumulative_program
from jiuzhang.synthesis.engine import Generation
from jiuzhang.teacher.server import ChatServer

from conftest import ROOT, SHARED, make_tiny_model, run_cli
from helpers.evaluation import build_report, params, report_fixture


@dataclass
class ScriptedEngine:
    """A test double: answers each prompt by the number of rounds it has seen (model stand-in)."""
    script: list[str]

    def plan(self, requests):
        return [requests]

    def generate(self, requests):
        out = []
        for r in requests:
            step = r.prompt.count("```output")
            out.append(Generation(r.id, self.script[min(step, len(self.script) - 1)], "stop", 0, 0))
        return out


def test_tool_loop_runs_the_code_and_feeds_back_its_output():
    cfg = validate_params(params(), "t").eval
    task, rows = TASKS["gsm8k"], load_rows(SHARED / "benchmarks", "gsm8k", 2)   # golds 18, 3
    engine = ScriptedEngine(["We compute it.\n```python\nprint((16 - 3 - 4) * 2)\n```",
                             "The code prints 18, so the answer is \\boxed{18}."])
    preds, metrics = evaluate(task, rows, ("tool",), engine, cfg)
    assert metrics["tool"]["correct"] == 1 and metrics["tool"]["executions"] == {"ok": 2}
    assert "```output\n18\n```" in preds[0]["prediction"] and preds[0]["correct"]


def test_tool_loop_stops_after_the_round_limit():
    cfg = validate_params(params(tool_rounds=2), "t").eval
    engine = ScriptedEngine(["```python\nprint(1)\n```"])  # writes code forever
    preds, metrics = evaluate(TASKS["gsm8k"], load_rows(SHARED / "benchmarks", "gsm8k", 1), ("tool",), engine, cfg)
    assert preds[0]["prediction"].count("```output") == 2 and metrics["tool"]["executions"] == {"ok": 2}
    assert preds[0]["prediction"].endswith("```\n" + LIMIT_MARKER)   # the paper's marker ends the problem


def test_tool_loop_reuses_earlier_successful_blocks_like_the_paper():
    """Block 2 uses a variable of block 1; a failed block's import survives; only the new block prints;
    long output is cut to tool_output_chars around '...'."""
    cfg = validate_params(params(tool_output_chars=40), "t").eval
    engine = ScriptedEngine(["```python\nimport math\nx = 6\nprint('first')\n```",
                             "```python\nimport fractions\ny = 1 / 0\n```",
                             "```python\nprint(x * 7, fractions.Fraction(1, 2), math.pi > 3)\n```",
                             "```python\nprint('z' * 100)\n```"])
    preds, metrics = evaluate(TASKS["gsm8k"], load_rows(SHARED / "benchmarks", "gsm8k", 1), ("tool",), engine, cfg)
    outputs = re.findall(r"```output\n(.*?)\n```", preds[0]["prediction"], re.DOTALL)
    assert outputs[0] == "first"
    assert outputs[1].startswith("ZeroDivisionError")
    assert outputs[2] == "42 1/2 True"           # x from block 1, the failed block's import, no 'first' again
    assert outputs[3] == "z" * 20 + "..." + "z" * 20
    assert metrics["tool"]["executions"] == {"ok": 3, "error": 1}


def test_cumulative_program_and_cap_units():
    hist = [("import os\na = 1\nprint(a)", True), ("from math import pi\nb = 1/0", False)]
    prog = cumulative_program(hist, "print(a + 1)")
    assert prog.splitlines() == ["from math import pi", "import os", "a = 1", "print(a + 1)"]
    assert capped("abcdefghij", 4) == "ab...ij" and capped("abc", 4) == "abc"


def test_eval_stage_on_a_tiny_model(tmp_path, write_params):
    model = make_tiny_model(tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 4096}))  # GSM8K fits
    p = params()
    p["base"]["arch"]["max_position_embeddings"] = 4096
    p["eval"]["benchmarks"]["gsm8k"] = ["nl", "tool", "loss"]
    params_file = write_params(p)
    run_cli("eval", "--params", str(params_file), "--benchmark", "gsm8k", "--model", str(model), "--out",
            str(tmp_path / "gsm8k"), "--metrics", str(tmp_path / "gsm8k.json"), cwd=tmp_path)
    metrics = json.loads((tmp_path / "gsm8k.json").read_text())
    assert metrics["nl"]["total"] == 3 and metrics["tool"]["total"] == 3 and 0 <= metrics["nl"]["accuracy"] <= 1
    assert metrics["nl"]["cut_off"] <= metrics["nl"]["invalid"] + metrics["nl"]["total"]
    loss = metrics["loss"]  # held-out loss of the gold solutions: an untrained model is far from 0
    assert loss["items"] == 3 and loss["ci95"][0] <= loss["mean_nll"] <= loss["ci95"][1] and loss["mean_nll"] > 1
    preds = [json.loads(x) for x in (tmp_path / "gsm8k" / "predictions.jsonl").read_text().splitlines()]
    # the loss is scored under both prompt formats: same gold targets, different prompts, different NLLs
    assert len(preds) == 12 and {p["setting"] for p in preds} == {"nl", "tool", "loss", "loss_neutral"}
    assert preds[0]["gold"] == "18"
    assert all(p["nll"] > 0 and p["tokens"] > 10 for p in preds if p["setting"].startswith("loss"))
    paper = {p["idx"]: p for p in preds if p["setting"] == "loss"}
    neutral = {p["idx"]: p for p in preds if p["setting"] == "loss_neutral"}
    assert all(neutral[i]["target"] == paper[i]["target"] and neutral[i]["format"] == "neutral" for i in paper)
    # every row names its prompt by hash: the NL answer and the paper-format loss read the same prompt
    nl = {p["idx"]: p for p in preds if p["setting"] == "nl"}
    assert all(nl[i]["prompt_sha256"] == paper[i]["prompt_sha256"] != neutral[i]["prompt_sha256"] for i in paper)
    assert all(len(p["prompt_sha256"]) == 16 for p in preds)
    assert metrics["loss_neutral"]["items"] == 3 and metrics["loss_neutral"]["mean_nll"] != loss["mean_nll"]
    assert not (tmp_path / ".cache" / "eval").exists() or not any((tmp_path / ".cache" / "eval").iterdir())
    # standalone, several benchmarks (5-shot aqua included), default layout <out>/<benchmark>/
    run_cli("eval", "--params", str(params_file), "--benchmark", "aqua", "--benchmark", "svamp", "--model", str(model),
            "--out", str(tmp_path / "all"), cwd=tmp_path)
    assert json.loads((tmp_path / "all" / "aqua" / "metrics.json").read_text())["nl"]["total"] == 3
    bad = run_cli("eval", "--params", str(params_file), "--benchmark", "nope", "--model", str(model), cwd=tmp_path,
                  check=False)
    assert bad.returncode == 2 and "unknown benchmark" in bad.stderr


def test_eval_against_an_openai_compatible_endpoint(tmp_path, write_params):
    seen = []

    def answer(body, headers):
        seen.append(body)
        text = "16 - 3 - 4 = 9 eggs, 9 * 2 = 18. The answer is 18.\n\n## Question\nnext one"
        payload = {"id": "c1", "object": "text_completion", "created": 0, "model": body["model"],
                   "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
                   "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}}
        return 200, {}, json.dumps(payload).encode()

    params_file = write_params(params(limit=2))
    with ChatServer(answer) as server:
        res = run_cli("eval", "--params", str(params_file), "--benchmark", "gsm8k", "--endpoint", server.url,
                      "--model", "served-model", "--out", str(tmp_path / "ep"), cwd=tmp_path)
    metrics = json.loads((tmp_path / "ep" / "gsm8k" / "metrics.json").read_text())
    assert metrics["nl"]["correct"] == 1 and metrics["nl"]["total"] == 2  # gold 18 for item 0, 3 for item 1
    assert seen[0]["model"] == "served-model" and seen[0]["temperature"] == 0 and "\n\n## Question" in seen[0]["stop"]
    assert any(b["prompt"].startswith("## Question\nJanet") for b in seen) and "eval gsm8k" in res.stderr


def test_grade_contract(tmp_path):
    preds = tmp_path / "preds.jsonl"
    preds.write_text("\n".join(json.dumps(x) for x in [
        {"idx": 0, "prediction": "... The answer is 18."}, {"idx": 1, "prediction": "\\boxed{3}"},
        {"idx": 2, "prediction": "I give up"}]) + "\n")
    out = json.loads(run_cli("grade", "--benchmark", "gsm8k", "--predictions", str(preds), "--root",
                             str(SHARED / "benchmarks"), cwd=tmp_path).stdout)
    assert out["accuracy"] == pytest.approx(2 / 3) and out["correct"] == 2 and out["total"] == 3
    verdicts = [json.loads(x) for x in (tmp_path / "preds.verdicts.jsonl").read_text().splitlines()]
    assert [v["correct"] for v in verdicts] == [True, True, False] and verdicts[2]["extracted"] is None
    preds.write_text('{"idx": 99999, "prediction": "x"}\n')
    bad = run_cli("grade", "--benchmark", "gsm8k", "--predictions", str(preds), "--root", str(SHARED / "benchmarks"),
                  cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "preds.jsonl:1" in bad.stderr and "'idx'" in bad.stderr


def test_report_is_deterministic_and_complete(tmp_path):
    m, p = report_fixture(tmp_path)
    build_report(tmp_path, m, p, "r1")
    build_report(tmp_path, m, p, "r2")
    for f in ("summary.json", "results.md", "accuracy.csv", "accuracy.png", "report.html"):
        assert (tmp_path / "r1" / f).read_bytes() == (tmp_path / "r2" / f).read_bytes(), f
    md = (tmp_path / "r1" / "results.md").read_text()
    assert "Base model vs trained" not in md and "Held-out loss" not in md  # nothing configured, nothing shown
    assert "| gsm8k | NL | 1 / 2 | 50.0 [9.5, 90.5] | 1 (1) |  | 88.6 |" in md
    assert "| gsm8k | tool | 2 / 2 | 100.0 [34.2, 100.0] | 0 (0) |  |  |" in md
    assert "| aqua | NL | 1 / 2 | 50.0 [9.5, 90.5] | 1 (1) |  |  |" in md  # no traceable published AQuA number
    assert "20 calls" in md and "$3.00" in md
    assert "| nl | init model (before KD) | 0 / 4 | 0.0 [0.0, 49.0] | missing_problem 4 |" in md
    assert "| nl | KD-trained synthesizer | 1 / 4 | 25.0 [4.6, 69.9] | truncated 3 |" in md
    page = (tmp_path / "r1" / "report.html").read_text()
    summary = json.loads((tmp_path / "r1" / "summary.json").read_text())
    # what was run, up top
    assert "<h1>jiuzhang report: smoke profile</h1>" in page and "tiny stand-ins" in page
    assert summary["run"]["profile"] == "smoke" and "code_commit" not in summary["run"]  # not a declared dep
    assert "OFFLINE TEACHER (stand-in)" in page and "workspace (no DVC experiment)" in page
    # real tables (no <pre> dump of Markdown), one chart (no held-out loss here), escaped model output
    assert "<pre>|" not in page and page.count("<table>") >= 5 and page.count("<img") == 1
    assert "Step 1 &lt;b&gt;gsm8k&lt;/b&gt;" in page and "<b>gsm8k</b>" not in page
    assert "(empty output: the model ended at once)" in page and "wrong</span> (cut off)" in page
    # teacher cost: actual next to what jiuzhang plan predicts for this profile
    planned = summary["costs"]["teacher"]["planned"]["rounds"]
    assert planned["kd_initial"]["calls"] == p.kd.initial.n and planned["kd_boost"]["calls"] == p.kd.boost.n
    # which teacher mode each round ran in (metrics written before the mode existed read as online)
    assert summary["costs"]["teacher"]["actual"]["kd_initial"]["mode"] == "online"
    assert "<th>mode</th>" in page and "<td>kd_initial</td><td>online</td>" in page
    assert [s["benchmark"] for s in summary["samples"]] == ["gsm8k", "gsm8k", "aqua", "aqua"]
    assert summary["samples"][0]["question"].startswith("Janet")


def test_report_shows_base_vs_trained_and_the_heldout_loss(tmp_path):
    m, p = report_fixture(tmp_path, with_base=True)
    build_report(tmp_path, m, p, "r4")
    md = (tmp_path / "r4" / "results.md").read_text()
    assert "| gsm8k | paper template | 2 | 1.500 [1.200, 1.800] |" in md
    assert "| gsm8k | neutral prompt | 2 | 3.300 [3.000, 3.600] |" in md
    # accuracy: Newcombe's paired interval (1 item gained of 2 is no evidence; a paired bootstrap said [0, 100])
    assert "| gsm8k | NL accuracy | 2 | 0.0 | 50.0 | +50.0 [-27.3, +90.5] |" in md
    # better under the template, not under the neutral prompt: a format effect, and the page says so
    assert ("| gsm8k | held-out loss, paper template (worked solution) | 2 | 3.250 | 1.500 | -1.750 [-2.000, -1.500] "
            "(format effect only) |") in md
    assert "| gsm8k | held-out loss, neutral prompt (worked solution) | 2 | 3.250 | 3.300 | +0.050 [+0.000, +0.100] |" in md
    assert "| gsm8k | NL | 1 / 2 | 50.0 [9.5, 90.5] | 1 (1) | 0.0 (0 / 2) | 88.6 |" in md
    summary = json.loads((tmp_path / "r4" / "summary.json").read_text())
    assert [c["setting"] for c in summary["base_vs_trained"]] == ["nl", "tool", "loss", "loss_neutral"]
    page = (tmp_path / "r4" / "report.html").read_text()
    assert page.count("<img") == 2 and '<span class="bad">format effect only</span>' in page
    assert "built-in method" not in page and "Undefined" not in page  # every cell a value (Jinja: c["items"])
    assert '<td class="n">2</td><td class="n">3.250</td><td class="n">1.500</td>' in page
    assert [x["model"] for x in summary["samples"][0]["models"]] == ["base", "trained"]

    (m / "eval" / "aqua.json").unlink()
    with pytest.raises(Exception, match="aqua.json: missing"):
        build_report(tmp_path, m, p, "r3")


def test_published_numbers_carry_their_source():
    """Every number the report shows as published comes from one stated table (the JiuZhang3.0 README at a
    pinned commit); figures without a traceable source (TabMWP, AQuA, SAT-Math) are gone."""
    from jiuzhang.report.data import paper_numbers
    paper = json.loads((ROOT / "templates" / "eval" / "paper_results.json").read_text())
    assert re.search(r"RUCAIBox/JiuZhang3\.0 README\.md @ [0-9a-f]{40}", paper["_source"])
    published = paper_numbers(paper)
    assert published == {"gsm8k": 88.6, "math500": 52.8, "svamp": 90.4, "asdiv": 92.6, "mawps": 97.3, "carp_en": 51.0}
    assert not {"tabmwp", "aqua", "sat_math", "mmlu_stem"} & {b for m in paper.values() if isinstance(m, dict) for b in m}


def test_questions_use_the_papers_formats():
    """MMLU-STEM's options were joined with spaces and no letters (meaningless accuracy); every
    multiple-choice set and TabMWP now reads as the paper's parser writes it (eval/parser.py)."""
    mmlu = TASKS["mmlu_stem"].question(load_rows(SHARED / "benchmarks", "mmlu_stem", 1)[0])
    assert re.search(r"\nAnswer Choices: \(A\) .+ \(B\) .+ \(C\) .+ \(D\) .+$", mmlu)
    sat = TASKS["sat_math"].question(load_rows(SHARED / "benchmarks", "sat_math", 1)[0])
    assert sat.endswith("\nAnswer Choices: (A) $f(-6)=0$ (B) $f(6)=-6$ (C) $f(-6)=6$ (D) $f(0)=-6$")
    aqua = TASKS["aqua"].question({"question": "What is 1 + 1? ", "options": ["A)1", "B)2", "C)3", "D)4", "E)5"],
                                   "correct": "B"})
    assert aqua == "What is 1 + 1?Answer Choices: (A) 1 (B) 2 (C) 3 (D) 4 (E) 5"   # no separator, as the paper
    tab = load_rows(SHARED / "benchmarks", "tabmwp", 5)
    assert TASKS["tabmwp"].question(tab[0]).startswith('Read the following table regarding "Coin collections" '
                                                       'and answer a question:\nName | Number of coins\n')
    assert TASKS["tabmwp"].question(tab[4]).endswith("(Yes or No)")          # its gold answer is "yes"
    assert TASKS["aqua"].shots == 4 and TASKS["mmlu_stem"].shots == TASKS["sat_math"].shots == 5
    from jiuzhang.evaluation.prompting import build_prompt, load_fewshot
    shots = load_fewshot(ROOT / "templates" / "eval" / "fewshot", TASKS["mmlu_stem"])
    prompt = build_prompt(TASKS["mmlu_stem"], load_rows(SHARED / "benchmarks", "mmlu_stem", 1)[0], "nl", shots)
    assert prompt.count("Answer Choices: (A) ") == 6 and prompt.count("## Question") == 6
