"""What a faction knows: the cached ``Knowledge.known_to`` against the direct rule."""

from __future__ import annotations

import numpy as np
import pytest

from sim.rules.knowledge import Knowledge


def known_to_reference(k: Knowledge, faction: int, hour: int, unit: int | None, max_age: int):
    """The rule as first written: every array scanned at every call."""
    seen = k.seen_hour[faction]
    fresh = seen >= hour - max_age
    shared = k.shared_hour[faction] <= hour
    if unit is not None:
        shared |= k.seen_by[faction] == unit
    idx = np.flatnonzero(fresh & shared)
    return idx, k.seen_cell[faction, idx], hour - seen[idx]


@pytest.mark.parametrize("seed", range(20))
def test_known_to_is_the_direct_rule_through_records_and_forgets(seed):
    rng = np.random.default_rng(seed)
    nf, n = int(rng.integers(1, 4)), int(rng.integers(1, 40))
    k = Knowledge(nf, n, rng.integers(0, 4, nf))
    hour = 0
    for _ in range(300):
        action = rng.random()
        if action < 0.25:
            m = int(rng.integers(0, 6))
            k.record(hour, rng.integers(0, nf, m), rng.integers(0, n, m), rng.integers(0, n, m),
                     rng.integers(0, 1000, m))
        elif action < 0.3:
            k.forget(int(rng.integers(0, n)))
        elif action < 0.45:
            hour += int(rng.integers(1, 3))
        else:  # ask, often several times in a row as a faction's units do
            fi = int(rng.integers(0, nf))
            unit = None if rng.random() < 0.2 else int(rng.integers(0, n))
            age = int(rng.choice([0, 1, 2, 3, 48]))
            got = k.known_to(fi, hour, unit, age)
            want = known_to_reference(k, fi, hour, unit, age)
            for g, w in zip(got, want, strict=True):
                assert g.dtype == w.dtype
                np.testing.assert_array_equal(g, w)


def test_known_to_answers_are_read_only_and_shared_while_nothing_changes():
    k = Knowledge(2, 5, np.array([1, 1]))
    k.record(0, np.array([0, 0]), np.array([1, 2]), np.array([3, 4]), np.array([30, 40]))
    first = k.known_to(0, 2, unit=0, max_age_hours=5)
    assert first[0].tolist() == [3, 4] and not first[0].flags.writeable
    assert k.known_to(0, 2, unit=3, max_age_hours=5)[0] is first[0]
    k.forget(3)
    assert k.known_to(0, 2, unit=0, max_age_hours=5)[0].tolist() == [4]
    # not yet shared at hour 0: only its observer knows
    assert k.known_to(0, 0, unit=1, max_age_hours=5)[0].tolist() == []
    assert k.known_to(0, 0, unit=2, max_age_hours=5)[0].tolist() == [4]
