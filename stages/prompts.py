"""``jiuzhang prompts``: assign a level to each snippet and fill that level's template."""

from pathlib import Path

import click

from jiuzhang.prompts.pool import build_prompts
from jiuzhang.runtime import Output, as_stage
from stages.options import metrics_option, params_option


@click.command("prompts")
@params_option
@click.option("--corpus", "corpus_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Corpus folder written by the corpus stage.")
@click.option("--templates", "templates_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder with one '<level>.txt' template per level (and tool.txt).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder of Parquet shards.")
@metrics_option
def command(params_path: str, corpus_dir: str, templates_dir: str, out: str, metrics_path: str) -> None:
    """Build the prompt pool (id, snippet_id, source, level, prompt).

    Each snippet's level is drawn from prompts.seed and the snippet id alone, so the pool is identical
    for any number of workers or input order. Sources marked all_levels get all 8 levels.

    \b
    Example:
      jiuzhang prompts --corpus data/corpus --templates templates/prompts \\
          --out data/prompts --results results/prompts.json
    """
    with as_stage("prompts", params_path, ("prompts",), results_path=metrics_path, provenance_dir=out,
                  inputs={"corpus": corpus_dir, "templates": templates_dir}, output=Output(out)) as s:
        s.results = build_prompts(s.params.prompts, Path(corpus_dir), Path(templates_dir), Path(out))
