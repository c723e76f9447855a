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
