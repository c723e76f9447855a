"""Typed config of the ``kd`` params section: how many prompts each distillation round sends."""

from __future__ import annotations

from pydantic import Field

from jiuzhang.config.base_model import Section


class KdRoundConfig(Section):
    """One teacher round: how many prompts go to the teacher."""
    n: int = Field(ge=1, description="Prompts sent to the teacher in this round (paper: 5,300 initial, 4,000 boost).")


class KdInitialConfig(KdRoundConfig):
    """The initial KD round: the number of prompts and the seed that samples them from the pool."""
    seed: int = Field(ge=0, description="Sampling seed: prompt p is drawn iff it ranks in the first n by "
                      "hash(seed, p.id), so the sample does not depend on pool order.")


class KdConfig(Section):
    """Knowledge distillation from the teacher."""

    initial: KdInitialConfig = Field(description="Round 1: a random sample of the prompt pool.")
    boost: KdRoundConfig = Field(description="Round 2: the texts the influence stage selects.")
