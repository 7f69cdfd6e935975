"""The detection phase's compiled kernels against their numpy reference, to the bit: the pair
finder's changed units, kept slack matrices and pairs hour after hour, the hourly chords and
draws, and a theatre run both ways (``BADIA_KERNELS=numpy``: the reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_detection import _force_hours  # the same small force, hour after hour

from sim import compiled
from sim.engine.run import run_scenario
from sim.rules import detection
from sim.rules.detection import PairFinder, draw_exposed_pairs

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture
def kernels(monkeypatch):
    """``use(on)``: the compiled kernels on (the default) or off (the numpy reference)."""
    def use(on: bool) -> None:
        if on:
            monkeypatch.delenv(compiled.ENV_KERNELS, raising=False)
        else:
            monkeypatch.setenv(compiled.ENV_KERNELS, "numpy")
        assert compiled.available() is on  # a numpy-against-numpy test could not fail
    return use


def _odd_floats(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` doubles of every kind: positions on a grid of cells, wide magnitudes, near-equal
    pairs, zeros of both signs, subnormals, the extremes, infinities and NaN."""
    grid = rng.integers(-4000, 4000, n) * rng.choice([0.25, 0.5, 0.9, 1.0], n)
    wide = rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, n)
    special = rng.choice([0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                          -1.7976931348623157e308, np.inf, -np.inf, np.nan], n)
    return np.choose(rng.integers(0, 3, n), [grid, wide, special])


def _same(got: np.ndarray, want: np.ndarray) -> None:
    """Equal to the bit, except that NaN's payload (which operand's NaN survives) is free."""
    assert got.dtype == want.dtype and got.shape == want.shape
    nan = np.isnan(want) if want.dtype.kind == "f" else np.zeros(want.shape, dtype=bool)
    np.testing.assert_array_equal(np.isnan(got) if got.dtype.kind == "f" else nan, nan)
    assert np.where(nan, 0, got).tobytes() == np.where(nan, 0, want).tobytes()


def test_changed_tracks_find_the_changes_and_give_mid_half(kernels):
    """_changed_tracks finds exactly the units whose track differs in any coordinate (NaN
    always differs, -0 equals 0) and gives _mid_half's mid-hour positions and half-tracks of
    their new tracks to the bit (libm's hypot as numpy's, over a million odd tracks)."""
    kernels(True)
    rng = np.random.default_rng(1)
    n = 1_000_000
    old = _odd_floats(rng, 4 * n).reshape(n, 4)
    track = old.copy()
    moved = rng.random(n) < 0.5
    track[moved, rng.integers(0, 4, int(moved.sum()))] = _odd_floats(rng, int(moved.sum()))
    track[:10] = old[:10] * -1.0  # zeros change sign, NaN stays NaN: changed only if nonzero
    mid, half = np.full((n, 2), 7.0), np.full(n, 7.0)
    changed = np.empty(n, dtype=np.intp)
    count = detection._changed_tracks(track, old, mid, half, changed)
    with np.errstate(all="ignore"):
        want = np.flatnonzero((track != old).any(axis=1))
        want_mid, want_half = detection._mid_half(track[want])
    np.testing.assert_array_equal(changed[:count], want)
    _same(mid[want], want_mid)
    _same(half[want], want_half)
    untouched = np.ones(n, dtype=bool)
    untouched[want] = False
    assert (mid[untouched] == 7.0).all() and (half[untouched] == 7.0).all()


