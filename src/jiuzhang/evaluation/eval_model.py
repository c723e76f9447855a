"""The model under evaluation, as the evaluator uses it: generations from one engine, likelihoods from another.

The ``nl`` and ``tool`` settings generate (``plan`` + ``generate``) with ``eval.engine``: the HF engine, or
vLLM through the same worker that synthesis uses (so the paper profile evaluates 7B models on vLLM). The
``loss`` setting needs the exact weights' likelihoods, which only a local HF copy gives (fp32 by default,
``eval.loss_dtype``), whatever engine generates. Each side is built on first use: a loss-only benchmark
never starts vLLM, a generation-only one on vLLM never loads the HF copy, and with the HF engine both sides
are one model in memory.
"""

from __future__ import annotations

from typing import Any, Callable


class EvalModel:
    """``plan``/``generate``/``name`` from the generator; ``model``/``tokenizer``/``context`` from the scorer
    (``model`` is None when there is none: an endpoint gives no likelihoods)."""

    def __init__(self, name: str, make_generator: Callable[[], Any], make_scorer: Callable[[], Any] | None = None,
                 generator_factory: Callable[[], Any] | None = None):
        self.name = name
        # a picklable recipe of the generator, for workers on other processes/nodes (None: this process only)
        self.generator_factory = generator_factory
        self._make_generator = make_generator
        self._make_scorer = make_scorer
        self._generator: Any = None
        self._scorer: Any = None

    @property
    def generator(self):
        """The generation engine, built on first use."""
        if self._generator is None:
            self._generator = self._make_generator()
        return self._generator

    @property
    def scorer(self):
        """The scoring model (held-out loss), built on first use; None when none is configured."""
        if self._scorer is None and self._make_scorer is not None:
            self._scorer = self._make_scorer()
        return self._scorer

    def plan(self, shard):
        """The generator's batches for ``shard``."""
        return self.generator.plan(shard)

    def generate(self, requests):
        """The generator's completions of ``requests``."""
        return self.generator.generate(requests)

    @property
    def model(self):
        """The scorer's model, or None."""
        return getattr(self.scorer, "model", None)

    @property
    def tokenizer(self):
        """The scorer's tokenizer, or None."""
        return getattr(self.scorer, "tokenizer", None)

    @property
    def context(self) -> int:
        """The scorer's context length in tokens."""
        return self.scorer.context

    def close(self) -> None:
        """Stop a vLLM worker now rather than at interpreter exit (its memory goes back before the next stage)."""
        close = getattr(self._generator, "close", None)
        if close is not None:
            close()
