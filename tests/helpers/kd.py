"""The kd stage as the CLI tests run it: params and arguments."""

from __future__ import annotations

from pathlib import Path

from jiuzhang.common.io import ShardWriter
from jiuzhang.kd.teacher_round import SCHEMA as KD_SCHEMA

from conftest import ROOT, SHARED, tiny_params

KEY = "sk-live-SECRET-7d3e91b0c4"
TEMPLATES = ROOT / "templates" / "prompts"


def kd_params(tmp_path: Path, write_params, n: int, **teacher) -> Path:
    params = tiny_params({"x": str(tmp_path / "unused.jsonl")})
    params["teacher"].update(teacher)
    params["teacher"]["offline"]["gsm8k_train"] = str(SHARED / "benchmarks/gsm8k/train.jsonl")
    params["teacher"]["offline"]["samples"] = str(SHARED / "corpus/jiuzhang3_samples/cot_pretrain_data_sampled.jsonl")
    params["kd"]["initial"]["n"] = n
    return write_params(params)


def kd_args(params: Path, tmp_path: Path) -> list[str]:
    return ["kd_initial", "--params", str(params), "--prompts", str(tmp_path / "pool"), "--templates", str(TEMPLATES),
            "--journal", str(tmp_path / "journal" / "kd.sqlite"), "--out", str(tmp_path / "kd"),
            "--metrics", str(tmp_path / "metrics" / "kd_initial.json"), "--no-progress"]


def write_kd_set(folder: Path, n: int) -> None:
    """``n`` KD records (prompt, completion, problem, solution) as shards in ``folder``."""
    writer = ShardWriter(folder, KD_SCHEMA, n)
    writer.write_many({"id": f"k{i:03d}", "level": "amc8", "source": "t", "prompt": f"Make a problem about {i}.",
                       "completion": f"[Problem]: What is {i} + {i}?\n\n[Solution]: It is {2 * i}.",
                       "problem": f"What is {i} + {i}?", "solution": f"It is {2 * i}."} for i in range(n))
    writer.close()
