import pytest

from sgdscope.probes import as_schedule, at, epoch_end, every, log_spaced, never


def test_every_with_offset():
    s = every(5, offset=2)
    assert [t for t in range(20) if s(t)] == [2, 7, 12, 17]


def test_epoch_end_and_union():
    s = every(10) | epoch_end()
    assert s(0) and s(10) and not s(3) and s(3, epoch_end=True)
    assert "every(10" in repr(s)


def test_log_spaced_is_dense_early():
    s = log_spaced(12, 999)
    fired = [t for t in range(1000) if s(t)]
    assert fired[0] == 0 and fired[-1] == 999
    assert 8 <= len(fired) <= 12
    gaps = [b - a for a, b in zip(fired, fired[1:])]
    assert gaps == sorted(gaps)  # spacing grows


def test_at_never_and_coercion():
    assert [t for t in range(10) if at([1, 4])(t)] == [1, 4]
    assert not any(never()(t, True) for t in range(5))
    assert as_schedule(3)(6) and not as_schedule(3)(7)
    assert as_schedule("epoch_end")(7, True)
    assert as_schedule([2])(2)


@pytest.mark.parametrize("bad,err", [(0, ValueError), ("weekly", ValueError), (2.5, TypeError), (True, TypeError)])
def test_bad_schedules_are_named(bad, err):
    with pytest.raises(err, match=repr(bad) if isinstance(bad, str) else "."):
        as_schedule(bad)
