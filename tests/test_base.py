"""The base stage: tokenizer + tiny Llama trained from scratch, standard HF folder, deterministic bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from jiuzhang.base.builder import build_base
from jiuzhang.config.loader import validate_params
from jiuzhang.corpus.builder import build_corpus

from conftest import ROOT, run_cli, tiny_params


def _corpus_and_params(tmp_path: Path, files: dict[str, str]):
    params = validate_params(tiny_params(files), "test")
    build_corpus(params.corpus, ROOT, Path(params.benchmarks.root), ("gsm8k",), tmp_path / "corpus", progress=False)
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
def test_fewer_windows_than_the_batch_is_an_error_not_a_hang():
    """Issue 13.3: a corpus with fewer seq_len windows than the batch size used to loop forever."""
    import torch

    from jiuzhang.base.builder import batch_stream
    from jiuzhang.common.io import InputDataError

    with pytest.raises(InputDataError, match="cannot fill one batch of 8"):
        next(batch_stream(torch.zeros(3, 4, dtype=torch.long), 8, 0))
    assert next(batch_stream(torch.zeros(8, 4, dtype=torch.long), 8, 0)).shape == (8, 4)
