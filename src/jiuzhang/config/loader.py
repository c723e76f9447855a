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


def validate_params(data: dict[str, Any], path: str, root: yaml.Node | None = None) -> Params:
    try:
        params = Params.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_render(path, problems_from(err, Params, root))) from None
    return params


def load_params(path: str | Path) -> Params:
    """Read and validate a params file; raise :class:`ConfigError` listing every problem."""
    data, root = read_yaml(path)
    return validate_params(data, str(path), root)


def _render(path: str, problems: list[Problem]) -> str:
    head = f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''} in the params file:"
    return "\n".join([head] + ["  " + p.render(path) for p in problems])
