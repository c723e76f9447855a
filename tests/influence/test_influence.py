"""The influence stage: a candidate pool never overlapping round 1, data written for it by the round-1
synthesizer through the synthesize engine, and the boost selection drawn from it."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from jiuzhang.common.io import InputDataError, ShardWriter
from jiuzhang.config.loader import validate_params
from jiuzhang.influence.selection import candidate_pool
from jiuzhang.kd.items import initial_items

from conftest import make_tiny_model, run_cli, tiny_params
from helpers.synthesis import POOL_SCHEMA, pool


def test_candidates_exclude_round_one_and_sizes_are_checked():
    raw = tiny_params({"x": "u.jsonl"})
    raw["kd"]["initial"]["n"] = 10
    raw["kd"]["boost"]["n"] = 5
    raw["influence"]["pool_size"] = 20
    p = validate_params(raw, "test")
    rows = pool(40)
    cands = candidate_pool(p.influence, p.kd, rows)
    assert len(cands) == 20 and not {r["id"] for r in cands} & {r["id"] for r in initial_items(rows, p.kd)}
    assert cands == candidate_pool(p.influence, p.kd, list(reversed(rows)))  # order of the pool does not matter
    with pytest.raises(InputDataError, match="influence.pool_size=40 but only 30 prompts remain"):
        candidate_pool(p.influence.model_copy(update={"pool_size": 40}), p.kd, rows)
    with pytest.raises(InputDataError, match="kd.boost.n=25 exceeds influence.pool_size=20"):
        candidate_pool(p.influence, p.kd.model_copy(update={"boost": p.kd.boost.model_copy(update={"n": 25})}), rows)


def stage_setup(tmp_path, method: str, pool_size: int):
    """A tiny model, a 40-prompt pool and params for the influence stage (round 1: 10, boost: 5)."""
    model = make_tiny_model(tmp_path / "model")
    writer = ShardWriter(tmp_path / "prompts", POOL_SCHEMA, 1000)
    writer.write_many(pool(40))
    writer.close()
    raw = tiny_params({"x": "u.jsonl"})
    raw["kd"]["initial"]["n"] = 10
    raw["kd"]["boost"]["n"] = 5
    raw["influence"].update(method=method, pool_size=pool_size)
    raw["synthesize"].update(shard_size=8, batch_size=4, threads=1)
    for kind in ("nl", "tool"):
        raw["synthesize"][kind].update(max_new_tokens=8, temperature=1.0)
    return model, raw


def test_influence_stage_writes_candidate_data_and_selects_from_it(tmp_path, write_params):
    model, raw = stage_setup(tmp_path, "random", 12)
    params_file = write_params(raw)
    args = ["influence", "--params", str(params_file), "--prompts", str(tmp_path / "prompts"), "--model", str(model),
            "--candidates", str(tmp_path / "cand"), "--out", str(tmp_path / "sel"), "--metrics", str(tmp_path / "m.json")]
    run_cli(*args, cwd=tmp_path)
    generated = {r["id"] for f in (tmp_path / "cand").glob("part-*.parquet") for r in pq.read_table(f).to_pylist()}
    selected = pq.read_table(tmp_path / "sel" / "selected.parquet").to_pylist()
    assert len(generated) == 12 and len(selected) == 5 and {r["id"] for r in selected} <= generated
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["candidates"] == 12 and metrics["candidate_data"]["records"] == 12
    card = (tmp_path / "sel" / "README.md").read_text()
    # A rerun reuses the finished candidate shards; its card is the same although the candidates folder (the
    # stage's own persistent output) now exists at the start
    run_cli(*args, cwd=tmp_path)
    assert json.loads((tmp_path / "run" / "m.json").read_text())["generated_records"] == 0
    assert (tmp_path / "sel" / "README.md").read_text() == card


def test_influence_stage_with_less(tmp_path, write_params):
    from conftest import SHARED

    model, raw = stage_setup(tmp_path, "less", 16)
    raw["influence"]["less"].update(epochs=2, r=4, alpha=16, dim=256, batch_size=4, max_length=768, shard_size=5,
                                    warmup_fraction=0.5)
    raw["influence"]["less"]["targets"]["gsm8k"].update(path=str(SHARED / "benchmarks/gsm8k/train.jsonl"), n=4)
    params_file = write_params(raw)
    args = ["influence", "--params", str(params_file), "--prompts", str(tmp_path / "prompts"), "--model", str(model),
            "--candidates", str(tmp_path / "cand"), "--reference", str(model), "--out", str(tmp_path / "sel"),
            "--metrics", str(tmp_path / "m.json")]
    run_cli(*args, cwd=tmp_path)
    selected = pq.read_table(tmp_path / "sel" / "selected.parquet").to_pylist()
    scores = pq.read_table(tmp_path / "sel" / "scores.parquet").to_pylist()
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert len(selected) == 5 and {r["method"] for r in selected} == {"less"} and len(scores) == 16
    assert [r["score"] for r in selected] == sorted((r["score"] for r in selected), reverse=True)
    assert metrics["method"] == "less" and metrics["checkpoints"] == 2 and metrics["targets"] == {"gsm8k": 4}
    first = (tmp_path / "sel" / "selected.parquet").read_bytes()
    run_cli(*args, cwd=tmp_path)  # same seeds, same selection, byte for byte
    assert (tmp_path / "sel" / "selected.parquet").read_bytes() == first
    # bad target data fails before any training, naming the key
    raw["influence"]["less"]["targets"]["gsm8k"]["answer_field"] = "nope"
    res = run_cli(*args[:2], str(write_params(raw)), *args[3:], cwd=tmp_path, check=False)
    assert res.returncode == 2 and "'nope'" in res.stderr and "influence.less.targets.gsm8k" in res.stderr
