"""The synthesize path: per-prompt seeded sampling, fixed shards, resume, bad input (in-process executor;
tests/cluster/test_cluster_pool.py runs the same job on a Ray cluster of 1 and 2 nodes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from jiuzhang.cluster.pool import UnitFailed
from jiuzhang.common.io import ShardWriter
from jiuzhang.config.cluster import ClusterConfig
from jiuzhang.synthesis.engine import EngineSettings, HFEngine, fit_prompt
from jiuzhang.synthesis.job import run_job
from jiuzhang.synthesis.requests import plan_requests
from jiuzhang.synthesis.sampling import SeededSampler

from conftest import BIN, make_tiny_model, run_cli, tiny_params
from helpers.synthesis import INLINE, POOL_SCHEMA, params, pool, shard_bytes


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("synth") / "model")


def job(p, rows, model, out, **kw):
    return run_job(p.synthesize, rows, model, out, INLINE, lambda: HFEngine(model, EngineSettings.of_synthesize(p.synthesize)), progress=False, **kw)


# --- sampling -------------------------------------------------------------------------------------------

def test_each_row_samples_from_its_own_seed_whatever_the_batch():
    torch.manual_seed(0)
    scores = torch.randn(3, 50)
    a = [SeededSampler([11, 22, 33], [1.0] * 3, [1.0] * 3).choose(scores) for _ in range(1)][0]
    # Same rows, other order and other neighbours: row 22 still draws the same token.
    b = SeededSampler([33, 22, 99], [1.0] * 3, [1.0] * 3).choose(scores[[2, 1, 0]])
    assert b[1] == a[1] and b[0] == a[2]
    # A sequence of steps: each row's tokens depend only on its own seed.
    s1, s2 = SeededSampler([5, 6], [0.7, 0.7], [1.0, 1.0]), SeededSampler([6], [0.7], [1.0])
    for _ in range(20):
        x = torch.randn(2, 50)
        assert s1.choose(x)[1] == s2.choose(x[1:])[0]


def test_top_p_and_greedy():
    scores = torch.tensor([[5.0, 4.0, 0.0, -1.0, -3.0]] * 200)
    picks = SeededSampler(list(range(200)), [1.0] * 200, [0.5] * 200).choose(scores)
    assert set(picks.tolist()) == {0}  # the nucleus for 0.5 is the top token alone (p=0.73)
    picks = SeededSampler(list(range(200)), [1.0] * 200, [0.9] * 200).choose(scores)
    assert set(picks.tolist()) == {0, 1}
    wide = SeededSampler(list(range(200)), [1.0] * 200, [1.0] * 200).choose(torch.zeros(200, 5))
    assert set(wide.tolist()) == {0, 1, 2, 3, 4}
    assert SeededSampler([1, 2], [0.0, 0.0], [1.0, 1.0]).choose(torch.tensor([[0.0, 2.0, 1.0]] * 2)).tolist() == [1, 1]


def test_overlong_prompts_are_skipped_or_truncated_keeping_bos_and_the_end():
    ids = list(range(100))
    assert fit_prompt(ids, 20, 64, "skip") == (None, False, 0)
    cut, truncated, max_new = fit_prompt(ids, 20, 64, "truncate")
    assert truncated and len(cut) == 44 and cut[0] == 0 and cut[-1] == 99 and max_new == 20
    assert fit_prompt(ids[:40], 20, 64, "skip") == (ids[:40], False, 20)


def test_fill_context_clamps_new_tokens_to_the_room_left():
    """The paper's case: tool prompts asking for 5,000 new tokens in a 4,096-token context. Without
    fill_context every one is overlong; with it each generates until the context is full."""
    prompt = list(range(900))
    assert fit_prompt(prompt, 5000, 4096, "skip") == (None, False, 0)
    assert fit_prompt(prompt, 5000, 4096, "skip", fill_context=True, min_new=256) == (prompt, False, 4096 - 900)
    assert fit_prompt(prompt, 2500, 4096, "skip", fill_context=True, min_new=256) == (prompt, False, 2500)
    # a prompt that leaves less than min_new is still overlong (skipped, or truncated to leave min_new)
    long = list(range(4000))
    assert fit_prompt(long, 5000, 4096, "skip", fill_context=True, min_new=256) == (None, False, 0)
    cut, truncated, max_new = fit_prompt(long, 5000, 4096, "truncate", fill_context=True, min_new=256)
    assert truncated and len(cut) == 4096 - 256 and max_new == 256 and cut[-1] == 3999


def test_hf_engine_fills_the_context(tiny_model):
    """A tiny model with a 64-token context: prompts of ~30 tokens asking for 200 new tokens generate up
    to the context's end instead of being skipped."""
    long = {"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 200}
    p = params(nl=long, tool=long, fill_context=True, min_new_tokens=8)
    engine = HFEngine(tiny_model, EngineSettings.of_synthesize(p.synthesize))
    engine.context = 64
    reqs = plan_requests(pool(3), p.synthesize)
    gens = engine.generate(reqs)
    assert all(g.finish_reason != "overlong" for g in gens)
    width = max(g.prompt_tokens for g in gens)
    assert all(g.new_tokens <= 64 - width for g in gens) and any(g.new_tokens == 64 - width for g in gens)
    skipped = HFEngine(tiny_model, EngineSettings.of_synthesize(params(nl=long, tool=long).synthesize))
    skipped.context = 64
    assert {g.finish_reason for g in skipped.generate(reqs)} == {"overlong"}


def test_engine_matches_plain_generate_one_prompt_at_a_time(tiny_model):
    """The engine (per-row prefill into a static cache, one batched decode) writes exactly what plain
    ``generate`` writes for each prompt alone with the same seeded sampler."""
    from transformers import LogitsProcessorList

    p = params()
    engine = HFEngine(tiny_model, EngineSettings.of_synthesize(p.synthesize))
    batch = engine.plan(plan_requests(pool(8), p.synthesize))[0]
    got = engine.generate(batch)
    for r, g in zip(batch, got):
        ids = torch.tensor([engine._prompt_ids(r)])
        sampler = SeededSampler([r.seed], [r.sampling.temperature], [r.sampling.top_p])
        with torch.inference_mode():
            out = engine.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                        max_new_tokens=r.sampling.max_new_tokens, logits_processor=LogitsProcessorList([sampler]),
                                        pad_token_id=engine.tokenizer.pad_token_id, eos_token_id=engine.tokenizer.eos_token_id)
        new = out[0, ids.shape[1]:].tolist()
        eos = engine.tokenizer.eos_token_id
        new = new[:new.index(eos)] if eos in new else new
        assert g.new_tokens == len(new) and g.text == engine.tokenizer.decode(new, skip_special_tokens=True)


