"""MLflow tracking against a real ``mlflow server`` on 127.0.0.1, and the default in-project SQLite store."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from jiuzhang.config.loader import validate_params
from jiuzhang.corpus.pipeline import build_corpus
from jiuzhang.tracking.mlflow_run import project_root_for, resolve_tracking

from conftest import BIN, ROOT, run_cli, tiny_params

TRACKING_ON = {"JIUZHANG_TRACKING": "on"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(root: Path, env: dict | None = None, **make_vars: str):
    """`make mlflow-server` with ``make_vars`` in ``root`` on a free loopback port: (url, process, log)."""
    port = _free_port()
    log = open(root / "server.log", "w")
    extra = [f"{k}={v.format(port=port)}" for k, v in make_vars.items()]
    proc = subprocess.Popen(["make", "--no-print-directory", "-s", "-C", str(ROOT), "mlflow-server",
                             f"MLFLOW_PORT={port}", f"MLFLOW_DIR={root}", *extra],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"mlflow server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    return url, proc, log


def _stop_server(proc, log) -> None:
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server (SQLite backend, proxied artifacts) on loopback, stopped after:
    the README's one command for a team (`make mlflow-server`)."""
    url, proc, log = _start_server(tmp_path_factory.mktemp("mlflow-server"))
    yield url
    _stop_server(proc, log)


@pytest.fixture
def corpus_dir(tmp_path, fixture_corpus) -> Path:
    params = validate_params(tiny_params(fixture_corpus), "test")
    build_corpus(params.corpus, ROOT, Path(params.benchmarks.root), ("gsm8k",), tmp_path / "corpus")
    return tmp_path / "corpus"


def _run_prompts(params_file: Path, corpus: Path, out: Path, env: dict, cwd: Path = ROOT, templates=None, check=True):
    return run_cli("prompts", "--params", str(params_file), "--corpus", str(corpus), "--templates",
                   str(templates or ROOT / "templates" / "prompts"), "--out", str(out),
                   "--metrics", str(out.parent / f"{out.name}.json"), cwd=cwd, env=env, check=check)


def test_stage_runs_grouped_per_configuration_on_a_server(tmp_path, fixture_corpus, corpus_dir, write_params,
                                                          mlflow_server):
    env = {**TRACKING_ON, "MLFLOW_TRACKING_URI": mlflow_server}
    exp_name = f"test-{tmp_path.name}"
    a = write_params(tiny_params(fixture_corpus, **{"tracking.experiment": exp_name, "prompts.seed": 1}), "a.yaml")
    b = write_params(tiny_params(fixture_corpus, **{"tracking.experiment": exp_name, "prompts.seed": 2}), "b.yaml")
    _run_prompts(a, corpus_dir, tmp_path / "pa", env)
    _run_prompts(a, corpus_dir, tmp_path / "pa2", env)  # same configuration again: same parent
    _run_prompts(b, corpus_dir, tmp_path / "pb", env)

    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name(exp_name)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("jiuzhang.role") == "pipeline"]
    stages = [r for r in runs if r.data.tags.get("jiuzhang.role") == "stage"]
    assert len(parents) == 2 and len(stages) == 3
    by_parent = {p.info.run_id: [s for s in stages if s.data.tags["mlflow.parentRunId"] == p.info.run_id]
                 for p in parents}
    assert sorted(len(v) for v in by_parent.values()) == [1, 2]
    for parent in parents:
        assert parent.data.params["prompts.seed"] in {"1", "2"}
        assert parent.data.tags["jiuzhang.profile"] == "smoke"
        # the stage's results are on the parent too, so the UI's Compare of two parents shows them
        assert parent.data.metrics["prompts.prompts"] > 0 and "prompts.run.stage_seconds" not in parent.data.metrics
    run = stages[0]
    assert run.info.status == "FINISHED" and run.data.tags["jiuzhang.stage"] == "prompts"
    assert run.data.params["prompts.tool_share"] == "0.25"
    assert run.data.metrics["prompts"] > 0 and run.data.metrics["run.stage_seconds"] > 0
    prov_path = client.download_artifacts(run.info.run_id, "provenance.json", str(tmp_path / "dl"))
    import json
    prov = json.loads(Path(prov_path).read_text())
    assert {"git", "hardware", "packages", "seeds", "config"} <= set(prov)
    assert prov["hardware"]["cpu_count"] >= 1 and prov["packages"]["mlflow"] == "3.17.2"


