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
- builds a root of its own in a new mount namespace and ``chroot``s into it: a fresh tmpfs holding, read-only
  and nosuid, only the system folders (/usr, /lib, /etc ...) and the interpreter's own installation (its
  prefixes and sys.path: the venv, an editable package's src), the program's folder read-write, fresh
  size-capped tmpfs at /tmp, /var/tmp and /dev/shm, a few /dev nodes and a /proc that hides other users'
  processes. The project (its ``.dvc/config.local`` with S3 keys), /root (SSH keys, ``~/.aws``) and every
  other folder of the host are not there at all; if that root cannot be built, the program is not run;
- drops to a throw-away uid/gid (never used by anything else) with no capabilities at all and
  ``PR_SET_NO_NEW_PRIVS`` (set-uid programs give nothing back), so the program cannot read root-only
  files it can see (/etc/shadow), write outside its folder, read other processes' environments, or
  signal the harness; the process cap then really holds (the kernel ignores it for root), which stops
  fork bombs;
- after the program ends or times out, kills every process of that uid, including background
  processes that left the process group with ``setsid``;
- puts the program in a new network namespace with no interfaces (no network) where the kernel allows.

Its stdout, stderr and the isolation facts are written outside the program's folder (a folder it owns: it
could replace files there), in a 0700 folder of the harness.

Not isolated (documented in the README): without root, the network, reads and writes wherever the user
may, and processes that call ``setsid``. Production: run evaluation inside a container/VM with no network
and a read-only root file system.
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
# The facts file lies outside the program's folder and its new root: opened now, closed before the program runs.
facts, workdir = open(sys.argv[8], "w"), os.getcwd()
isolated, private_root = 0, 0
if want_net:
    try:
        isolated = int(ctypes.CDLL(None, use_errno=True).unshare(0x40000000) == 0)  # CLONE_NEWNET
    except OSError:
        pass
def _private_root(tmp_mb, workdir):
    # A mount namespace of its own (CLONE_NEWNS, made private so nothing propagates back to the host) whose
    # root is a fresh tmpfs holding, read-only and nosuid, only the system folders (/usr, /lib, /etc ...)
    # and the interpreter's own installation (its prefixes and sys.path), the program's folder read-write,
    # fresh size-capped tmpfs at /tmp, /var/tmp and /dev/shm, a few /dev nodes and a /proc that hides other
    # users' processes. Nothing else of the host exists there: not the project (its .dvc/config.local),
    # not /root (SSH keys, ~/.aws), not other programs' folders.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    BIND, REC, RDONLY, NOSUID, NODEV, REMOUNT, PRIVATE = 0x1000, 0x4000, 0x1, 0x2, 0x4, 0x20, 0x40000
    def mount(src, dst, fstype, flags, data=None):
        if libc.mount(src and src.encode(), dst.encode(), fstype and fstype.encode(), flags, data) != 0:
            raise OSError(ctypes.get_errno(), f"mount {src} on {dst}")
    def bind(src, dst, writable=False):
        if os.path.isdir(src):
            os.makedirs(dst, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            open(dst, "a").close()
        mount(src, dst, None, BIND | REC)
        mount(None, dst, None, REMOUNT | BIND | NOSUID | (0 if writable else RDONLY))
    if libc.unshare(0x00020000) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    mount("none", "/", None, REC | PRIVATE)
    new = os.path.join(os.path.dirname(workdir), "." + os.path.basename(workdir) + ".root")
    os.makedirs(new, 0o755, exist_ok=True)
    mount("tmpfs", new, "tmpfs", NOSUID | NODEV, b"size=16m,mode=755")
    system = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
    for d in (d for d in system if os.path.lexists(d)):
        if os.path.islink(d):
            os.symlink(os.readlink(d), new + d)  # merged /usr: /bin -> usr/bin
        else:
            bind(d, new + d)
    for d in ("/tmp", "/var/tmp", "/dev/shm"):
        os.makedirs(new + d, exist_ok=True)
        mount("tmpfs", new + d, "tmpfs", NOSUID | NODEV, b"size=%dm,mode=1777" % tmp_mb)
    for node in ("null", "zero", "full", "random", "urandom"):
        if os.path.exists("/dev/" + node):
            bind("/dev/" + node, new + "/dev/" + node, writable=True)
    os.makedirs(new + "/proc", exist_ok=True)
    try:
        mount("proc", new + "/proc", "proc", NOSUID | NODEV | 0x8, b"hidepid=2")  # MS_NOEXEC
    except OSError:
        pass  # no /proc then: the program runs without it
    needed = set()
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path):
        if p and os.path.isdir(p):
            needed |= {os.path.abspath(p), os.path.realpath(p)}
    needed = sorted(p for p in needed if not any(p == c or p.startswith(c + "/") for c in system))
    for p in [p for p in needed if not any(p.startswith(q + "/") for q in needed)]:  # top-most only
        bind(os.path.realpath(p), new + p)
    bind(workdir, new + workdir, writable=True)
    os.chroot(new)
    os.chdir(workdir)
    return 1


