"""Detection rules: probability law, sampling, swept exposure and Koopman's search laws."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.stats import norm

from sim import compiled
from sim.rules import detection
from sim.rules.detection import (
    DetectionConfig,
    PairFinder,
    block_candidates,
    block_pairs,
    candidate_pairs,
    cells_to_km,
    detect,
    detect_among,
    detection_probability,
    draw_exposed,
    pair_distances_km,
    pair_probability,
    rate_factor,
    sensor_range_km,
    time_in_range_hours,
)
from sim.world.clock import LightLevel

DAY, TWILIGHT, NIGHT = LightLevel.DAY, LightLevel.TWILIGHT, LightLevel.NIGHT
Z99 = 2.576  # two-sided 99% normal quantile


def z_family(m: int, level: float = 0.99) -> float:
    """Two-sided normal quantile for ``m`` simultaneous checks at family-wise ``level``
    (Bonferroni)."""
    return float(norm.ppf(1.0 - (1.0 - level) / (2 * m)))


def binomial_halfwidth(p: float, n: int, z: float = Z99) -> float:
    """Half-width of the normal-approximation binomial CI, floored for p near 0 or 1."""
    return z * math.sqrt(max(p * (1.0 - p), 1.0 / n) / n)


# --------------------------------------------------------------------------- the probability law
def test_probability_is_non_increasing_in_distance_and_zero_beyond_range():
    d = np.linspace(0.0, 10.0, 201)
    for moving in (True, False):
        for light in (DAY, TWILIGHT, NIGHT):
            p = detection_probability(d, 6.0, 0.5, moving, light)
            assert np.all(np.diff(p) <= 0.0)
            assert np.all(p[d > 6.0] == 0.0)
            assert np.all(p[d <= 6.0] > 0.0)


def test_each_factor_lowers_the_probability():
    base = detection_probability(2.0, 6.0, 0.0, True, DAY)
    assert base > 0.99  # a moving vehicle in the open by day within range: near certain
    assert detection_probability(2.0, 6.0, 0.5, True, DAY) < base
    assert detection_probability(2.0, 6.0, 0.9, True, DAY) < detection_probability(
        2.0, 6.0, 0.5, True, DAY
    )
    assert detection_probability(2.0, 6.0, 0.0, False, DAY) < base
    assert detection_probability(2.0, 6.0, 0.5, True, TWILIGHT) < detection_probability(
        2.0, 6.0, 0.5, True, DAY
    )
    assert detection_probability(2.0, 6.0, 0.5, True, NIGHT) < detection_probability(
        2.0, 6.0, 0.5, True, TWILIGHT
    )
    assert detection_probability(2.0, 6.0, 1.0, True, DAY) == 0.0


def test_probability_matches_the_stated_formula_and_composes_over_time():
    cfg = DetectionConfig(
        exposed_rate_per_hour=2.0, stationary_factor=0.25, night_rate_factor=0.4,
        concealment_weight=0.8,
    )
    p = detection_probability(1.0, 3.0, 0.5, False, NIGHT, cfg)
    rate = 2.0 * (1 - 0.8 * 0.5) * 0.25 * 0.4
    assert p == pytest.approx(1.0 - math.exp(-rate))
    # Two independent half-hour looks give the same p as one hour (Poisson glimpses).
    half = detection_probability(1.0, 3.0, 0.5, False, NIGHT, cfg, exposure_hours=0.5)
    assert 1.0 - (1.0 - half) ** 2 == pytest.approx(p)


def test_definite_range_sensor_is_certain_within_range():
    cfg = DetectionConfig(exposed_rate_per_hour=math.inf)
    p = detection_probability(np.array([0.0, 2.9, 3.0, 3.1]), 3.0, 0.9, False, NIGHT, cfg)
    assert p.tolist() == [1.0, 1.0, 1.0, 0.0]
    # Full concealment still hides even from a definite-range sensor (no inf * 0 = nan).
    assert detection_probability(1.0, 3.0, 1.0, True, DAY, cfg) == 0.0
    assert detection_probability(1.0, 3.0, 0.0, True, DAY, cfg, exposure_hours=0.0) == 0.0


def test_sensor_range_by_light():
    cfg = DetectionConfig(twilight_range_fraction=0.25)
    lights = np.array([DAY, TWILIGHT, NIGHT])
    assert sensor_range_km(6.0, 2.0, lights, cfg).tolist() == [6.0, 3.0, 2.0]
    assert sensor_range_km(6.0, 2.0, DAY) == 6.0
    with pytest.raises(ValueError, match="LightLevel"):
        sensor_range_km(6.0, 2.0, 3)


def test_config_is_validated():
    with pytest.raises(ValidationError, match="stationary_factor"):
        DetectionConfig(stationary_factor=1.5)
    with pytest.raises(ValidationError, match="sensor_range"):
        DetectionConfig(sensor_range=3.0)


# --------------------------------------------------------------------------- geometry
def test_pairs_and_distances_agree_with_brute_force():
    rng = np.random.default_rng(1)
    obs = rng.uniform(0, 50, (200, 2))
    tgt = rng.uniform(0, 50, (150, 2))
    reach = rng.uniform(0, 8, 200)
    oi, ti = candidate_pairs(obs, reach, tgt)
    d = pair_distances_km(obs, tgt)
    assert d[3, 4] == pytest.approx(math.dist(obs[3], tgt[4]))
    bo, bt = np.nonzero(d <= reach[:, None])
    assert set(zip(oi.tolist(), ti.tolist(), strict=True)) == set(
        zip(bo.tolist(), bt.tolist(), strict=True)
    )
    assert cells_to_km([[2, 3]], 0.5).tolist() == [[1.0, 1.5]]


def test_time_in_range_is_the_chord_of_the_relative_track():
    # Target 0.6 km off a track that passes straight through: chord 2*sqrt(R^2 - x^2).
    start = np.array([[-10.0, 0.6], [-10.0, 0.6], [0.5, 0.0], [5.0, 0.0], [-10.0, 3.0]])
    end = np.array([[10.0, 0.6], [0.0, 0.6], [0.5, 0.0], [5.0, 0.0], [10.0, 3.0]])
    t = time_in_range_hours(start, end, 1.0, hours=2.0)
    chord_km = 2.0 * math.sqrt(1.0 - 0.36)
    assert t[0] == pytest.approx(2.0 * chord_km / 20.0)   # 20 km in 2 h
    assert t[1] == pytest.approx(2.0 * (chord_km / 2.0) / 10.0)  # stops at closest approach
    assert t[2] == 2.0  # stationary pair within range: whole step
    assert t[3] == 0.0  # stationary pair out of range
    assert t[4] == 0.0  # passes 3 km off a 1 km sensor


# --------------------------------------------------------------------------- sampling
def test_detect_matches_definite_range_geometry_exactly():
    """With certain detection in range, detect returns exactly the pairs whose tracks came
    within range (checked by sampling each track at 2001 points)."""
    rng = np.random.default_rng(2)
    cfg = DetectionConfig(exposed_rate_per_hour=math.inf)
    obs0 = rng.uniform(0, 40, (60, 2))
    obs1 = obs0 + rng.normal(0, 8, (60, 2))
    tgt0 = rng.uniform(0, 40, (80, 2))
    tgt1 = tgt0 + rng.normal(0, 3, (80, 2))
    r = rng.uniform(1, 4, 60)
    oi, ti = detect(rng, obs1, r, tgt1, 0.0, True, DAY, cfg, obs_prev_km=obs0, tgt_prev_km=tgt0)
    s = np.linspace(0, 1, 2001)[:, None, None]
    o = obs0[None] + s * (obs1 - obs0)[None]
    t = tgt0[None] + s * (tgt1 - tgt0)[None]
    dmin = np.sqrt(((o[:, :, None, :] - t[:, None, :, :]) ** 2).sum(-1)).min(axis=0)
    expected = set(zip(*np.nonzero(dmin < r[:, None] - 1e-3), strict=True))
    borderline = set(zip(*np.nonzero(np.abs(dmin - r[:, None]) <= 1e-3), strict=True))
    got = set(zip(oi.tolist(), ti.tolist(), strict=True))
    assert expected <= got <= expected | borderline
    assert len(expected) > 20  # the scene actually has encounters
    # End positions only: exactly the pairs within range at the end.
    oi, ti = detect(rng, obs1, r, tgt1, 0.0, True, DAY, cfg)
    bo, bt = np.nonzero(pair_distances_km(obs1, tgt1) <= r[:, None])
    assert set(zip(oi.tolist(), ti.tolist(), strict=True)) == set(
        zip(bo.tolist(), bt.tolist(), strict=True)
    )


def test_empirical_detection_frequency_matches_p():
    """One observer, many targets in four conditions; each group's detection frequency lies in
    the binomial CI of the module's p (99% family-wise over the four groups)."""
    rng = np.random.default_rng(3)
    n = 5000
    groups = [  # (distance, concealment, moving, light)
        (1.0, 0.0, False, DAY),
        (2.0, 0.5, True, NIGHT),
        (2.5, 0.9, False, TWILIGHT),
        (0.5, 0.6, False, NIGHT),
    ]
    tgt, conc, mov = [], [], []
    for g, (d, c, m, _) in enumerate(groups):
        # Put each group around its own observer so lights can differ per observer.
        ang = rng.uniform(0, 2 * np.pi, n)
        tgt.append(np.c_[100.0 * g + d * np.cos(ang), d * np.sin(ang)])
        conc.append(np.full(n, c))
        mov.append(np.full(n, m))
    obs = np.array([[100.0 * g, 0.0] for g in range(len(groups))])
    lights = np.array([g[3] for g in groups])
    oi, ti = detect(
        rng, obs, 3.0, np.concatenate(tgt), np.concatenate(conc), np.concatenate(mov), lights
    )
    assert np.all(oi == ti // n)  # each observer only sees its own group
    counts = np.bincount(oi, minlength=len(groups))
    for g, (d, c, m, light) in enumerate(groups):
        p = detection_probability(d, 3.0, c, m, light)
        assert abs(counts[g] / n - p) <= binomial_halfwidth(p, n, z_family(len(groups))), (
            g, counts[g] / n, p
        )


def test_lateral_range_curve_of_a_passing_observer():
    """An observer driving past stationary targets at lateral offset x detects each with
    p = 1 - exp(-rate * chord(x) / speed): the exposure-time rule, checked empirically (99%
    family-wise binomial CI over the three offsets)."""
    rng = np.random.default_rng(4)
    cfg = DetectionConfig(exposed_rate_per_hour=6.0, stationary_factor=0.5)
    speed_kmh, r_km, n = 20.0, 2.0, 4000
    for x in (0.3, 1.2, 1.9):
        tgt = np.c_[np.full(n, 10.0), np.full(n, x)] + np.c_[np.arange(n) * 1000.0, np.zeros(n)]
        obs0 = np.c_[np.arange(n) * 1000.0, np.zeros(n)]
        obs1 = obs0 + np.array([speed_kmh, 0.0])
        # Each observer has its own target 1000 km from everyone else's.
        oi, ti = detect(rng, obs1, r_km, tgt, 0.2, False, DAY, cfg, obs_prev_km=obs0)
        assert np.all(oi == ti)
        rate = 6.0 * (1 - 0.2) * 0.5
        p = 1.0 - math.exp(-rate * 2.0 * math.sqrt(r_km**2 - x**2) / speed_kmh)
        assert abs(oi.size / n - p) <= binomial_halfwidth(p, n, z_family(3)), (x, oi.size / n, p)


def test_detect_uses_only_the_generator_passed_in():
    args = (np.array([[0.0, 0.0]]), 5.0, np.random.default_rng(0).uniform(-5, 5, (400, 2)),
            0.5, False, NIGHT)
    # Perturbing numpy's legacy global state must not change anything.
    np.random.seed(0)  # noqa: NPY002
    a = detect(np.random.default_rng(9), *args)
    np.random.seed(1)  # noqa: NPY002
    b = detect(np.random.default_rng(9), *args)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert 0 < a[0].size < 400


def test_bad_shapes_are_one_line_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="obs_km"):
        detect(rng, np.zeros((3, 3)), 1.0, np.zeros((2, 2)), 0.0, True, DAY)
    with pytest.raises(ValueError, match="tgt_concealment"):
        detect(rng, np.zeros((3, 2)), 1.0, np.zeros((2, 2)), [0.0, 0.1, 0.2], True, DAY)
    empty = detect(rng, np.zeros((0, 2)), 1.0, np.zeros((2, 2)), 0.0, True, DAY)
    assert empty[0].size == 0 and empty[1].size == 0


