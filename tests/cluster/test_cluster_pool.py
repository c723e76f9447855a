"""Work on a Ray cluster of two nodes on this machine (``ray.cluster_utils.Cluster``, loopback only, started
and stopped here): the worker pool's retries and failures, and the synthesize job through it: 1 and 2
workers write the bytes the in-process executor writes, and a node removed mid-run costs a redo, not bytes.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from jiuzhang.cluster.pool import Unit, UnitFailed, run_units  # noqa: E402
from jiuzhang.config.cluster import ClusterConfig  # noqa: E402
from jiuzhang.synthesis.engine import EngineSettings, HFEngine  # noqa: E402
from jiuzhang.synthesis.job import run_job  # noqa: E402

from conftest import make_tiny_model, two_node_ray_cluster  # noqa: E402
from helpers.synthesis import params, pool, shard_bytes  # noqa: E402

# Functions and classes below run inside Ray workers, which cannot import this test module: ship them by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

@pytest.fixture(scope="module")
def cluster():
    yield from two_node_ray_cluster()


def ensure_two_nodes(c: Cluster) -> None:
    if len([n for n in ray.nodes() if n["Alive"]]) < 2:
        c.add_node(num_cpus=1, object_store_memory=80 * 2**20)
        c.wait_for_nodes()


def two_workers(**kw) -> ClusterConfig:
    return ClusterConfig(workers=2, cpus_per_worker=1, schedule_timeout_s=60, **kw)


# --- the pool ----------------------------------------------------------------------------------------------

def square(state, payload, attempt):
    time.sleep(0.3)  # long enough for both workers to start and take units
    return {"value": payload * payload, "node": ray.get_runtime_context().get_node_id(), "attempt": attempt}


def test_every_unit_is_done_once_on_both_nodes_and_committed_by_the_driver(cluster):
    ensure_two_nodes(cluster)
    got: dict[int, dict] = {}
    units = [Unit(i, f"unit {i}", i, size=1) for i in range(12)]
    stats = run_units(units, dict, square, lambda u, r: got.__setitem__(u.index, r), two_workers(), "test")
    assert {i: r["value"] for i, r in got.items()} == {i: i * i for i in range(12)}
    assert stats.units == 12 and stats.retries == 0 and stats.as_dict()["nodes"] == 2
    assert len({r["node"] for r in got.values()}) == 2  # the units ran on both nodes
    assert len({r["attempt"] for r in got.values()}) == 12  # every attempt has its own id


def die_once(marker: str, state, payload, attempt):
    if payload == 3 and not os.path.exists(marker):
        Path(marker).write_text(attempt)
        os._exit(1)  # the worker's process dies mid-unit (a segfault, an OOM kill)
    return payload


def test_a_unit_whose_worker_died_is_redone_on_a_fresh_worker(cluster, tmp_path):
    ensure_two_nodes(cluster)
    got = {}
    units = [Unit(i, f"unit {i}", i) for i in range(6)]
    stats = run_units(units, dict, partial(die_once, str(tmp_path / "died")), lambda u, r: got.__setitem__(u.index, r),
                      two_workers(), "test")
    assert got == {i: i for i in range(6)}
    assert stats.workers_lost == 1 and stats.retries == 1
    assert (tmp_path / "died").read_text().endswith("-3-0")  # attempt 0 of unit 3 died; attempt 1 finished


def always_fails(state, payload, attempt):
    if payload == 2:
        raise ValueError(f"bad row in unit {payload}")
    return payload


def test_a_unit_that_fails_every_retry_fails_the_run_naming_it(cluster):
    units = [Unit(i, f"shard {i} (5 prompts)", i) for i in range(4)]
    with pytest.raises(UnitFailed, match=r"synthesize: shard 2 \(5 prompts\) failed 3 time\(s\) "
                                         r"\(cluster.max_retries=2\); last: ValueError: bad row in unit 2"):
        run_units(units, dict, always_fails, lambda u, r: None, two_workers(max_retries=2), "synthesize")


def test_a_worker_no_node_can_place_fails_after_the_deadline_naming_what_it_asked(cluster):
    cfg = ClusterConfig(workers=1, cpus_per_worker=1, gpus_per_worker=1, schedule_timeout_s=2)
    started = time.monotonic()
    with pytest.raises(UnitFailed, match=r"no worker could be placed within cluster.schedule_timeout_s=2 s; "
                                         r"each asks for \{'CPU': 1.0, 'GPU': 1.0\}"):
        run_units([Unit(0, "unit 0", 0)], dict, square, lambda u, r: None, cfg, "test")
    assert time.monotonic() - started < 30


# --- synthesis on the cluster ------------------------------------------------------------------------------

class SlowEngine(HFEngine):
    """The HF engine, 1.5 s per batch: long enough to remove a node while both workers are mid-shard."""

    def generate(self, requests):
        time.sleep(1.5)
        return super().generate(requests)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("ray-synth") / "model")


def texts(folder: Path) -> dict[str, str]:
    return {r["id"]: r["text"] for f in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()}


def test_one_and_two_ray_workers_write_the_bytes_of_the_in_process_run(cluster, tiny_model, tmp_path):
    ensure_two_nodes(cluster)
    rows, p = pool(40), params()
    make = partial(HFEngine, tiny_model, EngineSettings.of_synthesize(p.synthesize))
    inline = run_job(p.synthesize, rows, tiny_model, tmp_path / "inline", ClusterConfig(executor="inline"), make,
                     progress=False)
    one = run_job(p.synthesize, rows, tiny_model, tmp_path / "one", ClusterConfig(workers=1, cpus_per_worker=1),
                  make, progress=False)
    two = run_job(p.synthesize, rows, tiny_model, tmp_path / "two", two_workers(), make, progress=False)
    assert shard_bytes(tmp_path / "one") == shard_bytes(tmp_path / "inline") == shard_bytes(tmp_path / "two")
    assert len(texts(tmp_path / "two")) == 40 and any(texts(tmp_path / "two").values())
    assert inline["records"] == one["records"] == two["records"] == 40 and two["shards"] == 5
    assert (one["timing"]["executor"], one["timing"]["workers"]) == ("ray", 1)
    assert (two["timing"]["workers"], two["timing"]["nodes"], two["timing"]["retries"]) == (2, 2, 0)
    assert not list((tmp_path / "two").glob("*.partial.jsonl"))


def test_a_node_removed_mid_run_costs_a_redo_of_its_shard_not_a_byte(cluster, tiny_model, tmp_path):
    ensure_two_nodes(cluster)
    rows, p = pool(32), params()  # 4 shards of 8 = 2 batches of 4: 3 s per shard
    run_job(p.synthesize, rows, tiny_model, tmp_path / "reference", ClusterConfig(executor="inline"),
            partial(HFEngine, tiny_model, EngineSettings.of_synthesize(p.synthesize)), progress=False)
    out = tmp_path / "out"
    removed = []

    def remove_when_both_are_mid_shard() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = [f for f in out.glob("*.partial.jsonl") if len(f.read_bytes().splitlines()) >= 2]
            if len(busy) == 2:  # each worker has finished one batch of its shard and works on the next
                node = cluster.list_all_nodes()[1]
                cluster.remove_node(node)
                removed.append(node)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=remove_when_both_are_mid_shard)
    watcher.start()
    made = run_job(p.synthesize, rows, tiny_model, out, two_workers(), partial(SlowEngine, tiny_model, EngineSettings.of_synthesize(p.synthesize)),
                   progress=False)
    watcher.join()
    assert removed, "the node must be removed while both workers are mid-shard"
    timing = made["timing"]
    print(f"node removed mid-run: {timing}")
    assert timing["workers_lost"] >= 1 and timing["retries"] >= 1
    assert timing["resumed_records"] >= 4  # the redone shard started after the lost worker's finished batch
    assert shard_bytes(out) == shard_bytes(tmp_path / "reference") and made["records"] == 32


# --- eval generation and LESS on the cluster ------------------------------------------------------------------

def test_eval_answers_on_two_workers_are_the_in_process_answers(cluster, tiny_model):
    from jiuzhang.config.loader import validate_params
    from jiuzhang.evaluation.evaluator import evaluate
    from jiuzhang.evaluation.suite import build_eval_engine
    from jiuzhang.evaluation.tasks import TASKS, load_rows

    from conftest import ROOT, SHARED, tiny_params

    ensure_two_nodes(cluster)
    raw = tiny_params({"x": "unused.jsonl"})
    raw["eval"].update({"benchmarks": {"gsm8k": ["nl", "tool"]}, "base_benchmarks": [], "arm_benchmarks": [],
                        "limit": 6, "max_new_tokens": 6, "batch_size": 2, "shard_size": 2,
                        "fewshot_dir": str(ROOT / "templates/eval/fewshot")})
    p = validate_params(raw, "test")
    rows = load_rows(SHARED / "benchmarks", "gsm8k", 6)
    engine = build_eval_engine(p, str(tiny_model), None, None, None)
    here, here_metrics = evaluate(TASKS["gsm8k"], rows, ("nl", "tool"), engine, p.eval)
    there, there_metrics = evaluate(TASKS["gsm8k"], rows, ("nl", "tool"), engine, p.eval, cluster=two_workers())
    assert there == here and len(there) == 12
    assert {k: v for k, v in there_metrics.items() if k != "timing"} == {k: v for k, v in here_metrics.items() if k != "timing"}
    assert (there_metrics["timing"]["pool_executor"], there_metrics["timing"]["pool_units"]) == ("ray", 6)


def test_less_on_two_workers_selects_the_bytes_of_one_process(cluster, tmp_path):
    from jiuzhang.influence.selection import select_less

    from helpers.less import less_setup

    ensure_two_nodes(cluster)
    model_dir, p, cands, texts = less_setup(tmp_path)
    one = select_less(p.influence, p.kd, cands, texts, model_dir, tmp_path / "one")
    two = select_less(p.influence, p.kd, cands, texts, model_dir, tmp_path / "two", two_workers())
    assert one["selected"] == two["selected"] == 6
    for name in ("selected.parquet", "scores.parquet"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
