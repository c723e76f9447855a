"""Build the prompt pool: one (or, for ``all_levels`` sources, eight) filled prompt(s) per snippet.

The level of a snippet is a pure function of ``(prompts.seed, snippet id)`` (see
:func:`jiuzhang.common.seeding.keyed_uniform`), so it is the same for any worker count or input order,
unlike the released JiuZhang3.0 code whose levels depended on worker sharding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from jiuzhang.common.io import ShardWriter, read_shards, reset_dir
from jiuzhang.common.seeding import keyed_uniform, weighted_choice
from jiuzhang.config.prompts import PromptsConfig
from jiuzhang.prompts.templates import TOOL, Template, load_examples, load_paper_templates, load_templates

SCHEMA = pa.schema([
    ("id", pa.string()),
    ("snippet_id", pa.string()),
    ("source", pa.string()),
    ("level", pa.string()),
    ("prompt", pa.string()),
])


def assign_levels(cfg: PromptsConfig, snippet_id: str, all_levels: bool, source: str = "") -> list[str]:
    """The level(s) of one snippet: tool for a ``tool_sources`` source, else tool with probability
    ``tool_share``, else a weighted NL level."""
    if source in cfg.tool_sources:
        return [TOOL]
    if all_levels:
        return list(cfg.levels)
    if cfg.tool_share > 0 and keyed_uniform(cfg.seed, "tool", snippet_id) < cfg.tool_share:
        return [TOOL]
    return [weighted_choice(keyed_uniform(cfg.seed, "level", snippet_id), cfg.levels, cfg.level_weights)]


def prompt_rows(cfg: PromptsConfig, templates: dict[str, Template], snippets: Iterator[dict[str, Any]],
                examples: list[dict[str, str]] | None = None) -> Iterator[dict[str, Any]]:
    """The prompt rows of ``snippets``: one per assigned level, each template filled (with an example when asked)."""
    for s in snippets:
        for level in assign_levels(cfg, s["id"], s["all_levels"], s["source"]):
            example = None
            if templates[level].wants_example:  # one worked example per prompt, a pure function of the snippet id
                assert examples is not None  # build_prompts loads them whenever a template wants one
                example = examples[int(keyed_uniform(cfg.seed, "example", s["id"]) * len(examples))]
            yield {"id": f"{s['id']}@{level}", "snippet_id": s["id"], "source": s["source"], "level": level,
                   "prompt": templates[level].fill(s["text"], example)}


def build_prompts(cfg: PromptsConfig, corpus_dir: Path, templates_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Build the prompt pool from the corpus into ``out_dir``; returns the stage's results."""
    names = tuple(cfg.levels) + ((TOOL,) if cfg.tool_share > 0 or cfg.tool_sources else ())
    templates = (load_paper_templates(cfg.paper_dir or "", names) if cfg.texts == "paper"  # set: validated
                 else load_templates(templates_dir, names))
    examples = (load_examples(Path(templates_dir) / cfg.tool_examples)
                if any(t.wants_example for t in templates.values()) else None)
    out = reset_dir(out_dir)
    writer = ShardWriter(out, SCHEMA, cfg.shard_rows)
    levels: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for row in prompt_rows(cfg, templates, read_shards(corpus_dir, columns=["id", "source", "text", "all_levels"]),
                           examples):
        writer.write(row)
        levels[row["level"]] += 1
        sources[row["source"]] += 1
    writer.close()
    return {"prompts": writer.rows, "shards": len(writer.shards),
            "by_level": {lv: levels[lv] for lv in names}, "by_source": dict(sorted(sources.items()))}
