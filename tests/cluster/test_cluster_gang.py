"""The training gang (issue 24): one torchrun agent per node, started on a Ray cluster of two nodes on this
machine (loopback, started and stopped here), trains the weights one process trains with the same global
batch; a failing node fails the gang with its log, and nothing is left running."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("ray")

from jiuzhang.cluster.gang import GangFailed, run_gang  # noqa: E402
from jiuzhang.config.cluster import ClusterConfig  # noqa: E402

from conftest import make_tiny_model, two_node_ray_cluster  # noqa: E402
from helpers.torchrun import torchrun_workers  # noqa: E402

WORKER = Path(__file__).resolve().parents[1] / "ds_worker.py"
GANG = ClusterConfig(training_cpus_per_node=1, schedule_timeout_s=60)


@pytest.fixture(scope="module")
def cluster():
    yield from two_node_ray_cluster()


def metrics(results: list[dict]) -> list[dict]:
    return [json.loads(line[len("METRICS "):]) for r in results for line in r["tail"].splitlines()
            if line.startswith("METRICS ")]


def test_a_gang_of_two_nodes_trains_the_weights_of_one_process(cluster, tmp_path):
    from safetensors.torch import load_file

    model = make_tiny_model(tmp_path / "model")
    one = torchrun_workers([str(model), str(tmp_path / "one"), str(tmp_path / "ck1"), "0", "-", "torch"], 1, 29651)
    results = run_gang([str(WORKER), str(model), str(tmp_path / "two"), str(tmp_path / "ck2"), "0", "-", "torch"],
                       nodes=2, per_node=1, cfg=GANG, what="test")
    assert [r["code"] for r in results] == [0, 0]
    two = metrics(results)
    assert len(two) == 2 and two[0] == two[1]  # both ranks, one per node, log the same global-batch loss
    assert [round(x["loss"], 5) for x in two[0]["loss_curve"]] == [round(x["loss"], 5) for x in one[0]["loss_curve"]]
    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_a_failing_node_fails_the_gang_naming_it_and_leaves_nothing_running(cluster, tmp_path):
    script = tmp_path / "fails_on_node_1.py"
    script.write_text("import os, sys, time\n"
                      "if os.environ['GROUP_RANK'] == '1':\n"
                      "    print('node 1 cannot read its shard', flush=True)\n"
                      "    sys.exit(3)\n"
                      "time.sleep(600)\n")  # node 0 would wait forever: the gang must stop it
    with pytest.raises(GangFailed, match=r"test: the agent of node rank 1 \(127\.0\.0\.1\) exited with code 1; "
                                         r"the other node\(s\) were stopped\. Its last lines:\n(.|\n)*"
                                         r"node 1 cannot read its shard"):
        run_gang([str(script)], nodes=2, per_node=1, cfg=GANG, what="test")
    left = subprocess.run(["pgrep", "-f", str(script)], capture_output=True, text=True).stdout.split()
    assert left == [], "no training process outlives a failed gang"


def test_a_gang_the_cluster_cannot_place_is_refused_with_what_it_asked(cluster):
    with pytest.raises(GangFailed, match=r"cannot place 3 node\(s\) with \{'CPU': 1\.0\} each"):
        run_gang(["x.py"], nodes=3, per_node=1, cfg=GANG.model_copy(update={"schedule_timeout_s": 2}), what="test")


def test_the_training_stage_starts_its_own_gang_and_writes_what_one_process_writes(cluster, tmp_path, write_params):
    """`jiuzhang synthesizer_initial` with synthesizer.train.nodes: 2, run as dvc repro runs it: the stage
    joins the Ray cluster (cluster.address), starts one torchrun agent per node, and the model its ranks
    write is the one a single process writes with the same global batch."""
    from safetensors.torch import load_file

    from conftest import run_cli, tiny_params
    from helpers.kd import write_kd_set

    model_dir = make_tiny_model(tmp_path / "model")
    write_kd_set(tmp_path / "kd", 24)
    params = tiny_params({"x": "unused.jsonl"})
    params["synthesizer"]["init"] = {"path": str(model_dir)}
    params["synthesizer"]["train"].update(max_length=64, micro_batch=2, global_batch=4, epochs=1, log_every=1,
                                          lr=0.003, threads=1)
    one = write_params(params, "one.yaml")
    params["synthesizer"]["train"].update(nodes=2)
    params["cluster"].update(address=cluster.address, training_cpus_per_node=1)
    gang = write_params(params, "gang.yaml")

    def args(params_file, out: str) -> list[str]:
        return ["synthesizer_initial", "--params", str(params_file), "--kd", str(tmp_path / "kd"), "--out",
                str(tmp_path / out), "--checkpoints", str(tmp_path / f"ck_{out}"), "--metrics",
                str(tmp_path / f"{out}.json")]

    run_cli(*args(one, "one"), cwd=tmp_path)
    res = run_cli(*args(gang, "gang"), cwd=tmp_path)
    assert "starting 2 node(s) x 1 process(es) on the Ray cluster" in res.stderr
    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "gang" / "model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    assert json.loads((tmp_path / "gang.json").read_text())["steps"] == json.loads((tmp_path / "one.json").read_text())["steps"]
