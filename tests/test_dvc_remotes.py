"""DVC remotes over real network protocols on 127.0.0.1: SSH (Debian's sshd, key auth, dvc-ssh) and the S3
protocol (moto's S3 server, dvc-s3). For each: the smoke pipeline's artifacts go up with `dvc push`, a
fresh `git clone` pulls them, `dvc status` is clean, `dvc repro` runs nothing and the teacher gets no
request; credentials stay out of git and out of the pushed objects; a push interrupted by the server
dying is retried to completion, `dvc status -c` having named what was missing, and every object on the
remote matches its content hash."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import BIN
from helpers.dvc_project import copy_ran, dvc
from remote_servers import S3Server, SshServer, clone

pytestmark = pytest.mark.slow


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def project(ran_small_project, tmp_path_factory) -> Path:
    """The smoke pipeline (test size) run and committed, as a user's project is before a push."""
    proj = copy_ran(ran_small_project[0], tmp_path_factory.mktemp("remotes") / "src" / "proj")
    (proj / ".gitignore").write_text("/mlflow.db\n/mlartifacts/\n/results/run/\n/.cache/\n")
    for key, value in (("user.name", "jiuzhang test"), ("user.email", "test@example.invalid")):
        git(proj, "config", key, value)
    git(proj, "add", "-A")
    git(proj, "commit", "-qm", "smoke pipeline run")
    return proj


def content_addressed_ok(objects: dict[str, bytes]) -> int:
    """Every object under files/md5/ must hash to its own name (``.dir`` listings included)."""
    checked = 0
    for key, data in objects.items():
        parts = key.split("/")
        if "md5" not in parts or ".tmp" in parts[-1]:     # a temp name of an interrupted upload
            continue
        name = parts[-2] + parts[-1].removesuffix(".dir")
        assert hashlib.md5(data).hexdigest() == name, f"corrupted object {key}"
        checked += 1
    return checked


