"""``jiuzhang verify-repro``: compare two from-scratch runs' outputs (what ``make verify-repro`` ends with)."""

from pathlib import Path

import click


@click.command("verify-repro")
@click.argument("run_a", type=click.Path(exists=True, file_okay=False))
@click.argument("run_b", type=click.Path(exists=True, file_okay=False))
@click.option("--against", "reference", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Also require these hashes (e.g. the committed dvc.lock).")
def command(run_a: str, run_b: str, reference: str | None) -> None:
    """Check that two project folders that each ran `dvc repro --force` hold identical outputs.

    Every output hash in their dvc.lock files must match (and match --against). The teacher journals
    and report.html differ by design (wall-clock times); they must agree on content instead (see
    jiuzhang.pipeline.verify). Exits 1 when anything differs.

    \b
    Example:
      make verify-repro          # clones this repo twice, runs both from scratch, then:
      jiuzhang verify-repro ../verify/a/proj ../verify/b/proj --against dvc.lock
    """
    from jiuzhang.pipeline.verify import render, verify

    verdicts = verify(Path(run_a), Path(run_b), Path(reference) if reference else None)
    click.echo(render(verdicts))
    if any(v.status in {"DIFFERENT", "MISSING"} for v in verdicts):
        raise SystemExit(1)
