"""Run one untrusted, model-written Python program in a separate, resource-limited process.

Why our own and not a library: the maintained sandboxes (containers, nsjail, firejail, gVisor) need a
daemon, setuid helpers or kernel features this CI box and many laptops do not have. This module uses
what Linux gives an ordinary process, and more when it runs as root (as in CI containers).

Every program gets:
- a fresh ``python -I`` in its own session/process group, killed as a whole (SIGKILL) on a wall-clock
  timeout; a tiny bootstrap *inside* the child sets the limits before the program runs (no
  ``preexec_fn``, which is unsafe in threaded parents);
- limits: CPU seconds, address space (memory), file size (caps stdout/stderr, which go to files, so
  output can neither fill the disk nor block the harness), no core dumps, 64 open files, a process cap;
- a private temporary working directory (also ``HOME`` and ``TMPDIR``), mode 0700, deleted afterwards;
- a cleared environment (``PATH``, ``LANG`` and the temp paths only), so no API key is visible.

When the harness runs as root it also, per program:
- drops to a throw-away uid/gid (never used by anything else), keeping only CAP_DAC_READ_SEARCH so the
  interpreter can read its standard library wherever it lives, so the program cannot write the project
  or other users' files, read other processes' environments, or signal the harness; the process cap
  then really holds (the kernel ignores it for root), which stops fork bombs;
- after the program ends or times out, kills every process of that uid, including background
  processes that left the process group with ``setsid``;
- puts the program in a new network namespace with no interfaces (no network) where the kernel allows;
- puts it in a new mount namespace where ``/tmp``, ``/var/tmp`` and ``/dev/shm`` are fresh, private,
  size-capped tmpfs mounts: the throw-away uid may write there (they are world-writable), but nothing it
  writes is seen by anyone else or survives the program (the namespace, and its tmpfs, die with it). Its
  working directory then lives outside those paths (under ``/run`` or ``/var/lib``), created by the harness.

Not isolated (documented in the README): without root, the network, writes wherever the user may
write, and processes that call ``setsid``; with root, reading files (the kept capability). Production: run
evaluation inside a container/VM with no network and a read-only root file system.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

# Runs inside the child as root or as the user; keep it small and dependency-free.
_BOOTSTRAP = r"""
import ctypes, os, resource, runpy, sys
cpu, mem, fsize, nproc, uid, want_net, tmp_mb = (int(a) for a in sys.argv[1:8])
isolated, private_tmp = 0, 0
if want_net:
    try:
        isolated = int(ctypes.CDLL(None, use_errno=True).unshare(0x40000000) == 0)  # CLONE_NEWNET
    except OSError:
        pass
def _private_tmp(tmp_mb):
    # A mount namespace of its own (CLONE_NEWNS), made private so nothing propagates back to the host,
    # with fresh tmpfs mounts over the world-writable places: what the program writes there dies with it.
    # What the interpreter still reads from there (a venv or project under /tmp, as in CI clones) is bound
    # back read-only; everything else of the host's /tmp is out of sight.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    if libc.unshare(0x00020000) != 0 or libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None) != 0:
        return 0  # CLONE_NEWNS; MS_REC | MS_PRIVATE
    needed = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                                             *sys.path) if p and os.path.isdir(p)}
    stage, done = os.path.abspath(".host-view"), 0
    for where in ("/tmp", "/var/tmp", "/dev/shm"):
        if not os.path.isdir(where):
            done += 1
            continue
        real = os.path.realpath(where)
        inside = sorted(p for p in needed if p == real or p.startswith(real + "/"))
        inside = [p for p in inside if not any(p.startswith(q + "/") for q in inside)]  # top-most only
        if real in inside:
            continue  # the interpreter lives right there: it cannot be hidden
        if inside:
            os.mkdir(stage, 0o700)
            if libc.mount(real.encode(), stage.encode(), None, 0x1000 | 0x4000, None) != 0:  # MS_BIND | MS_REC
                os.rmdir(stage)
                continue
        ok = libc.mount(b"tmpfs", real.encode(), b"tmpfs", 0x2 | 0x4, b"size=%dm,mode=1777" % tmp_mb) == 0
        for path in inside if ok else ():
            os.makedirs(path, exist_ok=True)
            ok &= libc.mount((stage + path[len(real):]).encode(), path.encode(), None, 0x1000 | 0x4000, None) == 0
            # read-only: MS_REMOUNT | MS_BIND | MS_RDONLY
            ok &= libc.mount(None, path.encode(), None, 0x20 | 0x1000 | 0x1, None) == 0
        if inside:
            libc.umount2(stage.encode(), 2)  # MNT_DETACH: the host's view goes before the program starts
            os.rmdir(stage)
        done += bool(ok)
    return int(done == 3)


