"""The pre-training mix: our own kept records keep their share however large the supplement is."""
from jiuzhang.training.packing import Example
from jiuzhang.training.records import pretrain_mix


def _examples(tag: str, n: int) -> list[Example]:
    return [Example(f"{tag}-{i}", f"{tag} q{i}", f"{tag} a{i}") for i in range(n)]


def test_capped_supplement_leaves_our_records_the_bulk():
    ours, released = _examples("ours", 48), _examples("released", 1000)
    uncapped, n_uncapped = pretrain_mix(ours, released, 41, None, 64)
    capped, n_capped = pretrain_mix(ours, released, 41, 16, 64)
    assert len(uncapped) == len(capped) == 64
    assert n_uncapped < 10                  # the problem the cap fixes: ~3 of ours in 64
    assert n_capped == 48                   # every kept record, plus 16 released ones
    assert n_capped == sum(e.prompt.startswith("ours") for e in capped)


def test_mix_is_seeded_and_order_changes_with_the_seed():
    ours, released = _examples("ours", 10), _examples("released", 30)
    a, _ = pretrain_mix(ours, released, 1, 5, None)
    b, _ = pretrain_mix(ours, released, 1, 5, None)
    c, _ = pretrain_mix(ours, released, 2, 5, None)
    assert [e.prompt for e in a] == [e.prompt for e in b]
    assert [e.prompt for e in a] != [e.prompt for e in c]
    assert len(a) == 15


def test_no_supplement_and_no_cap_keeps_everything():
    ours = _examples("ours", 7)
    mixed, n = pretrain_mix(ours, [], 3, None, None)
    assert n == 7 and sorted(e.prompt for e in mixed) == sorted(e.prompt for e in ours)


# --- the streamed mix (the pretrain stage): same order as the lists, text never held in memory -------------

def _write_jsonl(path, examples):
    import json
    path.write_text("".join(json.dumps({"id": e.id, "input": e.prompt, "output": e.target}) + "\n" for e in examples))
    return path


def _mix(tmp_path, **over):
    from jiuzhang.training.records import PretrainMix, iter_examples
    syn = _write_jsonl(tmp_path / "syn.jsonl", _examples("ours", 20))
    sup = _write_jsonl(tmp_path / "sup.jsonl", _examples("released", 50))
    tail = _write_jsonl(tmp_path / "tail.jsonl", _examples("sft", 30))
    kw = dict(synthetic=lambda: iter_examples(syn, "input", "output"),
              supplement=lambda: iter_examples(sup, "input", "output"),
              tail=lambda: iter_examples(tail, "input", "output"),
              seed=5, supplement_max=8, max_records=25, tail_seed=3, tail_max=12)
    return PretrainMix(**(kw | over))


def test_streamed_mix_yields_the_list_order_and_cleans_its_spool(tmp_path):
    import random
    mix = _mix(tmp_path)
    scratch = tmp_path / "spool"
    got = list(mix.iterate(scratch))
    mixed, n_ours = pretrain_mix(_examples("ours", 20), _examples("released", 50), 5, 8, 25)
    tail = _examples("sft", 30)
    random.Random(3).shuffle(tail)
    assert got == mixed + tail[:12]
    assert mix.counts() == {"synthetic_records": 20, "supplement_records": 50, "synthetic_used": n_ours,
                            "supplement_used": 25 - n_ours, "sft_tail_records": 12, "used_records": 37}
    assert not scratch.exists()                                    # the spool is scratch space only


def test_streamed_mix_digest_follows_rows_and_mix_params(tmp_path):
    a = _mix(tmp_path).digest()
    assert a == _mix(tmp_path).digest()
    assert a != _mix(tmp_path, seed=6).digest() and a != _mix(tmp_path, tail_max=11).digest()
    (tmp_path / "sup.jsonl").write_text((tmp_path / "sup.jsonl").read_text().replace("released a7", "released A7"))
    from jiuzhang.training.records import PretrainMix, iter_examples
    changed = PretrainMix(synthetic=lambda: iter_examples(tmp_path / "syn.jsonl", "input", "output"),
                          supplement=lambda: iter_examples(tmp_path / "sup.jsonl", "input", "output"),
                          tail=lambda: iter_examples(tmp_path / "tail.jsonl", "input", "output"),
                          seed=5, supplement_max=8, max_records=25, tail_seed=3, tail_max=12)
    assert changed.digest() != a


def test_empty_synthetic_records_are_refused_unless_a_supplement_stands_in(tmp_path):
    import pytest

    from jiuzhang.common.io import InputDataError
    (tmp_path / "empty.jsonl").write_text("")
    from jiuzhang.training.records import iter_examples
    with pytest.raises(InputDataError, match="synthetic records are empty"):
        _mix(tmp_path, synthetic=lambda: iter_examples(tmp_path / "empty.jsonl", "input", "output")).counts()
    ok = _mix(tmp_path, synthetic=lambda: iter_examples(tmp_path / "empty.jsonl", "input", "output"),
              allow_empty_synthetic=True)
    assert ok.counts()["synthetic_records"] == 0 and ok.counts()["supplement_used"] == 8
