"""A killed eval keeps the answers it had finished (issue 23): its rerun generates only the rest, and the
predictions equal those of a run that was never killed."""

from __future__ import annotations

import pytest

from jiuzhang.config.loader import validate_params
from jiuzhang.evaluation.evaluator import evaluate
from jiuzhang.evaluation.suite import build_eval_engine, model_key
from jiuzhang.evaluation.tasks import TASKS, load_rows

from conftest import ROOT, SHARED, make_tiny_model, tiny_params


class Killed(BaseException):
    """Stands in for SIGKILL in the middle of a benchmark (a BaseException: no retry or wrapper catches it)."""


class Counting:
    """The real HF engine, counting the prompts it is asked to generate for; ``die_after`` batches kills it."""

    def __init__(self, engine, die_after: int | None = None):
        self.engine, self.die_after, self.prompts, self.calls = engine, die_after, [], 0
        self.name = engine.name

    def plan(self, requests):
        return self.engine.plan(requests)

    def generate(self, batch):
        if self.die_after is not None and self.calls >= self.die_after:
            raise Killed
        self.calls += 1
        self.prompts += [r.id for r in batch]
        return self.engine.generate(batch)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    raw = tiny_params({"x": "unused.jsonl"})
    raw["benchmarks"]["root"] = str(SHARED / "benchmarks")
    raw["eval"].update({"benchmarks": {"gsm8k": ["nl", "tool"]}, "base_benchmarks": [], "arm_benchmarks": [],
                        "limit": 6, "max_new_tokens": 6, "batch_size": 2, "shard_size": 2,
                        "fewshot_dir": str(ROOT / "templates/eval/fewshot")})
    p = validate_params(raw, "test")
    return p, folder, load_rows(SHARED / "benchmarks", "gsm8k", 6)


def test_a_killed_eval_resumes_with_the_answers_it_had(setup, tmp_path):
    p, folder, rows = setup
    engine = build_eval_engine(p, str(folder), None, None, None)
    key = model_key(str(folder), None, None)
    whole, whole_metrics = evaluate(TASKS["gsm8k"], rows, ("nl", "tool"), Counting(engine), p.eval)

    scratch = tmp_path / "resume"
    dying = Counting(engine, die_after=2)  # two NL shards finish, the third dies
    with pytest.raises(Killed):
        evaluate(TASKS["gsm8k"], rows, ("nl", "tool"), dying, p.eval, resume=scratch, model_key=key)
    assert len(list(scratch.rglob("nl-*.json"))) == 2

    rerun = Counting(engine)
    preds, metrics = evaluate(TASKS["gsm8k"], rows, ("nl", "tool"), rerun, p.eval, resume=scratch, model_key=key)
    nl_prompts = [q for q in rerun.prompts if "/nl/" in q]
    assert nl_prompts == [f"gsm8k/nl/{r['_idx']}" for r in rows[4:]]  # only the unfinished shard
    assert preds == whole and {k: v for k, v in metrics.items() if k != "timing"} == \
        {k: v for k, v in whole_metrics.items() if k != "timing"}

    # answers of another model (or other settings) are never reused: a new key, a new folder
    other = Counting(engine)
    evaluate(TASKS["gsm8k"], rows, ("nl",), other, p.eval, resume=scratch, model_key="another-model")
    assert len([q for q in other.prompts if "/nl/" in q]) == 6
