"""pretrain.sft_tail: the SFT mix after the synthetic records, from a local file or a pinned hub dataset,
shuffled once with a named seed; `plan` counts exactly what is configured."""
from __future__ import annotations

import json

import pytest
import yaml

from jiuzhang.common.io import InputDataError
from jiuzhang.config.loader import load_params
from jiuzhang.config.training import SftTailConfig
from jiuzhang.errors import UserError
from jiuzhang.plan.estimate import Planner
from jiuzhang.training.records import load_sft_tail

from conftest import ROOT


def _rows(n):
    return [{"input": f"## Question\nq{i}\n\n## Solution\n", "output": f"answer {i}"} for i in range(n)]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_local_tail_is_shuffled_once_by_its_seed(tmp_path):
    _write(tmp_path / "sft.jsonl", _rows(50))
    cfg = SftTailConfig(format="jsonl", path="sft.jsonl", shuffle_seed=7)
    a = [e.target for e in load_sft_tail(cfg, tmp_path)]
    assert a == [e.target for e in load_sft_tail(cfg, tmp_path)] and sorted(a) == sorted(r["output"] for r in _rows(50))
    assert a != [r["output"] for r in _rows(50)]                                   # shuffled
    assert a != [e.target for e in load_sft_tail(cfg.model_copy(update={"shuffle_seed": 8}), tmp_path)]
    in_order = load_sft_tail(cfg.model_copy(update={"shuffle_seed": None, "max_rows": 3}), tmp_path)
    assert [e.target for e in in_order] == ["answer 0", "answer 1", "answer 2"]


def test_hub_tail_reads_the_pinned_dataset(tmp_path, monkeypatch):
    """A hub dataset goes through datasets.load_dataset at the pinned revision; a local dataset folder
    stands in for the hub here (offline)."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "ds").mkdir()
    _write(tmp_path / "ds" / "train.jsonl", _rows(10))
    cfg = SftTailConfig(format="hf", dataset=str(tmp_path / "ds"), revision="0" * 40, shuffle_seed=3)
    tail = load_sft_tail(cfg, tmp_path)
    assert len(tail) == 10 and {e.prompt for e in tail} == {r["input"] for r in _rows(10)}
    _write(tmp_path / "ds" / "train.jsonl", [{"input": "q", "output": ""}])
    with pytest.raises(InputDataError, match="non-empty 'output'"):
        load_sft_tail(SftTailConfig(format="hf", dataset=str(tmp_path / "ds"), revision="1" * 40), tmp_path)


def test_bad_tail_configs_are_refused():
    with pytest.raises(ValueError, match="needs 'path'"):
        SftTailConfig(format="jsonl", dataset="x/y")
    with pytest.raises(ValueError, match="'dataset' and 'revision'"):
        SftTailConfig(format="hf", dataset="x/y")


def _plan(tmp_path, tail):
    raw = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    raw["pretrain"]["sft_tail"] = tail
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return {s.stage: s for s in Planner(load_params(path), ROOT, ROOT / "templates" / "prompts").build().stages}


def test_plan_counts_exactly_the_configured_tail(tmp_path):
    none = _plan(tmp_path, None)["pretrain"].amounts["train_tokens"]
    hub = _plan(tmp_path, {"format": "hf", "dataset": "a/b", "revision": "main", "planned_rows": 1000,
                           "planned_tokens_per_row": 200})["pretrain"].amounts["train_tokens"]
    assert hub - none == pytest.approx(1000 * 200)
    _write(tmp_path / "sft.jsonl", _rows(40))
    local = _plan(tmp_path, {"format": "jsonl", "path": str(tmp_path / "sft.jsonl"), "max_rows": 30})["pretrain"]
    assert local.amounts["train_tokens"] > none and "SFT tail 30 rows" in local.work
    # exactly the rows training takes: the first 30 after the tail's shuffle, not the file's first 30
    from jiuzhang.teacher.budget import estimate_prompt_tokens
    _write(tmp_path / "growing.jsonl", [{"input": f"q{i}", "output": "step " * (i + 1)} for i in range(40)])
    tail = {"format": "jsonl", "path": str(tmp_path / "growing.jsonl"), "max_rows": 30}
    planned = _plan(tmp_path, tail)["pretrain"].amounts["train_tokens"] - none
    used = load_sft_tail(SftTailConfig(**tail), tmp_path)
    first = load_sft_tail(SftTailConfig(**tail, shuffle_seed=None), tmp_path)
    assert planned == pytest.approx(sum(estimate_prompt_tokens(e.prompt + e.target) for e in used))
    assert planned != pytest.approx(sum(estimate_prompt_tokens(e.prompt + e.target) for e in first))
    with pytest.raises(UserError, match="planned_rows"):
        _plan(tmp_path, {"format": "hf", "dataset": "a/b", "revision": "main"})
    paper = {s.stage: s for s in Planner(load_params(ROOT / "configs" / "paper.yaml"), ROOT,
                                         ROOT / "templates" / "prompts").build().stages}["pretrain"]
    assert paper.amounts["train_tokens"] == pytest.approx(4.38e6 * 869 + 1.62e6 * 496 + 2.86e6 * 269)   # ~5.38B


def test_a_local_tail_missing_from_dvc_yaml_deps_is_named(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from jiuzhang.cli import cli
    monkeypatch.chdir(ROOT)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["pretrain"]["sft_tail"] = {"format": "jsonl", "path": "data/my_sft.jsonl"}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    res = CliRunner().invoke(cli, ["config", "check", "-q", "--params", str(path)])
    assert res.exit_code == 0
    assert "pretrain.sft_tail.path 'data/my_sft.jsonl' is not a dep of the pretrain stage in dvc.yaml" in res.output
    assert "pretrain.supplement" not in res.output          # the smoke supplement is declared