# --- the job ---------------------------------------------------------------------------------------------

def test_text_depends_on_the_prompt_and_seed_not_on_batch_or_shard_layout(tiny_model, tmp_path):
    rows = pool(24)
    job(params(), rows, tiny_model, tmp_path / "a")
    job(params(batch_size=8, shard_size=16), rows, tiny_model, tmp_path / "b")
    read = lambda d: {r["id"]: r["text"] for f in sorted(d.glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()}
    a, b = read(tmp_path / "a"), read(tmp_path / "b")
    assert len(a) == 24 and any(a.values())
    same = sum(a[k] == b[k] for k in a)
    # Per-request seeds make each text independent of its batch; fp32 CPU kernels give the same logits
    # for a row whatever its neighbours, so here all agree.
    assert same == 24


def test_rerun_skips_finished_shards_and_regenerates_corrupt_or_stale_ones(tiny_model, tmp_path):
    rows, p, out = pool(24), params(), tmp_path / "out"
    job(p, rows, tiny_model, out)
    reference = shard_bytes(out)
    again = job(p, rows, tiny_model, out)
    assert again["timing"]["skipped_shards"] == 3 and again["timing"]["generated_records"] == 0
    # A corrupt shard file (e.g. a disk error or a copy cut short) is detected by its checksum.
    (out / "part-00001.parquet").write_bytes(b"PAR1 garbage")
    fixed = job(p, rows, tiny_model, out)
    assert fixed["timing"]["generated_records"] == 8 and shard_bytes(out) == reference
    # Other sampling params: every shard's fingerprint changes, so all are redone.
    other = job(params(seed=p.synthesize.seed + 1), rows, tiny_model, out)
    assert other["timing"]["generated_records"] == 24 and shard_bytes(out) != reference
    # A smaller plan: shards beyond it are removed.
    job(params(seed=p.synthesize.seed + 1, max_prompts=8), rows, tiny_model, out)
    assert sorted(f.name for f in out.glob("part-*")) == ["part-00000.done.json", "part-00000.parquet"]


def test_half_done_shard_resumes_after_its_last_whole_batch(tiny_model, tmp_path):
    rows, p = pool(8), params()
    job(p, rows, tiny_model, tmp_path / "full")
    out = tmp_path / "cut"
    job(p, rows, tiny_model, out)
    # Rebuild the state a kill leaves: one whole batch in the partial file, then a torn line.
    done = json.loads((out / "part-00000.done.json").read_text())
    shard = pq.read_table(out / "part-00000.parquet").to_pylist()
    for f in out.glob("part-00000*"):
        f.unlink()
    engine = HFEngine(tiny_model, EngineSettings.of_synthesize(p.synthesize))
    first = engine.plan(plan_requests(rows, p.synthesize))[0]
    by_id = {r["id"]: r for r in shard}
    partial = out / "part-00000.killedrun-0-0.partial.jsonl"
    partial.write_text(json.dumps({"fingerprint": done["fingerprint"]}) + "\n" +
                       json.dumps({"batch": 0, "size": len(first), "rows": [by_id[r.id] for r in first]}) + "\n" +
                       '{"batch": 1, "size": 4, "rows": [{"id": "p00')
    resumed = job(p, rows, tiny_model, out)
    assert resumed["timing"]["resumed_records"] == 4 and resumed["timing"]["generated_records"] == 4
    assert shard_bytes(out) == shard_bytes(tmp_path / "full") and not partial.exists()


def test_overlong_prompt_is_counted_not_a_crash(tiny_model, tmp_path):
    rows = pool(8)
    rows[3]["prompt"] = "a very long prompt " * 60  # far beyond the tiny model's 64-token context
    skipped = job(params(), rows, tiny_model, tmp_path / "skip")
    assert skipped["overlong_skipped"] == 1 and skipped["records"] == 8
    truncated = job(params(on_overlong="truncate"), rows, tiny_model, tmp_path / "trunc")
    assert truncated["overlong_skipped"] == 0 and truncated["truncated_prompts"] == 1


def failing_on(requests) -> type:
    """An HF engine that fails (as a GPU fault would) on any batch holding one of ``requests``."""
    ids = {r.id for r in requests}

    class Broken(HFEngine):
        def generate(self, batch):
            if any(r.id in ids for r in batch):
                raise RuntimeError("CUDA error: device-side assert (simulated)")
            return super().generate(batch)
    return Broken


def test_a_failing_shard_fails_the_job_with_its_error_after_its_retries_and_a_rerun_recovers(tiny_model, tmp_path):
    rows, p, out = pool(16), params(), tmp_path / "out"
    Broken = failing_on(plan_requests(rows, p.synthesize)[8:16])
    cluster = ClusterConfig(executor="inline", max_retries=1)
    with pytest.raises(UnitFailed, match=r"shard 1 \(8 prompts\) failed 2 time\(s\); last error: RuntimeError: CUDA error"):
        run_job(p.synthesize, rows, tiny_model, out, cluster, lambda: Broken(tiny_model, EngineSettings.of_synthesize(p.synthesize)), progress=False)
    assert (out / "part-00000.done.json").is_file() and not (out / "part-00001.done.json").exists()
    fixed = job(p, rows, tiny_model, out)
    assert fixed["records"] == 16 and fixed["timing"]["skipped_shards"] == 1


def test_empty_pool_and_missing_model_are_clear_errors(tiny_model, tmp_path):
    from jiuzhang.common.io import InputDataError
    from jiuzhang.errors import UserError
    from jiuzhang.synthesis.engine import build_engine

    with pytest.raises(UserError, match="prompt pool is empty"):
        job(params(), [], tiny_model, tmp_path / "x")
    with pytest.raises(InputDataError, match="not a model folder"):
        build_engine(tmp_path, EngineSettings.of_synthesize(params().synthesize))
    with pytest.raises(InputDataError, match="vllm is selected but not installed"):
        build_engine(tiny_model, EngineSettings.of_synthesize(params(engine="vllm").synthesize))


# --- the stage, killed --------------------------------------------------------------------------------

@pytest.mark.slow
def test_killed_synthesize_resumes_to_the_same_output(tiny_model, tmp_path, write_params):
    prompts = tmp_path / "prompts"
    writer = ShardWriter(prompts, POOL_SCHEMA, 1000)
    writer.write_many(pool(480))
    writer.close()
    raw = tiny_params({"x": "unused.jsonl"})
    raw["synthesize"].update({"shard_size": 32, "batch_size": 8, "threads": 1, "max_prompts": None,
                              "nl": {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 24},
                              "tool": {"temperature": 0.1, "top_p": 0.95, "max_new_tokens": 24}})
    params_file = write_params(raw)

    def args(out: str) -> list[str]:
        return ["synthesize", "--params", str(params_file), "--model", str(tiny_model), "--prompts", str(prompts),
                "--out", str(tmp_path / out), "--metrics", str(tmp_path / f"{out}.json")]

    run_cli(*args("full"), cwd=tmp_path)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "JIUZHANG_TRACKING": "off"}
    proc = subprocess.Popen([str(BIN / "jiuzhang"), *args("killed")], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tmp_path / "killed"
    deadline = time.time() + 300

    def progress() -> tuple[int, int]:
        partial = sum(len(f.read_bytes().splitlines()) - 1 for f in out.glob("*.partial.jsonl"))
        return len(list(out.glob("*.done.json"))), partial

    while progress()[0] < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    while progress()[1] < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)  # inside a shard, after at least one of its batches
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished, batches = progress()
    assert 3 <= finished < 15 and batches >= 1, "the kill must land mid-run, inside a shard"
    run_cli(*args("killed"), cwd=tmp_path)
    facts = json.loads((tmp_path / "run" / "killed.json").read_text())
    print(f"killed after {finished} of 15 shards + {batches} batch(es) of the next; resumed run: {facts}")
    assert facts["skipped_shards"] == finished and facts["resumed_records"] >= 8
    assert facts["generated_records"] == 480 - 32 * finished - facts["resumed_records"]
    assert shard_bytes(out) == shard_bytes(tmp_path / "full")
    assert json.loads((tmp_path / "killed.json").read_text()) == json.loads((tmp_path / "full.json").read_text())