def local_objects(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


class Remote:
    """One remote kind, set up the way the README tells a user to: URL (and endpoint) in .dvc/config,
    credentials only with `--local` or in the environment."""

    def __init__(self, kind: str, root: Path):
        self.kind, self.root = kind, root
        self.home = root / "home"
        self.env: dict[str, str] = {"HOME": str(self.home)}
        if kind == "ssh":
            self.server = SshServer(root / "sshd", self.home).start()
            self.secret = Path(self.server.client_key).read_text().splitlines()[1]   # a line of the private key
        else:
            self.server = S3Server().start()
            self.server.create_bucket()
            self.secret = S3Server.SECRET_KEY

    def url(self, name: str) -> str:
        return self.server.url(self.root / name) if self.kind == "ssh" else f"s3://{self.server.bucket}/{name}"

    def add(self, project: Path, name: str, via_env: bool = False) -> None:
        dvc(project, "remote", "add", "-f", name, self.url(name), env=self.env)
        if self.kind == "ssh":
            dvc(project, "remote", "modify", "--local", name, "keyfile", str(self.server.client_key), env=self.env)
            return
        dvc(project, "remote", "modify", name, "endpointurl", self.server.endpoint, env=self.env)
        if via_env:       # the environment: nothing written anywhere
            self.env |= {"AWS_ACCESS_KEY_ID": S3Server.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3Server.SECRET_KEY}
        else:
            dvc(project, "remote", "modify", "--local", name, "access_key_id", S3Server.ACCESS_KEY, env=self.env)
            dvc(project, "remote", "modify", "--local", name, "secret_access_key", S3Server.SECRET_KEY, env=self.env)

    def objects(self, name: str) -> dict[str, bytes]:
        if self.kind == "ssh":
            return local_objects(self.root / name)
        return {k: v for k, v in self.server.objects().items() if k.startswith(f"{name}/")}

    def count(self, name: str) -> int:
        """Objects stored so far (names only: cheap enough to poll during a push)."""
        if self.kind == "ssh":
            return sum(1 for p in (self.root / name).rglob("*") if p.is_file())
        return len(self.server.keys(f"{name}/"))

    def kill(self) -> None:
        self.server.kill() if self.kind == "ssh" else self.server.stop()

    def restart(self) -> None:
        self.server.restart()

    def close(self) -> None:
        self.kill()


@pytest.fixture(params=["ssh", "s3"])
def remote(request, tmp_path):
    r = Remote(request.param, tmp_path)
    yield r
    r.close()


@pytest.mark.timeout(1800)
def test_push_clone_pull_status_clean_and_nothing_reruns(project, remote, tmp_path):
    remote.add(project, f"team-{remote.kind}", via_env=remote.kind == "s3")
    started = time.perf_counter()
    dvc(project, "push", "-r", f"team-{remote.kind}", env=remote.env)
    push_s = time.perf_counter() - started
    pushed = remote.objects(f"team-{remote.kind}")
    n_files, n_bytes = content_addressed_ok(pushed), sum(len(v) for v in pushed.values())
    assert n_files > 50 and "in sync" in dvc(project, "status", "-c", "-r", f"team-{remote.kind}", env=remote.env)

    # the secret is nowhere in git (tracked files and history) nor in any pushed object
    git(project, "add", "-A")
    git(project, "commit", "-qm", f"remote team-{remote.kind}")
    tracked = git(project, "ls-files")
    assert ".dvc/config.local" not in tracked
    history = git(project, "log", "-p", "--all")
    assert remote.secret not in history and remote.secret not in "".join(
        (project / f).read_text(errors="replace") for f in tracked.splitlines() if (project / f).is_file()
        and (project / f).stat().st_size < 5_000_000)
    assert not any(remote.secret.encode() in data for data in pushed.values())

    # a fresh clone: pull, status clean, repro runs nothing, the teacher is not asked again
    fresh = clone(project, tmp_path / "clone")
    remote.env.pop("AWS_ACCESS_KEY_ID", None)
    remote.env.pop("AWS_SECRET_ACCESS_KEY", None)
    remote.add(fresh, f"team-{remote.kind}")        # credentials: --local in the clone
    started = time.perf_counter()
    dvc(fresh, "pull", "-r", f"team-{remote.kind}", env=remote.env)
    pull_s = time.perf_counter() - started
    status = dvc(fresh, "status", env=remote.env)
    assert "Data and pipelines are up to date" in status, status
    assert "Running stage" not in dvc(fresh, "repro", env=remote.env)
    dvc(fresh, "repro", "-f", "kd_initial", env={**remote.env, "JIUZHANG_TRACKING": "off"})
    facts = json.loads((fresh / "results" / "run" / "kd_initial.json").read_text())
    assert facts["http_attempts"] == 0 and facts["cached"] == facts["journal_answered"] > 0
    mib = n_bytes / 2**20
    print(f"\n{remote.kind}: {n_files} files, {mib:.1f} MiB; push {push_s:.1f} s ({mib / push_s:.1f} MiB/s), "
          f"pull {pull_s:.1f} s ({mib / pull_s:.1f} MiB/s)")


@pytest.mark.timeout(1200)
def test_interrupted_push_is_retried_to_completion_without_corruption(project, remote):
    name = f"outage-{remote.kind}"
    remote.add(project, name)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **remote.env}
    push = subprocess.Popen([str(BIN / "dvc"), "push", "-j", "1", "-r", name], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []

    def watch() -> None:         # the server dies once a few objects have arrived
        while push.poll() is None:
            try:
                count = remote.count(name)
            except Exception:   # noqa: BLE001 - listing while the server dies
                return
            if count >= 5:
                seen.append(count)
                remote.kill()
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    out = push.communicate(timeout=600)[0]
    watcher.join()
    assert seen, f"the push ended before the outage could land:\n{out[-2000:]}"
    assert push.returncode != 0, out[-2000:]
    remote.restart()
    missing = dvc(project, "status", "-c", "-r", name, env=remote.env)
    assert "new:" in missing or "missing" in missing, missing          # what the remote lacks is named
    dvc(project, "push", "-r", name, env=remote.env)
    assert "in sync" in dvc(project, "status", "-c", "-r", name, env=remote.env)
    n_files = content_addressed_ok(remote.objects(name))
    assert n_files > seen[0]
    print(f"\n{remote.kind}: outage after {seen[0]} of {n_files} objects; retried push completed, all objects verified")
