"""The prompts stage: per-snippet seeded levels (worker- and order-independent), templates as data."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jiuzhang.common.io import InputDataError, ShardWriter
from jiuzhang.config.prompts import LEVELS, PromptsConfig
from jiuzhang.corpus.pipeline import SCHEMA as CORPUS_SCHEMA
from jiuzhang.prompts.pool import assign_levels, build_prompts
from jiuzhang.prompts.templates import load_templates

from conftest import ROOT

TEMPLATES = ROOT / "templates" / "prompts"


def _corpus(folder: Path, n: int, all_levels_every: int = 0, shard_rows: int = 1000) -> list[dict]:
    rows = [{"id": f"src/doc{i}#0.0", "source": "src", "doc_id": f"doc{i}", "text": f"Snippet {i}: $x^{i}$ {{braces}}",
             "n_chars": 10, "all_levels": bool(all_levels_every) and i % all_levels_every == 0} for i in range(n)]
    writer = ShardWriter(folder, CORPUS_SCHEMA, shard_rows)
    writer.write_many(rows)
    writer.close()
    return rows


def test_shipped_templates_follow_the_paper_structure():
    templates = load_templates(TEMPLATES, LEVELS + ("tool",))
    for name, t in templates.items():
        text = t.text
        positions = [text.index(s) for s in ("### Instruction", "### Math Content", "### Guidelines", "### New Problem")]
        assert positions == sorted(positions), name
        assert text.rstrip().endswith("### New Problem")
    assert "```python" in templates["tool"].text and "\\boxed" in templates["tool"].text


def test_fill_keeps_latex_braces_and_dollars():
    t = load_templates(TEMPLATES, ("aime",))["aime"]
    filled = t.fill("Let $f(x)=\\frac{1}{x}$ and {content} literally.")
    assert "$f(x)=\\frac{1}{x}$ and {content} literally." in filled


def test_bad_templates_are_reported_together(tmp_path):
    (tmp_path / "amc8.txt").write_text("no placeholder [Problem] [Solution]")
    (tmp_path / "aime.txt").write_text("{content} but no markers")
    with pytest.raises(InputDataError) as info:
        load_templates(tmp_path, ("amc8", "aime", "college"))
    msg = str(info.value)
    assert "amc8.txt: must contain '{content}'" in msg and "aime.txt: must ask for" in msg
    assert "college.txt: missing template" in msg


def test_levels_do_not_depend_on_order_or_workers():
    cfg = PromptsConfig(seed=3, tool_share=0.2)
    ids = [f"s/{i}#0.0" for i in range(2000)]
    once = {i: assign_levels(cfg, i, False) for i in ids}
    shuffled = ids[:]
    random.Random(1).shuffle(shuffled)
    workers = [shuffled[r::3] for r in range(3)]  # 3 workers, each its own slice, any order
    again = {i: assign_levels(cfg, i, False) for w in workers for i in w}
    assert once == again
    counts = Counter(lv for v in once.values() for lv in v)
    assert 0.15 < counts["tool"] / 2000 < 0.25
    assert all(150 < counts[lv] < 250 for lv in LEVELS)  # uniform over 8 levels, 80% of 2000
    assert all(len(v) == 1 and v[0] in (*LEVELS, "tool") for v in once.values())  # one level per snippet
    assert assign_levels(cfg, ids[0], True) == list(LEVELS)  # Wikipedia/ProofWiki docs get every level
    other_seed = {i: assign_levels(PromptsConfig(seed=4, tool_share=0.2), i, False) for i in ids}
    assert other_seed != once


def test_level_weights():
    cfg = PromptsConfig(seed=1, levels=("amc8", "aime"), level_weights=(3.0, 1.0))
    counts = Counter(assign_levels(cfg, f"id{i}", False)[0] for i in range(4000))
    assert 0.7 < counts["amc8"] / 4000 < 0.8


def test_build_prompts(tmp_path):
    rows = _corpus(tmp_path / "corpus", 50, all_levels_every=10, shard_rows=7)
    cfg = PromptsConfig(seed=5, tool_share=0.2, shard_rows=40)
    m = build_prompts(cfg, tmp_path / "corpus", TEMPLATES, tmp_path / "out")
    out = [r for f in sorted((tmp_path / "out").glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert m["prompts"] == len(out) == 45 + 5 * 8  # 5 all-levels snippets get 8 prompts
    assert set(out[0]) == {"id", "snippet_id", "source", "level", "prompt"}
    assert len({r["id"] for r in out}) == len(out)
    by_snippet = {r["snippet_id"]: r for r in out}
    for s in rows:
        assert s["text"] in by_snippet[s["id"]]["prompt"]
    # the same corpus in different shard sizes gives the same prompts
    _corpus(tmp_path / "corpus2", 50, all_levels_every=10, shard_rows=50)
    build_prompts(cfg, tmp_path / "corpus2", TEMPLATES, tmp_path / "out2")
    out2 = [r for f in sorted((tmp_path / "out2").glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert out2 == out


def test_missing_corpus_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputDataError, match="no 'part-\\*.parquet' shards"):
        build_prompts(PromptsConfig(seed=1), tmp_path / "empty", TEMPLATES, tmp_path / "out")


def _corpus_sources(folder: Path, sources: dict[str, int]) -> None:
    rows = [{"id": f"{src}/doc{i}#0.0", "source": src, "doc_id": f"doc{i}", "text": f"{src} snippet {i}",
             "n_chars": 10, "all_levels": False} for src, n in sources.items() for i in range(n)]
    writer = ShardWriter(folder, CORPUS_SCHEMA, 1000)
    writer.write_many(rows)
    writer.close()


def test_tool_prompts_draw_their_example_from_the_pool_and_tool_sources_are_all_tool(tmp_path):
    """The paper: every ProofWiki seed gets the tool prompt, each with a worked example drawn from a pool
    (MMOS there, ours here), not one fixed example."""
    _corpus_sources(tmp_path / "corpus", {"proofwiki": 60, "web": 200})
    cfg = PromptsConfig(seed=5, tool_share=0.25, tool_sources=("proofwiki",))
    metrics = build_prompts(cfg, tmp_path / "corpus", TEMPLATES, tmp_path / "out")
    rows = [r for f in sorted((tmp_path / "out").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert all(r["level"] == "tool" for r in rows if r["source"] == "proofwiki")
    web_tool = sum(r["level"] == "tool" for r in rows if r["source"] == "web")
    assert 25 < web_tool < 75                                  # tool_share still applies to the other sources
    assert metrics["by_level"]["tool"] == 60 + web_tool
    pool = [line for line in (TEMPLATES / "tool_examples.jsonl").read_text().splitlines() if line.strip()]
    seen = Counter()
    for r in rows:
        if r["level"] == "tool":
            assert "{example}" not in r["prompt"] and "{content}" not in r["prompt"]
            seen[r["prompt"].split("[Problem]: ", 1)[1].split("\n", 1)[0]] += 1
    assert len(seen) == len(pool) >= 5                          # every example drawn, none fixed
    again = tmp_path / "again"
    build_prompts(cfg, tmp_path / "corpus", TEMPLATES, again)
    assert [r["prompt"] for f in sorted(again.glob("*.parquet")) for r in pq.read_table(f).to_pylist()] == \
        [r["prompt"] for r in rows]                             # seeded by snippet id: the same every run


def test_missing_or_bad_example_pool_is_a_clear_error(tmp_path):
    import shutil
    shutil.copytree(TEMPLATES, tmp_path / "t")
    _corpus_sources(tmp_path / "corpus", {"web": 20})
    cfg = PromptsConfig(seed=5, tool_share=0.5)
    (tmp_path / "t" / "tool_examples.jsonl").write_text('{"problem": "p", "solution": "s"}\n{"problem": 3}\n')
    with pytest.raises(InputDataError, match=r"tool_examples.jsonl:2: expected a JSON object"):
        build_prompts(cfg, tmp_path / "corpus", tmp_path / "t", tmp_path / "out")
    (tmp_path / "t" / "tool_examples.jsonl").unlink()
    with pytest.raises(InputDataError, match="prompts.tool_examples"):
        build_prompts(cfg, tmp_path / "corpus", tmp_path / "t", tmp_path / "out")


def test_unknown_tool_source_is_refused():
    import yaml

    from jiuzhang.config.loader import validate_params
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["prompts"]["tool_sources"] = ["nope"]
    from jiuzhang.config.errors import ConfigError
    with pytest.raises(ConfigError, match="tool_sources"):
        validate_params(raw, "params.yaml")
