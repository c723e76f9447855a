"""Typed config of the ``prompts`` params section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from jiuzhang.config.base_model import Section

LEVELS = ("grade_school", "middle_school", "high_school", "college", "amc8", "amc10", "amc12", "aime")


class PromptsConfig(Section):
    """Assign a level per snippet (seeded by snippet id) and fill the level's template."""

    seed: int = Field(ge=0, description="Level-assignment seed: level = f(seed, snippet id), so the result "
                      "is the same for any worker count or input order.")
    levels: tuple[str, ...] = Field(LEVELS, strict=False, min_length=1,
                                    description="Levels to draw from; each needs '<level>.txt' in the templates folder.")
    level_weights: tuple[float, ...] | None = Field(None, strict=False, description="Relative draw weights, one per "
                                                     "level (null = uniform, as in the paper).")
    tool_share: float = Field(0.0, ge=0.0, le=1.0, description="Share of snippets that get the tool (Python) "
                              "prompt instead of a natural-language level, drawn from the same seed.")
    tool_sources: tuple[str, ...] = Field((), strict=False, description="corpus.sources names whose every "
                                          "snippet gets the tool prompt (paper: ProofWiki, its tool seed source); "
                                          "tool_share still applies to the other sources.")
    tool_examples: str = Field("tool_examples.jsonl", description="JSONL of {problem, solution} worked examples, "
                               "in the templates folder: a tool template with '{example}' shows one of them per "
                               "prompt, drawn by (seed, snippet id) - the paper draws one per prompt from a pool "
                               "(MMOS) instead of one fixed example.")
    texts: Literal["ours", "paper"] = Field("ours", description="'ours': templates/prompts/ (written by us). "
                                           "'paper': the paper's released texts (prompts/cot/*.md, prompts/tool/"
                                           "prompt.md of RUCAIBox/JiuZhang3.0 at aae2f91), read from paper_dir and "
                                           "checked by SHA-256; no license is stated for them, so they are not "
                                           "copied into this repository.")
    paper_dir: str | None = Field(None, description="A checkout of RUCAIBox/JiuZhang3.0 at aae2f91 (texts: paper).")
    shard_rows: int = Field(5000, ge=1, description="Rows per output Parquet shard.")

    @model_validator(mode="after")
    def _check(self) -> "PromptsConfig":
        unknown = [lv for lv in self.levels if lv not in LEVELS]
        if unknown:
            raise ValueError(f"unknown level(s) {unknown}; known: {', '.join(LEVELS)}")
        if len(set(self.levels)) != len(self.levels):
            raise ValueError("levels must not repeat")
        if self.level_weights is not None:
            if len(self.level_weights) != len(self.levels):
                raise ValueError(f"level_weights has {len(self.level_weights)} entries for {len(self.levels)} levels")
            if any(w < 0 for w in self.level_weights) or sum(self.level_weights) <= 0:
                raise ValueError("level_weights must be non-negative with a positive sum")
        if self.texts == "paper" and not self.paper_dir:
            raise ValueError("texts 'paper' reads the paper's prompt texts from a checkout: set paper_dir (git clone "
                             "https://github.com/RUCAIBox/JiuZhang3.0 and check out aae2f91), or texts: ours")
        return self
