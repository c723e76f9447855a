"""``jiuzhang corpus``: load sources, split into snippets, normalise, dedup, decontaminate."""

from pathlib import Path

import click

from jiuzhang.config.loader import load_params
from jiuzhang.corpus.documents import check_sources_exist
from jiuzhang.corpus.pipeline import build_corpus
from jiuzhang.runtime import Output, as_stage
from stages.options import metrics_option, params_option


@click.command("corpus")
@params_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder of Parquet shards.")
@metrics_option
@click.option("--dry-run", is_flag=True, help="Validate params and inputs, print the plan, read nothing.")
def command(params_path: str, out: str, metrics_path: str, dry_run: bool) -> None:
    """Build the snippet corpus from the sources in the params file.

    Reads each source (local JSONL in place, or a pinned HF dataset), splits documents (textbooks at
    '## ', arXiv at \\section{}), cuts snippets of at most corpus.max_chars characters, normalises them,
    drops too-short, benchmark-overlapping (13-gram), exact-duplicate and near-duplicate (MinHash)
    snippets, and writes Parquet shards (one per corpus.tasks rank) plus counts per drop reason.

    Runs as datatrove phases: on this machine's cores, or on Ray when cluster.address is set (or
    cluster.data_executor: ray). A killed run resumes: finished ranks are kept in .cache/datatrove/.

    \b
    Example:
      jiuzhang corpus --params params.yaml --out data/corpus --results results/corpus.json
    """
    params = load_params(params_path)
    root = Path.cwd()
    if dry_run:
        check_sources_exist(params.corpus.sources, root)
        for s in params.corpus.sources:
            where = s.path if s.format == "jsonl" else f"hf://{s.dataset}@{s.revision} ({s.split})"
            click.echo(f"source {s.name}: {where}, split_by={s.split_by}, max_docs={s.max_docs}")
        click.echo(f"snippets <= {params.corpus.max_chars} chars (cut={params.corpus.cut}); decontaminate "
                   f"against {', '.join(params.benchmarks.decontaminate)}; {params.corpus.tasks} datatrove tasks; "
                   f"output {out}")
        return
    with as_stage("corpus", params_path, ("corpus", "benchmarks"), seeds={"minhash": params.corpus.dedup.seed},
                  results_path=metrics_path, provenance_dir=out, params=params,
                  inputs={f"source_{src.name}": str(root / src.path) for src in params.corpus.sources if src.path},
                  output=Output(out)) as s:
        p = s.params
        s.results = build_corpus(p.corpus, root, root / p.benchmarks.root, p.benchmarks.decontaminate, Path(out),
                                 cluster=p.cluster)
