"""Typed configuration: the shipped profiles validate; bad keys, types and values fail with file:line."""

from __future__ import annotations

import re

import pytest
import yaml
from pydantic import BaseModel

from jiuzhang.config.errors import ConfigError
from jiuzhang.config.loader import load_params, validate_params
from jiuzhang.config.root import Params

from conftest import ROOT, run_cli


@pytest.mark.parametrize("path", ["params.yaml", "configs/paper.yaml"])
def test_shipped_profiles_validate(path):
    params = load_params(ROOT / path)
    assert params.corpus.max_chars == 1000  # the paper's snippet size in both profiles
    assert params.corpus.decontamination.ngram == 13


def test_profiles_differ_where_the_paper_does():
    smoke, paper = load_params(ROOT / "params.yaml"), load_params(ROOT / "configs/paper.yaml")
    assert smoke.base.mode == "train" and paper.base.mode == "hub"
    assert paper.base.hub.model_id == "mistralai/Mistral-7B-v0.1"
    assert {s.format for s in smoke.corpus.sources} == {"jsonl"}
    assert {s.format for s in paper.corpus.sources} == {"hf"}


def test_config_is_frozen():
    params = load_params(ROOT / "params.yaml")
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="frozen"):
        params.corpus.max_chars = 5  # type: ignore[misc]
    assert isinstance(params.corpus.sources, tuple)


def _bad(tmp_path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    return str(info.value)


def _smoke_with(tmp_path, old: str, new: str) -> str:
    text = (ROOT / "params.yaml").read_text()
    assert old in text, old
    return _bad(tmp_path, text.replace(old, new, 1))


def test_unknown_key_names_file_line_key_and_suggests(tmp_path):
    msg = _smoke_with(tmp_path, "  min_chars: 200\n", "  min_chars: 200\n  max_char: 900\n")
    line = (ROOT / "params.yaml").read_text().splitlines().index("  min_chars: 200") + 2
    assert f"bad.yaml:{line}: corpus.max_char: unknown key" in msg
    assert "did you mean 'max_chars'" in msg


def test_wrong_type_is_not_coerced(tmp_path):
    msg = _smoke_with(tmp_path, "  min_chars: 200", '  min_chars: "200"')
    assert "corpus.min_chars" in msg and "valid integer" in msg


def test_impossible_values_all_reported_at_once(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    text = text.replace("threshold: 0.8", "threshold: 1.5").replace("    steps: 60 ", "    steps: 0 ")
    msg = _bad(tmp_path, text)
    assert "2 problems" in msg
    assert "corpus.dedup.threshold" in msg and "base.train.steps" in msg


def test_cross_field_rule_min_below_max(tmp_path):
    msg = _smoke_with(tmp_path, "  min_chars: 200", "  min_chars: 5000")
    assert "min_chars (5000) must be below max_chars (1000)" in msg


def test_unknown_benchmark_and_level(tmp_path):
    text = (ROOT / "params.yaml").read_text().replace("[gsm8k, math,", "[gsm8k, gsm9k, math,")
    text = text.replace("levels: [grade_school,", "levels: [kindergarten, grade_school,")
    msg = _bad(tmp_path, text)
    assert "gsm9k" in msg and "kindergarten" in msg


def test_hf_source_needs_dataset_and_revision():
    data = yaml.safe_load((ROOT / "configs/paper.yaml").read_text())
    del data["corpus"]["sources"][0]["revision"]
    with pytest.raises(ConfigError, match=r"corpus\.sources\[0\].*revision"):
        validate_params(data, "paper.yaml")


def test_vllm_eval_with_a_chat_template_is_refused_before_any_model_loads():
    data = yaml.safe_load((ROOT / "configs/mini.yaml").read_text())
    data["eval"].update(engine="vllm", chat_template=True)
    with pytest.raises(ConfigError, match=r"eval.*engine 'vllm'.*chat template.*chat_template: false or engine: hf"):
        validate_params(data, "mini.yaml")


def test_missing_section_and_bad_yaml(tmp_path):
    assert "corpus: required key is missing" in _bad(tmp_path, "profile: x\nbenchmarks: {root: a, decontaminate: [gsm8k]}\n")
    assert "bad.yaml:2: not valid YAML" in _bad(tmp_path, "a: [1,\nb: ]]\n")
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "missing.yaml")


def _fields(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        yield f"{prefix}{name}", field
        ann = field.annotation
        for cand in (ann, *getattr(ann, "__args__", ())):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                yield from _fields(cand, f"{prefix}{name}.")


def test_every_key_is_documented():
    undocumented = [name for name, field in _fields(Params) if not field.description]
    assert undocumented == []


def test_config_check_cli(tmp_path):
    ok = run_cli("config", "check", "--params", "configs/paper.yaml", cwd=ROOT)
    assert "valid (paper profile)" in ok.stdout and "model_id: mistralai/Mistral-7B-v0.1" in ok.stdout
    assert "is not a commit SHA" in ok.stderr  # unpinned dataset revisions are flagged
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "params.yaml").read_text().replace("  cut: head", "  cut: tail"))
    res = run_cli("config", "check", "--params", str(bad), cwd=ROOT, check=False)
    assert res.returncode == 2
    assert "corpus.cut" in res.stderr and "Traceback" not in res.stderr


