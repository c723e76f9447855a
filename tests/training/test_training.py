"""The shared trainer: loss masking, packing without cross-talk, schedules, resume, determinism, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from jiuzhang.common.io import InputDataError
from jiuzhang.config.training import ModelSource, TrainConfig
from jiuzhang.models.loading import load_model
from jiuzhang.training.packing import IGNORE, Example, PackStats, pack, tokenize
from jiuzhang.training.schedule import lr_at
from jiuzhang.training.trainer import run_training
from jiuzhang.training.world import World

from conftest import make_tiny_model
from helpers.torchrun import torchrun_workers


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def cfg(**over) -> TrainConfig:
    base = dict(max_length=64, micro_batch=2, global_batch=4, epochs=2, lr=3e-3, weight_decay=0.1, schedule="cosine",
                save_every=3, log_every=1, seed_data=1, seed_dropout=2, threads=2, on_overlong="truncate")
    base.update(over)
    return TrainConfig.model_validate(base)


def examples(n: int = 24) -> list[Example]:
    return [Example(f"e{i}", f"Problem {i}: what is {i} plus {i + 1}?", f" Solution: it is {2 * i + 1}.")
            for i in range(n)]


def test_labels_mask_the_prompt_and_packing_counts(tiny_model):
    tok = AutoTokenizer.from_pretrained(tiny_model)
    stats = PackStats()
    items = list(tokenize(examples(6), tok, 64, "error", stats))
    prompt_len = 1 + len(tok("Problem 0: what is 0 plus 1?", add_special_tokens=False)["input_ids"])
    assert items[0].labels[:prompt_len] == [IGNORE] * prompt_len
    assert items[0].labels[prompt_len:] == items[0].input_ids[prompt_len:]
    assert items[0].input_ids[-1] == tok.eos_token_id
    packed = pack(items, 64, tok.pad_token_id, stats)
    unpacked_stats = PackStats()
    pack(items, 64, tok.pad_token_id, unpacked_stats, packing=False)
    assert packed.input_ids.shape[0] < len(items) and unpacked_stats.sequences == len(items)
    assert stats.padding_share < unpacked_stats.padding_share
    assert int(packed.real.sum()) == sum(len(i.input_ids) for i in items)


def test_packed_examples_do_not_attend_to_each_other(tiny_model):
    """Logits of an example packed after another equal its logits alone: no cross-contamination."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model)
    stats = PackStats()
    a, b = tokenize(examples(2), tok, 64, "error", stats)
    packed = pack([a, b], 64, tok.pad_token_id, stats)
    with torch.no_grad():
        together = model(input_ids=packed.input_ids, position_ids=packed.position_ids, use_cache=False).logits[0]
        alone = model(input_ids=torch.tensor([b.input_ids]), use_cache=False).logits[0]
    start = len(a.input_ids)
    assert torch.allclose(together[start:start + len(b.input_ids)], alone, atol=1e-5)
    with torch.no_grad():  # and the check can fail: with a KV cache transformers ignores the packing
        leaky = model(input_ids=packed.input_ids, position_ids=packed.position_ids).logits[0]  # with a KV cache
    assert not torch.allclose(leaky[start:start + len(b.input_ids)], alone, atol=1e-3)


def test_overlong_examples_error_truncate_or_skip(tiny_model):
    tok = AutoTokenizer.from_pretrained(tiny_model)
    long = [Example("long", "word " * 100, "target words " * 10)]
    with pytest.raises(InputDataError, match="'long' has .* tokens > max_length=32"):
        list(tokenize(long, tok, 32, "error", PackStats()))
    stats = PackStats()
    assert list(tokenize(long, tok, 32, "skip", stats)) == [] and stats.skipped == 1
    stats = PackStats()
    assert list(tokenize(long, tok, 32, "truncate", stats)) == [] and stats.truncated == 1 and stats.skipped == 1
    with pytest.raises(InputDataError, match="empty target"):
        list(tokenize([Example("x", "p", "  ")], tok, 32, "error", PackStats()))
    with pytest.raises(InputDataError, match="training set is empty"):
        pack([], 32, 0, PackStats())


