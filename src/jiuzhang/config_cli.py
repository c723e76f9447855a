"""``jiuzhang config``: validate a params file and explain every key."""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

import click
import yaml

from jiuzhang.config.errors import inner_model
from jiuzhang.config.loader import load_params
from jiuzhang.config.root import Params


@click.group("config")
def config() -> None:
    """Validate params files and explain their keys."""


@config.command("check")
@click.option("--params", "params_path", default="params.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="Params file to validate.")
@click.option("--templates", default="templates/prompts", show_default=True, type=click.Path(file_okay=False),
              help="Prompt templates (their lengths decide whether prompts fit the model's context).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success (exit status only).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Check the file with this key overridden, as a stage's --set would (repeatable).")
def check(params_path: str, templates: str, quiet: bool, overrides: tuple[str, ...]) -> None:
    """Validate a params file and print the resolved configuration (defaults filled in).

    Unknown keys, wrong types and impossible values are reported all at once, each as
    FILE:LINE: KEY: problem (and fix); the exit status is 2. So are settings that validate but cannot
    run ("blocker"), e.g. a vLLM max_model_len above the model's context, or prompts that cannot fit it.

    \b
    Examples:
      jiuzhang config check
      jiuzhang config check --params configs/paper.yaml
      jiuzhang config check --set eval.limit=10 --set synthesize.shard_size=64
    """
    from pathlib import Path

    from jiuzhang.plan.checks import blockers, undeclared_inputs

    params = load_params(params_path, list(overrides))
    for warning in params.warnings() + undeclared_inputs(params, Path.cwd()):
        click.echo(f"warning: {params_path}: {warning}", err=True)
    found = blockers(params, Path.cwd(), Path(templates))
    if found:
        for line in found:
            click.echo(f"blocker: {params_path}: {line}", err=True)
        raise SystemExit(2)
    if not quiet:
        for line in params.training_plan():
            click.echo(f"# {line}")
        click.echo(f"# {params_path}: valid ({params.profile} profile). Resolved configuration:")
        click.echo(yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False, width=110), nl=False)


@config.command("explain")
@click.argument("section", required=False)
def explain(section: str | None) -> None:
    """Print every key of the params file (or of SECTION) with its type, default and meaning.

    \b
    Examples:
      jiuzhang config explain
      jiuzhang config explain corpus
    """
    fields = Params.model_fields
    if section is not None and section not in fields:
        raise click.BadParameter(f"unknown section {section!r}; sections: {', '.join(fields)}")
    for name, field in fields.items():
        if section is None or name == section:
            _explain(name, field.annotation, field, 0)


def _explain(name: str, annotation: Any, field: Any, depth: int) -> None:
    pad = "  " * depth
    model = inner_model(annotation)
    desc = field.description or (model.__doc__ or "").strip().splitlines()[0] if model else field.description
    if model is not None:
        click.echo(f"{pad}{name}:  # {desc or ''}")
        for sub, subfield in model.model_fields.items():
            _explain(sub, subfield.annotation, subfield, depth + 1)
        return
    default = "" if field.is_required() else f" = {field.get_default(call_default_factory=True)!r}"
    if get_origin(annotation) is Literal:
        type_name = " | ".join(repr(a) for a in get_args(annotation))
    else:
        type_name = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
    click.echo(f"{pad}{name}: {type_name}{default}  # {desc or ''}")
