"""Typed config of the ``influence`` params section (selection of texts for the boosting round)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jiuzhang.config.base_model import Section


class InfluenceConfig(Section):
    """How the boosting round's texts are chosen from the candidate pool."""

    method: Literal["random"] = Field("random", description="'random': a seeded random selection (the "
                                      "paper's ablation baseline); gradient-based 'less' comes with its issue.")
    seed: int = Field(0, ge=0, description="Seed of the candidate-pool sample and of the random selection.")
    pool_size: int = Field(ge=1, description="Candidate texts (never round-1 ones) that synthesizer_initial "
                           "writes data for, through the synthesize engine and its sampling settings; "
                           "kd.boost.n of them are selected. Paper: a large pool.")