@pytest.mark.parametrize("schedule, expect", [
    (dict(schedule="cosine", warmup_ratio=0.0, min_lr_ratio=0.0), {0: 1.0, 50: 0.5, 99: 0.0}),
    (dict(schedule="wsd", warmup_ratio=0.03, stable_until=0.85, min_lr_ratio=0.1),
     {0: 1 / 3, 2: 1.0, 3: 1.0, 84: 1.0, 85: 1.0, 99: 0.1}),
])
def test_schedules(schedule, expect):
    for step, ratio in expect.items():
        got = lr_at(step, 100, 1.0, schedule["schedule"], schedule["warmup_ratio"], schedule.get("stable_until", 0.85),
                    schedule["min_lr_ratio"])
        assert got == pytest.approx(ratio, abs=0.01), step
    wsd = [lr_at(s, 100, 1.0, "wsd", 0.03, 0.85, 0.1) for s in range(100)]
    assert all(a >= b for a, b in zip(wsd[3:], wsd[4:]))  # never rises after warm-up


def test_resume_reaches_the_same_weights_and_runs_are_byte_identical(tiny_model, tmp_path):
    src = ModelSource(path=str(tiny_model))
    full = run_training(src, examples(), cfg(), tmp_path / "full", tmp_path / "ck_full", World())
    # interrupted after 4 steps (a checkpoint was written at step 3), then resumed to the end
    run_training(src, examples(), cfg(), tmp_path / "x", tmp_path / "ck", World(), stop_after=4)
    assert (tmp_path / "ck" / "last.pt").is_file()
    resumed = run_training(src, examples(), cfg(), tmp_path / "resumed", tmp_path / "ck", World())
    assert resumed["timing"]["resumed_from_step"] == 2
    weights = (tmp_path / "full" / "model.safetensors").read_bytes()
    assert (tmp_path / "resumed" / "model.safetensors").read_bytes() == weights
    assert resumed["loss_curve"] == full["loss_curve"] and not (tmp_path / "ck").exists()
    run_training(src, examples(), cfg(), tmp_path / "again", tmp_path / "ck2", World())
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == weights
    other = run_training(src, examples(), cfg(seed_data=9), tmp_path / "other", tmp_path / "ck3", World())
    assert (tmp_path / "other" / "model.safetensors").read_bytes() != weights
    assert full["steps"] == 2 * 2 and full["final_loss"] < full["loss_curve"][0]["loss"]
    assert other["sequences"] == full["sequences"]


def test_bad_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputDataError, match="not a model folder"):
        load_model(ModelSource(path=str(tmp_path)), "fp32")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InputDataError, match="does not load"):
        load_model(ModelSource(path=str(tmp_path)), "fp32")


def test_batch_sizes_must_divide(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="multiple of micro_batch"):
        cfg(global_batch=5)
    with pytest.raises(InputDataError, match="world size"):
        run_training(ModelSource(path=str(tiny_model)), examples(), cfg(), tmp_path / "o", tmp_path / "c", World(0, 3, 0))