if tmp_mb > 0:
    private_tmp = _private_tmp(tmp_mb)
del _private_tmp
for what, value in ((resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, mem), (resource.RLIMIT_FSIZE, fsize),
                    (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_NPROC, nproc)):
    if value >= 0:
        resource.setrlimit(what, (value, value))
with open(".isolation", "w") as fh:
    fh.write(f"{isolated} {private_tmp}")
if uid >= 0:
    # Drop to the throw-away uid but keep one capability, CAP_DAC_READ_SEARCH (read files, not write,
    # not signal, not read other processes' memory or environment): the interpreter and its standard
    # library may live where only root can read (e.g. /root/.pyenv).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(8, 1, 0, 0, 0)  # PR_SET_KEEPCAPS
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)          # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)(1 << 2, 1 << 2, 0, 0, 0, 0)  # effective, permitted, inheritable (x2)
    libc.capset(header, data)
    del libc, header, data
del ctypes, os, resource, cpu, mem, fsize, nproc, uid, want_net, isolated, private_tmp, tmp_mb
sys.argv = ["program.py"]
runpy.run_path("program.py", run_name="__main__")
"""

STATUSES = ("ok", "error", "timeout", "memory", "killed")
_UIDS = itertools.count()


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0          # wall clock (paper's evaluation: 5 s)
    cpu_s: int = 10                 # CPU seconds (a busy loop dies by SIGXCPU even if the wall clock lags)
    memory_mb: int = 1024           # address space; numpy/sympy need a few hundred MB of it
    output_bytes: int = 64_000      # per stream
    processes: int = 16             # processes the program may have at once (fork bombs)
    tmp_mb: int = 64                # size of each private /tmp, /var/tmp, /dev/shm (root only)

    @classmethod
    def for_timeout(cls, timeout_s: float, memory_mb: int, cpu_s: int | None = None) -> Limits:
        """The limits filter, eval and run-code use: CPU seconds default to twice the wall clock."""
        return cls(timeout_s=timeout_s, cpu_s=cpu_s or max(1, int(2 * timeout_s)), memory_mb=memory_mb)


@dataclass(frozen=True)
class Execution:
    status: str                     # one of STATUSES
    stdout: str
    stderr: str
    seconds: float
    returncode: int | None
    truncated: bool = False
    isolation: dict[str, bool] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @property
    def error_line(self) -> str:
        """The last line of stderr (e.g. ``ZeroDivisionError: division by zero``), or the status."""
        return (self.stderr.strip().splitlines() or [self.status])[-1]


def _read_capped(path: str, limit: int) -> tuple[str, bool]:
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    return data[:limit].decode("utf-8", errors="replace"), len(data) > limit


def _status(returncode: int, stderr: str, timed_out: bool) -> str:
    if timed_out or returncode == -signal.SIGXCPU:
        return "timeout"
    if returncode == 0:
        return "ok"
    if "MemoryError" in stderr or "Cannot allocate memory" in stderr:
        return "memory"
    if returncode < 0 and returncode != -signal.SIGXFSZ:
        return "killed"
    return "error"


def _processes_of(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as fh:
                    for line in fh:
                        if line.startswith("Uid:"):
                            if int(line.split()[1]) == uid:
                                pids.append(int(entry))
                            break
            except OSError:
                continue
    return pids


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of the throw-away uid until none is left (a fork bomb keeps forking)."""
    for _ in range(50):
        pids = _processes_of(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def _user_process_count() -> int:
    return len(_processes_of(os.getuid()))


def _root_workspace() -> str:
    """Where root makes the programs' folders: not under /tmp, /var/tmp or /dev/shm (each program sees its
    own empty tmpfs there); /run is a tmpfs on most systems, /var/lib the fallback."""
    for base in ("/run/jiuzhang-sandbox", "/var/lib/jiuzhang-sandbox"):
        try:
            os.makedirs(base, mode=0o711, exist_ok=True)
            os.chmod(base, 0o711)  # the throw-away uids may pass through it, not list it
            return base
        except OSError:
            continue
    return tempfile.gettempdir()


def run_python(code: str, limits: Limits = Limits(), python: str = sys.executable) -> Execution:
    """Run ``code`` as a Python program under ``limits``; never raises for anything the program does."""
    root = os.geteuid() == 0
    # A uid nobody else uses (root only): 10,000,000 up, one per run of this process.
    uid = 10_000_000 + (os.getpid() % 100_000) * 1000 + next(_UIDS) % 1000 if root else -1
    # Without root the process cap counts all of this user's processes, so it is added to what runs now.
    nproc = limits.processes if root else _user_process_count() + limits.processes
    # As root the program gets private tmpfs mounts over /tmp and friends, so its folder must live elsewhere.
    workdir = tempfile.mkdtemp(prefix="jiuzhang-sandbox-", dir=_root_workspace() if root else None)
    try:
        with open(os.path.join(workdir, "program.py"), "w", encoding="utf-8") as fh:
            fh.write(code)
        if root:
            for path in (workdir, os.path.join(workdir, "program.py")):
                os.chown(path, uid, uid)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir,
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        out_path, err_path = os.path.join(workdir, ".stdout"), os.path.join(workdir, ".stderr")
        # The file-size limit caps each output file; one byte more than we read tells "truncated" apart.
        args = [python, "-I", "-c", _BOOTSTRAP, str(limits.cpu_s), str(limits.memory_mb * 2**20),
                str(limits.output_bytes + 1), str(nproc), str(uid), "1" if root else "0",
                str(limits.tmp_mb if root else 0)]
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
                try:  # the whole group: children the program spawned that are still in it
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                if root:
                    _kill_uid(uid)  # also those that left the group (setsid, double fork)
                proc.wait()
        seconds = time.perf_counter() - started
        stdout, t1 = _read_capped(out_path, limits.output_bytes)
        stderr, t2 = _read_capped(err_path, limits.output_bytes)
        status = _status(proc.returncode, stderr, timed_out)
        if t1 or t2 or proc.returncode == -signal.SIGXFSZ:
            stderr += f"\n[sandbox] output limit of {limits.output_bytes} bytes exceeded"
        try:
            with open(os.path.join(workdir, ".isolation")) as fh:
                no_network, private_tmp = (flag == "1" for flag in fh.read().split())
        except (OSError, ValueError):
            no_network = private_tmp = False
        return Execution(status, stdout, stderr, round(seconds, 4), proc.returncode, t1 or t2,
                         {"separate_uid": root, "no_network": no_network, "private_tmp": private_tmp})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_many(programs: list[str], limits: Limits = Limits(), workers: int = 2,
             runner: Callable[[str], Execution] | None = None) -> list[Execution]:
    """Run programs ``workers`` at a time (each in its own sandbox, or through ``runner``); results in
    input order."""
    from concurrent.futures import ThreadPoolExecutor

    if not programs:
        return []
    run = runner or (lambda code: run_python(code, limits))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, programs))
