"""Real servers on 127.0.0.1 for the DVC remote tests and benchmarks/remote_transfer.py: a throwaway sshd
(Debian's openssh-server: key auth only, its own host key and config, a high port) and moto's S3 server
(the S3-compatible emulator DVC's own tests use; production points at a real bucket).

Each helper starts the server, waits until it accepts connections, and stops it; ``kill()`` is SIGKILL (an
sshd that dies mid-transfer) and ``restart()`` brings the same server back on the same port.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def clone(project: Path, dest: Path) -> Path:
    """A fresh ``git clone`` of ``project`` at ``dest/proj``, with ``dest/shared`` linked to the project's
    ``../shared`` (the data params name), as a second user's checkout."""
    dest.mkdir(parents=True)
    (dest / "shared").symlink_to((project.parent / "shared").resolve())
    subprocess.run(["git", "clone", "-q", str(project), str(dest / "proj")], check=True)
    return dest / "proj"


class SshServer:
    """sshd on 127.0.0.1:<port> for the current user, public-key auth only. ``home`` gets the client's
    key (``home/.ssh/id_ed25519``) and a known_hosts entry for the server's host key, so a client run
    with HOME=home verifies the host instead of trusting it."""

    def __init__(self, workdir: Path, home: Path):
        self.dir, self.home = workdir, home
        self.port = free_port()
        self.user = getpass.getuser()
        self.proc: subprocess.Popen | None = None
        ssh = home / ".ssh"
        ssh.mkdir(parents=True, exist_ok=True)
        workdir.mkdir(parents=True, exist_ok=True)
        self.host_key, self.client_key = workdir / "host_ed25519", ssh / "id_ed25519"
        for key in (self.host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        (workdir / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        host_pub = Path(f"{self.host_key}.pub").read_text().split()
        (ssh / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.config = workdir / "sshd_config"
        self.config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {workdir / 'authorized_keys'}", f"PidFile {workdir / 'sshd.pid'}",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password", "UsePAM no", "StrictModes no", "MaxStartups 100",
            "MaxSessions 100", "Subsystem sftp internal-sftp", ""]))

    def start(self) -> "SshServer":
        if not Path(SSHD).exists():
            raise FileNotFoundError("sshd not found: `make test` installs Debian's openssh-server (make ssh-server)")
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(exist_ok=True)       # privilege separation directory sshd requires as root
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "sshd.log", "ab"))
        wait_port(self.port)
        return self

    def kill(self) -> None:
        """SIGKILL the listener and every session it forked (each session is a child process in a session
        of its own: killing the listener alone would let open transfers carry on)."""
        import psutil

        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            procs = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            procs = []
        self.proc.send_signal(signal.SIGKILL)
        for p in procs:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        self.proc.wait()

    restart = start

    def url(self, path: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path}"

    def __enter__(self) -> "SshServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


class S3Server:
    """moto's S3 API on 127.0.0.1:<port>, run in this process (its buckets live in moto's in-process
    backend, so ``stop()`` + ``restart()`` is a server outage that keeps what was stored, as a real one
    would)."""

    ACCESS_KEY, SECRET_KEY = "jiuzhang-test-access", "jiuzhang-test-secret-3c1f9e"

    def __init__(self, bucket: str = "jiuzhang-remote"):
        self.port, self.bucket = free_port(), bucket
        self.server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "S3Server":
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)   # one log line per request otherwise
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        wait_port(self.port)
        return self

    def create_bucket(self) -> None:
        self.client().create_bucket(Bucket=self.bucket)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.ACCESS_KEY,
                            aws_secret_access_key=self.SECRET_KEY, region_name="us-east-1")

    def keys(self, prefix: str = "") -> list[str]:
        s3 = self.client()
        return [obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
                for obj in page.get("Contents", [])]

    def objects(self) -> dict[str, bytes]:
        out, s3 = {}, self.client()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
        return out

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    restart = start

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