def test_two_processes_without_deepspeed_train_one_model(tiny_model, tmp_path):
    """Issue 13.1: several processes on the plain torch path are data parallel (gradients averaged over the
    ranks), so 2 ranks end with the weights of 1 process, not with rank 0's half-batch model."""
    from safetensors.torch import load_file

    one = torchrun_workers([str(tiny_model), str(tmp_path / "one"), str(tmp_path / "ck1"), "0", "-", "torch"], 1, 29631)
    two = torchrun_workers([str(tiny_model), str(tmp_path / "two"), str(tmp_path / "ck2"), "0", "-", "torch"], 2, 29632)
    assert len(two) == 2 and two[0] == two[1]  # both ranks log the same global-batch loss
    assert [round(x["loss"], 5) for x in two[0]["loss_curve"]] == [round(x["loss"], 5) for x in one[0]["loss_curve"]]
    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    start = load_file(Path(tiny_model) / "model.safetensors")
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-5, k
    assert any((a[k] - start[k]).abs().max() > 1e-3 for k in a)  # it did train
    # interrupted after 3 steps (one checkpoint, written by the main rank alone), resumed by 2 processes
    torchrun_workers([str(tiny_model), str(tmp_path / "x"), str(tmp_path / "ck3"), "0", "3", "torch"], 2, 29633)
    assert (tmp_path / "ck3" / "last.pt").is_file() and not (tmp_path / "ck3" / "last.pt.tmp").exists()
    resumed = torchrun_workers([str(tiny_model), str(tmp_path / "resumed"), str(tmp_path / "ck3"), "0", "-", "torch"], 2,
                        29634)
    assert resumed[0]["loss_curve"] == two[0]["loss_curve"]
    c = load_file(tmp_path / "resumed" / "model.safetensors")
    for k in b:
        assert (b[k] - c[k]).abs().max() < 1e-6, k


@pytest.mark.parametrize("change", ["lr", "data", "init"])
def test_a_stale_checkpoint_is_discarded_not_resumed(tiny_model, tmp_path, change, capfd):
    """Issue 13.2: interrupted, then rerun with another lr / other KD data / another init model: the
    rerun equals a fresh run with the new settings (the old checkpoint is discarded, with a message)."""
    import shutil

    src = ModelSource(path=str(tiny_model))
    run_training(src, examples(), cfg(), tmp_path / "x", tmp_path / "ck", World(), stop_after=4)
    assert (tmp_path / "ck" / "last.pt").is_file() and (tmp_path / "ck" / "fingerprint.json").is_file()
    new_cfg, new_examples, new_src = cfg(), examples(), src
    if change == "lr":
        new_cfg = cfg(lr=1e-3)
    elif change == "data":
        new_examples = examples()[::-1]
    else:  # the same architecture with other weights, at another path
        other = tmp_path / "other_model"
        shutil.copytree(tiny_model, other)
        model = AutoModelForCausalLM.from_pretrained(other)
        with torch.no_grad():
            next(model.parameters()).add_(0.01)
        model.save_pretrained(other)
        new_src = ModelSource(path=str(other))
    rerun = run_training(new_src, new_examples, new_cfg, tmp_path / "rerun", tmp_path / "ck", World())
    assert rerun["timing"]["resumed_from_step"] is None
    assert "discarding the checkpoint" in capfd.readouterr().err
    fresh = run_training(new_src, new_examples, new_cfg, tmp_path / "fresh", tmp_path / "ck_fresh", World())
    assert (tmp_path / "rerun" / "model.safetensors").read_bytes() == (tmp_path / "fresh" / "model.safetensors").read_bytes()
    assert rerun["loss_curve"] == fresh["loss_curve"]


def test_adam_betas_come_from_the_config(tiny_model):
    from jiuzhang.training.engine import TorchEngine
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert TorchEngine(model, cfg(adam_betas=[0.9, 0.999])).optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    assert TorchEngine(model, cfg()).optimizer.param_groups[0]["betas"] == (0.9, 0.95)
    with pytest.raises(ValueError, match="adam_betas"):
        cfg(adam_betas=[0.9, 1.0])


