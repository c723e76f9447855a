"""The memory benchmarks' peak-RSS reading (common/memory.py) measures the process's own address space."""

import subprocess
import sys

CHILD = """
from jiuzhang.common.memory import peak_rss_kib
before = peak_rss_kib()
block = bytearray(200 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
print(before, peak_rss_kib())
"""


def test_a_child_of_a_large_process_reports_its_own_peak():
    """CI found getrusage's ru_maxrss of a worker started from pytest (GBs after many tests) equal to the
    parent's peak, so every growth read 0; VmHWM must show the child's own 200 MiB."""
    ballast = bytearray(600 * 2**20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    before, after = map(int, subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                                            check=True).stdout.split())
    print(f"child peak before/after a 200 MiB block: {before} / {after} KiB")
    assert before < 500 * 1024                          # not the parent's 600+ MiB
    assert 190 * 1024 <= after - before <= 260 * 1024
    del ballast
