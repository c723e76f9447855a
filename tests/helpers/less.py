"""LESS tests' set-up: a tiny model, params, candidates with real texts."""

from __future__ import annotations

from jiuzhang.config.loader import validate_params

from conftest import SHARED, make_tiny_model, real_docs, tiny_params


def less_setup(tmp_path, **less):
    """A tiny model, LESS params (2 warm-up epochs, 4 GSM8K targets), 20 candidates and their real texts."""
    model_dir = make_tiny_model(tmp_path / "model")
    raw = tiny_params({"x": "u.jsonl"})
    raw["kd"]["boost"]["n"] = 6
    raw["influence"].update(method="less", pool_size=20)
    raw["influence"]["less"].update(epochs=2, r=4, alpha=16, dim=512, batch_size=4, max_length=768, shard_size=4,
                                    **less)
    raw["influence"]["less"]["targets"]["gsm8k"].update(path=str(SHARED / "benchmarks/gsm8k/train.jsonl"), n=4)
    p = validate_params(raw, "t")
    docs = real_docs("stackmathqa_sample.jsonl", 20)
    cands = [{"id": f"c{i:02d}", "level": "amc8"} for i in range(20)]
    texts = {f"c{i:02d}": d["text"][:300] for i, d in enumerate(docs)}
    return model_dir, p, cands, texts