def test_unpacked_training_is_one_example_per_sequence_and_learns(tiny_model, tmp_path):
    """packing: false (the paper's synthesizer): one row per example, each micro-batch cut to its longest
    example, the loss equal to the loss over full-width padded rows (padding is never attended to)."""
    src = ModelSource(path=str(tiny_model))
    packed = run_training(src, examples(), cfg(), tmp_path / "p", tmp_path / "ckp", World())
    unpacked = run_training(src, examples(), cfg(packing=False), tmp_path / "u", tmp_path / "cku", World())
    assert unpacked["sequences"] == 24 > packed["sequences"]
    assert unpacked["steps"] == 2 * 24 // 4
    assert unpacked["final_loss"] < unpacked["loss_curve"][0]["loss"]
    # the width cut changes nothing but the compute: the first loss equals a full-width forward pass
    model, tok = load_model(src, "fp32")
    stats = PackStats()
    data = pack(tokenize(examples(), tok, 64, "truncate", stats), 64, tok.pad_token_id, stats, packing=False)
    from jiuzhang.training.sft import epoch_order
    first = epoch_order(24, 1, 0)[:4]
    with torch.no_grad():
        logits = model(input_ids=data.input_ids[first], position_ids=data.position_ids[first], use_cache=False).logits
    targets = torch.nn.functional.pad(data.labels[first], (0, 1), value=IGNORE)[:, 1:]
    full = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
    assert unpacked["loss_curve"][0]["loss"] == pytest.approx(full.item(), rel=1e-4)


def test_packed_rows_are_cut_to_their_longest_real_row_with_the_same_loss(tiny_model, tmp_path):
    """Packed rows end in padding too (the last row, and rows the next example did not fit): the trainer feeds
    the model only up to the longest real row of each micro-batch, and the first step's loss equals the
    full-width forward pass (padding is its own segment: nothing real attends to it)."""
    from jiuzhang.training.engine import TorchEngine
    from jiuzhang.training.sft import epoch_order, train_sft

    tok = AutoTokenizer.from_pretrained(tiny_model)
    c = cfg()
    stats = PackStats()
    data = pack(tokenize(examples(), tok, 64, "truncate", stats), 64, tok.pad_token_id, stats)
    first = epoch_order(len(data), c.seed_data, 0)[:c.global_batch]
    longest = [int(data.real[first[i:i + c.micro_batch]].sum(dim=1).max()) for i in (0, c.micro_batch)]
    assert min(longest) < 64  # there is padding to cut in the first step

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        logits = model(input_ids=data.input_ids[first], position_ids=data.position_ids[first], use_cache=False).logits
    targets = torch.nn.functional.pad(data.labels[first], (0, 1), value=IGNORE)[:, 1:]
    full = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)

    widths: list[int] = []
    model.register_forward_pre_hook(lambda _m, args, kw: widths.append(kw["input_ids"].shape[1]), with_kwargs=True)
    result = train_sft(TorchEngine(model, c), data, c, World(), tmp_path / "ck", stop_after=1)
    assert widths == longest  # each micro-batch computed only its real width
    assert result.losses[0][1] == pytest.approx(full.item(), rel=1e-5)