def test_team_server_keeps_artifacts_behind_the_server_for_every_clone(tmp_path, fixture_corpus, corpus_dir,
                                                                      write_params, mlflow_server):
    """Two users' clones in different folders log to one server: runs land under one parent, artifacts are
    stored by the server (mlflow-artifacts:/ URIs, no path of either machine) and each clone reads the
    other's artifacts with the same bytes; neither folder gets a local artifact store."""
    import json

    env = {**TRACKING_ON, "MLFLOW_TRACKING_URI": mlflow_server}
    exp_name = f"team-{tmp_path.name}"
    params = write_params(tiny_params(fixture_corpus, **{"tracking.experiment": exp_name}))
    clones = {who: tmp_path / who / "jiuzhang" for who in ("alice", "bob")}
    for who, folder in clones.items():
        folder.mkdir(parents=True)
        _run_prompts(params, corpus_dir, folder / "data" / "prompts", env, cwd=folder)
    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name(exp_name)
    assert exp.artifact_location.startswith("mlflow-artifacts:/")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`jiuzhang.role` = 'stage'")
    parents = {r.data.tags["mlflow.parentRunId"] for r in runs}
    assert len(runs) == 2 and len(parents) == 1                      # same configuration: one parent
    assert all(r.info.artifact_uri.startswith("mlflow-artifacts:/") for r in runs)
    assert all(r.data.metrics["prompts"] > 0 for r in runs)
    for folder in clones.values():
        assert not (folder / "mlartifacts").exists() and not (folder / "mlflow.db").exists()
    # each clone downloads every run's provenance through the server, from its own folder
    seen = {}
    for who, folder in clones.items():
        for r in runs:
            res = subprocess.run([str(BIN / "mlflow"), "artifacts", "download", "--run-id", r.info.run_id,
                                  "--artifact-path", "provenance.json", "--dst-path", str(folder / "dl" / r.info.run_id)],
                                 cwd=folder, env={**os.environ, **env}, capture_output=True, text=True)
            assert res.returncode == 0, res.stderr[-2000:]
            seen[who, r.info.run_id] = (folder / "dl" / r.info.run_id / "provenance.json").read_bytes()
    for r in runs:
        assert seen["alice", r.info.run_id] == seen["bob", r.info.run_id]
        assert json.loads(seen["alice", r.info.run_id])["config"]


def test_failed_stage_is_marked_failed(tmp_path, fixture_corpus, corpus_dir, write_params, mlflow_server):
    env = {**TRACKING_ON, "MLFLOW_TRACKING_URI": mlflow_server}
    exp_name = f"fail-{tmp_path.name}"
    params = write_params(tiny_params(fixture_corpus, **{"tracking.experiment": exp_name}))
    bad_templates = tmp_path / "templates"
    bad_templates.mkdir()
    res = _run_prompts(params, corpus_dir, tmp_path / "p", env, templates=bad_templates, check=False)
    assert res.returncode == 2 and "missing template" in res.stderr
    client = MlflowClient(tracking_uri=mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name(exp_name).experiment_id],
                              filter_string="tags.`jiuzhang.role` = 'stage'")
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "missing template" in runs[0].data.tags["jiuzhang.error"]


