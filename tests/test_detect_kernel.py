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



def _block_side(rng: np.random.Generator, n: int, km: float, moving: float, fast: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mid-hour positions, half-tracks and ranges of ``n`` units of one side of a block over
    ``km`` x ``km``: a quarter stacked on a few spots, a share ``moving`` of movers (some of
    them ``fast``: a vehicle's half-hour), ranges from 0 to 15 km with some NaN."""
    mid = rng.uniform(0, km, (n, 2))
    mid[: n // 4] = np.round(mid[: n // 4] / (km / 5)) * (km / 5)
    half = np.where(rng.random(n) < moving, rng.uniform(0, 3, n), 0.0)
    half[rng.random(n) < fast] = rng.uniform(10, 35)
    half[half == 0.0] = rng.choice([0.0, -0.0], int((half == 0.0).sum()))
    ranges = rng.choice([0.0, 1.5, 2.0, 5.0, 8.0, 15.0, np.nan], n,
                        p=[0.1, 0.2, 0.2, 0.2, 0.2, 0.05, 0.05])
    return mid, half, ranges


def _dense(a, b):
    return detection.block_pairs(*a, *b, dense_max=len(a[0]) * len(b[0]))


@pytest.mark.parametrize("seed", range(16))
def test_grid_pairs_are_exactly_the_dense_ones(seed, kernels):
    """A large block's compiled bucket search (_grid_pairs) finds exactly the dense matrix's
    pairs in its row-major order, both directions: random layouts from a town to the whole
    theatre (a grid of a few cells to thousands), stacked units, still units and movers of every
    speed, sides with no movers or no still units, ranges of 0 and NaN, and pairs placed
    exactly at the edge of range, on a cell's edge or outside the other side's box."""
    kernels(True)
    rng = np.random.default_rng(seed)
    na, nb = rng.integers(1, 600), rng.integers(1, 200)
    km = [5.0, 60.0, 400.0, 2000.0][seed % 4]
    moving_a, moving_b = [(0.3, 0.0), (0.0, 0.5), (1.0, 1.0), (0.0, 0.0)][(seed // 4) % 4]
    a = _block_side(rng, na, km, moving_a, 0.05)
    b = _block_side(rng, nb, km, moving_b, 0.05)
    k = min(na, nb) // 3  # pairs at exactly the edge of a's range, in x then in y
    edge = a[2][:k] + a[1][:k] + b[1][:k]
    a[0][:k] = b[0][:k]
    a[0][: k // 2, 0] += np.nan_to_num(edge[: k // 2])
    a[0][k // 2: k, 1] -= np.nan_to_num(edge[k // 2:])
    want = _dense(a, b)
    ok, *got = detection._grid_pairs(*a, *b)
    assert ok
    for w, g in zip(want, got, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    assert sum(len(x) for x in want) > 0 or na * nb < 50


def test_grid_pairs_with_one_side_out_of_reach_or_huge_reaches(kernels):
    """Sides far apart give no pair without scanning; units that all share one spot, ranges of
    0 over a huge area (the grid capped at a few cells per unit), and a reach wider than the
    whole map (every pair) still give the dense matrix's pairs."""
    kernels(True)
    rng = np.random.default_rng(4)
    cases = []
    a = (rng.uniform(0, 10, (300, 2)), np.zeros(300), np.full(300, 5.0))
    cases.append((a, (rng.uniform(500, 510, (90, 2)), np.zeros(90), np.full(90, 5.0))))
    spot = (np.full((200, 2), 7.25), np.zeros(200), np.full(200, 0.0))
    cases.append((spot, (np.full((100, 2), 7.25), np.zeros(100), np.full(100, 0.0))))
    tiny = (rng.uniform(0, 1e5, (400, 2)), np.zeros(400), np.full(400, 1e-3))
    cases.append((tiny, (rng.uniform(0, 1e5, (100, 2)), np.zeros(100), np.full(100, 0.0))))
    wide = (rng.uniform(0, 50, (200, 2)), np.zeros(200), np.full(200, 1e6))
    cases.append((wide, (rng.uniform(0, 50, (100, 2)), rng.uniform(0, 1, 100), np.zeros(100))))
    for a, b in cases:
        ok, *got = detection._grid_pairs(*a, *b)
        assert ok
        for w, g in zip(_dense(a, b), got, strict=True):
            np.testing.assert_array_equal(g, w)
    assert len(got[0]) == 200 * 100  # the last case: every pair


@pytest.mark.parametrize("offset", [0.0, 1e-12, -1e-12, 1e-9, -1e-9])
def test_grid_pairs_at_the_edge_of_reach_on_cell_edges(offset, kernels):
    """Pairs exactly at the largest range, the reach that sizes the grid's cells, with the
    target on a cell's edge or a hair to either side of it (where the cells a reach covers
    begin and end), in all four directions: the same pairs as the dense matrix."""
    kernels(True)
    reach = 5.0
    lattice = np.arange(20) * reach
    still_b = np.stack(np.meshgrid(lattice, lattice), axis=-1).reshape(-1, 2) + offset
    # a unit off the lattice sets the grid's corner, so the cells' edges fall on the lattice
    still_b = np.concatenate(([[-reach, -reach]], still_b))
    step = np.array([[reach, 0.0], [-reach, 0.0], [0.0, reach], [0.0, -reach]])
    mid_a = (still_b[:, None, :] + step).reshape(-1, 2)
    a = (mid_a, np.zeros(len(mid_a)), np.full(len(mid_a), reach))
    b = (still_b, np.zeros(len(still_b)), np.full(len(still_b), reach))
    ok, *got = detection._grid_pairs(*a, *b)
    assert ok
    want = _dense(a, b)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(g, w)
    assert len(want[0]) >= len(mid_a)  # each unit of a sees the one it was placed from


@pytest.mark.parametrize("odd", ["inf range", "nan half"])
def test_grid_pairs_leave_what_no_grid_bounds_to_the_trees(odd, kernels):
    """A range of +inf, or a half-track that is not finite, is refused by the
    bucket search (``ok`` false); block_pairs then takes the KD-tree path, as it does with the
    kernels off: the same pairs either way."""
    rng = np.random.default_rng(5)
    a = _block_side(rng, 300, 60.0, 0.3, 0.0)
    b = _block_side(rng, 100, 60.0, 0.3, 0.0)
    if odd == "inf range":
        a[2][7] = np.inf
    else:
        a[1][11] = np.nan
    kernels(True)
    assert not detection._grid_pairs(*a, *b)[0]
    with np.errstate(invalid="ignore"):
        got = detection.block_pairs(*a, *b, dense_max=0)
        kernels(False)
        want = detection.block_pairs(*a, *b, dense_max=0)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(g, w)


def test_crowded_theatre_detects_the_same_both_ways(kernels, monkeypatch):
    """The theatre with three times its units (blocks too large to keep a matrix for: the
    bucket search each hour) with the compiled kernels and with numpy (KD-trees): the same
    events and daily table."""
    from sim.scenario.loading import load_scenario

    searches = []

    class Counted:  # _grid_pairs, counting its calls
        @property
        def compiled(self) -> bool:
            return kernel.compiled

        def __call__(self, *args):
            searches.append(len(args[0]) * len(args[3]))
            return kernel(*args)

    kernel = detection._grid_pairs
    monkeypatch.setattr(detection, "_grid_pairs", Counted())

    sc = load_scenario(SCENARIOS / "badia_theatre.yaml")
    sc = sc.model_copy(update={"units": [u.model_copy(update={"count": 3 * u.count})
                                         for u in sc.units]})
    results = {}
    for on in (False, True):
        kernels(on)
        res = run_scenario(sc, seed=2, days=3)
        results[on] = (res.events, res.daily.to_csv(index=False, float_format="%.17g"))
    assert results[True] == results[False]
    assert sum(e["type"] == "detection" for e in results[True][0]) > 10
    assert len(searches) >= 3 * 24 and min(searches) > detection.DENSE_BLOCK_PAIRS