def test_every_setting_that_reaches_the_engine_and_its_code_are_in_the_fingerprint(tiny_model, tmp_path, monkeypatch):
    """Issue 22.7: synthesize.vllm.max_model_len 4096 and 2048 gave the same shard fingerprint (finished
    shards were reused although the text differs), and engine code changes relied on a hand-bumped number."""
    from jiuzhang.synthesis import job as job_mod
    from jiuzhang.synthesis.job import identity

    base = params().synthesize
    vllm = base.model_copy(update={"engine": "vllm"})

    def fp(cfg) -> dict:
        return identity(cfg, tiny_model)
    long, short = (vllm.model_copy(update={"vllm": vllm.vllm.model_copy(update={"max_model_len": n})})
                   for n in (4096, 2048))
    assert fp(long) != fp(short)
    for field, value in (("gpu_memory_utilization", 0.5), ("enforce_eager", True), ("chunked_prefill", False),
                         ("python", "other/bin/python")):
        assert fp(vllm.model_copy(update={"vllm": vllm.vllm.model_copy(update={field: value})})) != fp(vllm), field
    assert fp(base.model_copy(update={"threads": base.threads + 1})) != fp(base)  # CPU float sums, HF engine
    # what does not change the text keeps the fingerprint (paid-for shards stay reusable)
    assert fp(base.model_copy(update={"shard_size": 3, "max_prompts": 5})) == fp(base)
    assert fp(vllm.model_copy(update={"threads": 7})) == fp(vllm)           # vLLM ignores the HF threads
    # a change to the engine's code changes it too (here: a different engine.py)
    edited = tmp_path / "pkg"
    edited.mkdir()
    for name in job_mod.ENGINE_MODULES:
        (edited / name).write_text((Path(job_mod.__file__).parent / name).read_text())
    (edited / "engine.py").write_text((edited / "engine.py").read_text() + "\n# changed\n")
    before = fp(base)
    monkeypatch.setattr(job_mod, "__file__", str(edited / "job.py"))
    assert fp(base) != before
