"""Where a model comes from and where it runs, shared by every stage that loads one (training, synthesis,
evaluation, LESS): a local folder or a pinned hub revision, the base stage's hub pointer followed, a folder
that does not load named with the fix, and the device a rank uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jiuzhang.common.io import InputDataError
from jiuzhang.config.training import ModelSource

if TYPE_CHECKING:
    import torch


def follow_pointer(source: ModelSource) -> ModelSource:
    """A local folder written by the base stage in hub mode holds only ``hub_model.json``: follow it."""
    pointer = Path(source.path or "") / "hub_model.json"
    if source.path and pointer.is_file():
        ref = json.loads(pointer.read_text())
        return ModelSource(model_id=ref["model_id"], revision=ref["revision"])
    return source


def source_of(model: str | Path, revision: str | None = None) -> ModelSource:
    """A model named by a stage's argument: an existing folder, else a hub id at ``revision`` ("main")."""
    if Path(model).exists():
        return ModelSource(path=str(model))
    return ModelSource(model_id=str(model), revision=revision or "main")


def load_model(source: ModelSource, dtype: str, attn_implementation: str | None = None) -> tuple[Any, Any]:
    """The causal LM and its tokenizer, weights in ``dtype`` ("fp32" or "bf16"); a folder that does not load
    is a clear error. ``attn_implementation`` ('eager', 'sdpa', 'flash_attention_2'; None = transformers'
    default). A tokenizer without a pad token pads with its end-of-sequence token."""
    import torch  # here, not at the top: importing this module (the engines do) stays cheap
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = follow_pointer(source)
    where = source.path or f"{source.model_id}@{source.revision}"
    kwargs: dict[str, Any] = {} if source.path else {"revision": source.revision}
    name = source.path or source.model_id
    if source.path and not (Path(source.path) / "config.json").is_file():
        raise InputDataError(f"{source.path}: not a model folder (no config.json); run the stage that writes "
                             f"it (dvc repro) or fix the init path in the params file")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=torch.bfloat16 if dtype == "bf16" else torch.float32, **kwargs)
    except ImportError as exc:  # e.g. flash_attention_2 without the flash-attn package
        raise InputDataError(f"{where}: attn_implementation {attn_implementation!r} cannot be used here "
                             f"({str(exc).splitlines()[0]}); install its package or choose 'sdpa'") from None
    except (OSError, ValueError) as exc:
        raise InputDataError(f"{where}: the model does not load ({str(exc).splitlines()[0]}); check the path "
                             f"or hub id/revision") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def pick_device(device: str, local_rank: int, setting: str) -> torch.device:
    """The torch device of this rank for a ``device`` setting ("auto", "cpu", "cuda"): "auto" is the rank's
    GPU (cuda:LOCAL_RANK modulo the visible GPUs) when there is one, else the CPU; "cuda" with no GPU visible
    is an error naming ``setting`` (the params key) before any model loads."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise InputDataError(f"{setting} is 'cuda' but no GPU is visible; set it to 'auto' or 'cpu'")
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    return torch.device("cpu")