def test_300_by_300_detection_is_fast():
    """Regression guard against per-pair Python loops: 300 observers x 300 targets spread over
    a 400 km theatre, with swept tracks. Measured about 0.25 ms here; the bound is loose
    because the machine is shared."""
    rng = np.random.default_rng(5)
    obs = rng.uniform(0, 400, (300, 2))
    prev = obs + rng.normal(0, 10, (300, 2))
    tgt = rng.uniform(0, 400, (300, 2))
    r = rng.uniform(2, 8, 300)
    conc = rng.uniform(0, 0.9, 300)
    mov = rng.random(300) < 0.5
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        detect(rng, obs, r, tgt, conc, mov, DAY, obs_prev_km=prev)
        times.append(time.perf_counter() - t0)
    assert np.median(times) < 0.005


# --------------------------------------------------------------------------- a whole force at once
def test_detect_among_matches_the_pair_law_both_ways_and_never_within_a_side():
    """The model's hourly call: every pair across a hostile block is drawn with the pair law
    (static pairs: detection_probability; a unit driving past: the exposure chord), in both
    directions, and no unit ever detects one on its own side. 4000 hours; 99% family-wise
    binomial bounds over all directed pairs."""
    # side A: units 0, 1 (0 drives 20 km east past side B's unit 3); side B: 2, 3, 4
    prev = np.array([[0.0, -10.0], [5.0, 0.0], [1.0, 1.0], [2.0, 0.0], [30.0, 30.0]])
    pos = prev.copy()
    pos[0] = [0.0, 10.0]
    rng_km = np.array([3.0, 4.0, 2.0, 6.0, 8.0])
    conceal = np.array([0.0, 0.5, 0.9, 0.3, 0.0])
    moving = np.array([True, False, False, False, True])
    factor = np.array([1.0, 1.0, 1.0, 4.0, 1.0])
    blocks = [(np.array([0, 1]), np.array([2, 3, 4]))]
    cfg = DetectionConfig()
    expected = {}
    for o in range(5):
        for t in range(5):
            if (o < 2) == (t < 2):
                continue
            hours = time_in_range_hours(prev[t] - prev[o], pos[t] - pos[o], rng_km[o])[0]
            f = factor[o] * hours
            p = detection_probability(0.0, 1.0, conceal[t], moving[t], NIGHT, cfg, f) if f else 0.0
            expected[(o, t)] = p
    # the driver passes 1 km from unit 2 (range 2 km): in range 2 sqrt(3) km of 20, 0.17 h
    assert 0.2 < expected[(2, 0)] < 0.5 and expected[(4, 1)] == 0.0
    n = 4000
    counts = dict.fromkeys(expected, 0)
    rng = np.random.default_rng(12)
    for _ in range(n):
        oi, ti = detect_among(rng, blocks, pos, prev, rng_km, conceal, moving, NIGHT, cfg,
                              search_factor=factor)  # fmt: skip
        for o, t in zip(oi.tolist(), ti.tolist(), strict=True):
            assert (o, t) in counts, f"unit {o} detected {t} on its own side"
            counts[(o, t)] += 1
    z = z_family(len(expected))
    for pair, p in expected.items():
        assert abs(counts[pair] / n - p) <= binomial_halfwidth(p, n, z), (pair, counts[pair], p)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("seed", range(6))
