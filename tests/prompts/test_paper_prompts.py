"""prompts.texts: paper reads the paper's released prompt texts from a checkout (never copied here), checked by
SHA-256, with their placeholders turned into ours; the parser reads the paper's tool sections."""

from __future__ import annotations

import hashlib

import pytest

from jiuzhang.common.io import InputDataError
from jiuzhang.prompts import templates as tpl
from jiuzhang.teacher.parsing import parse_completion

# Texts written here in the shape of the paper's files (their placeholders and format escapes).
COT = "## Instruction\nCreate a problem.\n\n## Math Content\n<EXTRACT>\n\n## Guidelines\n[Problem]: ...\n[Solution]: ...\n"
TOOL_TEXT = ("Math content for inspiration:\n```\n{seed}\n```\nput the answer in /boxed{{}}.\n\nExample:\n\n"
             "[Problem Description]\n{question}\n[/Problem Description]\n\n[Solution]\n{solution}\n[/Solution]")


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    files = {"grade_school": COT, "tool": TOOL_TEXT}
    table = {}
    for name, text in files.items():
        rel = tpl.PAPER_PROMPTS[name][0]
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
        table[name] = (rel, hashlib.sha256(text.encode()).hexdigest())
    monkeypatch.setattr(tpl, "PAPER_PROMPTS", {**tpl.PAPER_PROMPTS, **table})
    return tmp_path


def test_placeholders_become_ours(checkout):
    t = tpl.load_paper_templates(checkout, ("grade_school", "tool"))
    assert t["grade_school"].fill("SNIPPET {x}") == COT.replace("<EXTRACT>", "SNIPPET {x}")
    assert t["tool"].wants_example
    filled = t["tool"].fill("SEED", {"problem": "Q?", "solution": "print(1)"})
    assert "```\nSEED\n```" in filled and "/boxed{}" in filled
    assert "[Problem Description]\nQ?\n[/Problem Description]" in filled and "[Solution]\nprint(1)\n[/Solution]" in filled


def test_missing_or_changed_files_are_named_before_work(checkout):
    with pytest.raises(InputDataError, match="git clone https://github.com/RUCAIBox/JiuZhang3.0"):
        tpl.load_paper_templates(checkout, ("aime",))
    (checkout / tpl.PAPER_PROMPTS["grade_school"][0]).write_text(COT + "edited")
    with pytest.raises(InputDataError, match="SHA-256 differs"):
        tpl.load_paper_templates(checkout, ("grade_school",))


def test_the_pinned_table_covers_the_eight_levels_and_the_tool_prompt():
    from jiuzhang.config.prompts import LEVELS

    assert set(tpl.PAPER_PROMPTS) == set(LEVELS) | {"tool"}
    assert all(len(sha) == 64 for _, sha in tpl.PAPER_PROMPTS.values())


def test_parser_reads_the_papers_tool_sections():
    text = "[Problem Description]\nA box holds 3 pens.\n[/Problem Description]\n\n[Solution]\n```python\nprint(3)\n```\n[/Solution]"
    p = parse_completion(text)
    assert p.ok and p.problem == "A box holds 3 pens." and p.solution == "```python\nprint(3)\n```"


def test_paper_profile_selects_the_paper_texts():
    from jiuzhang.config.loader import load_params

    from conftest import ROOT

    cfg = load_params(ROOT / "configs" / "paper.yaml")
    assert cfg.prompts.texts == "paper" and cfg.prompts.paper_dir
