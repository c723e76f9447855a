"""Prompt templates are data files (``templates/prompts/<level>.txt`` and ``tool.txt``), written by us
following the structure of the paper's prompts: Instruction, Math Content, Guidelines, New Problem.

The snippet goes where ``{content}`` stands. Substitution is a plain replace, not ``str.format``, because
snippets and templates are full of LaTeX braces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from jiuzhang.common.io import InputDataError

PLACEHOLDER = "{content}"
EXAMPLE = "{example}"      # tool template: one worked example drawn from prompts.tool_examples
REQUIRED_MARKERS = ("[Problem]", "[Solution]")
TOOL = "tool"


@dataclass(frozen=True)
class Template:
    name: str
    text: str

    def fill(self, content: str, example: str | None = None) -> str:
        text = self.text.replace(EXAMPLE, example) if example is not None else self.text
        return text.replace(PLACEHOLDER, content)

    @property
    def wants_example(self) -> bool:
        return EXAMPLE in self.text


def load_examples(path: str | Path) -> list[str]:
    """The worked examples a tool template draws from, rendered as the template shows them."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: missing; the tool template has '{EXAMPLE}' and draws one worked example per "
                             f"prompt from this JSONL of {{\"problem\", \"solution\"}} (prompts.tool_examples)")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(f"[Problem]: {row['problem'].strip()}\n[Solution]:\n{row['solution'].strip()}")
        except (ValueError, KeyError, AttributeError) as e:
            raise InputDataError(f"{path}:{n}: expected a JSON object with string 'problem' and 'solution' ({e})")
    if not out:
        raise InputDataError(f"{path}: no examples; add at least one {{\"problem\", \"solution\"}} line")
    return out


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
