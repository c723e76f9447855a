"""Configuration errors that name the file, line and key, and say how to fix them."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from jiuzhang.errors import UserError


class ConfigError(UserError, ValueError):
    """A params file is invalid. The message lists every problem as ``file:line: key: what and fix``."""


@dataclass(frozen=True)
class Problem:
    """One problem in a params file: the dotted key, its line when known, and what is wrong."""
    key: str
    line: int | None
    message: str

    def render(self, path: str) -> str:
        """``file:line: key: message`` (no line when unknown), as the CLI prints it."""
        where = f"{path}:{self.line}" if self.line else path
        return f"{where}: {self.key}: {self.message}"


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (or of its deepest existing parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = None
            for key_node, value_node in node.value:
                if key_node.value == part:
                    found = (key_node, value_node)
                    break
            if found is None:
                return line
            line = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _allowed_keys(model: type, loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model that owns ``loc[:-1]``, for 'did you mean' hints."""
    from pydantic import BaseModel

    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = inner_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def inner_model(annotation: Any) -> Any:
    """The pydantic model inside an annotation (``X``, ``X | None``, ``tuple[X, ...]``), or None."""
    from typing import get_args

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = inner_model(arg)
        if found is not None:
            return found
    return None


def problems_from(err: ValidationError, model: type, root: yaml.Node | None) -> list[Problem]:
    """pydantic's validation errors as Problems, with line numbers from the YAML node tree when given."""
    problems = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = _dotted(loc)
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc)
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            fix = f"did you mean '{hint[0]}'?" if hint else f"allowed keys here: {', '.join(allowed)}"
            msg = f"unknown key; remove it or fix its spelling ({fix})"
        elif e["type"] == "missing":
            msg = "required key is missing; add it"
        else:
            got = e.get("input")
            shown = repr(got)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            msg = f"{e['msg']} (got {shown})"
        problems.append(Problem(key=key, line=line_of(root, loc), message=msg))
    return problems
