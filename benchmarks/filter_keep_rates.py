"""Keep rates of our filter on the paper's released synthetic records, and their size in tokens.

    python benchmarks/filter_keep_rates.py [--cot ../shared/corpus/jiuzhang3_samples/cot_pretrain_data_sampled.jsonl]
                                           [--tool PATH/tool_pretrain_data_sampled.jsonl] [--limit N]

The released records (RUCAIBox/JiuZhang3.0 ``data/*_pretrain_data_sampled.jsonl``) are what the paper
*kept*. Each is turned back into a generation (``[Problem]: ... [Solution]: ...``, finished) and run
through our filter (the filter stage's own code) twice, in the same run: with ``preset: ours`` (answer
required, tool code executed and its stored output verified, dedup) and with ``preset: paper`` (the
baseline: what the paper kept). The ratio of the two keep rates is what ``plan.keep_rates`` states, and
the records' mean size (estimated tokens, chars / 4 as the plan counts) is ``plan.tokens_per_record``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from jiuzhang.config.corpus import DedupConfig
from jiuzhang.config.synthesis import FilterConfig
from jiuzhang.synthesis.filtering import RecordFilter, sandbox_runner
from jiuzhang.teacher.budget import estimate_prompt_tokens

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"


def as_generation(record: dict, i: int, kind: str) -> dict:
    problem = re.sub(r"^## Question\n", "", record["input"]).split("\n\n## ")[0].strip()
    return {"id": f"{kind}-{i}", "kind": kind, "level": kind, "finish_reason": "stop",
            "text": f"[Problem]: {problem}\n\n[Solution]: {record['output']}"}


def measure(path: Path, kind: str, limit: int | None) -> dict:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
    rows = [as_generation(r, i, kind) for i, r in enumerate(records)]
    out = {"records": len(records),
           "tokens_per_record": round(sum(estimate_prompt_tokens(r["input"] + r["output"]) for r in records)
                                      / len(records), 1)}
    for preset in ("paper", "ours"):
        cfg = FilterConfig(preset=preset, exec_workers=2)
        filt = RecordFilter(cfg, DedupConfig(), None, sandbox_runner(cfg))
        kept, drops = filt.process(rows)
        reasons: dict[str, int] = {}
        for d in drops:
            reasons[d["reason"]] = reasons.get(d["reason"], 0) + 1
        out[preset] = {"kept": len(kept), "keep_rate": round(len(kept) / len(rows), 4), "dropped": reasons,
                       "executions": filt.report.executions}
    out["ours_vs_paper"] = round(out["ours"]["kept"] / max(1, out["paper"]["kept"]), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cot", type=Path, default=SHARED / "corpus" / "jiuzhang3_samples" / "cot_pretrain_data_sampled.jsonl")
    ap.add_argument("--tool", type=Path, default=None, help="the released tool sample (not in ../shared)")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    result = {"cot": measure(args.cot, "nl", args.limit)}
    if args.tool:
        result["tool"] = measure(args.tool, "tool", args.limit)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