def test_default_store_is_sqlite_in_the_project_even_from_a_dvc_temp_workspace(tmp_path, fixture_corpus,
                                                                               corpus_dir, write_params):
    project = tmp_path / "proj"
    workspace = project / ".dvc" / "tmp" / "exps" / "tmpabc123"
    workspace.mkdir(parents=True)
    assert project_root_for(workspace) == project.resolve()
    target = resolve_tracking(None, workspace, "mlflow.db")
    assert target.uri == f"sqlite:///{project.resolve() / 'mlflow.db'}"
    assert resolve_tracking("http://127.0.0.1:1", workspace, "mlflow.db").uri == "http://127.0.0.1:1"

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | TRACKING_ON
    params = write_params(tiny_params(fixture_corpus))
    _run_prompts(params, corpus_dir, tmp_path / "p", env | {"MLFLOW_TRACKING_URI": ""}, cwd=workspace)
    assert (project / "mlflow.db").is_file() and not (workspace / "mlflow.db").exists()
    client = MlflowClient(tracking_uri=target.uri)
    exp = client.get_experiment_by_name("jiuzhang")
    assert exp.artifact_location == (project.resolve() / "mlartifacts").as_uri()
    assert len(client.search_runs([exp.experiment_id])) == 2  # parent + stage


def test_a_moved_project_still_finds_its_artifacts_and_logs_new_ones_in_place(tmp_path, fixture_corpus,
                                                                             corpus_dir, write_params):
    """MLflow keeps absolute artifact paths: after `mv proj moved`, the store in `moved` would point at the
    old folder (unreadable artifacts, new ones written elsewhere). The first stage run after the move
    re-points them; old runs' artifacts are then listed from the new place."""
    import shutil

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | TRACKING_ON | {"MLFLOW_TRACKING_URI": ""}
    project = tmp_path / "proj"
    project.mkdir()
    params = write_params(tiny_params(fixture_corpus))
    _run_prompts(params, corpus_dir, tmp_path / "p1", env, cwd=project)
    moved = tmp_path / "moved"
    shutil.move(str(project), str(moved))
    client = MlflowClient(tracking_uri=f"sqlite:///{moved / 'mlflow.db'}")
    exp = client.get_experiment_by_name("jiuzhang")
    first = [r for r in client.search_runs([exp.experiment_id]) if r.info.run_name == "prompts"][0]
    assert first.info.artifact_uri.startswith(project.resolve().as_uri())  # stale: the folder is gone
    res = _run_prompts(params, corpus_dir, tmp_path / "p2", env, cwd=moved)
    assert "the project moved; pointed" in res.stderr
    client = MlflowClient(tracking_uri=f"sqlite:///{moved / 'mlflow.db'}")
    exp = client.get_experiment_by_name("jiuzhang")
    assert exp.artifact_location == (moved.resolve() / "mlartifacts").as_uri()
    runs = [r for r in client.search_runs([exp.experiment_id]) if r.info.run_name == "prompts"]
    assert len(runs) == 2 and all(r.info.artifact_uri.startswith(moved.resolve().as_uri()) for r in runs)
    for r in runs:  # both the old run's and the new run's provenance are readable where the project is now
        assert "provenance.json" in [a.path for a in client.list_artifacts(r.info.run_id)]
    assert not project.exists()


def test_tracking_can_be_switched_off(tmp_path, fixture_corpus, corpus_dir, write_params):
    params = write_params(tiny_params(fixture_corpus, **{"tracking.enabled": False}))
    _run_prompts(params, corpus_dir, tmp_path / "p", TRACKING_ON | {"MLFLOW_TRACKING_URI": ""}, cwd=tmp_path)
    assert not (tmp_path / "mlflow.db").exists()
    assert (tmp_path / "p.json").is_file()  # the stage itself ran and wrote its metrics


