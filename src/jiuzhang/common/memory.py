"""This process's own peak resident memory, for the memory benchmarks and tests.

Why not ``resource.getrusage(...).ru_maxrss``: at exec the kernel folds the parent's high-water mark into the
child's ``ru_maxrss``, so a worker started from a large process (pytest after many tests) reports the parent's
peak and its own growth reads 0. ``VmHWM`` in ``/proc/self/status`` belongs to the process's own address space.
"""

from __future__ import annotations

from pathlib import Path


def peak_rss_kib() -> int:
    """Peak resident set size of this process's address space, in KiB (Linux ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmHWM line: the memory benchmarks need Linux")
