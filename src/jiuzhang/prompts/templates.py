"""Prompt templates are data files (``templates/prompts/<level>.txt`` and ``tool.txt``), written by us
following the structure of the paper's prompts: Instruction, Math Content, Guidelines, New Problem.

The snippet goes where ``{content}`` stands. Substitution is a plain replace, not ``str.format``, because
snippets and templates are full of LaTeX braces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jiuzhang.common.io import InputDataError

PLACEHOLDER = "{content}"
REQUIRED_MARKERS = ("[Problem]", "[Solution]")
TOOL = "tool"


@dataclass(frozen=True)
class Template:
    name: str
    text: str

    def fill(self, content: str) -> str:
        return self.text.replace(PLACEHOLDER, content)


def load_templates(folder: str | Path, names: tuple[str, ...]) -> dict[str, Template]:
    """Load and check ``<name>.txt`` for each name; every problem is reported before any work starts."""
    folder = Path(folder)
    templates, problems = {}, []
    for name in names:
        path = folder / f"{name}.txt"
        if not path.is_file():
            problems.append(f"{path}: missing template for '{name}'; add the file or remove the level from "
                            f"prompts.levels")
            continue
        text = path.read_text(encoding="utf-8")
        if text.count(PLACEHOLDER) != 1:
            problems.append(f"{path}: must contain '{PLACEHOLDER}' exactly once (found {text.count(PLACEHOLDER)})")
        missing = [m for m in REQUIRED_MARKERS if m not in text]
        if missing:
            problems.append(f"{path}: must ask for {' and '.join(REQUIRED_MARKERS)}; missing {missing}")
        templates[name] = Template(name, text)
    if problems:
        raise InputDataError("bad prompt template(s):\n  " + "\n  ".join(problems))
    return templates