def test_compare_shows_two_configurations_side_by_side(tmp_path, fixture_corpus, corpus_dir, write_params,
                                                       mlflow_server):
    env = {**TRACKING_ON, "MLFLOW_TRACKING_URI": mlflow_server}
    exp_name = f"cmp-{tmp_path.name}"
    a = write_params(tiny_params(fixture_corpus, **{"tracking.experiment": exp_name, "prompts.seed": 1}), "a.yaml")
    b = write_params(tiny_params(fixture_corpus, **{"tracking.experiment": exp_name, "prompts.seed": 2,
                                                    "prompts.tool_share": 0.5}), "b.yaml")
    _run_prompts(a, corpus_dir, tmp_path / "pa", env)
    # the variant as `dvc exp run` starts it: DVC_EXP_NAME names the experiment
    _run_prompts(b, corpus_dir, tmp_path / "pb", env | {"DVC_EXP_NAME": "half-tool"})

    out = run_cli("compare", "--params", str(a), cwd=tmp_path, env=env).stdout
    lines = out.splitlines()
    assert lines[0].startswith("A = pipeline smoke") and lines[1].startswith("B = pipeline smoke")
    assert "(half-tool)" in lines[1]
    seed = next(line for line in lines if line.strip().startswith("prompts.seed"))
    assert seed.split()[1:] == ["1", "2"]
    share = next(line for line in lines if line.strip().startswith("prompts.tool_share"))
    assert share.split()[1:] == ["0.25", "0.5"]
    tool = next(line for line in lines if line.strip().startswith("prompts: by_level.tool"))
    a_tool, b_tool = (float(x) for x in tool.split()[-2:])
    assert b_tool > a_tool  # twice the tool share -> more tool prompts
    assert "run.stage_seconds" not in out
    assert "run.stage_seconds" in run_cli("compare", "--params", str(a), "--all", cwd=tmp_path, env=env).stdout

    # select by experiment name and by pipeline-id prefix; the variant's parent carries the name
    client = MlflowClient(tracking_uri=mlflow_server)
    parents = client.search_runs([client.get_experiment_by_name(exp_name).experiment_id],
                                 filter_string="tags.`jiuzhang.role` = 'pipeline' and tags.`dvc.exp_name` = 'half-tool'")
    assert len(parents) == 1 and parents[0].info.run_name.endswith("(half-tool)")
    pid_b = parents[0].data.tags["jiuzhang.pipeline_id"]
    picked = run_cli("compare", "--params", str(a), "half-tool", pid_b[:6], cwd=tmp_path, env=env).stdout
    assert picked.count(pid_b) == 2
    bad = run_cli("compare", "--params", str(a), "no-such-run", cwd=tmp_path, env=env, check=False)
    assert bad.returncode == 2 and "'no-such-run' matches no pipeline" in bad.stderr and "half-tool" in bad.stderr


def test_compare_cells_carry_their_intervals():
    """Issue 14: the ablation is read with intervals: an accuracy gets its Wilson interval from correct and
    total, a held-out loss its logged bootstrap interval; the bounds are not rows of their own."""
    from jiuzhang.tracking.compare import Pipeline, metric_table

    def pipe(pid, correct, nll):
        metrics = {"nl.accuracy": correct / 8, "nl.correct": correct, "nl.total": 8, "loss.mean_nll": nll,
                   "loss.ci95.0": nll - 0.2, "loss.ci95.1": nll + 0.2, "items": 8}
        return Pipeline(pid, f"pipeline smoke {pid}", {}, {"eval@gsm8k": metrics}, set(), 0)

    rows = dict(metric_table([pipe("a", 0, 7.0), pipe("b", 4, 6.5)]))
    assert rows["eval@gsm8k: nl.accuracy"] == ["0 [0, 0.324]", "0.5 [0.215, 0.785]"]
    assert rows["eval@gsm8k: loss.mean_nll"] == ["7 [6.8, 7.2]", "6.5 [6.3, 6.7]"]
    assert not any(".ci95." in k for k in rows) and "eval@gsm8k: items" not in rows  # equal: not shown


