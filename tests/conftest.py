"""Shared fixtures: a tiny real-text corpus, tiny params, and the project paths.

The fixture corpus is built from lines of the real corpus in ../shared (read at test time, never copied
into the repo) plus a planted GSM8K test question, so decontamination is tested on real data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
BIN = Path(sys.executable).parent
if not (SHARED / "corpus").is_dir():
    pytest.exit(f"{SHARED} not found: run `make test` (it links ../shared) or set JIUZHANG_SHARED", returncode=2)

# Tests must never write to the developer's MLflow store unless they ask for it.
os.environ.setdefault("JIUZHANG_TRACKING", "off")
# Ray clusters the tests start (and the stages they run) bind and advertise 127.0.0.1 only: Ray's switch for
# single-machine clusters, read when ray is first imported (jiuzhang.cluster.session sets it for stages too).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def real_docs(name: str, n: int) -> list[dict]:
    docs = []
    with open(SHARED / "corpus" / name, encoding="utf-8") as fh:
        for line in fh:
            docs.append(json.loads(line))
            if len(docs) >= n:
                break
    return docs


def first_gsm8k_question() -> str:
    with open(SHARED / "benchmarks" / "gsm8k" / "test.jsonl", encoding="utf-8") as fh:
        return json.loads(fh.readline())["question"]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def tiny_params(corpus_files: dict[str, str], **overrides) -> dict:
    """Smoke params shrunk for tests; ``corpus_files`` maps source name -> path (relative or absolute)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["benchmarks"]["root"] = str(SHARED / "benchmarks")
    params["corpus"]["sources"] = [
        {"name": name, "format": "jsonl", "path": path,
         "split_by": "markdown_h2" if "openstax" in name else "document"}
        for name, path in corpus_files.items()
    ]
    params["base"]["tokenizer"]["vocab_size"] = 400
    params["base"]["arch"].update(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=2,
                                  intermediate_size=64, max_position_embeddings=64)
    params["base"]["train"].update(seq_len=32, batch_size=4, steps=6, warmup_steps=1, log_every=2)
    for dotted, value in overrides.items():
        node = params
        *parents, last = dotted.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return params


def make_tiny_model(folder: Path, **arch) -> Path:
    """A tiny random Llama + BPE tokenizer saved as an HF folder (built here, nothing downloaded); ``arch``
    overrides ``base.arch`` fields (vLLM's CPU attention needs head_dim >= 32)."""
    from jiuzhang.base.model import build_model
    from jiuzhang.base.tokenizer import train_tokenizer
    from jiuzhang.config.loader import validate_params

    raw = tiny_params({"x": "unused.jsonl"})
    raw["base"]["arch"].update(arch)
    params = validate_params(raw, "test")
    texts = [f"Problem {i}: what is {i} plus {i + 1}? Solution: it is {2 * i + 1}." for i in range(300)]
    tok = train_tokenizer(texts, 400, 1)
    model = build_model(params.base, len(tok), {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                                                "pad_token_id": tok.pad_token_id})
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture
def fixture_corpus(tmp_path: Path) -> dict[str, str]:
    """Two small real sources; the stack source also holds a planted GSM8K test question."""
    openstax = real_docs("openstax_math.jsonl", 40)
    stack = real_docs("stackmathqa_sample.jsonl", 20)
    stack.append({"id": "planted/gsm8k", "text": "Question: " + first_gsm8k_question() +
                  "\n\nAnswer: I do not know, but here is some more text to make it long enough. " * 3,
                  "source": "planted"})
    stack.append(dict(stack[0], id="dup/exact"))  # an exact duplicate of the first stack doc
    return {
        "openstax": str(write_jsonl(tmp_path / "src" / "openstax.jsonl", openstax)),
        "stack": str(write_jsonl(tmp_path / "src" / "stack.jsonl", stack)),
    }


@pytest.fixture
def write_params(tmp_path: Path):
    def _write(params: dict, name: str = "params.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(params, sort_keys=False))
        return path
    return _write


def run_cli(*args: str, cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the installed ``jiuzhang`` console script as a user would."""
    full_env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **(env or {})}
    res = subprocess.run([str(BIN / "jiuzhang"), *args], cwd=cwd, env=full_env, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError(f"jiuzhang {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def copy_project(dest: Path) -> Path:
    """A throwaway copy of this project (code, params, dvc.yaml, templates) as its own git + DVC repo,
    with ../shared reachable from it exactly as from the real checkout."""
    dest.mkdir(parents=True)
    for item in ("dvc.yaml", "params.yaml", "pyproject.toml", ".dvcignore", "stages", "src", "templates", "configs"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dest / item)
    (dest.parent / "shared").symlink_to(SHARED)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        subprocess.run(cmd, cwd=dest, check=True, env=env)
    shutil.copy2(ROOT / ".dvc" / "config", dest / ".dvc" / "config")  # the shipped default remote
    return dest


# Node death is noticed by health checks: fast ones, so a node removed by a test fails its actors within seconds.
RAY_FAST_HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_timeout_ms": 500,
                   "health_check_failure_threshold": 2}


def two_node_ray_cluster():
    """A Ray cluster of a head node and one more, 1 CPU each, on 127.0.0.1, this process connected to it; for
    a module-scoped fixture (``yield from two_node_ray_cluster()``). Two 1-CPU workers land on different nodes."""
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 80 * 2**20,
                                                      "_system_config": RAY_FAST_HEALTH})
    c.add_node(num_cpus=1, object_store_memory=80 * 2**20)
    c.wait_for_nodes()
    ray.init(address=c.address, include_dashboard=False, logging_level="WARNING")
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


@pytest.fixture(scope="session")
def ran_small_project(tmp_path_factory) -> tuple[Path, str]:
    """The test-size smoke project after one full ``dvc repro`` (MLflow tracking on, SQLite store in the
    project), and that run's output. Tests copy it (``helpers.dvc_project.copy_ran``) and never change it."""
    from helpers.dvc_project import dvc, small_project

    project = small_project(tmp_path_factory.mktemp("ran") / "proj")
    out = dvc(project, "repro", env={"JIUZHANG_TRACKING": "on", "MLFLOW_TRACKING_URI": ""})
    return project, out
