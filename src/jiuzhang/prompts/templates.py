"""Prompt templates are data files (``templates/prompts/<level>.txt`` and ``tool.txt``), written by us
following the structure of the paper's prompts: Instruction, Math Content, Guidelines, New Problem.

The snippet goes where ``{content}`` stands. Substitution is a plain replace, not ``str.format``, because
snippets and templates are full of LaTeX braces.

``prompts.texts: paper`` reads the paper's released texts instead (``prompts/cot/<level>.md`` and
``prompts/tool/prompt.md`` of RUCAIBox/JiuZhang3.0 at aae2f91) from a checkout the user makes
(``prompts.paper_dir``): that repository states no license for them, so they are read in place, never copied
here, and each file's SHA-256 is checked against the commit's. Their placeholders (``<EXTRACT>``; the tool
prompt's ``{seed}``, ``{question}``, ``{solution}`` and ``{{}}`` escapes, as ``str.format`` wrote them) become
ours.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from jiuzhang.common.io import InputDataError

PLACEHOLDER = "{content}"
EXAMPLE = "{example}"      # tool template: one worked example drawn from prompts.tool_examples
EXAMPLE_PROBLEM, EXAMPLE_SOLUTION = "{example_problem}", "{example_solution}"   # the paper's tool prompt: in parts
REQUIRED_MARKERS = ("[Problem]", "[Solution]")
TOOL = "tool"


@dataclass(frozen=True)
class Template:
    """One synthesis prompt template: its level name and text."""
    name: str
    text: str

    def fill(self, content: str, example: dict[str, str] | None = None) -> str:
        """The template with the snippet ``content`` (and ``example``, when the template asks for one) filled in."""
        text = self.text
        if example is not None:
            text = text.replace(EXAMPLE, render_example(example)).replace(EXAMPLE_PROBLEM, example["problem"].strip())
            text = text.replace(EXAMPLE_SOLUTION, example["solution"].strip())
        return text.replace(PLACEHOLDER, content)

    @property
    def wants_example(self) -> bool:
        """True when the template has a place for a worked example."""
        return EXAMPLE in self.text or EXAMPLE_PROBLEM in self.text


def render_example(row: dict[str, str]) -> str:
    """A worked example as the templates show it: ``[Problem]: ...`` then ``[Solution]: ...``."""
    return f"[Problem]: {row['problem'].strip()}\n[Solution]:\n{row['solution'].strip()}"


def load_examples(path: str | Path) -> list[dict[str, str]]:
    """The worked examples ({problem, solution}) a tool template draws from."""
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
            out.append({"problem": row["problem"].strip(), "solution": row["solution"].strip()})
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


# The paper's released prompt texts (RUCAIBox/JiuZhang3.0 at this commit): our level name -> (file, SHA-256).
PAPER_COMMIT = "aae2f9119f57ccaa71c2780c6d63de93a5ee7cba"
PAPER_PROMPTS = {
    "grade_school": ("prompts/cot/grade.md", "84c3c12404e264eab72195541b3e5f79dc30932dc0a6f677302eb3fe4e608bee"),
    "middle_school": ("prompts/cot/middle.md", "e0ba2b33888377a87b283b2acb8967e65a09f5064f07f98d86fd74e2bd8cd3ae"),
    "high_school": ("prompts/cot/high.md", "9955fdc679beb486193cf00cc18b34fcf004b4455d39faaf46a501effd189c15"),
    "college": ("prompts/cot/college.md", "df098897cb62e6747218cc13f9ecdd31a87fc8a4f819d09ac3faa70fa38ecbac"),
    "amc8": ("prompts/cot/amc8.md", "700c2bfa13c6aa25044eeb44a2613060c8c33c36cf9139dcec02801fbf5b3cd2"),
    "amc10": ("prompts/cot/amc10.md", "acf773f15f5dea2065f6a92a09ec92794d56a90f09a087b7e424dc4761860a0e"),
    "amc12": ("prompts/cot/amc12.md", "4629f2a0848fa180e45bde53d50fdcbb71754db654f92fa6fec0af3e20279a23"),
    "aime": ("prompts/cot/aime.md", "5fc2d5eb0b05f7041a929bb91362678019ba3fdf017a85fdfc7a62d1ed949704"),
    TOOL: ("prompts/tool/prompt.md", "678ac73af6a9389b49655a7715ccc1226d8cd978cbe964b25ed718b99b2b68a4"),
}


def _from_paper(name: str, text: str) -> str:
    if name != TOOL:
        return text.replace("<EXTRACT>", PLACEHOLDER)
    marks = {"{seed}": "\x00seed\x00", "{question}": "\x00q\x00", "{solution}": "\x00s\x00"}
    for mark, sentinel in marks.items():
        text = text.replace(mark, sentinel)
    text = text.replace("{{", "{").replace("}}", "}")  # the paper fills it with str.format
    return (text.replace(marks["{seed}"], PLACEHOLDER).replace(marks["{question}"], EXAMPLE_PROBLEM)
            .replace(marks["{solution}"], EXAMPLE_SOLUTION))


def load_paper_templates(paper_dir: str | Path, names: tuple[str, ...]) -> dict[str, Template]:
    """The paper's texts for ``names`` from a checkout of RUCAIBox/JiuZhang3.0 at :data:`PAPER_COMMIT`; every
    missing or changed file is reported before any work starts."""
    root, templates, problems = Path(paper_dir), {}, []
    for name in names:
        if name not in PAPER_PROMPTS:
            problems.append(f"level '{name}' has no released text in the paper (levels: {', '.join(PAPER_PROMPTS)})")
            continue
        rel, sha = PAPER_PROMPTS[name]
        path = root / rel
        if not path.is_file():
            problems.append(f"{path}: missing; prompts.texts 'paper' reads a checkout of the paper's repository: "
                            f"git clone https://github.com/RUCAIBox/JiuZhang3.0 {root} && git -C {root} checkout "
                            f"{PAPER_COMMIT[:7]} (or set prompts.texts: ours)")
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            problems.append(f"{path}: not the text of commit {PAPER_COMMIT[:7]} (SHA-256 differs); check out that commit")
            continue
        templates[name] = Template(name, _from_paper(name, data.decode("utf-8")))
    if problems:
        raise InputDataError("the paper's prompt texts:\n  " + "\n  ".join(problems))
    return templates
