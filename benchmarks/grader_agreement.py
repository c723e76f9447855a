"""Our grader vs Math-Verify and vs JiuZhang3.0's evaluation code on a project's own prediction files.

    python benchmarks/grader_agreement.py [PROJECT ...] [--root ../shared/benchmarks] [--show 5]
    python benchmarks/grader_agreement.py --fixtures    # the issue-25 classes (tests/evaluation/test_grading_outputs.py)

Reads every ``data/eval*/**/predictions.jsonl`` of each project folder (the benchmark is the folder name:
``data/eval/gsm8k``, ``data/eval_base/gsm8k``, ``data/eval_arms/raw-gsm8k``), grades each generated output
(held-out-loss rows have none) three ways (:mod:`jiuzhang.evaluation.agreement`) and prints one JSON line per
project and benchmark plus a total, then up to ``--show`` disagreements with the paper's code.
``--fixtures`` instead grades the hand-written outputs of each class in ``tests/evaluation/test_grading_outputs.py`` and
prints how many verdicts of each grader equal the expected one (ours passes them by construction: they are
its tests; the point is where the other two part from it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections import defaultdict
from pathlib import Path

from jiuzhang.evaluation.agreement import summarize, three_verdicts
from jiuzhang.evaluation.heldout import is_loss
from jiuzhang.evaluation.tasks import TASKS, load_rows


def benchmark_of(path: Path) -> str | None:
    name = path.parent.name.split("-", 1)[-1]  # eval_arms/<arm>-<benchmark>
    return name if name in TASKS else None


def fixtures() -> None:
    from jiuzhang.evaluation import paper_rules
    from jiuzhang.evaluation.agreement import math_verify_correct
    from jiuzhang.evaluation.grading import grade_answer

    spec = importlib.util.spec_from_file_location("fixtures", Path(__file__).parents[1] / "tests" / "test_grading_outputs.py")
    t = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(t)
    shapes = {  # test -> (kind, gold, question, output, expected) from its parameter tuple
        "test_markdown_emphasis": lambda a: ("numeric", a[0], t.GSM_Q, a[1], a[3]),
        "test_unicode_math": lambda a: (a[0], a[1], "", a[2], a[4]),
        "test_word_answers": lambda a: ("symbolic", a[0], "", a[1], a[3]),
        "test_json_answer_field": lambda a: ("numeric", a[0], t.GSM_Q, a[1], a[3]),
        "test_equation_vs_value": lambda a: ("symbolic", a[0], "", a[1], a[3]),
        "test_requested_form": lambda a: ("symbolic", a[1], a[0], a[2], a[4]),
    }
    cases = [(name, *shape(args)) for name, shape in shapes.items() for args in getattr(t, name).pytestmark[0].args[1]]
    # unfinished outputs whose last number IS the gold: only a grader that sees the loop/cut says wrong
    cases += [("unfinished (last number = gold)", "numeric", gold, t.GSM_Q, out, False)
              for out, gold in ((t.LOOP, "3"), ("Let x be 7.\n" * 30, "7"), *((o, "5") for o in t.TRUNCATED[:2]))]
    total = defaultdict(int)
    for name in dict.fromkeys(c[0] for c in cases):
        row = defaultdict(int)
        for _, kind, gold, question, output, expected in (c for c in cases if c[0] == name):
            bench = "gsm8k" if kind == "numeric" else "math500"
            row["outputs"] += 1
            row["ours"] += grade_answer(kind, gold, output, question=question).correct == expected
            row["math_verify"] += math_verify_correct(gold, output) == expected
            row["paper"] += paper_rules.equal(paper_rules.extract(output, bench), paper_rules.normalize(gold)) == expected
        print(json.dumps({"class": name, **row}))
        for k, v in row.items():
            total[k] += v
    print(json.dumps({"class": "all", **total}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("projects", nargs="*", default=["."])
    ap.add_argument("--root", default="../shared/benchmarks")
    ap.add_argument("--show", type=int, default=5)
    ap.add_argument("--fixtures", action="store_true", help="grade the issue-25 fixture classes instead")
    args = ap.parse_args()
    if args.fixtures:
        fixtures()
        return
    everything, disagreements = [], []
    for project in map(Path, args.projects):
        per_bench: dict[str, list] = defaultdict(list)
        for path in sorted(project.glob("data/eval*/**/predictions.jsonl")):
            name = benchmark_of(path)
            if name is None:
                continue
            rows = load_rows(args.root, name)
            for line in path.read_text().splitlines():
                rec = json.loads(line)
                if is_loss(str(rec.get("setting", ""))) or not isinstance(rec.get("prediction"), str):
                    continue
                v = three_verdicts(TASKS[name], rows[rec["idx"]], rec["prediction"], bool(rec.get("cut_off")))
                per_bench[name].append(v)
                if v["correct"] != v["paper"]["correct"]:
                    disagreements.append({"file": str(path), "idx": rec["idx"], "gold": v["gold"], "ours": v["extracted"],
                                          "paper": v["paper"]["extracted"], "ours_correct": v["correct"],
                                          "output_tail": rec["prediction"][-160:]})
        for name, verdicts in sorted(per_bench.items()):
            everything += verdicts
            print(json.dumps({"project": str(project), "benchmark": name, "outputs": len(verdicts),
                              **summarize(verdicts)}))
    print(json.dumps({"total_outputs": len(everything), **summarize(everything)}))
    for d in disagreements[:args.show]:
        print(json.dumps(d, ensure_ascii=False))


if __name__ == "__main__":
    main()
