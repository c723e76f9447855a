"""``jiuzhang verify-repro``: compare a run's outputs with another run's and/or a reference dvc.lock."""

from pathlib import Path

import click


@click.command("verify-repro")
@click.argument("run_a", type=click.Path(exists=True, file_okay=False))
@click.argument("run_b", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--against", "reference", default=None,
              help="A dvc.lock file, or a git revision of RUN_A (its dvc.lock at that commit, e.g. HEAD).")
@click.option("--exact", is_flag=True, help="Hashes only: any difference is DIFFERENT (same machine, `make verify-repro`).")
@click.option("--rtol", default=1e-4, show_default=True, type=float, help="Relative tolerance of 'close'.")
@click.option("--atol", default=1e-6, show_default=True, type=float, help="Absolute tolerance of 'close'.")
def command(run_a: str, run_b: str | None, reference: str | None, exact: bool, rtol: float, atol: float) -> None:
    """Check that a run reproduces: every output in dvc.lock is identical, close, DIFFERENT or MISSING.

    identical: same hash. close: the hash differs but every number does not by more than the tolerance
    (JSON/JSONL/CSV metrics and predictions, safetensors weights; the largest absolute and relative
    differences are printed): what a rerun on another CPU model gives. DIFFERENT: anything else (text,
    counts, a number beyond the tolerance), or content that is not here to compare. Exits 1 on DIFFERENT
    or MISSING.

    \b
    Examples:
      make repro && jiuzhang verify-repro . --against HEAD     # this machine's rerun vs the committed lock
      jiuzhang verify-repro ../a/proj ../b/proj --against dvc.lock --exact   # what make verify-repro runs
    """
    from jiuzhang.pipeline.closeness import Tolerance
    from jiuzhang.pipeline.verify import render, verify

    verdicts = verify(Path(run_a), Path(run_b) if run_b else None, reference,
                      None if exact else Tolerance(rtol=rtol, atol=atol))
    click.echo(render(verdicts))
    if any(v.status in {"DIFFERENT", "MISSING"} for v in verdicts):
        raise SystemExit(1)