def test_indexed_block_pairs_are_exactly_the_dense_ones(seed, kernels, monkeypatch):
    """The search a large block takes (KD-trees; with compiled kernels a bucket grid) finds
    exactly the pairs of the dense distance matrix, in the same order (the order of the random
    draws depends on it), on random layouts: clusters of units in one cell, still units and
    movers of every speed, sensor ranges from 0 up, and pairs right at the edge of range."""
    monkeypatch.setenv(compiled.ENV_KERNELS, kernels)
    rng = np.random.default_rng(seed)
    na, nb = rng.integers(1, 400, 2)

    def side(n):
        pos = rng.uniform(0, 300, (n, 2))
        pos[: n // 4] = np.round(pos[: n // 4] / 40) * 40  # clusters: many units in one spot
        prev = pos.copy()
        moving = rng.random(n) < 0.3
        prev[moving] += rng.normal(0, rng.choice([1.0, 30.0]), (int(moving.sum()), 2))
        mid = 0.5 * (pos + prev)
        half = 0.5 * np.hypot(*(pos - prev).T)
        rng_km = rng.choice([0.0, 2.0, 5.0, 8.0, 15.0], n)
        return mid, half, rng_km

    a, b = side(na), side(nb)
    # put some pairs exactly at the edge of range
    k = min(na, nb) // 3
    a[0][:k, 0] = b[0][:k, 0] + a[2][:k] + a[1][:k] + b[1][:k]
    a[0][:k, 1] = b[0][:k, 1]
    dense = block_pairs(*a, *b, dense_max=na * nb)
    indexed = block_pairs(*a, *b, dense_max=0)
    assert sum(len(x) for x in dense) > 0
    for d, i in zip(dense, indexed, strict=True):
        np.testing.assert_array_equal(d, i)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("moving_a", ["none", "all", "half"])
@pytest.mark.parametrize("moving_b", ["none", "all", "half"])
def test_indexed_block_pairs_with_sides_all_still_or_all_moving(moving_a, moving_b, kernels,
                                                                 monkeypatch):
    """The KD-tree search (and the compiled bucket grid) splits each side into still units and
    movers: a side with none of one or the other, or a single unit, still gives the dense
    matrix's pairs."""
    monkeypatch.setenv(compiled.ENV_KERNELS, kernels)
    rng = np.random.default_rng(3)

    def side(n, moving):
        half = {"none": np.zeros(n), "all": rng.uniform(0.1, 20, n),
                "half": np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0, 20, n))}[moving]
        return rng.uniform(0, 50, (n, 2)), half, rng.choice([0.0, 3.0, 8.0], n)

    for na, nb in ((1, 1), (2, 50), (7, 3)):
        a, b = side(na, moving_a), side(nb, moving_b)
        dense = block_pairs(*a, *b, dense_max=na * nb)
        indexed = block_pairs(*a, *b, dense_max=0)
        for d, i in zip(dense, indexed, strict=True):
            np.testing.assert_array_equal(d, i)