def test_token_store_serves_exactly_the_in_memory_rows_and_the_same_weights(tiny_model, tmp_path):
    """The on-disk store (memory-mapped shards, written once) gives the rows pack() gives in memory, and
    training on it reaches byte-identical weights (same packing, same order, same loss)."""
    from jiuzhang.training.engine import TorchEngine
    from jiuzhang.training.sft import train_sft
    from jiuzhang.training.tokenstore import TokenStore, build_store

    tok = AutoTokenizer.from_pretrained(tiny_model)
    c = cfg(max_length=48)
    mem_stats, disk_stats = PackStats(), PackStats()
    mem = pack(tokenize(examples(), tok, 48, "truncate", mem_stats), 48, tok.pad_token_id, mem_stats)
    disk = build_store(tokenize(examples(), tok, 48, "truncate", disk_stats), 48, tok.pad_token_id, tmp_path / "store",
                       shard_rows=3, stats=disk_stats)                   # several shards
    assert len(disk) == len(mem) and vars(disk_stats) == vars(mem_stats) and len(disk.meta) and disk.meta["shards"] > 1
    idx = [5, 0, len(mem) - 1, 3]
    for a, b in zip(mem.gather(idx), disk.gather(idx)):
        assert torch.equal(a, b)
    assert mem.target_counts(idx) == disk.target_counts(idx)
    reopened = TokenStore(tmp_path / "store")
    assert torch.equal(reopened.gather([1])[0], mem.gather([1])[0])

    weights = []
    for name, data in (("mem", mem), ("disk", disk)):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(tiny_model)
        train_sft(TorchEngine(model, c), data, c, World(), tmp_path / f"ck_{name}")
        weights.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_a_half_written_store_is_rebuilt_and_a_finished_one_reused(tiny_model, tmp_path):
    src = ModelSource(path=str(tiny_model))
    run_training(src, examples(), cfg(), tmp_path / "a", tmp_path / "ck", World(), stop_after=2)
    stores = tmp_path / "ck.tokens"
    (store,) = list(stores.iterdir())
    stamp = (store / "ids-00000.npy").stat().st_mtime_ns
    (stores / "deadbeef.partial").mkdir()                                 # a build that died elsewhere
    (stores / "0123456789abcdef").mkdir()                                 # a store of other data
    run_training(src, examples(), cfg(), tmp_path / "a", tmp_path / "ck", World(), stop_after=1)
    assert (store / "ids-00000.npy").stat().st_mtime_ns == stamp          # reused, not rebuilt
    # the others are swept when a store is built, and all of it when training finishes
    assert sorted(p.name for p in stores.iterdir()) == sorted([store.name, "deadbeef.partial", "0123456789abcdef"])
    (stores / store.name / "meta.json").unlink()                          # unfinished now: rebuilt, others swept
    run_training(src, examples(), cfg(), tmp_path / "a", tmp_path / "ck", World(), stop_after=1)
    assert [p.name for p in stores.iterdir()] == [store.name] and (store / "meta.json").is_file()
    done = run_training(src, examples(), cfg(), tmp_path / "b", tmp_path / "ck", World())
    assert done["steps"] == 4 and not stores.exists()                     # finished: store and checkpoints go


def test_streamed_mix_trains_the_same_weights_as_the_list_and_only_the_main_rank_reads_rows(tiny_model, tmp_path):
    """The pretrain stage's streamed data (records.PretrainMix) gives byte-identical weights to the same
    examples as a list; a non-main rank takes the finished store without reading a row."""
    import json

    from safetensors.torch import load_file

    from jiuzhang.training.records import PretrainMix, iter_examples
    from jiuzhang.training.trainer import token_store

    path = tmp_path / "syn.jsonl"
    path.write_text("".join(json.dumps({"id": e.id, "input": e.prompt, "output": e.target}) + "\n" for e in examples()))
    mix = PretrainMix(synthetic=lambda: iter_examples(path, "input", "output"), supplement=None, tail=None, seed=4)
    src = ModelSource(path=str(tiny_model))
    run_training(src, mix, cfg(), tmp_path / "streamed", tmp_path / "ck_s", World(), shuffle=False)
    order = list(mix.iterate(tmp_path / "sp"))
    run_training(src, order, cfg(), tmp_path / "listed", tmp_path / "ck_l", World(), shuffle=False)
    a, b = load_file(tmp_path / "streamed" / "model.safetensors"), load_file(tmp_path / "listed" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)

    class NoRows(PretrainMix):
        def iterate(self, scratch):
            raise AssertionError("a non-main rank read the rows")

    tok = AutoTokenizer.from_pretrained(tiny_model)
    folder = tmp_path / "store" / "k"
    token_store(mix, tok, cfg(), folder, World())                                   # the main rank builds it
    rows = NoRows(synthetic=mix.synthetic, supplement=None, tail=None, seed=4)
    assert len(token_store(rows, tok, cfg(), folder, World(1, 2, 1))) == len(token_store(mix, tok, cfg(), folder, World()))


