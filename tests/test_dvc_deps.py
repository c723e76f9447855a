"""DVC must know what each output depends on (issue 13, item 6): every module a stage's command imports
inside the project - its import closure, from ``stages/<name>.py`` and the ``jiuzhang`` entry point,
lazy imports inside functions included - is covered by one of that stage's ``deps`` in ``dvc.yaml``.
Otherwise a code change there would leave stale outputs that ``dvc repro`` silently keeps.

Two kinds of code cannot change an output's bytes and are not required: :data:`NO_OUTPUT_EFFECT` (MLflow
logging), and the typed configs of params sections a stage does not read. Every stage validates the whole
params file, so ``jiuzhang.config.root`` imports every section's module; a change to another section's
schema can only make the file valid or invalid, never change this stage's output. So the closure does not
follow the root's imports of section modules, and instead each stage must list the config modules of the
sections it reads (their defaults are values DVC's ``params:`` does not see)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

# Modules that cannot change any output's bytes: they log to MLflow, nothing else.
NO_OUTPUT_EFFECT = ("src/jiuzhang/tracking/",)
ROOT_CONFIG = ROOT / "src" / "jiuzhang" / "config" / "root.py"
# params section -> the module of its typed config
SECTION_MODULE = {"corpus": "corpus", "prompts": "prompts", "base": "base", "teacher": "teacher", "kd": "kd",
                  "influence": "influence", "synthesizer": "training", "pretrain": "training",
                  "synthesize": "synthesis", "filter": "synthesis", "eval": "evaluation", "benchmarks": "benchmarks",
                  "profile": "root", "plan": "plan"}


def module_file(name: str) -> Path | None:
    """``jiuzhang.x.y`` / ``stages.x`` -> its file in the project, or None when it is not ours."""
    parts = name.split(".")
    base = ROOT / "src" if parts[0] == "jiuzhang" else ROOT if parts[0] == "stages" else None
    if base is None:
        return None
    path = base.joinpath(*parts)
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def imports_of(path: Path) -> set[str]:
    """Every module name ``path`` imports, at top level or inside functions (the stages import lazily)."""
    names: set[str] = set()
    package = ".".join(path.relative_to(ROOT / "src" if "src" in path.parts else ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)  # a submodule imported by name
    return names


def closure(start: list[Path]) -> set[Path]:
    seen: set[Path] = set()
    todo = list(start)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imports_of(path):
            if path == ROOT_CONFIG and name.startswith("jiuzhang.config.") \
                    and name.split(".")[2] not in ("base_model", "errors", "loader", "root"):
                continue  # the root's import of a section schema: validation only (module docstring)
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                f = module_file(".".join(parts[:i]))
                if f is not None and f not in seen:
                    todo.append(f)
    return seen


def stage_commands() -> dict[str, tuple[str, list[str], list[str]]]:
    """DVC stage -> (jiuzhang subcommand, deps, params sections)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, st in stages.items():
        body = st.get("do", st)
        command = re.search(r"\bjiuzhang (\w+)", body["cmd"]).group(1)
        out[name] = (command, body.get("deps", []), body.get("params", []))
    return out


def docstring_only(path: Path) -> bool:
    """A package ``__init__`` that is only a docstring runs no code; one that gains code must be a dep."""
    body = ast.parse(path.read_text()).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return (rel.startswith(NO_OUTPUT_EFFECT) or (path.name == "__init__.py" and docstring_only(path))
            or any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps))


@pytest.mark.parametrize("stage", sorted(stage_commands()))
def test_every_module_a_stage_runs_is_one_of_its_deps(stage):
    command, deps, sections = stage_commands()[stage]
    entry = ROOT / "stages" / f"{command}.py"
    assert entry.is_file(), f"{stage}: dvc.yaml runs `jiuzhang {command}` but stages/{command}.py does not exist"
    assert f"stages/{command}.py" in deps, f"{stage}: its own command stages/{command}.py is not a dep"
    missing = sorted(p.relative_to(ROOT).as_posix() for p in closure([entry, ROOT / "src/jiuzhang/cli.py"])
                     if not covered(p, deps))
    assert not missing, f"{stage}: imports {missing} but dvc.yaml does not list them as deps"
    schemas = sorted({f"src/jiuzhang/config/{SECTION_MODULE[s.split('.')[0]]}.py" for s in sections})
    unlisted = [m for m in schemas if not covered(ROOT / m, deps)]  # the file, or its folder
    assert not unlisted, f"{stage}: reads params {sections} but does not depend on their schemas {unlisted}"


def test_the_closure_finds_lazy_and_relative_imports():
    """The check can fail: the eval stage's closure holds modules it only imports inside functions."""
    names = {p.relative_to(ROOT).as_posix() for p in closure([ROOT / "stages" / "eval.py"])}
    assert {"src/jiuzhang/evaluation/evaluator.py", "src/jiuzhang/synthesis/sampling.py",
            "src/jiuzhang/training/packing.py"} <= names
    assert not covered(ROOT / "src/jiuzhang/training/packing.py", ["src/jiuzhang/synthesis/engine.py"])


def test_every_stage_module_is_some_stage_dep_or_a_utility():
    """``stages/training_common.py`` was nobody's dep: a stage module no DVC stage lists must be a
    command that is not part of the pipeline."""
    listed = {d for _, deps, _ in stage_commands().values() for d in deps}
    utilities = {"compare", "config", "grade", "kd_plan", "plan", "repro", "run_code", "verify_repro", "__init__"}
    for path in (ROOT / "stages").glob("*.py"):
        assert f"stages/{path.name}" in listed or path.stem in utilities, path.name
