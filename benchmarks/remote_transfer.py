"""Push/pull wall time and throughput of the smoke profile's artifacts per DVC remote kind, against real
servers on 127.0.0.1: a local folder (the baseline), SSH (Debian's sshd + dvc-ssh) and the S3 protocol
(moto's S3 server + dvc-s3).

    python benchmarks/remote_transfer.py [--jobs 4] [--repeats 3]

Needs a checkout whose smoke outputs are in .dvc/cache (after `make repro`). For each kind: a fresh git
clone of HEAD with this checkout's cache as its cache pushes every output (`dvc push`), then a second
fresh clone with an empty cache pulls them (`dvc pull`) and `dvc status` must be clean. Prints a JSON line
per run (files, MiB, push/pull seconds, MiB/s, ratio to the local-folder run of the same round), then per
kind the median [min, max] over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT / "tests"))

from remote_servers import S3Server, SshServer, clone  # noqa: E402


def sh(cwd: Path, *args: str, env: dict | None = None) -> str:
    res = subprocess.run(args, cwd=cwd, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **(env or {})},
                         capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return res.stdout + res.stderr


def configure(project: Path, kind: str, server, scratch: Path, env: dict) -> None:
    dvc = str(BIN / "dvc")
    if kind == "local":
        sh(project, dvc, "remote", "add", "-f", "-d", "bench", str(scratch / "remote-local"))
    elif kind == "ssh":
        sh(project, dvc, "remote", "add", "-f", "-d", "bench", server.url(scratch / "remote-ssh"), env=env)
        sh(project, dvc, "remote", "modify", "--local", "bench", "keyfile", str(server.client_key), env=env)
    else:
        sh(project, dvc, "remote", "add", "-f", "-d", "bench", f"s3://{server.bucket}/cache")
        sh(project, dvc, "remote", "modify", "bench", "endpointurl", server.endpoint)
        sh(project, dvc, "remote", "modify", "--local", "bench", "access_key_id", S3Server.ACCESS_KEY)
        sh(project, dvc, "remote", "modify", "--local", "bench", "secret_access_key", S3Server.SECRET_KEY)


def measure(kind: str, scratch: Path, jobs: int) -> dict:
    env = {"HOME": str(scratch / "home")}
    server = None
    if kind == "ssh":
        server = SshServer(scratch / "sshd", scratch / "home").start()
    elif kind == "s3":
        server = S3Server().start()
        server.create_bucket()
    try:
        up = clone(ROOT, scratch / "up")
        sh(up, str(BIN / "dvc"), "config", "--local", "cache.dir", str(ROOT / ".dvc" / "cache"))
        configure(up, kind, server, scratch, env)
        t = time.perf_counter()
        sh(up, str(BIN / "dvc"), "push", "-j", str(jobs), env=env)
        push_s = time.perf_counter() - t
        down = clone(ROOT, scratch / "down")
        configure(down, kind, server, scratch, env)
        t = time.perf_counter()
        sh(down, str(BIN / "dvc"), "pull", "-j", str(jobs), env=env)
        pull_s = time.perf_counter() - t
        status = sh(down, str(BIN / "dvc"), "status", env=env)
        assert "up to date" in status, status
        # what went over the wire: the objects the outputs reference (the checkout's cache holds older ones too)
        files = [p for p in (down / ".dvc" / "cache" / "files").rglob("*") if p.is_file()]
        mib = sum(p.stat().st_size for p in files) / 2**20
    finally:
        if kind == "ssh":
            server.kill()
        elif kind == "s3":
            server.stop()
    return {"kind": kind, "files": len(files), "mib": round(mib, 1), "push_s": round(push_s, 2),
            "pull_s": round(pull_s, 2), "push_mib_s": round(mib / push_s, 1), "pull_mib_s": round(mib / pull_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=4, help="dvc push/pull -j")
    ap.add_argument("--repeats", type=int, default=3, help="rounds; each round runs local, ssh, s3 in turn")
    args = ap.parse_args()
    if not (ROOT / ".dvc" / "cache" / "files").is_dir():
        raise SystemExit("no .dvc/cache here: run `make repro` first")
    kinds = ("local", "ssh", "s3")
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for r in range(args.repeats):
        for kind in kinds:      # interleaved, so a slow moment of the machine hits every kind alike
            with tempfile.TemporaryDirectory() as scratch:
                row = measure(kind, Path(scratch), args.jobs)
            base = runs["local"][-1] if kind != "local" else row
            row |= {"round": r, "push_x_local": round(row["push_s"] / base["push_s"], 2),
                    "pull_x_local": round(row["pull_s"] / base["pull_s"], 2)}
            runs[kind].append(row)
            print(json.dumps(row), flush=True)
    for kind in kinds:          # median [min, max] over the rounds
        summary = {"kind": kind, "files": runs[kind][0]["files"], "mib": runs[kind][0]["mib"]}
        for key in ("push_s", "pull_s", "push_mib_s", "pull_mib_s", "push_x_local", "pull_x_local"):
            values = sorted(x[key] for x in runs[kind])
            summary[key] = [statistics.median(values), values[0], values[-1]]
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