# ---- issue 22: the paths only a GPU cluster reaches, imitated on this CPU ----

def test_collectives_use_the_device_the_process_group_serves(tmp_path):
    """Issue 22.1: on GPUs the process group is NCCL, which serves only CUDA tensors; a CPU tensor in an
    all-reduce raises "No backend type associated with device type cpu". A 'cuda:gloo' group imitates it."""
    import torch.distributed as dist

    from jiuzhang.training.sft import _global_sum
    from jiuzhang.training.world import collective_device

    two = World(0, 2, 1)  # _global_sum reduces only when the world is several processes
    dist.init_process_group("cuda:gloo", init_method=f"file://{tmp_path / 'pg1'}", rank=0, world_size=1)
    try:
        with pytest.raises(RuntimeError, match="No backend type associated with device type cpu"):
            dist.all_reduce(torch.zeros(1))  # the imitation is faithful: what the old _global_sum did
        assert collective_device(two) == torch.device("cuda", 1)
        with pytest.raises((AssertionError, RuntimeError)) as err:  # this CPU build cannot make CUDA tensors
            _global_sum(1.5, two)
        assert "No backend type" not in str(err.value)
    finally:
        dist.destroy_process_group()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg2'}", rank=0, world_size=1)
    try:
        assert collective_device(two) == torch.device("cpu")
        assert _global_sum(1.5, two) == 1.5
    finally:
        dist.destroy_process_group()


def test_each_rank_selects_its_own_gpu_before_training(tiny_model, tmp_path, monkeypatch):
    """Issue 22.1: torch.cuda.set_device(LOCAL_RANK) before the process group and model, else every local
    rank's barriers and collectives run on cuda:0."""
    from jiuzhang.training import trainer
    from jiuzhang.training import world as world_mod

    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: chosen.append(d))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    world_mod.select_device(World(3, 8, 3))
    assert chosen == [3]
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(trainer, "select_device", lambda w: calls.append(w.local_rank))
    run_training(ModelSource(path=str(tiny_model)), examples(8), cfg(epochs=1), tmp_path / "o", tmp_path / "c", World())
    assert calls == [0]


def test_token_store_reads_many_shards_under_a_low_open_file_limit(tiny_model, tmp_path):
    """Issue 22.2: a store of 60 shards (300 files) read under `ulimit -n 256`: no handle is held per file."""
    import subprocess
    import sys

    from jiuzhang.training.tokenstore import build_store

    tok = AutoTokenizer.from_pretrained(tiny_model)
    items = list(tokenize(examples(60), tok, 64, "truncate", PackStats()))
    store = build_store(items, 64, tok.pad_token_id, tmp_path / "store", packing=False, shard_rows=1)
    assert store.meta["shards"] == 60
    expected = store.gather(list(range(60)))[0].tolist()
    script = (
        "import json, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))\n"
        "from jiuzhang.training.tokenstore import TokenStore\n"
        f"s = TokenStore(__import__('pathlib').Path({str(tmp_path / 'store')!r}))\n"
        "ids = s.gather(list(range(60)))[0]\n"
        "print(json.dumps({'ids': ids.tolist(), 'targets': s.target_counts(list(range(60)))}))\n")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    got = __import__("json").loads(res.stdout)
    assert got["ids"] == expected and got["targets"] == store.target_counts(list(range(60)))


