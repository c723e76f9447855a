"""`dvc repro` with a wall-time table per stage: what `make repro` runs.

DVC prints ``Running stage 'x':`` when it starts a stage and does not time stages itself. We run it as a
child process, pass its output through unchanged and stamp each stage's start, so a stage's wall time is
everything from its start to the next stage's start: the dependency hashing, the Python start-up and the
output caching DVC does for it, not only the work the stage times itself (``results/run/<stage>.json``
``stage_seconds``). A stage DVC skips (``didn't change, skipping``) is listed with no time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from jiuzhang.common.io import write_json

_RUNNING = re.compile(r"Running stage '([^']+)'")
_SKIPPED = re.compile(r"Stage '([^']+)' didn't change, skipping")


@dataclass
class ReproTimes:
    """Stage wall times of one `dvc repro` (seconds), in the order DVC ran them."""

    ran: list[tuple[str, float]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    total_s: float = 0.0
    returncode: int = 0

    def as_dict(self) -> dict:
        """The timings as JSON: total, stages run and skipped, seconds per stage."""
        return {"total_s": round(self.total_s, 1), "stages_run": len(self.ran), "stages_skipped": len(self.skipped),
                "stage_s": {name: round(s, 1) for name, s in self.ran}}

    def table(self) -> str:
        """The timings as a text table with each stage's share of the total."""
        lines = [f"{'stage':28} {'wall s':>8} {'share':>6}"]
        for name, seconds in self.ran:
            share = seconds / self.total_s if self.total_s else 0.0
            lines.append(f"{name:28} {seconds:8.1f} {share:6.1%}")
        if self.skipped:
            lines.append(f"{len(self.skipped)} stage(s) unchanged, skipped: {', '.join(self.skipped)}")
        lines.append(f"{'total (dvc repro)':28} {self.total_s:8.1f}  ({self.total_s / 60:.1f} min)")
        return "\n".join(lines)


def timed_repro(args: list[str], cwd: Path, dvc: str = "dvc", echo: TextIO = sys.stdout,
                clock=time.monotonic) -> ReproTimes:
    """Run ``dvc repro *args`` in ``cwd``, echo its output live, and time every stage it runs."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    times = ReproTimes()
    started = clock()
    current: tuple[str, float] | None = None
    proc = subprocess.Popen([dvc, "repro", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1, errors="replace")
    assert proc.stdout is not None
    for line in proc.stdout:
        echo.write(line)
        echo.flush()
        now = clock()
        if m := _RUNNING.search(line):
            if current is not None:
                times.ran.append((current[0], now - current[1]))
            current = (m.group(1), now)
        elif m := _SKIPPED.search(line):
            times.skipped.append(m.group(1))
    times.returncode = proc.wait()
    end = clock()
    if current is not None:
        times.ran.append((current[0], end - current[1]))
    times.total_s = end - started
    return times


def record(times: ReproTimes, out: Path) -> None:
    """Keep the figures of a run that did work (a no-op rerun would otherwise overwrite them)."""
    if times.ran:
        write_json(out, times.as_dict())
