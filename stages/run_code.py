"""``jiuzhang run-code``: run one Python file in the sandbox and print the result as JSON (a fixed contract)."""

from pathlib import Path

import click

from jiuzhang.errors import UserError


@click.command("run-code")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--timeout", "timeout_s", type=float, default=5.0, show_default=True, help="Wall-clock seconds.")
@click.option("--memory-mb", type=int, default=1024, show_default=True, help="Address-space limit.")
@click.option("--cpu-s", type=int, default=None, help="CPU seconds (default: twice the timeout, at least 1).")
def command(file: str, timeout_s: float, memory_mb: int, cpu_s: int | None) -> None:
    """Run FILE in the sandbox the filter and eval stages use; print one JSON object.

    Fields: status (ok, error, timeout, memory, killed), stdout, stderr, seconds, returncode,
    truncated, isolation (what this machine allowed: separate_uid, no_network, private_tmp).

    \b
    Example:
      jiuzhang run-code solution.py --timeout 5 --memory-mb 1024
    """
    from jiuzhang.sandbox.process import Limits, run_python

    path = Path(file)
    if not path.is_file():
        raise UserError(f"{file}: no such file; give the path of a Python program")
    limits = Limits.for_timeout(timeout_s, memory_mb, cpu_s)
    click.echo(run_python(path.read_text(encoding="utf-8", errors="replace"), limits).to_json())