def test_bf16_without_deepspeed_keeps_fp32_master_weights(tiny_model, tmp_path):
    """Issue 22.8: AdamW on pure-bf16 weights drops every update below half a bf16 ulp; at lr 1e-5 most
    weights never moved in 100 steps (84% measured). fp32 master weights + bf16 autocast keep them."""
    from safetensors.torch import load_file

    from jiuzhang.training.trainer import weights_dtype

    c = cfg(dtype="bf16", lr=1e-5, max_steps=100, micro_batch=2, global_batch=2, grad_clip=1.0, save_every=1000)
    assert weights_dtype(c) == "fp32" and weights_dtype(cfg(dtype="bf16", deepspeed={"enabled": True})) == "bf16"
    run_training(ModelSource(path=str(tiny_model)), examples(), c, tmp_path / "o", tmp_path / "c", World())
    start = load_file(Path(tiny_model) / "model.safetensors")
    trained = load_file(tmp_path / "o" / "model.safetensors")
    moved = total = 0
    for k, w in trained.items():
        assert w.dtype == torch.bfloat16, k  # saved as the bf16 model that was asked for
        if start[k].dim() >= 2:
            moved += int((w != start[k].to(torch.bfloat16)).sum())
            total += w.numel()
    print(f"bf16 share of matrix weights moved by 100 steps at lr 1e-5: {moved / total:.3f}")
    assert moved / total > 0.8


def test_gradient_checkpointing_and_attention_settings_train_the_same_model(tiny_model, tmp_path):
    """Issue 22.3: gradient checkpointing recomputes activations (same arithmetic, less memory); the
    attention kernel is a setting; an unusable kernel is a clear error before training."""
    from safetensors.torch import load_file

    runs = {}
    for name, over in {"plain": {}, "ckpt": {"gradient_checkpointing": True},
                       "eager": {"attn_implementation": "eager"}}.items():
        m = run_training(ModelSource(path=str(tiny_model)), examples(), cfg(epochs=1, **over), tmp_path / name,
                         tmp_path / f"c{name}", World())
        runs[name] = (m["loss_curve"], load_file(tmp_path / name / "model.safetensors"))
    for name in ("ckpt", "eager"):
        assert [round(x["loss"], 4) for x in runs[name][0]] == [round(x["loss"], 4) for x in runs["plain"][0]]
        for k, w in runs["plain"][1].items():
            assert (w - runs[name][1][k]).abs().max() < 1e-4, (name, k)
    with pytest.raises(InputDataError, match="attn_implementation 'flash_attention_2'"):
        run_training(ModelSource(path=str(tiny_model)), examples(), cfg(attn_implementation="flash_attention_2"),
                     tmp_path / "f", tmp_path / "cf", World())


@pytest.mark.parametrize("setting, message", [
    ({"offload_optimizer": True}, "offload_optimizer: true is not supported"),
    ({"offload_params": True}, "offload_params: true is not supported"),
    ({"zero_stage": 3}, "less than or equal to 2"),
])
def test_deepspeed_settings_the_trainer_cannot_run_are_refused(setting, message):
    """Issue 22.6: ZeRO-Offload with the client torch AdamW crashes in DeepSpeed and ZeRO-3 saves empty
    tensors; the config refuses them (so `config check` does, before a GPU is rented)."""
    with pytest.raises(ValueError, match=message):
        cfg(deepspeed={"enabled": True, **setting})


def test_bf16_autocast_training_follows_the_fp32_loss_curve(tiny_model, tmp_path):
    """Issue 23: CPU training in bf16 (autocast over fp32 master weights) reaches the fp32 run's losses
    within noise, training and held-out; save_dtype: fp32 keeps the master weights exactly."""
    from safetensors.torch import load_file

    from jiuzhang.evaluation.heldout import heldout_nll

    data = examples(24)
    train, held = data[:20], data[20:]
    runs = {}
    for dtype in ("fp32", "bf16"):
        c = cfg(dtype=dtype, save_dtype="fp32", epochs=3, lr=3e-3)
        runs[dtype] = run_training(ModelSource(path=str(tiny_model)), train, c, tmp_path / dtype, tmp_path / f"c{dtype}",
                                   World())
    fp32, bf16 = ([x["loss"] for x in runs[d]["loss_curve"]] for d in ("fp32", "bf16"))
    assert len(fp32) == len(bf16) and fp32[-1] < fp32[0] - 0.3  # both learn
    worst = max(abs(a - b) / a for a, b in zip(fp32, bf16))
    assert worst < 0.03, (fp32, bf16)
    weights = load_file(tmp_path / "bf16" / "model.safetensors")
    assert all(w.dtype == torch.float32 for w in weights.values())  # save_dtype: the master weights, unrounded
    tok = AutoTokenizer.from_pretrained(tmp_path / "fp32")
    scores = {}
    for dtype in ("fp32", "bf16"):
        model = AutoModelForCausalLM.from_pretrained(tmp_path / dtype, dtype=torch.float32)
        nll = heldout_nll(model, tok, held, 4, 64)  # scored in fp32 whatever the training precision
        scores[dtype] = sum(v for v, _ in nll.values()) / len(nll)
    print(f"max relative train-loss gap bf16 vs fp32: {worst:.4f}; held-out NLL fp32 {scores['fp32']:.4f}, "
          f"bf16 {scores['bf16']:.4f}")
    assert abs(scores["bf16"] - scores["fp32"]) < 0.03 * scores["fp32"]


