"""The data stages on datatrove: dedup quality on a planted set, the offline test-sets index, byte-identical
reruns, a killed run resumed from datatrove's completion markers, and the Ray executor."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jiuzhang.config.loader import validate_params
from jiuzhang.corpus.pipeline import build_corpus
from jiuzhang.dataflow.decontamination import question_hashes
from jiuzhang.dataflow.dedup import lsh_bands

from conftest import ROOT, SHARED, first_gsm8k_question, tiny_params, write_jsonl

WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ro", "si", "tu") for b in ("ba", "de", "fi", "go", "hu",
                                                                                  "ja", "ke", "la", "mo", "ni")]


def shingles(text: str, n: int = 5) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def planted_set(seed: int = 7) -> tuple[list[dict], set[str], dict[str, float]]:
    """40 distinct texts; 10 exact copies (other case, punctuation, spacing), 10 near copies (one word of 120
    changed: Jaccard 0.95), 10 borderline copies (two words: Jaccard 0.84, just above corpus.dedup.threshold 0.8,
    where MinHash LSH is a coin toss), 10 related texts that share half their words with an original (Jaccard
    < 0.5, to be kept). Returns (records, ids that must go, the Jaccard of each planted copy with its original)."""
    rng = random.Random(seed)
    originals = [" ".join(rng.choice(WORDS) for _ in range(120)) for _ in range(40)]
    records = [{"id": f"orig{i}", "text": t} for i, t in enumerate(originals)]
    must_go, planted = set(), {}
    for i in range(10):
        copy = originals[i].upper().replace(" ", " ,  ", 3)
        records.append({"id": f"exact{i}", "text": copy})
        must_go.add(f"exact{i}")
        planted[f"exact{i}"] = jaccard(copy, originals[i])
    for name, first, positions in (("near", 10, (2,)), ("border", 30, (30, 80))):
        for i in range(first, first + 10):
            words = originals[i].split()
            for k in positions:                # a word in the middle changes 5 of ~116 shingles, the 3rd word 3
                words[k] = "changed"
            copy = " ".join(words)
            records.append({"id": f"{name}{i}", "text": copy})
            planted[f"{name}{i}"] = jaccard(copy, originals[i])
            if name == "near":
                must_go.add(f"{name}{i}")
    for i in range(20, 30):
        words = originals[i].split()
        related = " ".join(words[:60] + [rng.choice(WORDS) for _ in range(60)])
        records.append({"id": f"related{i}", "text": related})
        planted[f"related{i}"] = jaccard(related, originals[i])
    return records, must_go, planted


def _build(tmp_path: Path, records: list[dict], **overrides) -> tuple[Path, dict]:
    path = write_jsonl(tmp_path / "planted.jsonl", records)
    raw = tiny_params({"planted": str(path)}, **{"corpus.min_chars": 20, "corpus.decontamination.enabled": False,
                                                 **overrides})
    params = validate_params(raw, "test")
    out = tmp_path / "corpus"
    return out, build_corpus(params.corpus, ROOT, Path(params.benchmarks.root), (), out, cluster=params.cluster)


def _kept_ids(out: Path) -> set[str]:
    return {r["doc_id"] for f in sorted(out.glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()}


def test_planted_duplicates_are_removed_and_distinct_texts_kept(tmp_path):
    records, must_go, planted = planted_set()
    out, metrics = _build(tmp_path, records)
    kept = _kept_ids(out)
    removed = {r["id"] for r in records} - kept
    # Of each planted pair one copy goes: the original or the copy (datatrove keeps one per cluster).
    pairs = {g: ("orig" + re.sub(r"\D", "", g)) for g in planted if not g.startswith("related")}
    caught = {g for g in pairs if g in removed or pairs[g] in removed}
    true_removals = {x for x in removed if x in pairs or x in pairs.values()}
    precision = len(true_removals) / len(removed)
    recall = len(caught & must_go) / len(must_go)
    border = sorted(g for g in pairs if g.startswith("border"))
    print(f"planted: {len(records)} texts, {len(must_go)} duplicates (exact: Jaccard "
          f"{min(planted[g] for g in must_go if g.startswith('exact')):.2f}, near: "
          f"{min(planted[g] for g in must_go if g.startswith('near')):.2f}), related texts kept (Jaccard <= "
          f"{max(v for k, v in planted.items() if k.startswith('related')):.2f}); removed {len(removed)}: "
          f"precision {precision:.3f}, recall {recall:.3f}; borderline copies (Jaccard "
          f"{min(planted[g] for g in border):.2f}) caught {len(caught & set(border))}/10; {metrics['dropped']}")
    assert precision == 1.0 and recall == 1.0
    assert all(pairs[g] in kept or g in kept for g in pairs), "one copy of each pair stays"
    assert {f"related{i}" for i in range(20, 30)} <= kept
    assert metrics["dropped"]["exact_duplicate"] == 10 and metrics["dropped"]["near_duplicate"] >= 10


def test_lsh_bands_follow_datasketch():
    from datasketch.lsh import _optimal_param
    for threshold, perms in ((0.8, 128), (0.7, 64), (0.9, 256)):
        assert lsh_bands(threshold, perms) == _optimal_param(threshold, perms, 0.5, 0.5)


def test_offline_ngram_index_catches_a_benchmark_question(tmp_path):
    q = first_gsm8k_question()
    hashes = set(question_hashes([q], 13).tolist())
    assert len(hashes) >= 5
    records = [{"id": "leak", "text": "Some preface before the copy. " + q + " And a tail after it."},
               {"id": "clean", "text": "A text about fractions that shares no thirteen words with any test question "
                                       "of the benchmarks at all, however long it goes on about halves."}]
    path = write_jsonl(tmp_path / "src.jsonl", records)
    params = validate_params(tiny_params({"src": str(path)}, **{"corpus.min_chars": 20}), "test")
    metrics = build_corpus(params.corpus, ROOT, SHARED / "benchmarks", ("gsm8k",), tmp_path / "out")
    assert metrics["benchmark_overlap_by_benchmark"] == {"gsm8k": 1} and _kept_ids(tmp_path / "out") == {"clean"}


def test_rerun_and_task_count(tmp_path):
    """Byte-identical on rerun; another task count writes other shards of the same kept set."""
    records, must_go, _ = planted_set(seed=11)
    a, _ = _build(tmp_path / "a", records)
    b, _ = _build(tmp_path / "b", records)
    names = sorted(p.name for p in a.glob("part-*.parquet"))
    assert names == sorted(p.name for p in b.glob("part-*.parquet")) == ["part-00000.parquet", "part-00001.parquet"]
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
    c, m = _build(tmp_path / "c", records, **{"corpus.tasks": 4})
    assert m["tasks"] == 4 and len(_kept_ids(c)) == len(_kept_ids(a)) <= len(records) - len(must_go)


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from datatrove.pipeline.dedup import MinhashDedupCluster
    from jiuzhang.config.loader import validate_params
    from jiuzhang.corpus import pipeline
    import yaml
    mode, params_file, out, log = sys.argv[1:5]
    if mode == "kill":   # kill -9 the stage once the dedup buckets are done, in the clustering phase
        MinhashDedupCluster.run = lambda self, *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    original = pipeline.SnippetSource.run
    def logged(self, data=None, rank=0, world_size=1):
        with open(log, "a") as fh:
            fh.write(f"read rank {rank}\\n")
        yield from original(self, data, rank, world_size)
    pipeline.SnippetSource.run = logged
    params = validate_params(yaml.safe_load(Path(params_file).read_text()), params_file)
    pipeline.build_corpus(params.corpus, Path.cwd(), Path(params.benchmarks.root), (), Path(out))
""")


