"""The house's shape, checked from the source: no import runs in a circle (between areas of
``src/jiuzhang`` nor between modules, lazy imports inside functions included), and no test module imports
another test module (shared helpers live in ``tests/helpers/`` and ``conftest.py``)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from conftest import ROOT

SRC = ROOT / "src"
TESTS = ROOT / "tests"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The jiuzhang modules ``path`` (module ``name``) imports anywhere in its body; ``from a import b`` counts
    as an import of ``a.b`` when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found.update(t for t in targets if t.startswith("jiuzhang"))
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in SRC.joinpath("jiuzhang").rglob("*.py")}
    return {name: imports_of(path, name, set(files)) for name, path in files.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one node (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def area(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_circle_finder_finds_circles():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_between_modules_or_areas():
    graph = import_graph()
    assert len(graph) > 100 and "jiuzhang.benchmarks.registry" in graph["jiuzhang.evaluation.tasks"]
    assert circles(graph) == [], "modules importing each other, directly or round a circle"
    areas: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        areas[area(module)].update(area(t) for t in targets if area(t) != area(module))
    found = circles(areas)
    arrows = sorted(f"{m} -> {t}" for m, ts in graph.items() for t in ts
                    for group in found if area(m) in group and area(t) in group and area(m) != area(t))
    assert found == [], "areas importing each other:\n" + "\n".join(arrows)


def test_no_test_module_imports_another():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names
                          if n.split(".")[-1].startswith("test_")]
    assert offenders == [], "\n".join(offenders)


def test_every_module_is_type_checked():
    """No mypy override in pyproject.toml silences a module of ours (the backlog of 23 modules that did not
    pass when `make check` adopted mypy is gone): new code is type-checked like the rest."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    silenced = [m for o in config.get("overrides", []) if o.get("ignore_errors") for m in o["module"]
                if m.startswith("jiuzhang")]
    assert silenced == [], f"modules that skip the type check: {silenced}; fix their errors instead"


def test_tests_mirror_the_source_areas():
    """A test module sits in ``tests/<area>/`` for the ``src/jiuzhang/<area>/`` it tests; only the
    project-wide checks (the CLI, dvc.yaml and its DAG, the house itself) sit at the top."""
    areas = {p.name for p in SRC.joinpath("jiuzhang").iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    top = {"test_cli.py", "test_dvc_deps.py", "test_dvc_pipeline.py", "test_dvc_remotes.py", "test_house.py",
           "test_layout.py"}
    misplaced = [str(p.relative_to(ROOT)) for p in TESTS.rglob("test_*.py")
                 if not (p.parent == TESTS and p.name in top) and not (p.parent.parent == TESTS and p.parent.name in areas)]
    assert misplaced == [], f"test modules outside tests/<area>/: {misplaced}"
    assert {p.parent.name for p in TESTS.glob("*/test_*.py")} <= areas