if uid >= 0:
    try:
        private_root = _private_root(tmp_mb, workdir)
    except OSError as exc:
        # Fail closed: without its own root the program would see the host's files.
        facts.write(f"{isolated} 0")
        facts.close()
        sys.stderr.write(f"[sandbox] could not build the private root ({exc}); the program was not run\n")
        sys.exit(125)
del _private_root
for what, value in ((resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, mem), (resource.RLIMIT_FSIZE, fsize),
                    (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_NPROC, nproc)):
    if value >= 0:
        resource.setrlimit(what, (value, value))
facts.write(f"{isolated} {private_root}")
facts.close()
if uid >= 0:
    # Drop to the throw-away uid with no capabilities at all (no PR_SET_KEEPCAPS: setuid clears them), and
    # forbid regaining any through set-uid programs (PR_SET_NO_NEW_PRIVS).
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0)
del ctypes, os, resource, cpu, mem, fsize, nproc, uid, want_net, isolated, private_root, tmp_mb, facts, workdir
sys.argv = ["program.py"]
runpy.run_path("program.py", run_name="__main__")
"""

STATUSES = ("ok", "error", "timeout", "memory", "killed")
_UIDS = itertools.count()


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed program: wall clock, CPU seconds, memory, output size."""
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
    """What a sandboxed program did: status, stdout, stderr and how long it ran."""
    status: str                     # one of STATUSES
    stdout: str
    stderr: str
    seconds: float
    returncode: int | None
    truncated: bool = False
    isolation: dict[str, bool] = field(default_factory=dict)

    def to_json(self) -> str:
        """The execution as one JSON object."""
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
    harness = tempfile.mkdtemp(prefix="jiuzhang-sandbox-harness-")  # 0700, the harness's own
    try:
        with open(os.path.join(workdir, "program.py"), "w", encoding="utf-8") as fh:
            fh.write(code)
        if root:
            for path in (workdir, os.path.join(workdir, "program.py")):
                os.chown(path, uid, uid)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir,
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        # Output and isolation facts go outside the program's folder (it could replace files there).
        out_path, err_path, facts_path = (os.path.join(harness, name) for name in ("stdout", "stderr", "isolation"))
        # The file-size limit caps each output file; one byte more than we read tells "truncated" apart.
        args = [python, "-I", "-c", _BOOTSTRAP, str(limits.cpu_s), str(limits.memory_mb * 2**20),
                str(limits.output_bytes + 1), str(nproc), str(uid), "1" if root else "0",
                str(limits.tmp_mb if root else 0), facts_path]
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
            with open(facts_path) as fh:
                no_network, private_root = (flag == "1" for flag in fh.read().split())
        except (OSError, ValueError):
            no_network = private_root = False
        return Execution(status, stdout, stderr, round(seconds, 4), proc.returncode, t1 or t2,
                         {"separate_uid": root, "no_capabilities": root, "no_network": no_network,
                          "private_root": private_root, "private_tmp": private_root})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(harness, ignore_errors=True)
        if root:
            shutil.rmtree(os.path.join(os.path.dirname(workdir), "." + os.path.basename(workdir) + ".root"),
                          ignore_errors=True)


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
