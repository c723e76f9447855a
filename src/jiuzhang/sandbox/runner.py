"""Run one untrusted Python program in a separate, resource-limited process.

Why our own and not a library: the maintained sandboxes (e.g. containers, nsjail, firejail) need root
or a daemon that this 2-core CI box and many laptops do not have. This module uses only what an ordinary
user has on Linux, and says plainly what that does not isolate (see README, "Sandbox").

Each program gets:
- its own process group (``start_new_session``), killed as a whole (SIGKILL) on a wall-clock timeout;
- CPU-time, address-space (memory), file-size, open-file and core-dump limits set by a tiny bootstrap
  *inside* the child before the program runs (no ``preexec_fn``, which is unsafe in threaded parents);
- a private temporary working directory, deleted afterwards, as ``cwd``, ``HOME`` and ``TMPDIR``;
- a cleared environment: only ``PATH``, ``LANG`` and the temp paths, so no API key is visible;
- stdout/stderr written to files in that directory, capped by the file-size limit and read back
  truncated, so a program printing without end can neither fill the disk nor block the harness.

Not isolated here: the network, the rest of the file system (readable; writable where the user may
write), and processes that leave the process group with ``setsid``. Production runs belong in a
container or VM without network (README).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

# Runs inside the child: set the limits, then run the program as __main__. Kept tiny and free of
# imports beyond `resource`/`runpy` so its start-up cost stays close to a bare interpreter's.
_BOOTSTRAP = """\
import resource, runpy, sys
cpu, mem, fsize = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for what, value in ((resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, mem), (resource.RLIMIT_FSIZE, fsize),
                    (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 64)):
    if value >= 0:
        resource.setrlimit(what, (value, value))
sys.argv = ["program.py"]
runpy.run_path("program.py", run_name="__main__")
"""

STATUSES = ("ok", "error", "timeout", "memory", "killed")


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0          # wall clock (paper's evaluation: 5 s)
    cpu_s: int = 10                 # CPU seconds (a busy loop dies by SIGXCPU even if the wall clock lags)
    memory_mb: int = 1024           # address space; numpy/sympy need a few hundred MB of it
    output_bytes: int = 64_000      # per stream


@dataclass(frozen=True)
class Execution:
    status: str                     # one of STATUSES
    stdout: str
    stderr: str
    seconds: float
    returncode: int | None
    truncated: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def _read_capped(path: str, limit: int) -> tuple[str, bool]:
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    return data[:limit].decode("utf-8", errors="replace"), len(data) > limit


def _status(returncode: int, stderr: str, timed_out: bool) -> str:
    if timed_out:
        return "timeout"
    if returncode == 0:
        return "ok"
    if returncode == -signal.SIGXCPU:
        return "timeout"
    if "MemoryError" in stderr or returncode == -signal.SIGSEGV and "memory" in stderr.lower():
        return "memory"
    if returncode < 0:
        return "killed"
    return "error"


def run_python(code: str, limits: Limits = Limits(), python: str = sys.executable) -> Execution:
    """Run ``code`` as a Python program under ``limits``; never raises for anything the program does."""
    workdir = tempfile.mkdtemp(prefix="jiuzhang-sandbox-")
    try:
        with open(os.path.join(workdir, "program.py"), "w", encoding="utf-8") as fh:
            fh.write(code)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir,
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        out_path, err_path = os.path.join(workdir, ".stdout"), os.path.join(workdir, ".stderr")
        # The file-size limit caps each output file; one byte more than we read tells "truncated" apart.
        args = [python, "-I", "-c", _BOOTSTRAP, str(limits.cpu_s), str(limits.memory_mb * 2**20),
                str(limits.output_bytes + 1)]
        started = time.perf_counter()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(args, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True, close_fds=True)
            timed_out = False
            try:
                proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                # Kill the whole group: also children the program spawned that are still in it.
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        seconds = time.perf_counter() - started
        stdout, t1 = _read_capped(out_path, limits.output_bytes)
        stderr, t2 = _read_capped(err_path, limits.output_bytes)
        status = _status(proc.returncode, stderr, timed_out)
        if proc.returncode == -signal.SIGXFSZ:
            status, stderr = "error", stderr + f"\n[sandbox] output limit of {limits.output_bytes} bytes exceeded"
        return Execution(status, stdout, stderr, round(seconds, 4), proc.returncode, t1 or t2)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
