"""The ``jiuzhang`` command: one subcommand per pipeline stage (what ``dvc.yaml`` runs) plus utilities.

Run ``jiuzhang --help`` for the list and ``jiuzhang <command> --help`` for each command with an example.
"""

from __future__ import annotations

import os
import platform

import click

from jiuzhang.errors import UserError

# Same bytes on every x86 machine: PyTorch picks its CPU kernels (DEFAULT, AVX2, AVX512) by what the CPU
# offers, and the AVX512 kernels sum in another order, so a model trained on an AVX512 machine differs in
# the 7th digit from one trained on an AVX2 machine and every downstream hash in dvc.lock changes.
# Measured here (AMD EPYC, AVX512): the base stage takes the same time with AVX2 kernels (51.8 s vs
# 50.6 s), so every `jiuzhang` process pins AVX2 unless the user chose (ATEN_CPU_CAPABILITY=avx512 to
# trade cross-machine identity for the native kernels). Set before torch is imported: torch reads it once.
# bf16 matmuls (train.dtype / eval.dtype: bf16 on CPU) run in oneDNN, which picks its instruction set by
# itself; capping it at AVX512-BF16 makes an AMX machine compute as an AVX512-BF16 one does (this machine's
# best: the cap changes nothing here) instead of summing in AMX tile order. Recorded in provenance
# (jiuzhang.common.precision); ONEDNN_MAX_CPU_ISA=DEFAULT lifts the cap.
if platform.machine().lower() in {"x86_64", "amd64"}:
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")


class FriendlyGroup(click.Group):
    """Turns :class:`UserError` (bad params, bad input) into a one-paragraph message and exit status 2."""

    def invoke(self, ctx: click.Context):
        """Run the command; a UserError becomes 'error: ...' on stderr and exit status 2."""
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


class LazyGroup(FriendlyGroup):
    """A group whose subcommands are imported on first use (click's documented lazy-loading pattern)."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, the lazy ones included, sorted for --help."""
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """The command ``name``, importing its module on first use."""
        if name not in self.lazy:
            return super().get_command(ctx, name)
        import importlib

        module, attr = self.lazy[name].split(":")
        return getattr(importlib.import_module(module), attr)


# name -> "module:attribute". Commands are imported only when called, so `jiuzhang prompts` does not pay
# for importing openai, datasketch or mlflow (each DVC stage is a fresh process; 24 of them per `dvc repro`).
COMMANDS = {
    "config": "jiuzhang.config_cli:config", "kd": "stages.kd_plan:group", "run-code": "stages.run_code:command",
    "grade": "stages.grade:command", "repro": "stages.repro:command", "plan": "stages.plan:command",
    "compare": "stages.compare:command", "verify-repro": "stages.verify_repro:command",
    **{name: f"stages.{name}:command" for name in (
        "corpus", "prompts", "base", "kd_initial", "synthesizer_initial", "influence", "kd_boost", "synthesizer",
        "synthesize", "synthesize_init", "filter", "filter_init", "pretrain", "pretrain_arm", "eval", "eval_base",
        "eval_arm", "report")},
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jiuzhang")
def cli() -> None:
    """JiuZhang3.0 as a DVC pipeline: synthesize math data with a small trained model.

    Stages are normally run by DVC (`dvc repro`), which calls these subcommands with the paths spelled
    in dvc.yaml. Run one by hand to debug it.

    \b
    Examples:
      jiuzhang config check --params configs/paper.yaml
      jiuzhang corpus --out data/corpus --results results/corpus.json
    """


def main() -> None:
    """The ``jiuzhang`` console script."""
    cli(prog_name="jiuzhang")


if __name__ == "__main__":
    main()
