"""Grading throughput and sandbox overhead, in one run.

    python benchmarks/eval_throughput.py [--programs 40]

Grading: every gold solution of GSM8K (numeric path) and MATH-500 (symbolic path: math-verify when the
strings differ) graded as a prediction, and the MATH-500 gold answers written as decimals where they are
fractions (forces math-verify's symbolic comparison); items/s for each.
Sandbox: a trivial program (``print(1)``) run N times in the sandbox vs N plain ``python -c`` subprocesses
(the baseline), in the same run; prints the per-program time of both and the overhead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from jiuzhang.evaluation.grading import grade
from jiuzhang.evaluation.tasks import TASKS, load_rows
from jiuzhang.sandbox.process import run_python

ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "benchmarks"


def grading(name: str, preds) -> dict:
    task, rows = TASKS[name], load_rows(ROOT, name)
    pairs = [(r, p) for r in rows if (p := preds(task, r))]
    start = time.perf_counter()
    correct = sum(grade(task, r, p).correct for r, p in pairs)
    seconds = time.perf_counter() - start
    return {"items": len(pairs), "correct": correct, "seconds": round(seconds, 3), "items_per_s": round(len(pairs) / seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=40)
    args = ap.parse_args()
    result = {
        "grading_gsm8k_solutions": grading("gsm8k", lambda t, r: t.solution(r)),
        "grading_math500_solutions": grading("math500", lambda t, r: t.solution(r)),
        "grading_math500_symbolic": grading("math500", lambda t, r: f"\\boxed{{{t.gold(r).replace('frac', 'dfrac')} + 0}}"),
    }
    run_python("print(1)")  # warm the page cache for both sides
    start = time.perf_counter()
    for _ in range(args.programs):
        subprocess.run([sys.executable, "-I", "-c", "print(1)"], capture_output=True, check=True)
    plain = (time.perf_counter() - start) / args.programs
    start = time.perf_counter()
    statuses = [run_python("print(1)").status for _ in range(args.programs)]
    sandboxed = (time.perf_counter() - start) / args.programs
    result["sandbox"] = {"programs": args.programs, "all_ok": statuses.count("ok") == args.programs,
                         "plain_subprocess_ms": round(plain * 1000, 1), "sandbox_ms": round(sandboxed * 1000, 1),
                         "overhead_ms": round((sandboxed - plain) * 1000, 1), "ratio": round(sandboxed / plain, 2),
                         "isolation": run_python("print(1)").isolation}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
