"""Options every stage shares, so each stage file only declares what is its own."""

import click

_params_file = click.option(
    "--params", "params_path", default="params.yaml", show_default=True, type=click.Path(dir_okay=False),
    help="Params file (profile) to read: params.yaml (smoke) or configs/paper.yaml (paper).")


def _store_overrides(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> None:
    from jiuzhang.config.errors import ConfigError
    from jiuzhang.config.loader import set_overrides

    try:
        set_overrides(values)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    if values:
        click.echo(f"params: {', '.join(values)} set for this command only (dvc.lock does not record it; "
                   f"`dvc exp run -S KEY=VALUE` makes a tracked variant)", err=True)


_set_values = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", expose_value=False, callback=_store_overrides,
    help="Override one params key for this command, validated like the file (repeatable): --set eval.limit=10 "
         "--set corpus.sources.0.max_chars=500. Values are YAML: 10, 0.5, true, null, [a, b].")


def params_option(f):
    """``--params FILE`` and ``--set KEY=VALUE`` (the file, then overrides of its keys)."""
    return _params_file(_set_values(f))
def _store_headline(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    from jiuzhang.common.headline import set_target

    set_target(value)


headline_option = click.option(
    "--headline", default=None, type=click.Path(dir_okay=False), expose_value=False, callback=_store_headline,
    help="Where to write the stage's few headline figures (metrics/<stage>.json, the file `dvc metrics show` and "
         "`dvc exp show` display); default: none.")
_results_file = click.option(
    "--results", "--metrics", "metrics_path", required=True, type=click.Path(dir_okay=False),
    help="Where to write all of this stage's results as JSON (results/<stage>.json; --metrics is the old name); "
         "facts of the execution (wall times, cache hits, packages) go beside it, to results/run/.")


def metrics_option(f):
    """``--results FILE`` (all results) and ``--headline FILE`` (the DVC metrics file)."""
    return _results_file(headline_option(f))
progress_option = click.option("--progress/--no-progress", default=True, show_default=True,
                               help="Show a progress bar on stderr.")
prompts_option = click.option("--prompts", "prompts_dir", required=True, type=click.Path(exists=True, file_okay=False),
                              help="Prompt pool written by the prompts stage.")
templates_option = click.option("--templates", "templates_dir", required=True,
                                type=click.Path(exists=True, file_okay=False),
                                help="Prompt templates folder (the offline teacher recognises levels by them).")
journal_option = click.option("--journal", "journal_path", required=True, type=click.Path(dir_okay=False),
                              help="SQLite request journal (a persistent DVC output: answers are never paid twice).")
out_dir_option = click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
