"""Keep rates of our filter on the paper's released synthetic records, and their size in tokens.

    python benchmarks/filter_keep_rates.py [--cot ../shared/corpus/jiuzhang3_samples/cot_pretrain_data_sampled.jsonl]
                                           [--tool PATH/tool_pretrain_data_sampled.jsonl] [--limit N]

The released records (RUCAIBox/JiuZhang3.0 ``data/*_pretrain_data_sampled.jsonl``) are what the paper
*kept*. Each is turned back into a generation (``[Problem]: ... [Solution]: ...``, finished) and run
through the filter stage's own pipeline (datatrove phases; test-sets filter off) twice, in the same run: with ``preset: ours`` (answer
required, tool code executed and its stored output verified, dedup) and with ``preset: paper`` (the
baseline: what the paper kept). The ratio of the two keep rates is what ``plan.keep_rates`` states, and
the records' mean size (estimated tokens, chars / 4 as the plan counts) is ``plan.tokens_per_record``.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from jiuzhang.config.loader import load_params
from jiuzhang.config.synthesis import FilterConfig
from jiuzhang.synthesis.cleaning import clean
from jiuzhang.synthesis.shards import SCHEMA, ShardStore
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
    base = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        full = [{"seed": 0, "prompt_tokens": 0, "new_tokens": 0, "truncated_prompt": False, **r} for r in rows]
        ShardStore(raw).finish(0, "benchmark", [{k: r[k] for k in SCHEMA.names} for r in full])
        for preset in ("paper", "ours"):
            cfg = FilterConfig(preset=preset, exec_workers=2, decontaminate=False)
            m = clean(base.model_copy(update={"filter": cfg}), raw, Path(tmp) / preset)
            kept = sum(pq.read_metadata(f).num_rows for f in (Path(tmp) / preset).glob("part-*.parquet"))
            out[preset] = {"kept": kept, "keep_rate": round(kept / len(rows), 4),
                           "dropped": {k: v for k, v in m["dropped_by_reason"].items() if v},
                           "executions": m["executions"]}
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