def _get(url: str, host: str | None = None, auth: tuple[str, str] | None = None) -> tuple[int, str]:
    import base64
    import urllib.error

    req = urllib.request.Request(url)
    if host:
        req.add_header("Host", host)  # the name users type; the connection still goes to 127.0.0.1
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_team_server_by_name_with_basic_auth(tmp_path, fixture_corpus, corpus_dir, write_params, mlflow_server):
    """Issue 22.12: MLflow refuses requests addressed by a name it was not told (the README's
    http://<server>:5000 failed), and the team server had no authentication. `make mlflow-server
    MLFLOW_ALLOWED_HOSTS=... MLFLOW_AUTH=basic` answers that name, refuses others, and asks for a password;
    a user created by the admin logs a stage run with MLFLOW_TRACKING_USERNAME/PASSWORD."""
    from mlflow.server import get_app_client

    search = "/api/2.0/mlflow/experiments/search?max_results=1"
    port = mlflow_server.rsplit(":", 1)[1]
    # the plain server: a request by name is refused (what users met)
    assert _get(mlflow_server + search, host=f"mlflow.lab.test:{port}")[0] == 403

    password = "admin-" + os.urandom(8).hex()
    root = tmp_path / "secured"
    root.mkdir()
    url, proc, log = _start_server(root, {"MLFLOW_ADMIN_PASSWORD": password}, MLFLOW_AUTH="basic",
                                   MLFLOW_ALLOWED_HOSTS="mlflow.lab.test:{port},127.0.0.1:{port}")
    try:
        sport = url.rsplit(":", 1)[1]
        admin = ("admin", password)
        assert _get(url + search)[0] == 401                                   # no password: refused
        assert _get(url + search, auth=("admin", "wrong-password"))[0] == 401
        assert _get(url + search, auth=admin)[0] == 200
        assert _get(url + search, host=f"mlflow.lab.test:{sport}", auth=admin)[0] == 200   # by its name
        status, body = _get(url + search, host=f"elsewhere.test:{sport}", auth=admin)
        assert status == 403 and "Invalid Host header" in body
        # the password is in a 0600 file, never on a command line
        ini = root / "basic_auth.ini"
        assert ini.stat().st_mode & 0o777 == 0o600
        cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in os.listdir("/proc") if pid.isdigit()
                    and Path(f"/proc/{pid}/cmdline").exists()]
        assert not any(password.encode() in c for c in cmdlines)
        # the admin creates a user; that user's stage run is tracked
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = admin
        try:
            get_app_client("basic-auth", tracking_uri=url).create_user("alice", "alice-password-1234")
        finally:
            del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
        env = {**TRACKING_ON, "MLFLOW_TRACKING_URI": url, "MLFLOW_TRACKING_USERNAME": "alice",
               "MLFLOW_TRACKING_PASSWORD": "alice-password-1234"}
        exp_name = f"secured-{tmp_path.name}"
        params = write_params(tiny_params(fixture_corpus, **{"tracking.experiment": exp_name}))
        _run_prompts(params, corpus_dir, tmp_path / "data" / "prompts", env)
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = "alice", "alice-password-1234"
        try:
            client = MlflowClient(tracking_uri=url)
            exp = client.get_experiment_by_name(exp_name)
            runs = client.search_runs([exp.experiment_id], filter_string="tags.`jiuzhang.role` = 'stage'")
        finally:
            del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
        assert len(runs) == 1 and runs[0].data.metrics["prompts"] > 0
    finally:
        _stop_server(proc, log)


def test_auth_without_a_password_is_a_clear_error(tmp_path):
    res = subprocess.run(["make", "--no-print-directory", "-s", "-C", str(ROOT), "mlflow-server",
                          f"MLFLOW_DIR={tmp_path}", "MLFLOW_AUTH=basic", "MLFLOW_PORT=1"],
                         env={k: v for k, v in os.environ.items() if k != "MLFLOW_ADMIN_PASSWORD"},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "MLFLOW_ADMIN_PASSWORD" in res.stderr
