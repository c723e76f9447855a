"""`jiuzhang repro`: dvc's output passes through live and every stage it runs gets its wall time."""

from __future__ import annotations

import io
import json
import os
import stat

from jiuzhang.pipeline.timing import record, timed_repro

from conftest import run_cli

FAKE_DVC = """#!/bin/sh
echo "Stage 'corpus' didn't change, skipping"
echo "Running stage 'base':"
echo "> jiuzhang base ..."
sleep 0.3
echo "Running stage 'eval@gsm8k':"
sleep 0.1
echo "args: $*"
exit ${FAKE_RC:-0}
"""


def fake_dvc(tmp_path):
    path = tmp_path / "bin" / "dvc"
    path.parent.mkdir()
    path.write_text(FAKE_DVC)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_stage_times_from_dvc_output(tmp_path):
    echo = io.StringIO()
    times = timed_repro(["--force"], tmp_path, str(fake_dvc(tmp_path)), echo=echo)
    assert "> jiuzhang base ..." in echo.getvalue() and "args: repro --force" in echo.getvalue()
    assert [name for name, _ in times.ran] == ["base", "eval@gsm8k"] and times.skipped == ["corpus"]
    base, ev = (s for _, s in times.ran)
    assert 0.25 < base < 2.0 and 0.05 < ev < 2.0 and times.total_s >= base + ev
    table = times.table()
    assert "unchanged, skipped: corpus" in table and "total (dvc repro)" in table
    record(times, tmp_path / "run" / "repro.json")
    assert json.loads((tmp_path / "run" / "repro.json").read_text())["stages_run"] == 2


def test_cli_keeps_dvc_exit_status_and_a_noop_keeps_old_figures(tmp_path):
    dvc = fake_dvc(tmp_path)
    env = {"PATH": f"{dvc.parent}:{os.environ['PATH']}"}
    out = tmp_path / "repro.json"
    res = run_cli("repro", "--times-out", str(out), cwd=tmp_path, env=env | {"FAKE_RC": "3"}, check=False)
    assert res.returncode == 3 and "eval@gsm8k" in res.stdout
    assert json.loads(out.read_text())["stage_s"].keys() == {"base", "eval@gsm8k"}
    noop = tmp_path / "bin" / "dvc"
    noop.write_text("#!/bin/sh\necho \"Stage 'corpus' didn't change, skipping\"\n")
    run_cli("repro", "--times-out", str(out), cwd=tmp_path, env=env)
    assert json.loads(out.read_text())["stages_run"] == 2  # the no-op run did not overwrite the figures


def test_the_stages_of_one_run_get_one_ray_cluster(tmp_path):
    """With the default `cluster.address: ''`, `jiuzhang repro` hands dvc (so every stage) the address of one
    loopback Ray cluster, and stops it afterwards."""
    import shutil
    import socket

    from conftest import BIN, ROOT

    dvc = fake_dvc(tmp_path)
    dvc.write_text('#!/bin/sh\necho "Running stage \'eval@gsm8k\':"\necho "RAY_ADDRESS=$RAY_ADDRESS"\n')
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    env = {"PATH": f"{dvc.parent}:{BIN}:{os.environ['PATH']}"}  # ray from the venv
    res = run_cli("repro", "--times-out", str(tmp_path / "repro.json"), cwd=tmp_path, env=env)
    address = next(line.split("=", 1)[1] for line in res.stdout.splitlines() if line.startswith("RAY_ADDRESS="))
    assert address.startswith("127.0.0.1:") and f"one local cluster at {address}" in res.stdout
    host, port = address.split(":")
    with socket.socket() as s:
        assert s.connect_ex((host, int(port))) != 0  # stopped with the run
