"""Adversarial suite for the sandbox that runs model-written code (filter and eval): each hostile
program is contained, the harness survives and stays responsive, and nothing outlives the run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from jiuzhang.sandbox.process import Limits, run_python

from conftest import ROOT, run_cli

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="uid separation and network namespaces need root")
FAST = Limits(timeout_s=2, cpu_s=4, memory_mb=512)


def test_ordinary_program_and_errors():
    ok = run_python("import sympy\nprint(sympy.Rational(1, 3) + sympy.Rational(1, 6))")
    assert ok.status == "ok" and ok.stdout == "1/2\n" and ok.seconds < 10
    err = run_python("raise ValueError('boom')")
    assert err.status == "error" and "ValueError: boom" in err.stderr


def test_infinite_loop_is_killed_at_the_wall_clock_limit():
    started = time.perf_counter()
    res = run_python("while True:\n    pass", FAST)
    assert res.status == "timeout" and time.perf_counter() - started < 6


def test_sleeping_program_is_killed_too():
    res = run_python("import time\ntime.sleep(60)", FAST)
    assert res.status == "timeout" and res.seconds < 4


def test_memory_bomb():
    res = run_python("x = []\nwhile True:\n    x.append(bytearray(50 * 2**20))", FAST)
    assert res.status == "memory"


def test_huge_output_is_capped():
    res = run_python("while True:\n    print('x' * 10000)", Limits(timeout_s=5, output_bytes=5000))
    assert res.status == "error" and res.truncated and len(res.stdout) == 5000 and "output limit" in res.stderr


def test_environment_secrets_are_not_visible(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    res = run_python("import os\nprint(dict(os.environ))\n"
                     "try:\n    print(open('/proc/%d/environ' % os.getppid()).read())\n"
                     "except OSError as e:\n    print('denied', e.errno)")
    assert res.status == "ok" and "sk-test-secret-123" not in res.stdout + res.stderr


def test_private_working_directory_is_removed():
    res = run_python("import os\nopen('scratch.txt', 'w').write('x')\nprint(os.getcwd())")
    workdir = res.stdout.strip()
    assert res.status == "ok" and "jiuzhang-sandbox-" in workdir and not Path(workdir).exists()


@ROOT_ONLY
def test_writes_outside_the_temp_dir_are_refused(tmp_path):
    target = Path(__file__).parent / "evil.txt"  # the project (as root the program may not even see it)
    res = run_python(f"open({str(target)!r}, 'w').write('pwned')")
    assert res.status == "error" and not target.exists()
    if os.geteuid() == 0:  # a place it does see and may not write
        target = Path("/etc") / "jiuzhang-evil.txt"
        res = run_python(f"open({str(target)!r}, 'w').write('pwned')")
        assert res.status == "error" and not target.exists()
        assert "Read-only file system" in res.stderr or "Permission denied" in res.stderr
    target = tmp_path / "evil.txt"  # under /tmp: as root the program does not even see the host's /tmp
    res = run_python(f"open({str(target)!r}, 'w').write('pwned')")
    assert res.status == "error" and not target.exists()


@ROOT_ONLY
def test_the_program_cannot_kill_its_parent():
    res = run_python("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.killpg(os.getpgid(os.getppid()), 9)")
    assert res.status == "error" and "Operation not permitted" in res.stderr
    assert run_python("print('still here')").stdout == "still here\n"


@ROOT_ONLY
def test_fork_bomb_is_contained_and_cleaned_up():
    started = time.perf_counter()
    res = run_python("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", FAST)
    assert res.status in ("timeout", "killed") and time.perf_counter() - started < 15
    assert run_python("print(1)").status == "ok"  # the machine still has processes to give


@ROOT_ONLY
def test_background_processes_do_not_outlive_the_run(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    drop.chmod(0o777)
    marker = drop / "survived"
    program = (f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
               f"        time.sleep(1.5)\n        open({str(marker)!r}, 'w').write('x')\n    os._exit(0)\n"
               f"print('parent done')")
    res = run_python(program, FAST)
    assert res.status == "ok" and res.stdout == "parent done\n"
    time.sleep(2.5)
    assert not marker.exists(), "a daemonised child outlived the sandbox run"


@ROOT_ONLY
def test_no_network():
    res = run_python("import socket\ns = socket.socket()\ns.settimeout(1)\ntry:\n    s.connect(('127.0.0.1', 9))\n"
                     "except OSError as e:\n    print(e.errno)")
    assert res.isolation["no_network"] and res.stdout.strip() == "101"  # ENETUNREACH: no interfaces at all


@ROOT_ONLY
@pytest.mark.parametrize("where", ["/tmp", "/var/tmp", "/dev/shm"])
def test_writes_to_world_writable_places_do_not_survive_the_program(where):
    """Issue 13.4: the throw-away uid may write to world-writable folders; each program sees its own empty
    tmpfs there, so nothing it writes is visible to anyone else or left behind."""
    import uuid

    name = f"{where}/jiuzhang-escape-{uuid.uuid4().hex}"
    res = run_python(f"import os\nopen({name!r}, 'w').write('x')\nprint(os.path.exists({name!r}), "
                     f"sorted(os.listdir({where!r})))")
    assert res.status == "ok", res.stderr
    assert res.stdout.startswith("True")  # the program could write there...
    assert not os.path.exists(name)       # ...but nothing survives it
    assert res.isolation["private_tmp"]
    # and it never sees what others left there
    marker = Path(where) / f"jiuzhang-host-{uuid.uuid4().hex}"
    marker.write_text("secret")
    try:
        res = run_python(f"import os\nprint(os.path.exists({str(marker)!r}))")
        assert res.stdout.strip() == "False"
    finally:
        marker.unlink()


def test_run_code_command(tmp_path):
    prog = tmp_path / "p.py"
    prog.write_text("print(6 * 7)")
    out = json.loads(run_cli("run-code", str(prog), cwd=tmp_path).stdout)
    assert out["status"] == "ok" and out["stdout"] == "42\n" and {"stderr", "seconds"} <= set(out)
    prog.write_text("while True: pass")
    out = json.loads(run_cli("run-code", str(prog), "--timeout", "1", cwd=tmp_path).stdout)
    assert out["status"] == "timeout"
    prog.write_text("x = bytearray(2 * 2**30)")
    out = json.loads(run_cli("run-code", str(prog), "--memory-mb", "256", cwd=tmp_path).stdout)
    assert out["status"] == "memory"
    missing = run_cli("run-code", str(tmp_path / "nope.py"), cwd=tmp_path, check=False)
    assert missing.returncode == 2 and "nope.py" in missing.stderr


@ROOT_ONLY
def test_an_interpreter_installed_under_tmp_still_runs_with_a_private_tmp(tmp_path):
    """CI clones (and their .venv) may live under /tmp: the private tmpfs must not hide the interpreter's
    own installation, which is bound back read-only, while the rest of the host's /tmp stays hidden."""
    import subprocess
    import sys
    import uuid

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "probe_module.py").write_text("VALUE = 42\n")
    secret = tmp_path / f"host-{uuid.uuid4().hex}"
    secret.write_text("secret")
    code = (f"import os, probe_module\nprint(probe_module.VALUE, os.path.exists({str(secret)!r}))\n"
            f"open('/tmp/left-behind-{uuid.uuid4().hex}', 'w').write('x')\n"
            f"try:\n    open({str(site / 'evil.py')!r}, 'w')\nexcept OSError as e:\n    print('refused', e.errno in (13, 30))")
    res = run_python(code, python=str(venv / "bin" / "python"))
    assert res.status == "ok", res.stderr
    # imports work, the host's /tmp is hidden, the installation is read-only (EROFS or EACCES)
    assert res.stdout.split() == ["42", "False", "refused", "True"]
    assert res.isolation["private_tmp"] and not list(Path("/tmp").glob("left-behind-*"))


