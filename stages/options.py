"""Options every stage shares, so each stage file only declares what is its own."""

import click

params_option = click.option(
    "--params", "params_path", default="params.yaml", show_default=True, type=click.Path(dir_okay=False),
    help="Params file (profile) to read: params.yaml (smoke) or configs/paper.yaml (paper).")
metrics_option = click.option(
    "--metrics", "metrics_path", required=True, type=click.Path(dir_okay=False),
    help="Where to write this stage's metrics JSON (declared as DVC metrics in dvc.yaml).")
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