def test_kept_pairs_recompute_the_slack_as_numpy_does(kernels):
    """Every unit changed at once: the kernel's matrix is _slack's of the new positions to the
    bit (odd values included), its row bounds bound the rows, and its pairs are those of the
    numpy threshold and split."""
    kernels(True)
    rng = np.random.default_rng(2)
    n = 400
    b = np.sort(rng.choice(n, 30, replace=False))
    a = np.setdiff1d(np.arange(n), b)
    mid, half = rng.normal(size=(n, 2)) * 10.0, rng.random(n)
    kept = detection._KeptSlack(b, mid, half)
    new_mid = _odd_floats(rng, 2 * n).reshape(n, 2)
    new_mid[: n // 2] = rng.integers(0, 40, (n // 2, 2)) * 0.5  # many in range of another
    new_half = np.abs(_odd_floats(rng, n)) * 0.5
    new_half[: n // 2] = rng.integers(0, 3, n // 2) * 0.25
    ranges = rng.choice([0.0, 1.0, 3.0, 5.0, np.nan], n)
    reach = np.full((n, len(b)), -np.inf)
    reach[a] = np.fmax(ranges[a][:, None], ranges[b])
    with np.errstate(all="ignore"):
        o, t = kept.pairs(np.arange(n), new_mid, new_half, reach.reshape(-1),
                          np.fmax.reduce(reach, axis=1), ranges, ranges[b])
        want = detection._slack(new_mid, new_half, new_mid[b], new_half[b])
        k = (want.reshape(-1) <= reach.reshape(-1)).nonzero()[0]
    _same(kept.slack, want)
    _low_bounds(kept)
    want_o, want_t = kept.split(k, ranges.tolist(), ranges[b].tolist())
    np.testing.assert_array_equal(o, want_o)
    np.testing.assert_array_equal(t, want_t)
    assert len(o) > 0


def _blocks(seed: int, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Hostile blocks as the model builds them (two kept ones), with a block whose sides are
    not in unit order (not kept) for odd seeds."""
    rng = np.random.default_rng(300 + seed)
    faction = rng.integers(0, 3, n)
    blocks = [(np.flatnonzero(faction == 0), np.flatnonzero(faction > 0)),
              (np.flatnonzero(faction == 1), np.flatnonzero(faction == 2))]
    if seed % 2:
        blocks.append((rng.permutation(n)[:20], rng.permutation(n)[:5]))
    return blocks


def _low_bounds(kept: detection._KeptSlack) -> None:
    """The compiled path's row bounds bound their rows' entries from below (NaN aside)."""
    with np.errstate(invalid="ignore"):
        lowest = np.where(np.isnan(kept.slack), np.inf, kept.slack).min(axis=1)
    assert (kept.row_low <= lowest).all()


def _kept_state(finder: PairFinder) -> list[bytes]:
    """What both paths keep: the tracks, every unit's mid-hour position and half-track, and
    each kept block's slack matrix (side b's positions are the numpy path's own copy)."""
    state = [finder._track.tobytes(), finder._mid.tobytes(), finder._half.tobytes()]
    return state + [kept.slack.tobytes() for kept in finder._kept if kept is not None]


@pytest.mark.parametrize("seed", range(12))
def test_pair_finder_compiled_and_numpy_hour_after_hour(seed, kernels):
    """The compiled finder and the numpy one, fed the same hours (units still, driving,
    stopping, stopping at the edge of range; ranges by light, and some of 0 or NaN every third
    hour), give the same pairs in the same order and keep the same state to the bit; the
    compiled path's row bounds (which let it skip rows) stay below their rows."""
    n = 70
    blocks = _blocks(seed, n)
    hours = list(_force_hours(seed, n, hours=60))
    finders = {}
    for on in (False, True):
        kernels(on)
        finders[on] = PairFinder(blocks)
        finders[on].pairs(np.concatenate((hours[0][1], hours[0][0]), axis=1), hours[0][2])
        assert finders[on]._compiled is on
    odd = np.random.default_rng(seed).choice([0.0, np.nan, 2.5], n)
    found = 0
    for hour, (pos, prev, ranges, _) in enumerate(hours[1:]):
        if hour % 3 == 2:
            ranges = np.where(odd == 2.5, ranges, odd)
        track = np.concatenate((prev, pos), axis=1)
        want = finders[False].pairs(track, ranges)
        got = finders[True].pairs(track, ranges)
        for w, g in zip(want, got, strict=True):
            assert g.dtype == w.dtype == np.intp
            np.testing.assert_array_equal(g, w)
        assert _kept_state(finders[True]) == _kept_state(finders[False])
        for kept in finders[True]._kept:
            if kept is not None:
                _low_bounds(kept)
        found += len(got[0])
    assert found > 0


@pytest.mark.parametrize("pairs", [0, 1, detection.SCALAR_PAIRS, 5 * detection.SCALAR_PAIRS])
def test_draw_exposed_pairs_compiled_and_numpy(pairs, kernels):
    """draw_exposed_pairs compiled and in numpy (draw_exposed of the gathered relative tracks:
    plain floats for a few pairs, arrays for many): the same pairs, hours and draws to the
    bit, one draw per pair, over still, passing, grazing and edge pairs, ranges of 0, odd
    values, and more of each kind on a grid of cells; the generators end in the same state."""
    rng = np.random.default_rng(pairs)
    gens = {on: np.random.default_rng(9) for on in (False, True)}
    n = 50
    exposed = 0
    for trial in range(200):
        start = rng.integers(0, 30, (n, 2)).astype(float)
        end = start.copy()
        moved = rng.random(n) < 0.5
        end[moved] += rng.integers(-20, 21, (int(moved.sum()), 2))
        track = np.concatenate((start, end), axis=1) * 0.5
        ranges = rng.choice([0.0, 1.0, 3.0, 5.0, 8.0], n)
        if trial % 4 == 0:  # odd values anywhere
            odd = rng.random(track.shape) < 0.1
            track[odd] = _odd_floats(rng, int(odd.sum()))
            ranges[rng.random(n) < 0.1] = np.nan
        observer, target = rng.integers(0, n, (2, pairs))
        out = {}
        for on in (False, True):
            kernels(on)
            with np.errstate(all="ignore"):
                out[on] = draw_exposed_pairs(gens[on], track, observer, target, ranges)
        np.testing.assert_array_equal(out[True][0], out[False][0])
        _same(out[True][1], out[False][1])
        assert out[True][2].tobytes() == out[False][2].tobytes()
        exposed += len(out[True][0])
    assert gens[True].bit_generator.state == gens[False].bit_generator.state
    assert exposed > 0 or pairs == 0


def test_theatre_detects_the_same_both_ways(kernels):
    """A theatre run with the compiled kernels and with numpy: the same events and daily table
    (the detections decide contacts, engagements and what each side knows)."""
    results = {}
    for on in (False, True):
        kernels(on)
        res = run_scenario(SCENARIOS / "badia_theatre.yaml", seed=3, days=4)
        results[on] = (res.events, res.daily.to_csv(index=False, float_format="%.17g"))
    assert results[True] == results[False]
    assert any(e["type"] == "detection" for e in results[True][0])

