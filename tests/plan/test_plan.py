"""`jiuzhang plan`: figures derived from params, data files and rates (stated or measured), never typed in."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from click.testing import CliRunner

from jiuzhang.cli import cli
from jiuzhang.config.loader import load_params
from jiuzhang.errors import UserError
from jiuzhang.plan.estimate import Planner, arch_parameters

from conftest import ROOT

PAPER = ROOT / "configs" / "paper.yaml"
TEMPLATES = ROOT / "templates" / "prompts"


def paper_plan(tmp_path, edit=None, measured=None):
    raw = yaml.safe_load(PAPER.read_text())
    if edit:
        edit(raw)
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    plan = Planner(load_params(path), ROOT, TEMPLATES, measured).build()
    return {s.stage: s for s in plan.stages}, plan


def test_paper_plan_follows_from_params(tmp_path):
    stages, plan = paper_plan(tmp_path)
    p = load_params(PAPER)
    totals = plan.totals()
    assert totals["teacher_calls"] == p.kd.initial.n + p.kd.boost.n == 9300

    # synthesis: 6M generations x 770 new tokens (the paper's 4.6B tokens / 6M records) / 2,500 tokens/s per GPU
    syn = stages["synthesize"]
    assert syn.device_hours == pytest.approx(6_000_000 * 770 / 2500 / 3600)
    assert syn.wall_hours == pytest.approx(syn.device_hours / 32)  # cluster.workers: 4 nodes x 8 GPUs
    assert "32 vLLM replicas x tensor parallel 1" in syn.launch
    # the same prompts before KD: synthesize.init_prompts of them, same engine and rate
    before = stages["synthesize_init"]
    assert before.amounts["problems"] == p.synthesize.init_prompts == 1000
    assert before.device_hours == pytest.approx(1000 * 770 / 2500 / 3600)

    # filter (preset paper): every generation kept, 4.38M CoT + 1.62M tool; pre-training = kept x tokens/record
    kept = stages["filter"].amounts
    assert kept["kept_nl"] == pytest.approx(6e6 * 0.73) and kept["kept_tool"] == pytest.approx(6e6 * 0.27)
    synthetic = 4.38e6 * 869 + 1.62e6 * 496
    assert 4.5e9 < synthetic < 4.7e9                                          # the paper's 4.6B synthetic tokens
    assert stages["pretrain"].amounts["train_tokens"] == pytest.approx(synthetic + 2.86e6 * 269)  # + the SFT tail
    assert plan.warnings == []

    # teacher: prompt tokens from the real templates + a full snippet; completion = expected_output_tokens
    kd = stages["kd_initial"]
    assert kd.amounts["completion_tokens"] == 5300 * 700
    expected = (round(kd.amounts["prompt_tokens"]) * 30 + 5300 * 700 * 60) / 1e6
    assert kd.usd == pytest.approx(expected)
    assert 400 < kd.amounts["prompt_tokens"] / 5300 < 600  # ~900-char templates + 1,000-char snippets, /4

    # pre-training: 6 N D at the stated MFU and peak, on the 32 processes the launcher starts, ZeRO-2
    pt = stages["pretrain"]
    flops_per_s = 0.35 * 312e12
    tokens = pt.amounts["train_tokens"]
    assert pt.device_hours == pytest.approx(6 * 7.24e9 * tokens / flops_per_s / 3600)
    assert pt.wall_hours == pytest.approx(pt.device_hours / 32)
    assert "32 processes (4 nodes x 8, a gang on the Ray cluster)" in pt.launch and "ZeRO-2" in pt.launch and "bf16" in pt.launch
    assert pt.amounts["steps"] == math.ceil(math.ceil(tokens / 2048) / 512)

    # the synthesizer: (5,300 + 4,000) examples x 5 epochs, ZeRO-1 on 8 GPUs
    assert stages["synthesizer"].amounts["train_tokens"] == pytest.approx(
        stages["synthesizer_initial"].amounts["train_tokens"] * 9300 / 5300)
    assert "ZeRO-1" in stages["synthesizer"].launch
    # one example per sequence, as the paper trained it: 9,300 x 5 / 32 = the paper's ~1,455 steps
    assert stages["synthesizer"].amounts["steps"] == math.ceil(9300 / 32) * 5 == 1455

    # eval: every row of the real test sets x settings (GSM8K has 1,319 rows, both settings)
    assert stages["eval"].amounts["items"] > 2 * 1319
    assert totals["usd"] == pytest.approx(totals["teacher_usd"] + totals["accelerator_usd"], abs=0.02)


def test_plan_moves_with_the_params(tmp_path):
    base, _ = paper_plan(tmp_path)

    def edit(raw):
        raw["kd"]["initial"]["n"] = 10600
        raw["plan"]["accelerator"]["peak_tflops"] = 624
        raw["synthesize"]["vllm"]["tensor_parallel_size"] = 2  # 32 workers (cluster.workers) of 2 GPUs each

    moved, _ = paper_plan(tmp_path, edit)
    assert moved["kd_initial"].usd == pytest.approx(2 * base["kd_initial"].usd, rel=1e-6)
    assert moved["pretrain"].device_hours == pytest.approx(base["pretrain"].device_hours / 2)
    assert "32 vLLM replicas x tensor parallel 2 = 64 devices" in moved["synthesize"].launch
    assert moved["synthesize"].wall_hours == pytest.approx(base["synthesize"].wall_hours / 2)


def test_measured_rates_replace_stated_ones(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "pretrain.json").write_text(json.dumps({"tokens_per_s": 100_000.0}))
    (run / "synthesize.json").write_text(json.dumps({"tokens_per_s": None}))  # a resumed run: nothing measured
    stages, _ = paper_plan(tmp_path, measured=run)
    pt = stages["pretrain"]
    assert pt.basis == f"measured: {run / 'pretrain.json'}"
    assert pt.wall_hours == pytest.approx(pt.amounts["train_tokens"] / 100_000 / 3600)
    assert "stated" in stages["synthesize"].basis


def test_missing_model_size_is_named(tmp_path):
    with pytest.raises(UserError, match=r"plan.model_params.base: missing"):
        paper_plan(tmp_path, lambda raw: raw["plan"]["model_params"].pop("base"))


def test_less_peak_memory_at_paper_shapes_is_printed_and_a_device_too_small_is_refused(tmp_path, monkeypatch):
    """Issue 24: LESS projects per-example gradients block by block; the plan prints its peak at the paper's
    shapes (Mistral-7B, LoRA r=128 on q/k/v/o: 109M weights) and refuses a device it cannot fit."""
    from jiuzhang.config.loader import load_params
    from jiuzhang.plan.memory import GIB, less_feature_bytes, shape_of, training_memory

    p = load_params(ROOT / "configs/paper.yaml")
    shape, less = shape_of(p, "base", ROOT), p.influence.less
    assert shape.lora_parameters(less.r) == 109_051_904
    blocks = less_feature_bytes(shape, less.r, less.batch_size, less.dim, less.shard_size)
    whole = less_feature_bytes(shape, less.r, less.batch_size, less.dim, less.shard_size, whole=True)
    print(f"LESS gradient features at paper shapes: {blocks / GIB:.2f} GiB block by block, {whole / GIB:,.0f} GiB "
          f"with a shard's gradient matrix held whole")
    assert blocks < 2 * GIB and whole > 1000 * GIB
    [m] = [m for m in training_memory(p, ROOT) if m.stage.startswith("influence")]
    assert m.features == blocks and m.total < 40 * GIB
    monkeypatch.chdir(ROOT)
    out = CliRunner().invoke(cli, ["plan", "--params", "configs/paper.yaml"]).output
    assert "peak device memory" in out and "influence (LESS): ~28.4 GiB" in out and "1.4 GiB gradient features" in out
    res = _check(tmp_path, lambda raw: raw["plan"]["accelerator"].update(memory_gib=24))
    assert res.exit_code == 2 and "influence (LESS): ~28.4 GiB per device" in res.output and "does not fit" in res.output


def test_arch_parameters_match_the_built_model():
    from jiuzhang.base.model import build_model

    params = load_params(ROOT / "params.yaml")
    model = build_model(params.base, 8000, {})
    assert arch_parameters(params, 8000) == sum(p.numel() for p in model.parameters())


def test_cli_prints_and_validates(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    res = CliRunner().invoke(cli, ["plan", "--params", "configs/paper.yaml"])
    assert res.exit_code == 0, res.output
    assert "synthesize  NVIDIA A100-SXM4-80GB 513.3 h (wall 16.0 h)" in res.output  # 32 vLLM workers
    assert "inconsistencies" not in res.output
    assert "teacher: 9,300 calls" in res.output
    data = json.loads(CliRunner().invoke(cli, ["plan", "--params", "configs/paper.yaml", "--json"]).stdout)
    assert data["totals"]["teacher_calls"] == 9300 and len(data["stages"]) == 14
    bad = tmp_path / "bad.yaml"
    raw = yaml.safe_load(PAPER.read_text())
    raw["plan"]["mfu"] = 1.5
    bad.write_text(yaml.safe_dump(raw))
    res = CliRunner().invoke(cli, ["plan", "--params", str(bad)])
    assert res.exit_code == 2 and "plan.mfu" in res.output


def test_eval_plan_counts_the_base_model_the_arms_and_the_heldout_loss(tmp_path):
    def alone(raw):
        raw["eval"]["base_benchmarks"], raw["eval"]["arm_benchmarks"] = [], []

    base, _ = paper_plan(tmp_path, alone)

    def edit(raw):
        raw["eval"]["benchmarks"]["gsm8k"] = [*raw["eval"]["benchmarks"]["gsm8k"], "loss"]
        raw["eval"]["base_benchmarks"], raw["eval"]["arm_benchmarks"] = ["gsm8k"], ["gsm8k"]

    moved, _ = paper_plan(tmp_path, edit)
    gsm8k_settings = len([s for s in yaml.safe_load(PAPER.read_text())["eval"]["benchmarks"]["gsm8k"]])
    arms = len(yaml.safe_load(PAPER.read_text())["pretrain"]["arms"]["names"])
    # the base model and each arm generate on GSM8K's settings too; the loss adds forward passes (two prompt
    # formats each), not generated tokens
    assert moved["eval"].amounts["items"] == base["eval"].amounts["items"] + 1319 * gsm8k_settings * (1 + arms)
    assert moved["eval"].amounts["heldout_items"] == 2 * (2 + arms) * 1319 and base["eval"].amounts["heldout_items"] == 0
    assert "eval_base@<benchmark>" in moved["eval"].launch


def _check(tmp_path, edit, args=("config", "check", "-q")):
    raw = yaml.safe_load(PAPER.read_text())
    edit(raw)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return CliRunner().invoke(cli, [*args, "--params", str(path)])


def test_settings_that_cannot_fit_the_context_are_refused(tmp_path, monkeypatch):
    """The paper profile as first written: vLLM's max_model_len 8,192 on a 4,096-token model (vLLM would
    not start) and 5,000-token tool generations that every tool prompt would be skipped for."""
    monkeypatch.chdir(ROOT)
    ok = CliRunner().invoke(cli, ["config", "check", "-q", "--params", "configs/paper.yaml"])
    assert ok.exit_code == 0 and "blocker" not in ok.output

    def as_first_written(raw):
        raw["synthesize"]["vllm"]["max_model_len"] = 8192
        raw["synthesize"]["fill_context"] = False
    for args in (("config", "check", "-q"), ("plan",)):
        res = _check(tmp_path, as_first_written, args)
        assert res.exit_code == 2, res.output
        assert "synthesize.vllm.max_model_len 8,192 exceeds the synthesizer's context 4,096" in res.output
        assert "every tool prompt would be skipped" in res.output and "synthesize.fill_context: true" in res.output
        assert "every nl prompt" not in res.output          # 2,500 + a prompt fits 4,096

    res = _check(tmp_path, lambda raw: raw["pretrain"]["train"].update(max_length=65536))
    assert res.exit_code == 2 and "pretrain.train.max_length 65,536 exceeds the base model's context 32,768" in res.output
    res = _check(tmp_path, lambda raw: raw["plan"]["model_context"].update(synthesizer=2048))
    assert res.exit_code == 2 and "synthesizer.train.max_length 2,048" not in res.output
    assert "max_model_len 4,096 exceeds the synthesizer's context 2,048" in res.output

    def random_without_less(raw):  # method 'random' needs no less section: the context check must not read it
        raw["influence"]["method"] = "random"
        raw["influence"].pop("less", None)
    res = _check(tmp_path, random_without_less)
    assert res.exit_code == 0, res.output


def test_a_local_model_folder_states_its_own_context(tmp_path):
    from jiuzhang.plan.checks import model_context
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"max_position_embeddings": 1234}))
    raw = yaml.safe_load(PAPER.read_text())
    raw["synthesizer"]["init"] = {"path": str(folder)}
    del raw["plan"]["model_context"]["synthesizer"]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert model_context(load_params(path), "synthesizer", ROOT) == (1234, str(folder / "config.json"))
    smoke = load_params(ROOT / "params.yaml")          # starts from models/base, built by base.arch
    assert model_context(smoke, "synthesizer", ROOT)[1] == "base.arch.max_position_embeddings"


def test_keep_rates_decide_the_kept_volume_and_stated_tokens_are_checked(tmp_path):
    """filter.preset ours keeps ~25% CoT / ~30% tool (plan.keep_rates, measured on the released records);
    a stated pretrain.planned_tokens far from the kept volume, or too few new tokens per generation to
    write a record, are flagged."""
    def ours(raw):
        raw["filter"]["preset"] = "ours"
        raw["pretrain"]["planned_tokens"] = 5.37e9
        raw["synthesize"]["projection"]["new_tokens_per_problem"] = 300
    stages, plan = paper_plan(tmp_path, ours)
    kept = stages["filter"].amounts
    assert kept["kept_nl"] == pytest.approx(4.38e6 * 0.246) and kept["kept_tool"] == pytest.approx(1.62e6 * 0.296)
    assert stages["filter"].amounts["programs"] == pytest.approx(1.62e6)       # ours runs every tool program
    assert any("planned_tokens 5,370,000,000 disagrees" in w for w in plan.warnings)
    assert any("new_tokens_per_problem 300 is under half a kept record" in w for w in plan.warnings)
    assert stages["pretrain"].amounts["train_tokens"] == pytest.approx(5.37e9)  # the stated figure, flagged

    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "filter.json").write_text(json.dumps({"by_kind": {"nl": {"input": 100, "kept": 50},
                                                                  "tool": {"input": 10, "kept": 1}}}))
    measured, _ = paper_plan(tmp_path, lambda raw: raw["filter"].update(preset="ours"), measured=run)
    assert measured["filter"].amounts["kept_nl"] == pytest.approx(4.38e6 * 0.5)
    assert f"measured: {tmp_path / 'filter.json'}" in measured["filter"].basis


def test_training_that_cannot_fit_device_memory_is_refused(tmp_path, monkeypatch):
    """Issue 22.3: pre-training 8 x 2,048 tokens of Mistral-7B and LESS at batch 8 without gradient
    checkpointing cannot fit an 80 GB GPU; `config check` and `plan` say so, naming the setting."""
    from jiuzhang.plan.memory import training_memory

    monkeypatch.chdir(ROOT)
    fits = {m.stage: m for m in training_memory(load_params(PAPER), ROOT)}
    assert set(fits) == {"synthesizer", "pretrain", "influence (LESS)"}
    assert all(m.total < m.capacity for m in fits.values())

    def no_checkpointing(raw):
        raw["pretrain"]["train"]["gradient_checkpointing"] = False
        raw["influence"]["less"]["gradient_checkpointing"] = False
    for args in (("config", "check", "-q"), ("plan",)):
        res = _check(tmp_path, no_checkpointing, args)
        assert res.exit_code == 2, res.output
        assert "pretrain: ~" in res.output and "set pretrain.train.gradient_checkpointing: true" in res.output
        assert "set influence.less.gradient_checkpointing: true" in res.output
        assert "synthesizer: ~" not in res.output
    # eager attention stores the seq x seq matrix of every head: more memory than sdpa at the same settings
    raw = yaml.safe_load(PAPER.read_text())
    raw["pretrain"]["train"]["attn_implementation"] = "eager"
    path = tmp_path / "eager.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    eager = {m.stage: m for m in training_memory(load_params(path), ROOT)}
    assert eager["pretrain"].activations > fits["pretrain"].activations
    # the smoke profile's tiny models are counted from base.arch and fit
    assert all(m.total < m.capacity for m in training_memory(load_params(ROOT / "params.yaml"), ROOT))