@ROOT_ONLY
def test_a_planted_secret_is_unreadable_from_sandboxed_code(tmp_path):
    """Issue 22.11: the program ran with CAP_DAC_READ_SEARCH, so it could read .dvc/config.local (where S3
    keys go), ~/.ssh and ~/.aws, and print them into eval predictions and the report. Now it has no
    capabilities and a root of its own holding only the system folders and the interpreter: secrets in the
    project, in /root and in another folder of the host are neither readable nor even visible."""
    import uuid

    token = f"SECRET-{uuid.uuid4().hex}"
    planted, made = [], [d for d in (Path("/root") / ".aws",) if not d.exists()]
    for folder in (ROOT / ".dvc", Path("/root") / ".aws", tmp_path):
        folder.mkdir(parents=True, exist_ok=True)
        name = folder / f"jiuzhang-planted-{uuid.uuid4().hex}"
        name.write_text(token)
        name.chmod(0o600)  # as a credentials file is
        planted.append(name)
    try:
        code = "\n".join(["import os", "for p in %r:" % [str(p) for p in planted],
                           "    try:", "        print(p, open(p).read())",
                           "    except OSError as e:", "        print(p, 'refused', e.errno)",
                           "print('listing', os.path.exists(%r), os.path.exists('/root/.aws'))" % str(ROOT / ".dvc"),
                           "print('project', sorted(os.listdir(%r)) if os.path.isdir(%r) else [])" % (str(ROOT), str(ROOT))])
        res = run_python(code)
        assert res.status == "ok", res.stderr
        assert token not in res.stdout + res.stderr
        assert all(f"{p} refused 2" in res.stdout for p in planted)  # ENOENT: not even there
        assert "listing False False" in res.stdout
        # of the project only the interpreter's own folders are there (the venv, the editable src), read-only
        seen = res.stdout.split("project ", 1)[1].strip()
        assert set(eval(seen)) <= {".venv", "src"}, seen
        assert res.isolation["no_capabilities"] and res.isolation["private_root"]
        # and with the private root in place the capability really is gone (a root-only file it can see)
        res = run_python("print(open('/etc/shadow').read()[:10])")
        assert res.status == "error" and "Permission denied" in res.stderr
        # the isolation facts are not in the folder the program may write, so it cannot forge them
        res = run_python("open('.isolation', 'w').write('0 0')\nimport os\nprint(sorted(os.listdir('.')))")
        assert res.status == "ok" and res.stdout.strip() == "['.isolation', 'program.py']"
        assert res.isolation["private_root"] and res.isolation["no_network"]
    finally:
        for p in planted:
            p.unlink()
        for d in made:
            d.rmdir()