def test_the_config_knows_the_same_benchmarks_as_the_registry_and_the_evaluator():
    from jiuzhang.benchmarks.registry import BENCHMARKS
    from jiuzhang.config.benchmarks import BENCHMARK_NAMES
    from jiuzhang.evaluation.tasks import TASKS

    assert set(BENCHMARK_NAMES) == set(BENCHMARKS) == set(TASKS)


@pytest.mark.parametrize("old, new, expected", [
    # issue 13.5: values that were accepted and did something else than asked
    ("  limits: {}", "  limits: {gsm8k: 0}", r"eval\.limits\.gsm8k.*greater than or equal to 1"),
    ("  limits: {}", "  limits: {math: 3}", r"limits names \['math'\], which 'benchmarks' does not evaluate"),
    ("    n: 80                             # paper: 4,000", "    n: 500",
     r"kd\.boost\.n \(500\) exceeds influence\.pool_size \(160\)"),
])
def test_out_of_range_values_are_refused_with_the_key(tmp_path, old, new, expected):
    assert re.search(expected, _smoke_with(tmp_path, old, new)), _smoke_with(tmp_path, old, new)


def test_plan_model_params_are_positive_and_named(tmp_path):
    assert re.search(r"plan\.model_params\.base.*greater than 0",
                     _smoke_with(tmp_path, "  model_params: {}", "  model_params: {base: 0}"))
    assert "plan.model_params.teacher" in _smoke_with(tmp_path, "  model_params: {}", "  model_params: {teacher: 7e9}")


def test_set_overrides_are_yaml_values_validated_like_the_file():
    params = load_params(ROOT / "params.yaml", ["eval.limit=7", "corpus.sources.0.max_chars=500",
                                                 "eval.stop=[a, b]", "tracking.enabled=false"])
    assert params.eval.limit == 7 and params.corpus.sources[0].max_chars == 500
    assert list(params.eval.stop) == ["a", "b"] and params.tracking.enabled is False
    assert load_params(ROOT / "params.yaml").eval.limit != 7  # the file itself is untouched
    with pytest.raises(ConfigError) as err:
        load_params(ROOT / "params.yaml", ["eval.limit=abc", "eval.nope=1"])
    text = str(err.value)
    assert "2 problems" in text and "eval.limit: Input should be a valid integer" in text
    assert "(from --set eval.limit=abc)" in text and "eval.nope: unknown key" in text and "(from --set eval.nope=1)" in text
    for bad, says in [("eval", "write KEY=VALUE with a dotted key"), ("eval..limit=3", "dotted key"),
                      ("corpus.sources.9.max_chars=1", "a list of 2 item(s) needs an index 0..1"),
                      ("corpus.max_chars.x=1", "corpus.max_chars is a value, not a section"),
                      ("eval.stop=[a", "the value is not valid YAML")]:
        with pytest.raises(ConfigError, match=re.escape(says)):
            load_params(ROOT / "params.yaml", [bad])


def test_set_on_the_command_line(tmp_path):
    res = run_cli("config", "check", "--params", str(ROOT / "params.yaml"), "--set", "eval.limit=3", cwd=ROOT)
    assert re.search(r"^  limit: 3$", res.stdout, re.M)
    res = run_cli("config", "check", "--params", str(ROOT / "params.yaml"), "--set", "eval.limit=0", cwd=ROOT,
                  check=False)
    assert res.returncode == 2 and "eval.limit: Input should be greater than or equal to 1 (got 0) (from --set eval.limit=0)" in res.stderr
    # a stage command: the syntax is checked by the option, before anything runs
    res = run_cli("corpus", "--params", str(ROOT / "params.yaml"), "--set", "corpus", "--out", str(tmp_path / "c"),
                  "--metrics", str(tmp_path / "m.json"), cwd=ROOT, check=False)
    assert res.returncode == 2 and "Invalid value for '--set'" in res.stderr and not (tmp_path / "c").exists()
    res = run_cli("corpus", "--params", str(ROOT / "params.yaml"), "--set", "corpus.max_chars=-5", "--out",
                  str(tmp_path / "c"), "--metrics", str(tmp_path / "m.json"), "--dry-run", cwd=ROOT, check=False)
    assert res.returncode != 0 and "(from --set corpus.max_chars=-5)" in res.stderr
    assert "set for this command only" in res.stderr


def test_shell_completion_names_commands_and_options():
    env = {"_JIUZHANG_COMPLETE": "bash_complete", "COMP_WORDS": "jiuzhang cor", "COMP_CWORD": "1"}
    assert "corpus" in run_cli(cwd=ROOT, env=env).stdout
    env = {"_JIUZHANG_COMPLETE": "bash_complete", "COMP_WORDS": "jiuzhang eval --se", "COMP_CWORD": "2"}
    assert "--set" in run_cli(cwd=ROOT, env=env).stdout
