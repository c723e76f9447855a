"""The base stage: tokenizer + tiny Llama trained from scratch, standard HF folder, deterministic bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from jiuzhang.base.model import build_base
from jiuzhang.config.loader import validate_params
from jiuzhang.corpus.pipeline import build_corpus

from conftest import ROOT, run_cli, tiny_params


def _corpus_and_params(tmp_path: Path, files: dict[str, str]):
    params = validate_params(tiny_params(files), "test")
    build_corpus(params.corpus, ROOT, Path(params.benchmarks.root), ("gsm8k",), tmp_path / "corpus")
    return params


def test_base_trains_and_loads_with_auto_classes(tmp_path, fixture_corpus, write_params):
    params_file = write_params(tiny_params(fixture_corpus))
    _corpus_and_params(tmp_path, fixture_corpus)
    run_cli("base", "--params", str(params_file), "--corpus", str(tmp_path / "corpus"), "--out",
            str(tmp_path / "m1"), "--metrics", str(tmp_path / "base.json"), "--loss-curve",
            str(tmp_path / "loss.csv"), cwd=ROOT)
    metrics = json.loads((tmp_path / "base.json").read_text())
    assert metrics["tokens_seen"] == 6 * 4 * 32 and metrics["vocab_size"] == 400
    assert metrics["final_loss"] < metrics["first_loss"]
    assert (tmp_path / "loss.csv").read_text().splitlines()[0] == "step,loss,lr"
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m1")
    tok = AutoTokenizer.from_pretrained(tmp_path / "m1")
    ids = tok("Solve $x^2 = 4$.", return_tensors="pt").input_ids
    assert tok.decode(ids[0]) == "Solve $x^2 = 4$."  # byte-level BPE round-trips
    out = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == ids.shape[1] + 5


def test_base_is_byte_identical_across_runs(tmp_path, fixture_corpus):
    params = _corpus_and_params(tmp_path, fixture_corpus)
    build_base(params.base, tmp_path / "corpus", tmp_path / "a")
    build_base(params.base, tmp_path / "corpus", tmp_path / "b")
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    changed = validate_params(tiny_params(fixture_corpus, **{"base.train.seed_init": 1}), "test")
    build_base(changed.base, tmp_path / "corpus", tmp_path / "c")
    assert (tmp_path / "a" / "model.safetensors").read_bytes() != (tmp_path / "c" / "model.safetensors").read_bytes()
    torch.set_num_threads(2)


def test_hub_mode_pins_without_downloading(tmp_path):
    params = validate_params(__import__("yaml").safe_load((ROOT / "configs" / "paper.yaml").read_text()), "paper")
    m = build_base(params.base, tmp_path / "unused", tmp_path / "out")
    pinned = json.loads((tmp_path / "out" / "hub_model.json").read_text())
    assert m["mode"] == "hub" and pinned["revision"] == params.base.hub.revision


@pytest.mark.timeout(30)
def test_fewer_windows_than_the_batch_is_an_error_not_a_hang(tmp_path, fixture_corpus):
    """Issue 13.3: a corpus with fewer seq_len windows than the batch size used to loop forever."""
    from jiuzhang.common.io import InputDataError

    params = _corpus_and_params(tmp_path, fixture_corpus)
    big = validate_params(tiny_params(fixture_corpus, **{"base.train.batch_size": 100000}), "test")
    with pytest.raises(InputDataError, match="fewer than base.train.batch_size=100000"):
        build_base(big.base, tmp_path / "corpus", tmp_path / "x")
    assert params.base.train.batch_size < 100000


def test_base_training_resumes_to_the_same_weights(tmp_path, fixture_corpus):
    """The base stage trains through the one training loop: a killed run resumes from its checkpoint and
    ends with the uninterrupted run's bytes."""
    from jiuzhang.base import model

    params = _corpus_and_params(tmp_path, fixture_corpus)
    build_base(params.base, tmp_path / "corpus", tmp_path / "full")
    real = model.train_sft
    def killed(*args, **kw):
        real(*args, stop_after=3, **kw)
        raise KeyboardInterrupt
    model.train_sft = killed
    try:
        with pytest.raises(KeyboardInterrupt):
            build_base(params.base, tmp_path / "corpus", tmp_path / "resumed", checkpoints=tmp_path / "ck")
    finally:
        model.train_sft = real
    assert (tmp_path / "ck").is_dir()
    m = build_base(params.base, tmp_path / "corpus", tmp_path / "resumed", checkpoints=tmp_path / "ck")
    assert m["steps"] == params.base.train.steps and not (tmp_path / "ck").exists()
    assert (tmp_path / "full" / "model.safetensors").read_bytes() == \
        (tmp_path / "resumed" / "model.safetensors").read_bytes()
