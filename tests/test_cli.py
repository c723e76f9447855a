"""The CLI: every command explains itself with an example; user errors never show a traceback."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from jiuzhang.cli import cli

from conftest import ROOT, run_cli


def _commands(group: click.Group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


@pytest.mark.parametrize("path", [p for p, c in _commands(cli) if not isinstance(c, click.Group)],
                         ids=lambda p: " ".join(p))
def test_help_has_an_example(path):
    res = CliRunner().invoke(cli, [*path, "--help"])
    assert res.exit_code == 0, res.output
    assert "Example" in res.output


def test_every_dvc_stage_is_a_subcommand():
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        stage = stage.get("do", stage)  # a foreach stage (eval@<benchmark>) runs its `do` command
        words = stage["cmd"].split()
        if words[0].startswith("${"):  # a launcher prefix from params (torchrun/deepspeed in the paper profile)
            words = words[1:]
        assert words[:2] == ["jiuzhang", name]
        assert name in cli.list_commands(click.Context(cli))


def test_missing_input_is_a_clear_error(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text((ROOT / "params.yaml").read_text().replace(
        "../shared/corpus/openstax_math.jsonl", "../shared/corpus/nope.jsonl"))
    res = run_cli("corpus", "--params", str(params), "--out", str(tmp_path / "out"),
                  "--metrics", str(tmp_path / "m.json"), cwd=ROOT, check=False)
    assert res.returncode == 2
    assert "nope.jsonl" in res.stderr and "corpus.sources[].path" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()  # failed before any work


def test_corpus_dry_run_reads_nothing():
    res = run_cli("corpus", "--params", "configs/paper.yaml", "--out", "data/corpus", "--metrics",
                  "/dev/null", "--dry-run", cwd=ROOT)
    assert "hf://GAIR/MathPile@main" in res.stdout and "source automathtext_arxiv" in res.stdout


@pytest.mark.skipif(__import__("platform").machine().lower() not in {"x86_64", "amd64"}, reason="x86 kernels")
@pytest.mark.parametrize("chosen, expected", [(None, "AVX2"), ("default", "DEFAULT")])
def test_cli_pins_avx2_kernels_unless_the_user_chose(chosen, expected):
    # AVX512 kernels sum in another order: without the pin a model trained on an AVX512 machine differs
    # from one trained on an AVX2 machine and every hash in dvc.lock changes.
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    if chosen:
        env["ATEN_CPU_CAPABILITY"] = chosen
    code = "import jiuzhang.cli, torch; print(torch.backends.cpu.get_cpu_capability())"
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert res.stdout.strip() == expected
