"""The ``jiuzhang`` command: one subcommand per pipeline stage (what ``dvc.yaml`` runs) plus utilities.

Run ``jiuzhang --help`` for the list and ``jiuzhang <command> --help`` for each command with an example.
"""

from __future__ import annotations

import click

from jiuzhang.errors import UserError


class FriendlyGroup(click.Group):
    """Turns :class:`UserError` (bad params, bad input) into a one-paragraph message and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jiuzhang")
def cli() -> None:
    """JiuZhang3.0 as a DVC pipeline: synthesize math data with a small trained model.

    Stages are normally run by DVC (`dvc repro`), which calls these subcommands with the paths spelled
    in dvc.yaml. Run one by hand to debug it.

    \b
    Examples:
      jiuzhang config check --params configs/paper.yaml
      jiuzhang corpus --out data/corpus --metrics metrics/corpus.json
    """


def _register() -> None:
    from jiuzhang.config_cli import config
    from stages import (base, corpus, eval, filter, grade, influence, kd_boost, kd_initial, kd_plan, pretrain, prompts, report, run_code,
                        synthesize, synthesizer, synthesizer_initial)

    cli.add_command(config)
    cli.add_command(kd_plan.group)
    cli.add_command(run_code.command)
    cli.add_command(grade.command)
    for module in (corpus, prompts, base, kd_initial, synthesizer_initial, influence, kd_boost, synthesizer,
                   synthesize, filter, pretrain, eval, report):
        cli.add_command(module.command)


_register()


def main() -> None:
    cli(prog_name="jiuzhang")


if __name__ == "__main__":
    main()
