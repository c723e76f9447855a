"""Load a params file (``params.yaml`` or ``configs/paper.yaml``) into the typed :class:`~.root.Params`.

Every problem is reported at once, each as ``file:line: key: message``, before any stage does work::

    from jiuzhang.config.loader import load_params
    params = load_params("params.yaml")
    params.corpus.max_chars
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from jiuzhang.config.errors import ConfigError, Problem, problems_from
from jiuzhang.config.root import Params


def read_yaml(path: str | Path) -> tuple[dict[str, Any], yaml.Node | None]:
    """Parse a YAML file, returning the data and its node tree (for line numbers)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found; pass an existing file with --params")
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the top level must be a mapping of sections, got {type(data).__name__}")
    return data, root


# ``--set KEY=VALUE`` overrides of this process's command (stages/options.py sets them once, before the
# command runs): every params file the command loads gets them, validated like the file itself.
_OVERRIDES: list[tuple[str, str]] = []


def parse_override(text: str) -> tuple[str, str]:
    """``"eval.limit=10"`` -> ``("eval.limit", "10")``; a clear error for anything else."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: write KEY=VALUE with a dotted key, e.g. --set eval.limit=10 or "
                          f"--set corpus.sources.0.max_chars=500")
    return key, value


def set_overrides(pairs: list[str] | tuple[str, ...]) -> None:
    """Use ``pairs`` (``KEY=VALUE`` texts) for every params file loaded from now on in this process."""
    _OVERRIDES[:] = [parse_override(p) for p in pairs]


def active_overrides() -> list[str]:
    """This command's ``--set`` options as given (``KEY=VALUE``), for provenance."""
    return [f"{k}={v}" for k, v in _OVERRIDES]


def apply_overrides(data: dict[str, Any], overrides: list[tuple[str, str]]) -> dict[str, Any]:
    """``data`` with each dotted key set to its value read as YAML (``10`` an int, ``[a, b]`` a list,
    ``null``); list items by index (``corpus.sources.0.max_chars``). A missing mapping on the way is made
    (validation then names any key the section does not have)."""
    for key, raw in overrides:
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}={raw}: the value is not valid YAML ({getattr(exc, 'problem', exc)}); "
                              f"quote strings with special characters") from None
        node: Any = data
        parts = key.split(".")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[:depth + 1])
            step: str | int = part
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"--set {key}={raw}: {where}: a list of {len(node)} item(s) needs an index "
                                      f"0..{len(node) - 1}")
                step = int(part)
            elif not isinstance(node, dict):
                raise ConfigError(f"--set {key}={raw}: {'.'.join(parts[:depth])} is a value, not a section")
            if last:
                node[step] = value
            else:
                if isinstance(node, dict) and node.get(step) is None:
                    node[step] = {}
                node = node[step]
    return data


def validate_params(data: dict[str, Any], path: str, root: yaml.Node | None = None,
                    overrides: list[tuple[str, str]] | None = None) -> Params:
    """Params from raw data read from ``path``, or ParamsError listing every problem; a problem under a ``--set`` override is blamed on the override, not on a line of the file."""
    try:
        params = Params.model_validate(data)
    except ValidationError as err:
        problems = problems_from(err, Params, root)
        if overrides:  # a problem under an overridden key is the override's, not the file line's
            problems = [_from_override(p, overrides) for p in problems]
        raise ConfigError(_render(path, problems)) from None
    return params


def _from_override(problem: Problem, overrides: list[tuple[str, str]]) -> Problem:
    dotted = problem.key.replace("[", ".").replace("]", "")
    for key, raw in overrides:
        if dotted == key or dotted.startswith(key + "."):
            return Problem(problem.key, None, f"{problem.message} (from --set {key}={raw})")
    return problem


def load_params(path: str | Path, overrides: list[str] | None = None) -> Params:
    """Read and validate a params file; raise :class:`ConfigError` listing every problem. ``overrides``
    (``KEY=VALUE`` texts; default: this command's ``--set`` options) replace values of the file."""
    data, root = read_yaml(path)
    pairs = [parse_override(o) for o in overrides] if overrides is not None else list(_OVERRIDES)
    return validate_params(apply_overrides(data, pairs), str(path), root, pairs)


def _render(path: str, problems: list[Problem]) -> str:
    head = f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''} in the params file:"
    return "\n".join([head] + ["  " + p.render(path) for p in problems])
