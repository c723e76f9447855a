"""Typed config of the ``influence`` params section (selection of texts for the boosting round)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jiuzhang.config.base_model import Section


class InfluenceConfig(Section):
    """How the boosting round's texts are chosen from the candidate pool."""

    method: Literal["random"] = Field("random", description="'random': a seeded random selection (the "
                                      "paper's ablation baseline); gradient-based 'less' comes with its issue.")
    seed: int = Field(0, ge=0, description="Seed of the random selection.")
