"""A team's MLflow tracking server, as ``make mlflow-server`` starts it: runs in a database, artifacts
proxied by the server, and, for a server other machines reach, the two things MLflow needs for that:

* **allowed hosts**: MLflow answers only requests whose ``Host`` header it knows (a DNS-rebinding guard),
  so ``http://<server>:5000`` fails with "Invalid Host header" until the name users type is listed
  (``--allowed-hosts mlflow.lab.example:5000``).
* **authentication**: ``--auth basic`` runs MLflow's own basic-auth app (users, passwords and per-experiment
  permissions in a database of its own). Its settings file is written here, mode 0600, from the admin
  password in ``MLFLOW_ADMIN_PASSWORD`` (never on a command line), and a Flask secret key is kept in the
  server folder. Clients set ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``.

MLflow serves plain HTTP: for TLS, put a reverse proxy (nginx, Caddy) in front and list its public name
in the allowed hosts (README, "A team's server").

Why a module and not a Makefile line: it checks its inputs (a password for auth, a writable folder) with
clear errors before the server starts, and writes the auth settings without putting the password in a
process list.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import click


def auth_config(folder: Path, admin: str, password: str, default_permission: str) -> Path:
    """Write MLflow's basic-auth settings (0600) into ``folder``; returns the file."""
    path = folder / "basic_auth.ini"
    text = (f"[mlflow]\ndefault_permission = {default_permission}\n"
            f"database_uri = sqlite:///{(folder / 'auth.db').resolve()}\n"
            f"admin_username = {admin}\nadmin_password = {password}\n"
            f"authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)
    return path


def secret_key(folder: Path) -> str:
    """The Flask secret key of the auth app (signs its CSRF tokens), made once and kept (0600)."""
    path = folder / "secret_key"
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def server_command(mlflow: str, host: str, port: int, backend: str, artifacts: str, allowed_hosts: str,
                   auth: str) -> list[str]:
    """The ``mlflow server`` command line for these settings."""
    cmd = [mlflow, "server", "--host", host, "--port", str(port), "--workers", "1", "--backend-store-uri", backend,
           "--serve-artifacts", "--artifacts-destination", artifacts]
    if allowed_hosts:
        cmd += ["--allowed-hosts", allowed_hosts]
    if auth == "basic":
        cmd += ["--app-name", "basic-auth"]
    return cmd


@click.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Server folder: the SQLite database, artifacts and auth settings live here.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--backend", default="", help="Backend store URI; default: SQLite in the server folder.")
@click.option("--artifacts", default="", help="Artifact destination (folder or s3://...); default: <dir>/artifacts.")
@click.option("--allowed-hosts", default="", help="Comma-separated Host headers MLflow answers, e.g. "
              "'mlflow.lab.example:5000,mlflow.lab.example' (needed when users reach it by name).")
@click.option("--auth", type=click.Choice(["none", "basic"]), default="none", show_default=True,
              help="'basic': MLflow's basic-auth app; the admin password comes from MLFLOW_ADMIN_PASSWORD.")
@click.option("--admin", default="admin", show_default=True, help="Admin user name (--auth basic).")
@click.option("--default-permission", type=click.Choice(["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"]),
              default="READ", show_default=True, help="What a signed-in user may do with others' experiments.")
def main(folder: Path, host: str, port: int, backend: str, artifacts: str, allowed_hosts: str, auth: str,
         admin: str, default_permission: str) -> None:
    """Start a team's MLflow server (replaces this process)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    if auth == "basic":
        password = os.environ.get("MLFLOW_ADMIN_PASSWORD", "")
        if len(password) < 12:
            raise click.UsageError("--auth basic needs the admin password in MLFLOW_ADMIN_PASSWORD (12 characters "
                                   "or more), e.g. MLFLOW_ADMIN_PASSWORD=... make mlflow-server MLFLOW_AUTH=basic")
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(auth_config(folder, admin, password, default_permission))
        env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", secret_key(folder))
    elif host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: serving {host}:{port} without authentication: anyone who reaches it can read and "
                   f"delete runs (MLFLOW_AUTH=basic, or a reverse proxy with auth)", err=True)
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    cmd = server_command(mlflow, host, port, backend or f"sqlite:///{folder / 'mlflow.db'}",
                         artifacts or str(folder / "artifacts"), allowed_hosts, auth)
    os.execve(mlflow, cmd, env)


if __name__ == "__main__":
    main()