# --------------------------------------------------------------------------- Koopman search laws
SIDE_KM = 60.0  # a 60 x 60 km square: 60 x 60 cells of 1 km
AREA_KM2 = SIDE_KM**2
RANGE_KM = 1.0  # sweep width W = 2R = 2 km for a definite-range sensor
SPEED_KMH = 30.0
REPLICATES = 2000
COOKIE_CUTTER = DetectionConfig(exposed_rate_per_hour=math.inf)
# Each replicate searches its own square, 1000 km from the others, so all replicates run as
# one vectorised detect() call per hour and never see each other's targets.
OFFSET_KM = 1000.0


def _coverage_hours(c: float) -> int:
    """Hours of search at SPEED_KMH giving coverage C = W L / A."""
    h = c * AREA_KM2 / (2 * RANGE_KM * SPEED_KMH)
    assert h == int(h)
    return int(h)


def _first_detection_hour(rng, n_hours, legs) -> np.ndarray:
    """Hour (1-based) at which each replicate's searcher first detects its stationary target,
    inf if never. ``legs(hour, pos) -> new unwrapped positions``; positions are wrapped onto
    a torus, and the target is replicated at its 9 images so the density stays uniform."""
    offsets = np.c_[np.arange(REPLICATES) * OFFSET_KM, np.zeros(REPLICATES)]
    target = rng.uniform(0, SIDE_KM, (REPLICATES, 2))
    shifts = np.array([(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]) * SIDE_KM
    images = (target[:, None, :] + shifts[None]).reshape(-1, 2) + np.repeat(offsets, 9, axis=0)
    owner = np.repeat(np.arange(REPLICATES), 9)
    pos = rng.uniform(0, SIDE_KM, (REPLICATES, 2))
    first = np.full(REPLICATES, np.inf)
    for hour in range(1, n_hours + 1):
        new = legs(hour, pos)
        oi, ti = detect(
            rng, new + offsets, RANGE_KM, images, 0.0, False, DAY, COOKIE_CUTTER,
            obs_prev_km=pos + offsets,
        )
        assert np.all(owner[ti] == oi)
        first[oi] = np.minimum(first[oi], hour)
        pos = np.mod(new, SIDE_KM)
    return first


def test_koopman_random_search():
    """Random search (a new random heading every hour, straight 30 km legs, on a torus): the
    chance of finding a stationary target is 1 - exp(-C), C = W L / A. Tolerance: 99% binomial
    CI plus 0.015 for the idealisation (legs are not independent: the strips of consecutive legs
    overlap at each turn, losing about R^2 per turn against 2 R x 30 km swept, so the real
    coverage is 1-3% below C)."""
    rng = np.random.default_rng(6)

    def legs(hour, pos):
        heading = rng.uniform(0, 2 * np.pi, len(pos))
        return pos + SPEED_KMH * np.c_[np.cos(heading), np.sin(heading)]

    checkpoints = {c: _coverage_hours(c) for c in (0.5, 1.0, 2.0)}
    first = _first_detection_hour(rng, max(checkpoints.values()), legs)
    for c, hours in checkpoints.items():
        found = float(np.mean(first <= hours))
        law = 1.0 - math.exp(-c)
        assert abs(found - law) <= binomial_halfwidth(law, REPLICATES) + 0.015, (c, found, law)


def test_koopman_parallel_sweep():
    """Exhaustive search: lanes W = 2R apart across the square, 30 km (one hour) per detect call,
    a hop along the edge between lanes: P = min(1, C), C = W L / A with L the length driven
    on lanes. Tolerance: 99% binomial CI (the hops re-sweep ground inside lanes already or about
    to be swept, at most 2 km^2 = 0.06% of the area ahead of time)."""
    rng = np.random.default_rng(7)
    lane_w = 2 * RANGE_KM
    n_lanes = int(SIDE_KM / lane_w)
    offsets = np.c_[np.arange(REPLICATES) * OFFSET_KM, np.zeros(REPLICATES)]
    target = rng.uniform(0, SIDE_KM, (REPLICATES, 2)) + offsets
    legs = []  # (start, end, on_lane)
    for k in range(2 * n_lanes):  # two full passes, so C reaches 2
        x = RANGE_KM + (k % n_lanes) * lane_w
        y0, y1 = (0.0, SIDE_KM) if k % 2 == 0 else (SIDE_KM, 0.0)
        if legs:
            legs.append((legs[-1][1], (x, y0), False))
        ym = 0.5 * (y0 + y1)
        legs += [((x, y0), (x, ym), True), ((x, ym), (x, y1), True)]
    checkpoints = {c: c * AREA_KM2 / lane_w for c in (0.5, 1.0, 2.0)}  # lane km for each C
    found = np.zeros(REPLICATES, dtype=bool)
    found_at = {}
    lane_km = 0.0
    for a, b, on_lane in legs:
        a, b = np.asarray(a), np.asarray(b)
        length = float(np.hypot(*(b - a)))
        oi, ti = detect(
            rng, b + offsets, RANGE_KM, target, 0.0, False, DAY, COOKIE_CUTTER,
            obs_prev_km=a + offsets, hours=length / SPEED_KMH,
        )
        assert np.all(oi == ti)
        found[oi] = True
        lane_km += length if on_lane else 0.0
        for c, km in checkpoints.items():
            if on_lane and math.isclose(lane_km, km):
                found_at[c] = float(found.mean())
    assert set(found_at) == set(checkpoints)
    for c, p in found_at.items():
        law = min(1.0, c)
        assert abs(p - law) <= binomial_halfwidth(law, REPLICATES), (c, p, law)


# --------------------------------------------------------------------------- the hourly fast path
def _old_detect_among(rng, blocks, pos, prev, rng_km, conceal, moving, light, cfg, search):
    """detect_among as it was before PairFinder and draw_exposed: the dense pair law, the chord
    of time_in_range_hours and one draw per candidate pair, kept here as the reference rule."""
    mid = 0.5 * (pos + prev)
    half = 0.5 * np.hypot(*(pos - prev).T)
    obs, tgt = [], []
    for a, b in blocks:
        ia, ib, ja, jb = block_pairs(mid[a], half[a], rng_km[a], mid[b], half[b], rng_km[b],
                                     dense_max=len(a) * len(b))  # fmt: skip
        obs += [a[ia], b[jb]]
        tgt += [b[ib], a[ja]]
    oi = np.concatenate(obs) if obs else np.empty(0, dtype=np.intp)
    ti = np.concatenate(tgt) if tgt else np.empty(0, dtype=np.intp)
    if len(oi) == 0:
        return oi, ti
    exposure = time_in_range_hours(prev[ti] - prev[oi], pos[ti] - pos[oi], rng_km[oi])
    f = rate_factor(conceal[ti], moving[ti], light, cfg) * exposure
    if search is not None:
        f = f * search[oi]
    with np.errstate(invalid="ignore", over="ignore"):
        p = np.where(f > 0.0, -np.expm1(-cfg.exposed_rate_per_hour * f), 0.0)
    hit = rng.random(len(f)) < p
    return oi[hit], ti[hit]


def _force_hours(seed, n=70, hours=40, cell_km=0.5):
    """A small force on a grid of cells hour after hour, as the model moves it: most units still
    (many in the same cell), some driving tens of km, some stopping or setting off; ranges
    change with the light and units stand right at the edge of range."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 120, (n, 2))
    cells[: n // 5] = cells[0]  # a cluster in one cell
    day = rng.choice([0.0, 2.0, 3.0, 5.0, 8.0], n)
    night = day * rng.choice([0.25, 0.5, 1.0], n)
    for hour in range(hours):
        prev = cells.copy()
        movers = rng.random(n) < 0.15
        cells[movers] += rng.integers(-30, 31, (int(movers.sum()), 2))
        if hour % 7 == 3:  # someone stops exactly at the edge of another's range
            cells[1] = cells[n - 1] + [int(day[1] / cell_km), 0]
        light = (hour // 5) % 3
        ranges = sensor_range_km(day, night, light)
        yield cells * cell_km, prev * cell_km, ranges, light


@pytest.mark.parametrize("seed", range(8))
def test_pair_finder_gives_block_candidates_hour_after_hour(seed):
    """PairFinder keeps each block's slack matrix between hours and recomputes only the units
    that moved: every hour it gives exactly block_candidates' pairs in the same order, for
    hostile blocks as the model builds them, a block too large to keep, and blocks whose
    sides are not in unit order."""
    n = 70
    rng = np.random.default_rng(100 + seed)
    faction = rng.integers(0, 3, n)
    blocks = [(np.flatnonzero(faction == 0), np.flatnonzero(faction > 0)),
              (np.flatnonzero(faction == 1), np.flatnonzero(faction == 2))]
    if seed % 2:
        blocks.append((rng.permutation(n)[:20], rng.permutation(n)[:5]))  # not in unit order
    finder = PairFinder(blocks)
    big = PairFinder(blocks)
    for pos, prev, ranges, _ in _force_hours(seed, n):
        want = block_candidates(blocks, pos, prev, ranges)
        got = finder.pairs(np.concatenate((prev, pos), axis=1), ranges)
        for w, g in zip(want, got, strict=True):
            np.testing.assert_array_equal(g, w)
        with pytest.MonkeyPatch.context() as mp:  # every block through block_pairs (KD-trees)
            mp.setattr(detection, "DENSE_BLOCK_PAIRS", 0)
            if big._kept and any(k is not None for k in big._kept):
                big = PairFinder(blocks)
            for w, g in zip(want, big.pairs(np.concatenate((prev, pos), axis=1), ranges),
                            strict=True):  # fmt: skip
                np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("many", [False, True])
def test_hour_exposures_are_time_in_range(many):
    """The hourly chord (plain floats for a few pairs, fewer numpy calls for many) gives the
    values of time_in_range_hours over one hour, and exactly the pairs with a nonzero one: still
    pairs in and out of range, pairs passing through, grazing, starting or ending on the edge,
    moving in parallel, and ranges of 0."""
    rng = np.random.default_rng(11)
    k = 3 * detection.SCALAR_PAIRS if many else detection.SCALAR_PAIRS
    r0 = rng.integers(-12, 13, (k, 2)).astype(float)
    r1 = r0.copy()
    moved = rng.random(k) < 0.7
    r1[moved] += rng.integers(-20, 21, (int(moved.sum()), 2))
    r = rng.choice([0.0, 1.0, 3.0, 5.0, 8.0], k)
    r[:4] = [5.0, 5.0, 3.0, 0.0]
    r0[:4], r1[:4] = [[5, -5], [-5, 5], [3, 0], [0, 0]], [[5, 5], [5, 5], [3, 9], [0, 0]]
    want = time_in_range_hours(r0, r1, r)
    idx, hours = detection._hour_exposures(np.concatenate((r0, r1), axis=1), r)
    np.testing.assert_array_equal(idx, np.flatnonzero(want))
    np.testing.assert_array_equal(hours, want[idx])
    assert 0 < len(idx) < k


@pytest.mark.parametrize("seed", range(6))
def test_hourly_detections_draw_as_the_old_rule(seed):
    """The model's hour (PairFinder's candidates, draw_exposed, pair_probability) and
    detect_among both detect exactly the pairs the old rule detects, drawing the same random
    numbers, hour after hour: the same detections, and the generators end in the same state."""
    n = 70
    rng = np.random.default_rng(200 + seed)
    faction = rng.integers(0, 2, n)
    blocks = [(np.flatnonzero(faction == 0), np.flatnonzero(faction == 1))]
    conceal = rng.choice([0.0, 0.5, 0.6, 0.9], n)
    search = rng.choice([1.0, 1.0, 4.0], n)
    cfg = DetectionConfig(exposed_rate_per_hour=50.0)  # detections are frequent
    old, new, among = (np.random.default_rng(seed) for _ in range(3))
    finder = PairFinder(blocks)
    detected = 0
    for pos, prev, ranges, light in _force_hours(seed, n):
        moving = rng.random(n) < 0.3
        want = _old_detect_among(old, blocks, pos, prev, ranges, conceal, moving, light, cfg,
                                 search)  # fmt: skip
        got = detect_among(among, blocks, pos, prev, ranges, conceal, moving, light, cfg,
                           search_factor=search)  # fmt: skip
        oi, ti = finder.pairs(np.concatenate((prev, pos), axis=1), ranges)
        rel = np.concatenate((prev[ti] - prev[oi], pos[ti] - pos[oi]), axis=1)
        exposed, hours, draws = draw_exposed(new, rel, ranges[oi])
        o, t = oi[exposed], ti[exposed]
        hit = draws < pair_probability(hours, conceal[t], moving[t], light, cfg, search[o])
        for w, g1, g2 in zip(want, got, (o[hit], t[hit]), strict=True):
            np.testing.assert_array_equal(g1, w)
            np.testing.assert_array_equal(g2, w)
        detected += len(want[0])
    assert detected > 0
    assert old.random() == new.random() == among.random()


def test_pair_finder_with_read_only_and_writeable_arrays():
    """The finder keeps read-only tracks and finds read-only ranges by identity (the model's
    arrays), and copies or compares writeable ones: arrays changed in place between calls,
    or another range array in between, still give block_candidates' pairs."""
    gen = _force_hours(4)
    rng = np.random.default_rng(4)
    faction = rng.integers(0, 2, 70)
    blocks = [(np.flatnonzero(faction == 0), np.flatnonzero(faction == 1))]
    finder = PairFinder(blocks)
    table = [np.array(r) for r in ([2.0] * 70, [5.0] * 70)]
    for r in table:
        r.flags.writeable = False
    track = np.zeros((70, 4))
    for hour, (pos, prev, _, _) in enumerate(gen):
        track[:] = np.concatenate((prev, pos), axis=1)  # the same writeable array, changed
        ranges = table[hour % 2] if hour % 3 else np.full(70, 3.0 + hour % 2)
        frozen = track.copy()
        frozen.flags.writeable = False
        for t in (track, frozen):
            want = block_candidates(blocks, pos, prev, ranges)
            for w, g in zip(want, finder.pairs(t, ranges), strict=True):
                np.testing.assert_array_equal(g, w)
