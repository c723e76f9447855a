"""dvc.yaml is the wiring diagram: it agrees with the params, and every path it names exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from jiuzhang.config.loader import load_params
from jiuzhang.config.root import Params

from conftest import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())


def _expand(stages: dict) -> dict:
    """``foreach`` and ``matrix`` stages as DVC expands them (eval@gsm8k, eval_arm@raw-gsm8k, ...), items taken
    from params.yaml."""
    import itertools

    params = yaml.safe_load((ROOT / "params.yaml").read_text())

    def lookup(ref: str):
        node = params
        for part in ref.strip("${}").split("."):
            node = node[part]
        return node

    out = {}
    for name, stage in stages.items():
        if "matrix" in stage:
            axes = {k: lookup(v) for k, v in stage["matrix"].items()}
            body = {k: v for k, v in stage.items() if k != "matrix"}
            for combo in itertools.product(*axes.values()):
                text = yaml.safe_dump(body)
                for axis, value in zip(axes, combo):
                    text = text.replace(f"${{item.{axis}}}", value)
                out[f"{name}@{'-'.join(combo)}"] = yaml.safe_load(text)
            continue
        if "foreach" not in stage:
            out[name] = stage
            continue
        for key in lookup(stage["foreach"]):
            text = yaml.safe_dump(stage["do"]).replace("${key}", key).replace("${item}", key)
            out[f"{name}@{key}"] = yaml.safe_load(text)
    return out


STAGES = _expand(DVC["stages"])


def test_offline_teacher_banks_are_deps_of_the_teacher_stages():
    params = load_params(ROOT / "params.yaml")
    for stage in ("kd_initial", "kd_boost"):
        assert params.teacher.offline.gsm8k_train in STAGES[stage]["deps"]
        assert params.teacher.offline.samples in STAGES[stage]["deps"]


def test_synthesizer_init_folder_is_a_dep_of_both_synthesizer_stages():
    params = load_params(ROOT / "params.yaml")
    for stage in ("synthesizer_initial", "synthesizer"):
        assert params.synthesizer.init.path in STAGES[stage]["deps"]


def test_local_sources_and_benchmarks_are_corpus_deps():
    params = load_params(ROOT / "params.yaml")
    deps = set(STAGES["corpus"]["deps"])
    for source in params.corpus.sources:
        assert source.path in deps, f"add {source.path} to the deps of the corpus stage in dvc.yaml"
    assert params.benchmarks.root in deps


def test_stage_params_are_real_sections_and_deps_exist_or_are_produced():
    produced = {next(iter(o)) if isinstance(o, dict) else o for stage in STAGES.values()
                for key in ("outs", "metrics", "plots") for o in stage.get(key, [])}
    for name, stage in STAGES.items():
        for section in stage["params"]:
            top = section.split(".")[0]
            assert top in Params.model_fields and top not in ("tracking", "cluster"), (name, section)
        # how machines are obtained changes no output: no stage reruns because the cluster changed (issue 24)
        assert "${cluster" not in stage["cmd"] and "launcher" not in stage["cmd"], name
        for dep in stage["deps"]:
            assert dep in produced or (ROOT / dep).exists() or any(o.startswith(dep + "/") for o in produced), \
                f"{name}: dep {dep} does not exist"
        command = re.search(r"\bjiuzhang (\w+)", stage["cmd"]).group(1)
        assert f"stages/{command}.py" in stage["deps"], name


def test_paths_in_cmd_are_declared():
    """Every path a stage command writes is a declared out/metric/plot; every path it reads, a dep."""
    for name, stage in STAGES.items():
        declared_out = {next(iter(o)) if isinstance(o, dict) else o
                        for key in ("outs", "metrics", "plots") for o in stage.get(key, [])}
        args = stage["cmd"].split()
        for flag, value in zip(args, args[1:]):
            if flag in {"--out", "--results", "--headline", "--loss-curve", "--journal"}:
                assert value in declared_out or any(o.startswith(value + "/") for o in declared_out), (name, value)
            elif flag in {"--corpus", "--templates", "--prompts", "--selection", "--kd", "--init", "--synthetic",
                          "--model", "--raw", "--paper", "--template"}:
                assert value in stage["deps"], (name, value)


def test_every_dependency_has_a_true_lower_bound_that_the_lock_satisfies():
    """Issue 13.5: pyproject said transformers>=4.46 while the code needs 4.56 APIs (dtype=, logits_to_keep)."""
    import tomllib
    from packaging.requirements import Requirement
    from packaging.version import Version

    deps = [Requirement(d) for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    locked = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            locked[name.strip().lower().replace("_", "-")] = version.strip()
    for req in deps:
        assert any(s.operator in (">=", "==") for s in req.specifier), f"{req.name} has no lower bound"
        name = req.name.lower().replace("_", "-")
        assert name in locked, f"{req.name} is not pinned in requirements.lock"
        assert req.specifier.contains(locked[name].split("+")[0], prereleases=True), \
            f"requirements.lock pins {name}=={locked[name]}, outside pyproject's {req.specifier}"
    bounds = {r.name: min(Version(s.version) for s in r.specifier if s.operator in (">=", "==")) for r in deps}
    assert bounds["transformers"] >= Version("4.56")


def test_the_project_explains_itself_from_its_own_files():
    """No reference to a design file outside the repository: the method facts are in docs/method.md."""
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = [f for f in files if f.endswith((".py", ".yaml", ".md", ".toml", ".txt")) and f != "tests/test_layout.py"
                 and "DESIGN.md" in (ROOT / f).read_text(encoding="utf-8", errors="replace")]
    assert offenders == []
    assert (ROOT / "docs" / "method.md").is_file()


def test_dvc_metrics_are_the_headlines_and_results_are_plain_outputs():
    """`dvc metrics show` lists only the metrics/ headline files; a stage's full results are outputs kept in git."""
    for name, stage in STAGES.items():
        metrics = [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("metrics", [])]
        assert all(m.startswith("metrics/") for m in metrics), (name, metrics)
        args = stage["cmd"].split()
        if "--results" in args:
            assert args[args.index("--headline") + 1] in metrics, name
    assert "metrics" not in DVC  # no top-level metrics: results/run/ (wall times) is not shown as metrics


def test_dvc_metrics_show_fits_a_terminal():
    """The committed smoke headline files: within 100 columns and ~60 lines (run in the checkout, offline)."""
    shown = subprocess.run([str(Path(sys.executable).parent / "dvc"), "metrics", "show"], cwd=ROOT, check=True,
                           capture_output=True, text=True)
    out = shown.stdout
    assert "failed to load" not in shown.stderr + out, shown.stderr  # every headline file is committed
    lines = out.splitlines()
    assert 10 <= len(lines) <= 60, out
    assert max(map(len, lines)) <= 100, out
    assert "results/" not in out and "run/" not in out
