"""Waiting for another process with a deadline: every cross-rank wait ends, with an error that names
what it waited for, instead of polling forever for a rank that died without leaving an error file."""

from __future__ import annotations

import time
from collections.abc import Callable


class WaitTimeout(RuntimeError):
    """Another process did not deliver in time; the message names what was awaited and the fix."""


def wait_for(ready: Callable[[], bool], what: Callable[[], str], deadline_s: float, poll_s: float = 1.0,
             param: str = "") -> None:
    """Poll ``ready()`` until it is true; after ``deadline_s`` raise :class:`WaitTimeout` naming
    ``what()`` (called then, so it can list what is still missing) and the ``param`` that sets the deadline."""
    end = time.monotonic() + deadline_s
    while not ready():
        if time.monotonic() >= end:
            knob = f" (deadline: {param}={deadline_s:g} s)" if param else ""
            raise WaitTimeout(f"gave up after {deadline_s:g} s waiting for {what()}{knob}: a process may have died "
                              f"without writing its error file; check every rank's log, then rerun (finished "
                              f"work is kept)")
        time.sleep(poll_s)