def test_bf16_on_a_cpu_without_native_bf16_is_named_before_it_runs(capsys):
    """A CPU without AVX512-BF16/AMX runs bf16 matmuls in ATen's reference loops (24x fp32's time, measured on
    an AMD EPYC without AVX-512): the user is told at once, with the fix, not after an hour."""
    from jiuzhang.common import precision

    assert precision.slow_bf16("cpu", True, flags=[]) is not None
    assert "dtype to fp32" in precision.slow_bf16("cpu", True, flags=[])
    assert precision.slow_bf16("cpu", True, flags=["amx_bf16"]) is None      # native bf16: fine
    assert precision.slow_bf16("cuda", True, flags=[]) is None               # GPUs have their own
    assert precision.slow_bf16("cpu", False, flags=[]) is None
    precision._warned.discard("a test step")
    precision.warn_slow_bf16("cpu", True, "a test step")
    precision.warn_slow_bf16("cpu", True, "a test step")
    said = capsys.readouterr().err
    assert said.count("warning: a test step:") == (0 if precision.cpu_bf16_flags() else 1)


def test_dtype_auto_is_bf16_only_where_native_and_the_run_records_it(tiny_model, tmp_path, monkeypatch):
    """``dtype: auto`` (the mini profile's): bf16 on a GPU or a CPU with AVX512-BF16/AMX, fp32 on any other CPU
    (bf16 there is ~24x slower); the training's results say which it ran, and an auto run on a CPU without
    native bf16 is the fp32 run, byte for byte."""
    from jiuzhang.common import precision

    assert precision.resolve_dtype("auto", "cpu", flags=[]) == "fp32"
    assert precision.resolve_dtype("auto", "cpu", flags=["avx512_bf16"]) == "bf16"
    assert precision.resolve_dtype("auto", "cuda", flags=[]) == "bf16"
    assert precision.resolve_dtype("fp32", "cuda") == "fp32" and precision.resolve_dtype("bf16", "cpu", []) == "bf16"
    with pytest.raises(ValueError, match="dtype"):
        cfg(dtype="fp16")
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda *a: [])
    src = ModelSource(path=str(tiny_model))
    short = dict(epochs=1, save_every=100)
    auto = run_training(src, examples(8), cfg(dtype="auto", **short), tmp_path / "auto", tmp_path / "ck1", World())
    fp32 = run_training(src, examples(8), cfg(dtype="fp32", **short), tmp_path / "fp32", tmp_path / "ck2", World())
    assert auto["dtype"] == fp32["dtype"] == "fp32"
    assert ((tmp_path / "auto" / "model.safetensors").read_bytes()
            == (tmp_path / "fp32" / "model.safetensors").read_bytes())
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda *a: ["amx_bf16"])
    native = run_training(src, examples(8), cfg(dtype="auto", **short), tmp_path / "bf", tmp_path / "ck3", World())
    assert native["dtype"] == "bf16"
