"""The base class every params section derives from: frozen, strict, unknown keys rejected.

Why strict: a YAML typo such as ``max_chars: "1000"`` or ``seed: 1.5`` must fail on load, not be coerced
silently. Sequences are declared as tuples so a loaded config is immutable all the way down.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# datatrove tasks of a data stage (corpus.tasks, filter.tasks): a count, or 'auto' (this machine's cores).
Tasks = Annotated[int, Field(ge=1)] | Literal["auto"]


class Section(BaseModel):
    """A frozen, strictly typed params section; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
