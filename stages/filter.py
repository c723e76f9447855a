"""``jiuzhang filter``: raw generations -> clean pre-training records (the paper's test-sets filter, and more)."""

from pathlib import Path

import click

from jiuzhang.runtime import Output, as_stage
from stages.options import metrics_option, params_option


@click.command("filter")
@params_option
@click.option("--raw", "raw_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Shards written by the synthesize stage.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: part-NNNNN.parquet records {id, kind, level, input, output} + drops.parquet.")
@metrics_option
def command(params_path: str, raw_dir: str, out: str, metrics_path: str) -> None:
    """Parse, validate, execute tool code, deduplicate and decontaminate the synthetic records.

    Runs as datatrove phases over filter.tasks ranks (raw shard i goes to rank i % tasks), on this
    machine's cores or on Ray (cluster.data_executor); a killed run resumes from .cache/datatrove/.

    Each dropped generation is listed with its reason in drops.parquet and counted in the metrics.
    Tool records' code runs in the sandbox (a separate limited process); filter.tool_output chooses
    between keeping only records whose stored output is what the code prints ('verify') and writing
    the real output into the record ('replace').

    \b
    Example:
      jiuzhang filter --raw data/synthetic/raw --out data/synthetic/clean --results results/filter.json
    """
    run_filter("filter", params_path, raw_dir, out, metrics_path)


def run_filter(stage: str, params_path: str, raw_dir: str, out: str, metrics_path: str) -> None:
    """Run the filter stage ``stage`` (filter or filter_init) on the raw records in ``raw_dir``."""
    from jiuzhang.synthesis.cleaning import clean

    with as_stage(stage, params_path, ("filter", "benchmarks"), results_path=metrics_path,
                  inputs={"synthetic_raw": raw_dir}, output=Output(out)) as s:
        s.results = clean(s.params, Path(raw_dir), Path(out))