def test_killed_run_resumes_from_completion_markers(tmp_path, write_params):
    records, _, _ = planted_set(seed=5)
    path = write_jsonl(tmp_path / "planted.jsonl", records)
    raw = tiny_params({"planted": str(path)}, **{"corpus.min_chars": 20, "corpus.decontamination.enabled": False})
    params_file = write_params(raw)
    script = tmp_path / "stage.py"
    script.write_text(KILL_SCRIPT)
    log = tmp_path / "reads.log"

    def stage(mode: str, out: Path) -> subprocess.CompletedProcess:
        # Its own process group, as a job under a scheduler: a kill takes the stage's helpers with it (datatrove's
        # process-pool manager would otherwise outlive a killed stage).
        err = tmp_path / f"{mode}.stderr"
        with open(err, "w") as fh:
            proc = subprocess.Popen([sys.executable, str(script), mode, str(params_file), str(out), str(log)],
                                    cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=fh, start_new_session=True)
            try:
                code = proc.wait(timeout=300)
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return subprocess.CompletedProcess(proc.args, code, "", err.read_text())

    killed = stage("kill", tmp_path / "out")
    assert killed.returncode == -9, killed.stderr[-2000:]
    work = next((tmp_path / ".cache" / "datatrove").glob("corpus-*"))
    markers = sorted(p.name for p in (work / "logs" / "read" / "completions").iterdir())
    assert markers == ["00000", "00001"] and not (tmp_path / "out").exists()
    assert sorted(log.read_text().splitlines()) == ["read rank 0", "read rank 1"]
    log.write_text("")
    resumed = stage("resume", tmp_path / "out")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    print(f"after kill -9 in the clustering phase: {len(markers)} read ranks finished; the rerun read "
          f"{len(log.read_text().splitlines())} ranks again")
    assert log.read_text() == "", "finished ranks must not run again"
    assert "read: all 2 tasks were finished by an earlier run (kept)" in resumed.stderr
    assert not work.exists(), "the work folder goes once the outputs are written"
    fresh = stage("plain", tmp_path / "fresh")
    assert fresh.returncode == 0
    for name in ("part-00000.parquet", "part-00001.parquet"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()


def test_ray_executor_writes_the_same_bytes(tmp_path):
    records, _, _ = planted_set(seed=3)
    local, _ = _build(tmp_path / "local", records)
    on_ray, metrics = _build(tmp_path / "ray", records, **{"cluster.data_executor": "ray", "cluster.local_cpus": 2})
    names = sorted(p.name for p in local.glob("part-*.parquet"))
    assert names and names == sorted(p.name for p in on_ray.glob("part-*.parquet"))
    assert all((local / n).read_bytes() == (on_ray / n).read_bytes() for n in names)


def test_tasks_must_be_positive_or_auto():
    with pytest.raises(Exception, match="tasks"):
        validate_params(tiny_params({"x": "x.jsonl"}, **{"corpus.tasks": 0}), "test")
    assert validate_params(tiny_params({"x": "x.jsonl"}, **{"corpus.tasks": "auto"}), "t").corpus.tasks == "auto"


def test_metrics_json_is_plain(tmp_path):
    records, _, _ = planted_set(seed=2)
    _, metrics = _build(tmp_path, records)
    json.dumps(metrics)
    assert metrics["sources"]["planted"]["documents"] == len(records)
