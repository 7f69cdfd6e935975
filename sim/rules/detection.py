"""Detection: who sees whom this hour, vectorised over all observer/target pairs.

The model
---------
Each observer carries a sensor (eyes, optics, thermal sights) with a *definite range* ``R``:
beyond it nothing is seen (p = 0). Ranges differ by light: a day range and a night range, with
twilight part-way between (``twilight_range_fraction``). Desert air is clear, so range is set by
optics and the horizon, not by a gradual fade; a definite range is the textbook idealisation
(Koopman's "cookie-cutter" sensor) and the one the search laws below are stated for.

Inside the range a target is detected as a Poisson process of glimpses with rate ``rate`` per
hour of exposure, so over ``t`` hours in range

    p = 1 - exp(-rate * t)

which composes correctly over sub-steps and hours (two half-hours give the same p as one hour).
The rate is the exposed rate times multiplicative factors, each a typed field of
:class:`DetectionConfig`:

    rate = exposed_rate_per_hour                  # a moving vehicle in open ground by day
           * (1 - concealment_weight * c)         # terrain concealment c in [0, 1] of the target's
                                                  # cell (flat 0, rugged 0.5, town 0.6, cave 0.9)
           * (1 if moving else stationary_factor) # a still, hidden group gives no dust or motion
           * light factor (1 day, twilight_rate_factor, night_rate_factor)

The default exposed rate (5 per hour, p = 0.993 in an hour) makes a moving target in the open
by day an almost certain detection within range, so with ``exposed_rate_per_hour = inf`` (exact
cookie-cutter) Koopman's laws hold with sweep width ``W = 2R``: random search finds a target with
probability ``1 - exp(-W L / A)`` after a track of length ``L`` in area ``A``, a parallel sweep
with lanes ``W`` apart with ``min(1, W L / A)`` (tests/test_detection.py checks both). Night
lowers detection twice, deliberately: the sensor reaches less far (range) and, within that
range, a hidden group is seen less often (rate).

Moving observers
----------------
A one-hour step moves a vehicle tens of km, far more than a sensor range, so checking only the
end-of-hour positions would leave gaps between glimpses and under-count detections. ``detect``
therefore accepts the positions at the start of the step too: each pair's relative motion is
taken as linear over the step and the exposure ``t`` is the time the pair actually spent within
range (the chord of the relative track through the range disc). That keeps the hourly model
faithful to the continuous-time sweep width.

Hour after hour
---------------
The model draws the same law as :func:`detect_among` (the candidate pairs of each hostile block,
then one draw per candidate in order) in cheaper pieces: a :class:`PairFinder` keeps each block's
pair matrix from hour to hour and recomputes only the units that moved; :func:`draw_exposed`
(:func:`draw_exposed_pairs` for the model's tracks) takes each candidate's draw and times only
the chord (most candidates are vehicles passing at a distance, never in range: their draw
cannot detect); :func:`pair_probability` gives the rate of the few pairs ever in range.
tests/test_detection.py checks them against the dense rule, pair for pair and draw for draw.
The finder and the chords have compiled kernels (:mod:`sim.compiled`), checked against
this numpy reference to the bit by tests/test_detect_kernel.py.

Coordinates are planar km (any frame, e.g. ``x = col * cell_km, y = row * cell_km``).
Randomness only comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.spatial import cKDTree

from sim.compiled import kernel
from sim.world.clock import LightLevel

__all__ = [
    "DetectionConfig",
    "PairFinder",
    "block_candidates",
    "block_pairs",
    "candidate_pairs",
    "cells_to_km",
    "detect",
    "detect_among",
    "detection_probability",
    "draw_exposed",
    "draw_exposed_pairs",
    "pair_distances_km",
    "pair_probability",
    "rate_factor",
    "sample_pairs",
    "sensor_range_km",
    "time_in_range_hours",
]

class DetectionConfig(BaseModel):
    """Detection rules (see the module docstring for the model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exposed_rate_per_hour: float = Field(
        5.0, ge=0.0,
        description="Detection rate of a moving target in open ground by day within range; "
        "inf = definite-range (cookie-cutter) sensor.",
    )
    stationary_factor: float = Field(
        0.3, ge=0.0, le=1.0, description="Rate multiplier for a stationary (halted, hidden) target."
    )
    concealment_weight: float = Field(
        1.0, ge=0.0, le=1.0,
        description="Rate multiplier is 1 - concealment_weight * terrain concealment.",
    )
    twilight_rate_factor: float = Field(0.7, ge=0.0, le=1.0)
    night_rate_factor: float = Field(0.5, ge=0.0, le=1.0)
    twilight_range_fraction: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Twilight range = night + fraction * (day - night).",
    )


DEFAULT_DETECTION = DetectionConfig()


# --------------------------------------------------------------------------- geometry
def cells_to_km(rc: Any, cell_km: float) -> np.ndarray:
    """``(n, 2)`` integer ``(row, col)`` cells -> ``(n, 2)`` planar km positions of their centres
    (``[row * cell_km, col * cell_km]``; distances are what matter, not the frame)."""
    return np.asarray(rc, dtype=float).reshape(-1, 2) * float(cell_km)


def pair_distances_km(obs_km: Any, tgt_km: Any) -> np.ndarray:
    """Dense ``(n_obs, n_tgt)`` matrix of planar distances between ``(n, 2)`` km positions."""
    o = np.asarray(obs_km, dtype=float).reshape(-1, 2)
    t = np.asarray(tgt_km, dtype=float).reshape(-1, 2)
    dx = o[:, 0:1] - t[:, 0]
    dy = o[:, 1:2] - t[:, 1]
    return np.sqrt(dx * dx + dy * dy)


def candidate_pairs(
    obs_km: np.ndarray, reach_km: np.ndarray, tgt_km: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays ``(oi, ti)`` of all pairs with ``|obs[oi] - tgt[ti]| <= reach_km[oi]``.

    Two KD-trees give the pairs within the largest reach in C (about 0.1 ms for 300 x 300
    units spread over a theatre, against over 1 ms for a dense numpy distance matrix); the
    per-observer reach is then applied to those few pairs.
    """
    if len(obs_km) == 0 or len(tgt_km) == 0:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty
    max_reach = float(np.max(reach_km))
    if not max_reach >= 0.0:
        raise ValueError(f"ranges must be non-negative numbers, got max {max_reach}")
    pairs = cKDTree(obs_km).sparse_distance_matrix(
        cKDTree(tgt_km), max_reach, output_type="ndarray"
    )
    oi = pairs["i"].astype(np.intp)
    keep = pairs["v"] <= reach_km[oi]
    return oi[keep], pairs["j"][keep].astype(np.intp)


def time_in_range_hours(
    rel_start_km: Any, rel_end_km: Any, range_km: Any, hours: float = 1.0
) -> np.ndarray:
    """Hours a pair spends within ``range_km`` during a step of ``hours``.

    ``rel_start_km``/``rel_end_km`` are ``(n, 2)`` target-minus-observer positions at the start
    and end of the step; relative motion is taken as linear in between, so the answer is the
    length of the relative track's chord through the range disc, in time.
    """
    r0 = np.asarray(rel_start_km, dtype=float).reshape(-1, 2)
    r1 = np.asarray(rel_end_km, dtype=float).reshape(-1, 2)
    u = r1 - r0
    a = (u * u).sum(axis=1)
    b = 2.0 * (r0 * u).sum(axis=1)
    c = (r0 * r0).sum(axis=1) - np.asarray(range_km, dtype=float) ** 2
    disc = b * b - 4.0 * a * c
    moving = a > 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        sq = np.sqrt(np.maximum(disc, 0.0))
        t1 = np.clip((-b - sq) / (2.0 * a), 0.0, 1.0)
        t2 = np.clip((-b + sq) / (2.0 * a), 0.0, 1.0)
    frac = np.where(moving, np.where(disc > 0.0, t2 - t1, 0.0), (c <= 0.0).astype(float))
    return frac * hours


#: Pairs up to this many take the chord in plain Python floats, one pair at a time: an hour's
#: candidates are a few dozen pairs, for which each of the twenty-odd numpy calls of the
#: array form costs more than the arithmetic of all the pairs (the same IEEE operations on the
#: same doubles either way: the same values).
SCALAR_PAIRS = 64


def _hour_exposures(rel_km: np.ndarray, range_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``time_in_range_hours`` over a one-hour step for the pairs of ``rel_km`` (``(k, 4)``:
    target minus observer at the start, then at the end of the hour) and their ranges ``(k,)``;
    only the pairs ever in range are returned, as ``(index, hours)``.

    The same operations on each pair as :func:`time_in_range_hours` (so the same values, except
    that a zero may come out as -0: no exposure either way). With ``u = r1 - r0`` the pair is in
    range while ``a s^2 + b s + c <= 0`` for the hour's fraction ``s`` (``a = |u|^2``,
    ``b = 2 r0.u``, ``c = |r0|^2 - R^2``); the roots clamped to ``[0, 1]`` bound the chord, and a
    pair without relative motion is in range all hour if ``c <= 0``."""
    if len(rel_km) > SCALAR_PAIRS:
        hours = _hour_in_range(rel_km[:, :2], rel_km[:, 2:], range_km)
        idx = np.flatnonzero(hours)
        return idx, hours[idx]
    idx, hours = [], []
    for k, ((x0, y0, x1, y1), r) in enumerate(zip(rel_km.tolist(), range_km.tolist(),
                                                  strict=True)):  # fmt: skip
        ux, uy = x1 - x0, y1 - y0
        a = ux * ux + uy * uy
        c = (x0 * x0 + y0 * y0) - r * r
        if a > 0.0:
            b = 2.0 * (x0 * ux + y0 * uy)
            disc = b * b - 4.0 * a * c
            if not disc > 0.0:  # tangent or missing the disc (or NaN): no exposure
                continue
            sq = math.sqrt(disc)
            t1 = (-b - sq) / (2.0 * a)
            t2 = (-b + sq) / (2.0 * a)
            # np.clip(t, 0, 1), NaN kept
            t1 = 0.0 if t1 < 0.0 else 1.0 if t1 > 1.0 else t1
            t2 = 0.0 if t2 < 0.0 else 1.0 if t2 > 1.0 else t2
            t = t2 - t1
            if t:
                idx.append(k)
                hours.append(t)
        elif c <= 0.0:
            idx.append(k)
            hours.append(1.0)
    if not idx:
        return _NO_PAIRS, _NO_HOURS
    return np.array(idx, dtype=np.intp), np.array(hours, dtype=float)


@kernel
def _pair_chords(track, observer, target, ranges, idx, hours):
    """The compiled path of :func:`draw_exposed_pairs`: each pair's relative track
    ``track[target] - track[observer]`` and :func:`_hour_exposures`' plain-float loop over the
    pairs, the same operations in the same order (so the same values), writing the pairs ever
    in range and their hours to ``idx`` and ``hours`` and returning their count."""
    count = 0
    for k in range(len(observer)):
        obs, tgt = observer[k], target[k]
        x0, y0 = track[tgt, 0] - track[obs, 0], track[tgt, 1] - track[obs, 1]
        x1, y1 = track[tgt, 2] - track[obs, 2], track[tgt, 3] - track[obs, 3]
        r = ranges[obs]
        ux, uy = x1 - x0, y1 - y0
        a = ux * ux + uy * uy
        c = (x0 * x0 + y0 * y0) - r * r
        if a > 0.0:
            b = 2.0 * (x0 * ux + y0 * uy)
            disc = b * b - 4.0 * a * c
            if not disc > 0.0:  # tangent or missing the disc (or NaN): no exposure
                continue
            sq = math.sqrt(disc)
            t1 = (-b - sq) / (2.0 * a)
            t2 = (-b + sq) / (2.0 * a)
            # np.clip(t, 0, 1), NaN kept
            t1 = 0.0 if t1 < 0.0 else 1.0 if t1 > 1.0 else t1
            t2 = 0.0 if t2 < 0.0 else 1.0 if t2 > 1.0 else t2
            t = t2 - t1
            if t != 0.0:  # Python's truth of a float (NaN is true)
                idx[count] = k
                hours[count] = t
                count += 1
        elif c <= 0.0:
            idx[count] = k
            hours[count] = 1.0
            count += 1
    return count


#: Shared empty results (nothing can change an empty array).
_NO_PAIRS = np.empty(0, dtype=np.intp)
_NO_HOURS = np.empty(0)


def _hour_in_range(r0: np.ndarray, r1: np.ndarray, range_km: np.ndarray) -> np.ndarray:
    """``time_in_range_hours(r0, r1, range_km)`` (a one-hour step) of ``(k, 2)`` float arrays and
    ``(k,)`` ranges in fewer numpy calls (:func:`_hour_exposures` for many pairs): the same
    values, except that a zero may come out as -0."""
    u = r1 - r0
    a = (u * u).sum(axis=1)
    c = (r0 * r0).sum(axis=1) - range_km**2
    moving = a > 0.0
    if not moving.any():  # no pair moves relative to the other: in range all hour or not at all
        return (c <= 0.0).astype(float)
    b = 2.0 * (r0 * u).sum(axis=1)
    disc = b * b - 4.0 * a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    nb = -b
    roots = np.empty((2, len(a)))
    np.subtract(nb, sq, out=roots[0])
    np.add(nb, sq, out=roots[1])
    # a still pair's roots are left undivided (no division by zero): its value is c <= 0
    np.divide(roots, 2.0 * a, out=roots, where=moving)
    np.maximum(roots, 0.0, out=roots)  # np.clip's values, in two cheaper calls
    np.minimum(roots, 1.0, out=roots)
    frac = np.where(disc > 0.0, roots[1] - roots[0], 0.0)
    return frac if moving.all() else np.where(moving, frac, (c <= 0.0).astype(float))


# --------------------------------------------------------------------------- probability
def _light_array(light: Any) -> np.ndarray:
    lv = np.asarray(light)
    if lv.size and (lv.min() < LightLevel.NIGHT or lv.max() > LightLevel.DAY):
        raise ValueError(f"light must be a LightLevel (0..2), got {light!r}")
    return lv


def _light_level(light: Any) -> int:
    """One hour's light as a plain ``int``, checked (the cheap form for the hourly calls)."""
    lv = int(light)
    if not LightLevel.NIGHT <= lv <= LightLevel.DAY:
        raise ValueError(f"light must be a LightLevel (0..2), got {light!r}")
    return lv


def sensor_range_km(
    day_range_km: Any, night_range_km: Any, light: Any, cfg: DetectionConfig = DEFAULT_DETECTION
) -> Any:
    """Effective sensor range (km) under ``light`` (a :class:`LightLevel` or array of them)."""
    day = np.asarray(day_range_km, dtype=float)
    night = np.asarray(night_range_km, dtype=float)
    lv = _light_array(light)
    twilight = night + cfg.twilight_range_fraction * (day - night)
    out = np.where(lv == LightLevel.DAY, day, np.where(lv == LightLevel.TWILIGHT, twilight, night))
    return float(out) if out.ndim == 0 else out


def rate_factor(
    concealment: Any, moving: Any, light: Any, cfg: DetectionConfig = DEFAULT_DETECTION
) -> Any:
    """Multiplier (0..1) on the exposed detection rate for a target's concealment, motion and
    the light (numpy-broadcast)."""
    return _rate_factor(concealment, moving, _light_factor(_light_array(light), cfg), cfg)


def _light_factor(lv: Any, cfg: DetectionConfig) -> Any:
    """The light's rate multiplier: 1 by day, ``twilight_rate_factor``, ``night_rate_factor``;
    a plain float for one ``int`` light (no numpy call), else an array."""
    if isinstance(lv, int):
        return (cfg.night_rate_factor, cfg.twilight_rate_factor, 1.0)[lv]
    return np.where(
        lv == LightLevel.DAY, 1.0,
        np.where(lv == LightLevel.TWILIGHT, cfg.twilight_rate_factor, cfg.night_rate_factor),
    )


def _rate_factor(concealment: Any, moving: Any, light_factor: Any, cfg: DetectionConfig) -> Any:
    """:func:`rate_factor` with the light's multiplier already looked up (checked light)."""
    c = np.asarray(concealment, dtype=float)
    posture = np.where(np.asarray(moving, dtype=bool), 1.0, cfg.stationary_factor)
    return (1.0 - cfg.concealment_weight * c).clip(0.0, 1.0) * posture * light_factor


def _p_from_factor(factor_hours: np.ndarray, cfg: DetectionConfig) -> np.ndarray:
    """``1 - exp(-exposed_rate * factor_hours)``, with an infinite rate giving exactly 1 for any
    positive exposure (and 0 for none)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(
            factor_hours > 0.0, -np.expm1(-cfg.exposed_rate_per_hour * factor_hours), 0.0
        )


def detection_probability(
    dist_km: Any,
    range_km: Any,
    concealment: Any,
    moving: Any,
    light: Any,
    cfg: DetectionConfig = DEFAULT_DETECTION,
    exposure_hours: Any = 1.0,
) -> Any:
    """Probability that an observer detects a target (numpy-broadcast over all arguments).

    ``dist_km`` is the pair's distance, ``range_km`` the observer's effective range under this
    light (see :func:`sensor_range_km`), ``concealment`` the target cell's concealment in [0, 1],
    ``moving`` whether the target moves, ``light`` a :class:`LightLevel`, ``exposure_hours`` the
    time the pair spends at that distance. Returns 0 beyond range.
    """
    within = np.asarray(dist_km, dtype=float) <= np.asarray(range_km, dtype=float)
    f = rate_factor(concealment, moving, light, cfg) * np.asarray(exposure_hours, dtype=float)
    p = np.where(within, _p_from_factor(f, cfg), 0.0)
    return float(p) if p.ndim == 0 else p


def _as_xy(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must be an (n, 2) array of km positions, got shape {arr.shape}")
    return arr


def _per(a: Any, n: int, name: str, dtype: Any = float) -> np.ndarray:
    arr = np.asarray(a, dtype=dtype)
    if arr.ndim == 0:
        return np.full(n, arr, dtype=dtype)
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {arr.shape}")
    return arr


def detect(
    rng: np.random.Generator,
    obs_km: Any,
    obs_range_km: Any,
    tgt_km: Any,
    tgt_concealment: Any,
    tgt_moving: Any,
    light: Any,
    cfg: DetectionConfig = DEFAULT_DETECTION,
    *,
    obs_prev_km: Any = None,
    tgt_prev_km: Any = None,
    hours: float = 1.0,
    obs_search_factor: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample this step's detections; returns index arrays ``(obs_idx, tgt_idx)`` of the pairs
    in which the observer detected the target.

    ``obs_km``/``tgt_km`` are ``(n, 2)`` km positions at the end of the step;
    ``obs_range_km`` the observers' effective ranges under this light (scalar or ``(n_obs,)``,
    see :func:`sensor_range_km`); ``tgt_concealment`` and ``tgt_moving`` per target (or scalar);
    ``light`` a :class:`LightLevel` (or one per observer). If ``obs_prev_km`` and/or
    ``tgt_prev_km`` (start-of-step positions) are given, exposure is the time each pair was
    within range along linear tracks; otherwise a pair within range at the end is exposed for
    the whole step. ``obs_search_factor`` (scalar or per observer, default 1) multiplies the
    glimpse rate of observers searching deliberately, such as a sweep on foot. One uniform
    draw per candidate pair from ``rng``.
    """
    o1 = _as_xy(obs_km, "obs_km")
    t1 = _as_xy(tgt_km, "tgt_km")
    n_o, n_t = len(o1), len(t1)
    rng_km = _per(obs_range_km, n_o, "obs_range_km")
    conceal = _per(tgt_concealment, n_t, "tgt_concealment")
    moving = _per(tgt_moving, n_t, "tgt_moving", bool)
    lv = _light_array(light)
    if lv.ndim:
        lv = _per(lv, n_o, "light", np.int8)
    if not hours > 0:
        raise ValueError(f"hours must be positive, got {hours}")

    swept = obs_prev_km is not None or tgt_prev_km is not None
    if swept:
        o0 = o1 if obs_prev_km is None else _as_xy(obs_prev_km, "obs_prev_km")
        t0 = t1 if tgt_prev_km is None else _as_xy(tgt_prev_km, "tgt_prev_km")
        if o0.shape != o1.shape or t0.shape != t1.shape:
            raise ValueError("start-of-step positions must have the same shape as the end ones")
        # Prefilter on track midpoints: a pair that ever comes within R is within
        # R + half of both track lengths of each other at mid-step.
        half_o = 0.5 * np.hypot(*(o1 - o0).T) if n_o else np.empty(0)
        half_t = 0.5 * np.hypot(*(t1 - t0).T) if n_t else np.empty(0)
        reach = rng_km + half_o + (half_t.max() if n_t else 0.0)
        oi, ti = candidate_pairs(0.5 * (o0 + o1), reach, 0.5 * (t0 + t1))
        exposure = time_in_range_hours(
            t0[ti] - o0[oi], t1[ti] - o1[oi], rng_km[oi], hours
        )
    else:
        oi, ti = candidate_pairs(o1, rng_km, t1)
        exposure = np.full(oi.size, float(hours))

    search = None
    if obs_search_factor is not None:
        search = _per(obs_search_factor, n_o, "obs_search_factor")[oi]
    light_f = _light_factor(lv[oi] if lv.ndim else lv, cfg)
    hit = _draw(rng, conceal[ti], moving[ti], light_f, exposure, search, cfg)
    return oi[hit], ti[hit]


def _draw(rng, conceal, moving, light_factor, exposure_hours, search_factor, cfg) -> np.ndarray:
    """One uniform draw per candidate pair: which pairs detect (the rate model above)."""
    f = _rate_factor(conceal, moving, light_factor, cfg) * exposure_hours
    if search_factor is not None:
        # observers searching on purpose (a sweep looking into every cave) glimpse more often
        f = f * search_factor
    return rng.random(len(f)) < _p_from_factor(f, cfg)


def detect_among(
    rng: np.random.Generator,
    blocks: list[tuple[np.ndarray, np.ndarray]],
    pos_km: np.ndarray,
    prev_km: np.ndarray,
    range_km: np.ndarray,
    concealment: np.ndarray,
    moving: np.ndarray,
    light: int,
    cfg: DetectionConfig = DEFAULT_DETECTION,
    search_factor: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """This hour's detections among a whole force, both ways across each hostile block.

    All arrays are per unit (``pos_km``/``prev_km`` ``(n, 2)`` at the end and start of the
    hour). ``blocks`` lists pairs of unit-index arrays ``(a, b)``: every unit of ``a`` looks for
    every unit of ``b`` and the other way round, so one distance matrix serves both directions
    (the model passes each faction against its enemies). Same rates and exposure as
    :func:`detect`; returns ``(observer, target)`` unit indices of the detecting pairs.

    The candidate pairs are :func:`block_candidates`' (the model keeps them from hour to hour
    with a :class:`PairFinder`, which gives the same pairs) and the draws
    :func:`sample_pairs`'.
    """
    light = _light_level(light)
    oi, ti = block_candidates(blocks, pos_km, prev_km, range_km)
    if len(oi) == 0:
        return oi, ti
    rel = np.concatenate((prev_km[ti] - prev_km[oi], pos_km[ti] - pos_km[oi]), axis=1)
    hit = sample_pairs(rng, oi, ti, rel, range_km, concealment, moving, light, cfg,
                       search_factor)  # fmt: skip
    return oi[hit], ti[hit]


def block_candidates(
    blocks: list[tuple[np.ndarray, np.ndarray]],
    pos_km: np.ndarray,
    prev_km: np.ndarray,
    range_km: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``(observer, target)`` unit indices of the pairs :func:`detect_among` draws for: for each
    block ``(a, b)`` in turn, :func:`block_pairs` of its mid-hour positions
    ``m = (pos + prev) / 2`` and half-track lengths ``h = |pos - prev| / 2``, a's observers
    first, then b's (each in the pair matrix's row-major order)."""
    mid = 0.5 * (pos_km + prev_km)
    half = 0.5 * np.hypot(*(pos_km - prev_km).T)
    obs_parts, tgt_parts = [], []
    for a, b in blocks:
        if len(a) == 0 or len(b) == 0:
            continue
        ia, ib, ja, jb = block_pairs(mid[a], half[a], range_km[a], mid[b], half[b], range_km[b])
        obs_parts += [a[ia], b[jb]]
        tgt_parts += [b[ib], a[ja]]
    if not obs_parts:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty
    return np.concatenate(obs_parts), np.concatenate(tgt_parts)


def sample_pairs(
    rng: np.random.Generator,
    observer: np.ndarray,
    target: np.ndarray,
    rel_km: np.ndarray,
    range_km: np.ndarray,
    concealment: np.ndarray,
    moving: np.ndarray,
    light: int,
    cfg: DetectionConfig = DEFAULT_DETECTION,
    search_factor: np.ndarray | None = None,
) -> np.ndarray:
    """Which of an hour's candidate pairs ``(observer[k], target[k])`` detect: one uniform draw
    per pair from ``rng``, in order. ``rel_km`` is ``(k, 4)``: each pair's target-minus-observer
    position at the start of the hour, then at its end; ``range_km`` and ``search_factor`` are
    per unit (of the observer), ``concealment`` and ``moving`` per unit (of the target),
    ``light`` one :class:`LightLevel`. ``p = 1 - exp(-rate * t)`` with ``t`` the hours in range
    (:func:`draw_exposed`) and the rate of the module docstring (:func:`pair_probability`)."""
    light = _light_level(light)
    hit = np.zeros(len(observer), dtype=bool)
    exposed, hours, draws = draw_exposed(rng, rel_km, range_km[observer])
    if len(exposed):
        o, t = observer[exposed], target[exposed]
        search = None if search_factor is None else search_factor[o]
        hit[exposed] = draws < pair_probability(hours, concealment[t], moving[t], light, cfg,
                                                search)  # fmt: skip
    return hit


def draw_exposed(rng: np.random.Generator, rel_km: np.ndarray, range_km: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One uniform draw from ``rng`` for each of an hour's candidate pairs, in order, and the
    pairs that were ever within range: ``(index, hours in range, draw)`` of those. ``rel_km`` is
    ``(k, 4)`` (target minus observer at the start, then at the end of the hour) and
    ``range_km`` the observers' ranges ``(k,)``; hours as :func:`time_in_range_hours` gives them.
    A pair never in range (most: a vehicle passing at a distance) has ``p = 0`` whatever its
    draw, so nothing more is computed for it."""
    exposed, hours = _hour_exposures(rel_km, range_km)
    draws = rng.random(len(rel_km))
    return exposed, hours, draws[exposed] if len(exposed) else _NO_HOURS


def draw_exposed_pairs(rng: np.random.Generator, track_km: np.ndarray, observer: np.ndarray,
                       target: np.ndarray, range_km: np.ndarray, compiled: bool | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`draw_exposed` of the pairs ``(observer[k], target[k])`` of units with ``(n, 4)``
    tracks ``track_km`` (start then end of the hour) and ranges ``range_km`` (per unit): the
    same pairs, hours and draws, with compiled kernels in one call for all the pairs
    (:func:`_pair_chords`) instead of gathering their relative tracks first. ``compiled``:
    whether the kernels run (None: ``_pair_chords.compiled``, asked now; a run asks once)."""
    if not (_pair_chords.compiled if compiled is None else compiled):
        return draw_exposed(rng, track_km[target] - track_km[observer], range_km[observer])
    idx = np.empty(len(observer), dtype=np.intp)
    hours = np.empty(len(observer))
    count = _pair_chords(track_km, observer, target, range_km, idx, hours)
    draws = rng.random(len(observer))
    if count == 0:
        return _NO_PAIRS, _NO_HOURS, _NO_HOURS
    exposed = idx[:count]
    return exposed, hours[:count], draws[exposed]


def pair_probability(
    exposure_hours: np.ndarray,
    concealment: np.ndarray,
    moving: np.ndarray,
    light: int,
    cfg: DetectionConfig = DEFAULT_DETECTION,
    search_factor: np.ndarray | None = None,
) -> np.ndarray:
    """Detection probability of pairs exposed for ``exposure_hours`` (per pair, as the target's
    ``concealment`` and ``moving`` and the observer's ``search_factor``) under one ``light``:
    ``1 - exp(-exposed_rate * rate_factor * t * search_factor)``."""
    light_f = _light_factor(_light_level(light), cfg)
    f = _rate_factor(concealment, moving, light_f, cfg) * exposure_hours
    if search_factor is not None:
        f = f * search_factor
    return _p_from_factor(f, cfg)


#: A block with at most this many unit pairs takes its dense distance matrix: below it, building
#: the KD-trees costs more than the matrix (measured on the theatre with its units multiplied:
#: 300 x 9 units, dense 4 times faster; 600 x 26, even; 1200 x 34, the trees twice as fast).
#: Both ways give exactly the same pairs in the same order (tests/test_detection.py).
DENSE_BLOCK_PAIRS = 1 << 14
#: Relative slack on the KD-tree's search radius, so rounding in its distances (computed
#: differently from :func:`numpy.hypot`) never loses a pair the exact test below keeps.
_RADIUS_SLACK = 1e-9


def block_pairs(
    mid_a: np.ndarray, half_a: np.ndarray, range_a: np.ndarray,
    mid_b: np.ndarray, half_b: np.ndarray, range_b: np.ndarray,
    dense_max: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of a hostile block worth timing: ``(ia, ib)`` where unit ``ia`` of side a may see
    unit ``ib`` of side b this hour, and ``(ja, jb)`` where ``jb`` of b may see ``ja`` of a.

    With mid-hour positions ``m``, half-track lengths ``h`` and sensor ranges ``R``, a pair
    that ever comes within ``R`` during the hour has ``slack = |m_a - m_b| - h_a - h_b <= R``
    (``R`` of the observer). Both lists are in row-major order of the ``(a, b)`` pair matrix,
    as :func:`numpy.nonzero` of the dense ``slack`` matrix gives them: the order of the random
    draws depends on it.

    A small block (at most ``dense_max`` pairs, default :data:`DENSE_BLOCK_PAIRS`) computes
    that matrix. A large one finds a superset of the pairs with
    KD-trees (:func:`_candidates`), in time about linear in the units and the pairs found, and
    applies the same ``slack`` test, the same floating-point operations in the same order, to
    those pairs only: exactly the pairs of the dense matrix. With compiled kernels
    (:mod:`sim.compiled`) a large block is one call of :func:`_grid_pairs` (buckets instead of
    trees, the same test on the pairs it finds), which gives the same lists.
    """
    na, nb = len(mid_a), len(mid_b)
    if na * nb <= (DENSE_BLOCK_PAIRS if dense_max is None else dense_max):
        slack = _slack(mid_a, half_a, mid_b, half_b)
        ia, ib = np.nonzero(slack <= range_a[:, None])
        ja, jb = np.nonzero(slack <= range_b)
        return ia, ib, ja, jb
    if _grid_pairs.compiled:  # one call, linear in the units and the pairs near them
        found = _grid_pairs(*(np.ascontiguousarray(x, dtype=float) for x in (
            mid_a, half_a, range_a, mid_b, half_b, range_b)))  # fmt: skip
        if found[0]:
            return found[1:]
    p, q = _candidates(mid_a, half_a, range_a, mid_b, half_b, range_b)
    order = np.argsort(p.astype(np.int64) * nb + q, kind="stable")
    p, q = p[order], q[order]
    slack = np.hypot(mid_a[p, 0] - mid_b[q, 0], mid_a[p, 1] - mid_b[q, 1])
    slack -= half_a[p]
    slack -= half_b[q]
    sees_b = slack <= range_a[p]
    sees_a = slack <= range_b[q]
    return p[sees_b], q[sees_b], p[sees_a], q[sees_a]


def _slack(mid_a: np.ndarray, half_a: np.ndarray, mid_b: np.ndarray, half_b: np.ndarray
           ) -> np.ndarray:
    """The dense ``(na, nb)`` matrix ``|m_a - m_b| - h_a - h_b`` of :func:`block_pairs` (each entry
    computed the same way whatever the matrix's size: :class:`PairFinder` relies on it)."""
    slack = np.hypot(mid_a[:, 0:1] - mid_b[:, 0], mid_a[:, 1:2] - mid_b[:, 1])
    slack -= half_a[:, None]
    slack -= half_b
    return slack


def _grow(radius: Any) -> Any:
    return radius * (1.0 + _RADIUS_SLACK) + _RADIUS_SLACK


def _ball_pairs(tree: cKDTree, points: np.ndarray, radius: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(k, j)``: point ``k`` of ``points`` lies within ``radius[k]`` of tree point ``j``."""
    if len(points) == 0 or tree.n == 0:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty
    hits = tree.query_ball_point(points, _grow(radius), return_sorted=False)
    counts = np.fromiter(map(len, hits), dtype=np.intp, count=len(hits))
    if counts.sum() == 0:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty
    return np.repeat(np.arange(len(points)), counts), np.concatenate(hits).astype(np.intp)


def _candidates(mid_a, half_a, range_a, mid_b, half_b, range_b) -> tuple[np.ndarray, np.ndarray]:
    """A superset ``(p, q)`` (unordered) of the block's pairs with
    ``|m_a - m_b| <= max(R_a, R_b) + h_a + h_b``, the bound of either direction's test.

    One search radius for all pairs would be set by the fastest mover (a vehicle covers
    tens of km an hour against sensor ranges of a few km) and take in most of the theatre, so
    the units are split into still ones (``h = 0``) and movers: still pairs within the largest
    range of a still unit; each mover's own radius ``max(R, R_other) + h`` against the still
    units of the other side; movers against movers with the largest bound of the two groups.
    """
    sa, ma = half_a <= 0.0, half_a > 0.0
    sb, mb = half_b <= 0.0, half_b > 0.0
    ia_s, ia_m = np.flatnonzero(sa), np.flatnonzero(ma)
    ib_s, ib_m = np.flatnonzero(sb), np.flatnonzero(mb)
    tree_as, tree_bs = cKDTree(mid_a[ia_s]), cKDTree(mid_b[ib_s])
    ps, qs = [], []
    if len(ia_s) and len(ib_s):
        reach = max(range_a[ia_s].max(), range_b[ib_s].max())
        found = tree_as.sparse_distance_matrix(tree_bs, _grow(reach), output_type="ndarray")
        ps.append(ia_s[found["i"]])
        qs.append(ib_s[found["j"]])
    if len(ia_m) and len(ib_s):
        other = range_b[ib_s].max()
        k, j = _ball_pairs(tree_bs, mid_a[ia_m], np.maximum(range_a[ia_m], other) + half_a[ia_m])
        ps.append(ia_m[k])
        qs.append(ib_s[j])
    if len(ib_m) and len(ia_s):
        other = range_a[ia_s].max()
        k, j = _ball_pairs(tree_as, mid_b[ib_m], np.maximum(range_b[ib_m], other) + half_b[ib_m])
        ps.append(ia_s[j])
        qs.append(ib_m[k])
    if len(ia_m) and len(ib_m):
        reach = (max(range_a[ia_m].max(), range_b[ib_m].max())
                 + half_a[ia_m].max() + half_b[ib_m].max())
        found = cKDTree(mid_a[ia_m]).sparse_distance_matrix(
            cKDTree(mid_b[ib_m]), _grow(reach), output_type="ndarray"
        )
        ps.append(ia_m[found["i"]])
        qs.append(ib_m[found["j"]])
    if not ps:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty
    return np.concatenate(ps).astype(np.intp), np.concatenate(qs).astype(np.intp)


#: The grid of :func:`_grid_pairs` has at most this many cells per bucketed unit (plus
#: :data:`_GRID_MIN_CELLS`): enough that a sensor's reach spans few cells where units are
#: dense, few enough that building and clearing the grid stays linear in the units.
_GRID_CELLS_PER_UNIT = 4
_GRID_MIN_CELLS = 16


@kernel
def _grid_pairs(mid_a, half_a, range_a, mid_b, half_b, range_b):
    """The compiled path of a large block of :func:`block_pairs`: ``(ok, ia, ib, ja, jb)``, the
    same four lists, or ``ok`` false (and nothing computed) where a coordinate or half-track is
    not finite or a range is ``+inf``: no grid bounds those, and the KD-tree path takes them.

    A pair can pass either direction's test ``s = |m_a - m_b| - h_a - h_b <= R`` only if
    ``|m_a - m_b| <= max(R_a, R_b) + h_a + h_b``. The units are split as in
    :func:`_candidates`, into still ones (``h = 0``) and movers, and each pair is looked for
    exactly once, the units of one group bucketed in a uniform grid and those of the other
    reading the cells within ``max(R_q, R*) + h_q + h*`` of their mid-hour position (``R*``,
    ``h*``: the largest range and half-track among the bucketed units):

    1. b's still units bucketed, every unit of a reading;
    2. a's still units bucketed, b's movers reading;
    3. a's movers bucketed, b's movers reading (few: most units sit still most hours).

    Each pair read gets the dense matrix's test, the same floating-point operations in the same
    order (``hypot(dx, dy) - h_a - h_b``; Numba's ``hypot`` is numpy's to the bit), so the
    pairs kept are exactly the dense matrix's; sorting their keys ``a * nb + b`` gives its
    row-major order. A reach is widened by a relative ``1e-9`` (as :func:`_grow` does), far
    beyond the rounding of the test, so no pair the test keeps lies outside the cells read.
    The grid's cells are at least the largest range wide and number at most
    :data:`_GRID_CELLS_PER_UNIT` per bucketed unit: time and memory linear in the units plus
    the pairs near each other."""
    na, nb = mid_a.shape[0], mid_b.shape[0]
    ia = np.empty(0, dtype=np.intp)
    for i in range(na):
        if (not (np.isfinite(mid_a[i, 0]) and np.isfinite(mid_a[i, 1])
                 and np.isfinite(half_a[i])) or range_a[i] == np.inf):
            return False, ia, ia, ia, ia
    for j in range(nb):
        if (not (np.isfinite(mid_b[j, 0]) and np.isfinite(mid_b[j, 1])
                 and np.isfinite(half_b[j])) or range_b[j] == np.inf):
            return False, ia, ia, ia, ia
    keys = np.empty(256, dtype=np.int64)  # (a * nb + b) * 4 + (1 if a sees b) + (2 if b sees a)
    n = 0
    for part in range(3):
        if part == 0:
            g_mid, g_half, g_range, q_mid, q_half, q_range = (
                mid_b, half_b, range_b, mid_a, half_a, range_a)
        else:
            g_mid, g_half, g_range, q_mid, q_half, q_range = (
                mid_a, half_a, range_a, mid_b, half_b, range_b)
        still = part < 2  # the bucketed units: still ones (parts 1, 2) or movers (part 3)
        ng = 0
        g_reach = g_far = -np.inf
        x0 = y0 = np.inf
        x1 = y1 = -np.inf
        for j in range(g_mid.shape[0]):
            if (g_half[j] <= 0.0) == still:
                ng += 1
                if g_range[j] > g_reach:  # false for NaN: ignored, as np.fmax does
                    g_reach = g_range[j]
                g_far = max(g_far, g_half[j])
                x0, x1 = min(x0, g_mid[j, 0]), max(x1, g_mid[j, 0])
                y0, y1 = min(y0, g_mid[j, 1]), max(y1, g_mid[j, 1])
        n_queries = 0
        q_reach = -np.inf
        for p in range(q_mid.shape[0]):
            if part == 0 or q_half[p] > 0.0:
                n_queries += 1
                if q_range[p] > q_reach:
                    q_reach = q_range[p]
        if ng == 0 or n_queries == 0:
            continue
        # cells at least a sensor's reach wide, and not more of them than the units justify
        # (a cell's index is int() of a non-negative quotient: its floor, the same rounding for
        # the units bucketed and the squares read)
        cell = max(g_reach, q_reach)
        if not cell > 0.0:
            cell = max(x1 - x0, y1 - y0, 1.0)
        max_cells = _GRID_CELLS_PER_UNIT * ng + _GRID_MIN_CELLS
        while ((x1 - x0) / cell + 1.0) * ((y1 - y0) / cell + 1.0) > max_cells:
            cell *= 2.0
        gx = int((x1 - x0) / cell) + 1
        gy = int((y1 - y0) / cell) + 1
        # bucket the units by a counting sort: start[c]..start[c + 1] in `members`
        start = np.zeros(gx * gy + 1, dtype=np.intp)
        home = np.empty(g_mid.shape[0], dtype=np.intp)
        for j in range(g_mid.shape[0]):
            if (g_half[j] <= 0.0) == still:
                cx = min(int((g_mid[j, 0] - x0) / cell), gx - 1)
                cy = min(int((g_mid[j, 1] - y0) / cell), gy - 1)
                home[j] = cx + gx * cy
                start[home[j] + 1] += 1
        for c in range(gx * gy):
            start[c + 1] += start[c]
        fill = start[:-1].copy()
        members = np.empty(ng, dtype=np.intp)
        for j in range(g_mid.shape[0]):
            if (g_half[j] <= 0.0) == still:
                members[fill[home[j]]] = j
                fill[home[j]] += 1
        for p in range(q_mid.shape[0]):
            if part > 0 and not q_half[p] > 0.0:
                continue
            reach = max(q_range[p], g_reach) if q_range[p] == q_range[p] else g_reach
            reach += q_half[p] + g_far
            if not reach >= 0.0:  # no pair: a NaN or -inf reach, or a negative one
                continue
            reach = reach * (1.0 + 1e-9) + 1e-9
            # the cells the reach's square overlaps: none if it misses the bucketed units' box;
            # else clipped to the grid in floats first (a far reach cannot overflow an
            # integer), the last cell holding every unit beyond it (as they were bucketed)
            qx, qy = q_mid[p, 0], q_mid[p, 1]
            if qx + reach < x0 or qx - reach > x1 or qy + reach < y0 or qy - reach > y1:
                continue
            cx0 = int(min(max((qx - reach - x0) / cell, 0.0), gx - 1.0))
            cx1 = int(min(max((qx + reach - x0) / cell, 0.0), gx - 1.0))
            cy0 = int(min(max((qy - reach - y0) / cell, 0.0), gy - 1.0))
            cy1 = int(min(max((qy + reach - y0) / cell, 0.0), gy - 1.0))
            for cy in range(cy0, cy1 + 1):
                for cx in range(cx0, cx1 + 1):
                    c = cx + gx * cy
                    for m in range(start[c], start[c + 1]):
                        j = members[m]
                        a, b = (p, j) if part == 0 else (j, p)
                        s = (math.hypot(mid_a[a, 0] - mid_b[b, 0], mid_a[a, 1] - mid_b[b, 1])
                             - half_a[a] - half_b[b])
                        flags = (1 if s <= range_a[a] else 0) + (2 if s <= range_b[b] else 0)
                        if flags:
                            if n == len(keys):
                                grown = np.empty(2 * n, dtype=np.int64)
                                grown[:n] = keys
                                keys = grown
                            keys[n] = (a * nb + b) * 4 + flags
                            n += 1
    keys = np.sort(keys[:n])
    n_ab = n_ba = 0
    for k in range(n):
        n_ab += keys[k] & 1
        n_ba += (keys[k] >> 1) & 1
    ia, ib = np.empty(n_ab, dtype=np.intp), np.empty(n_ab, dtype=np.intp)
    ja, jb = np.empty(n_ba, dtype=np.intp), np.empty(n_ba, dtype=np.intp)
    u = v = 0
    for k in range(n):
        pair = keys[k] >> 2
        if keys[k] & 1:
            ia[u], ib[u] = pair // nb, pair % nb
            u += 1
        if keys[k] & 2:
            ja[v], jb[v] = pair // nb, pair % nb
            v += 1
    return True, ia, ib, ja, jb


class PairFinder:
    """:func:`block_candidates` hour after hour for fixed hostile ``blocks``: the same pairs in
    the same order, recomputing only what changed since the previous call.

    A block's slack matrix ``s = |m_a - m_b| - h_a - h_b`` (:func:`block_pairs`) depends on each
    unit's positions at the start and end of the hour (through its mid-hour position and
    half-track), not on the sensor ranges. So the matrix of each block of at most
    :data:`DENSE_BLOCK_PAIRS` pairs is kept between calls, one row per unit of the force (rows
    of units outside side a are never read), and only the rows and columns of the units whose
    positions changed are recomputed, entry by entry as the dense matrix computes them (in a
    quiet theatre: the few dozen units that moved this hour or the last). The pairs are the
    entries with ``s <= max(R_a, R_b)``, found in one comparison with a matrix of those maxima
    (``-inf`` on the rows outside side a) kept for each set of ranges (one per light), in
    row-major order, then split by the two directions' tests ``s <= R_a`` and ``s <= R_b``:
    exactly :func:`block_pairs`' lists. A larger block goes through :func:`block_pairs` at each
    call.

    With compiled kernels (:mod:`sim.compiled`) an hour is one call finding the changed
    units (:func:`_changed_tracks`) and one per kept block updating, thresholding and splitting
    its matrix (:func:`_kept_pairs`), instead of a dozen numpy calls and a Python loop: the same
    matrices, entry for entry, and the same pairs (tests/test_detect_kernel.py).
    """

    #: Range arrays whose per-block ranges are kept (one per light level).
    KEPT_RANGES = 3

    def __init__(self, blocks: list[tuple[np.ndarray, np.ndarray]]):
        self.blocks = blocks
        self._track = np.empty((0, 4))  # the tracks the kept state is for
        self._kept: list[_KeptSlack | None] = []
        self._mid = np.empty((0, 2))
        self._half = np.empty(0)
        self._changed = np.empty(0, dtype=np.intp)
        self._compiled = False  # whether to take the compiled path, read at each _start
        self._limits: list[tuple[bytes, list]] = []  # (ranges' bytes, per block limits)
        self._last_ranges: np.ndarray | None = None  # the last read-only ranges passed

    def pairs(self, track_km: np.ndarray, range_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(observer, target)`` unit indices of this hour's candidate pairs, as
        :func:`block_candidates` gives them. ``track_km`` is ``(n, 4)``: each unit's position at
        the start of the hour then at its end (``prev_x, prev_y, x, y``); ``range_km`` ``(n,)``.
        Read-only arrays that own their data are kept as they are (others are copied): they
        cannot change before the next call.
        """
        # kept for the next call: a copy, unless it is a read-only array (the model's)
        track = np.array(track_km, dtype=float, order="C",
                         copy=None if _frozen(track_km) else True)
        changed = _NO_PAIRS  # units whose kept rows and columns are still to update
        if track.shape != self._track.shape:
            self._start(track)
        elif self._compiled:  # the changed units found, their mid-hour positions updated, in C
            changed = self._changed[: _changed_tracks(track, self._track, self._mid,
                                                      self._half, self._changed)]  # fmt: skip
            self._track = track
        else:
            # a unit's track as two complex numbers, compared at once: the unit changed if
            # either differs (its two booleans read as one 16-bit number)
            differs = track.view(np.complex128) != self._track.view(np.complex128)
            changed = differs.view(np.uint16)[:, 0].nonzero()[0]
            self._track = track
            if len(changed):
                self._update(changed, track)
        ranges = np.ascontiguousarray(range_km, dtype=float)
        obs: list = []  # per block: a list of unit indices (a kept block) or arrays
        tgt: list = []
        for (a, b), kept, limits in zip(self.blocks, self._kept, self._ranges(ranges),
                                        strict=True):  # fmt: skip
            if kept is None:
                if len(a) and len(b):
                    ra, rb = limits
                    ia, ib, ja, jb = block_pairs(self._mid[a], self._half[a], ra,
                                                 self._mid[b], self._half[b], rb)  # fmt: skip
                    obs += [a[ia], b[jb]]
                    tgt += [b[ib], a[ja]]
                continue
            reach, row_reach, r_unit, r_b, r_unit_list, r_b_list = limits
            if self._compiled:  # the update, the threshold and the split in one call
                o, t = kept.pairs(changed, self._mid, self._half, reach, row_reach, r_unit, r_b)
                if len(o):
                    obs.append(o)
                    tgt.append(t)
                continue
            k = (kept.flat <= reach).nonzero()[0]  # either direction's pairs, row-major
            if len(k):
                o, t = kept.split(k, r_unit_list, r_b_list)
                obs.append(o)
                tgt.append(t)
        if len(obs) == 1:  # one block with pairs (a theatre: garrisons against insurgents)
            return np.asarray(obs[0], dtype=np.intp), np.asarray(tgt[0], dtype=np.intp)
        if not obs:
            return _NO_PAIRS, _NO_PAIRS
        return (np.concatenate([np.asarray(x, dtype=np.intp) for x in obs]),
                np.concatenate([np.asarray(x, dtype=np.intp) for x in tgt]))

    def _start(self, track: np.ndarray) -> None:
        self._track = track
        mid, half = _mid_half(track)
        self._kept = [
            _KeptSlack(b, mid, half) if _keeps(a, b) else None for a, b in self.blocks
        ]
        self._mid, self._half = mid, half
        # the kernels' switch, read here rather than at each hour (reading the environment
        # costs about a microsecond); either path keeps the same matrices
        self._compiled = _changed_tracks.compiled
        self._changed = np.empty(len(track), dtype=np.intp)  # the compiled path's scratch
        self._limits = []
        self._last_ranges = None

    def _update(self, changed: np.ndarray, track: np.ndarray) -> None:
        # the changed units' mid-hour positions and half-tracks, computed once: kept for
        # every unit (a large block reads them all; a kept block's new columns do)
        mid, half = _mid_half(track[changed])
        self._mid[changed], self._half[changed] = mid, half
        for kept in self._kept:
            if kept is not None:
                kept.update(changed, mid, half, self._mid, self._half)

    def _ranges(self, ranges: np.ndarray) -> list:
        """Per block, for these ranges: ``(R_a, R_b)`` for :func:`block_pairs`, or for a kept
        matrix the flat matrix of ``max(R_a, R_b)`` and its rows' maxima (NaN ignored), then
        ``R`` of every unit and ``R_b`` as arrays (the compiled path) and as Python lists
        (:meth:`_KeptSlack.split`). Kept for the last few range arrays (they change with the
        light only, unless sensors do), found by their bytes, or at once if the same read-only
        array (owning its data) as the last call is passed (it cannot have changed: the model
        passes its table's arrays)."""
        if ranges is self._last_ranges:  # the same frozen array as the last call
            return self._limits[0][1]
        self._last_ranges = ranges if _frozen(ranges) else None
        key = ranges.tobytes()
        for i, (kept_key, limits) in enumerate(self._limits):
            if kept_key == key:
                self._limits.insert(0, self._limits.pop(i))  # the last call's first
                return limits
        limits = []
        for (a, b), kept in zip(self.blocks, self._kept, strict=True):
            ra, rb = ranges[a], ranges[b]
            if kept is None:
                limits.append((ra, rb))
                continue
            reach = np.full((len(ranges), len(b)), -np.inf)
            # fmax ignores a NaN range, which sees nothing (s <= NaN is false) in either test
            reach[a] = np.fmax(ra[:, None], rb)
            r_unit = ranges if _frozen(ranges) else ranges.copy()  # kept: must not change
            limits.append((reach.reshape(-1), np.fmax.reduce(reach, axis=1), r_unit, rb,
                           ranges.tolist(), rb.tolist()))
        self._limits = [(key, limits), *self._limits[: self.KEPT_RANGES - 1]]
        return limits


def _frozen(arr: np.ndarray) -> bool:
    """Whether an array cannot change: read-only, and not a view of another array."""
    return isinstance(arr, np.ndarray) and not arr.flags.writeable and arr.flags.owndata


def _keeps(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a block's slack matrix is kept: a small block (:data:`DENSE_BLOCK_PAIRS`) whose
    sides list units in increasing order (the kept rows are in unit order), as
    :func:`hostile_blocks` gives them."""
    return (0 < len(a) * len(b) <= DENSE_BLOCK_PAIRS
            and bool(np.all(a[1:] > a[:-1])) and bool(np.all(b[1:] > b[:-1])))


def _mid_half(track: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mid-hour positions and half-track lengths of ``(n, 4)`` tracks (start, end), computed as
    :func:`block_candidates` computes them."""
    prev, pos = track[:, :2], track[:, 2:]
    mid = pos + prev
    mid *= 0.5
    step = pos - prev
    half = np.hypot(step[:, 0], step[:, 1])
    half *= 0.5
    return mid, half


@kernel
def _changed_tracks(track, old, mid, half, changed):
    """The compiled path of the finder's changed units: writes the indices of the units whose
    track (a row of ``(n, 4)`` ``track``) differs from ``old`` in any coordinate (``!=`` as
    numpy compares them) into ``changed``, in increasing order, and returns their count; their
    rows of ``mid`` and ``half`` become :func:`_mid_half`'s values of the new track (the same
    operations in the same order: ``(pos + prev) * 0.5``, ``hypot(pos - prev) * 0.5``)."""
    count = 0
    for i in range(track.shape[0]):
        px, py, x, y = track[i, 0], track[i, 1], track[i, 2], track[i, 3]
        if px != old[i, 0] or py != old[i, 1] or x != old[i, 2] or y != old[i, 3]:
            changed[count] = i
            count += 1
            mid[i, 0] = (x + px) * 0.5
            mid[i, 1] = (y + py) * 0.5
            half[i] = math.hypot(x - px, y - py) * 0.5
    return count


@kernel
def _kept_pairs(changed, mid, half, col, b, slack, row_low, reach, row_reach, r_unit, r_b, out):
    """The compiled path of :class:`_KeptSlack`: :meth:`~_KeptSlack.update` for the units
    ``changed`` (``mid``, ``half``: every unit's, theirs already new), then the pairs of the
    matrix as ``flat <= reach`` and :meth:`~_KeptSlack.split` find them, written to ``out``
    (``(2, 2 * slack.size)``: observers, targets); returns their count.

    Every entry of a changed row or column is :func:`_slack`'s ``hypot(m_u - m_b) - h_u - h_b``
    of the current positions, as the numpy path leaves it (its rows, computed before the
    columns, are overwritten where a column changed too). ``row_low`` holds a lower bound of
    each row's entries (NaN aside): exact for a row just computed or scanned, lowered by a new
    column entry. A row with ``row_low > row_reach`` (the row's largest ``reach``) has no pair
    and is skipped: most rows, most hours, so the scan reads little of the matrix. The pairs
    where a sees b are written from ``out[:, 0]``, those where b sees a from
    ``out[:, slack.size]``, then moved after the first: both lists in row-major order, one
    after the other."""
    n, nb = slack.shape
    for c in range(len(changed)):
        u = changed[c]
        low = np.inf
        for j in range(nb):
            v = b[j]
            s = math.hypot(mid[u, 0] - mid[v, 0], mid[u, 1] - mid[v, 1]) - half[u] - half[v]
            slack[u, j] = s
            if s < low:  # false for NaN: ignored
                low = s
        row_low[u] = low
        j = col[u]
        if j >= 0:  # a unit of side b: its column too, with every unit's current position
            for i in range(n):
                s = math.hypot(mid[i, 0] - mid[u, 0], mid[i, 1] - mid[u, 1]) - half[i] - half[u]
                slack[i, j] = s
                if s < row_low[i]:
                    row_low[i] = s
    size = n * nb
    n_ab = n_ba = 0
    for i in range(n):
        if not row_low[i] <= row_reach[i]:
            continue
        low = np.inf
        for j in range(nb):
            s = slack[i, j]
            if s < low:
                low = s
            if s <= reach[i * nb + j]:
                if s <= r_unit[i]:
                    out[0, n_ab] = i
                    out[1, n_ab] = b[j]
                    n_ab += 1
                if s <= r_b[j]:
                    out[0, size + n_ba] = b[j]
                    out[1, size + n_ba] = i
                    n_ba += 1
        row_low[i] = low
    for t in range(n_ba):
        out[0, n_ab + t] = out[0, size + t]
        out[1, n_ab + t] = out[1, size + t]
    return n_ab + n_ba


class _KeptSlack:
    """One block's slack matrix (:func:`_slack`), a row per unit of the force against side b's
    units, and side b's mid-hour positions and half-tracks (the numpy path's copy); updated
    unit by unit."""

    def __init__(self, b: np.ndarray, mid: np.ndarray, half: np.ndarray):
        self.b = np.array(b, dtype=np.intp)
        self.b_list = b.tolist()
        self.nb = len(b)
        self.col = np.full(len(mid), -1, dtype=np.intp)  # each unit's column (-1: not in b)
        self.col[b] = np.arange(len(b))
        self.mid_b, self.half_b = mid[b], half[b]
        self.mid_b_t = self.mid_b.T.copy()  # (2, nb): both coordinates' differences in one call
        self.slack = _slack(mid, half, self.mid_b, self.half_b)
        self.flat = self.slack.reshape(-1)  # a view: row-major (unit, b) order
        # the compiled path's (:meth:`pairs`; it reads side b's positions from every unit's):
        # its rows' lower bounds (none until a row is first scanned), and its pairs
        self.row_low = np.full(len(mid), -np.inf)
        self._out: np.ndarray | None = None

    def update(self, changed: np.ndarray, mid: np.ndarray, half: np.ndarray,
               every_mid: np.ndarray, every_half: np.ndarray) -> None:
        """Units ``changed`` now have mid-hour positions ``mid`` and half-tracks ``half``
        (``every_mid``, ``every_half``: every unit's, these included, for whole columns)."""
        # _slack's entries for these rows, computed the same way
        diff = mid[:, :, None] - self.mid_b_t
        rows = np.hypot(diff[:, 0], diff[:, 1])
        rows -= half[:, None]
        rows -= self.half_b
        self.slack[changed] = rows
        cols = self.col[changed]
        if cols.max() >= 0:
            in_b = cols >= 0
            cols = cols[in_b]
            self.mid_b[cols], self.half_b[cols] = mid[in_b], half[in_b]
            self.mid_b_t = self.mid_b.T.copy()
            # after the rows: whole columns, with every unit's current position
            self.slack[:, cols] = _slack(every_mid, every_half, mid[in_b], half[in_b])

    def pairs(self, changed: np.ndarray, every_mid: np.ndarray, every_half: np.ndarray,
              reach: np.ndarray, row_reach: np.ndarray, r_unit: np.ndarray, r_b: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """The compiled path (:func:`_kept_pairs`): :meth:`update`'s matrix for the units
        ``changed`` (``every_mid``, ``every_half``: every unit's, theirs already new), then
        :meth:`split` of the entries ``flat <= reach`` (``row_reach``: each row's largest),
        as ``(observers, targets)`` arrays."""
        if self._out is None:
            self._out = np.empty((2, 2 * self.slack.size), dtype=np.intp)
        count = _kept_pairs(changed, every_mid, every_half, self.col, self.b, self.slack,
                            self.row_low, reach, row_reach, r_unit, r_b, self._out)
        if count == 0:
            return _NO_PAIRS, _NO_PAIRS
        found = self._out[:, :count].copy()  # the buffer is the next call's
        return found[0], found[1]

    def split(self, k: np.ndarray, r_unit: list, r_b: list) -> tuple[list, list]:
        """The pairs among flat entries ``k`` (increasing), as ``(observers, targets)`` lists:
        where a sees b (``s <= R_a``), then where b sees a (``s <= R_b``), each in ``k``'s
        order (a few pairs an hour: plain Python beats a dozen numpy calls)."""
        nb, b = self.nb, self.b_list
        obs_ab, tgt_ab, obs_ba, tgt_ba = [], [], [], []
        for kk, s in zip(k.tolist(), self.flat[k].tolist(), strict=True):
            u, j = divmod(kk, nb)
            if s <= r_unit[u]:
                obs_ab.append(u)
                tgt_ab.append(b[j])
            if s <= r_b[j]:
                obs_ba.append(b[j])
                tgt_ba.append(u)
        return obs_ab + obs_ba, tgt_ab + tgt_ba


def hostile_blocks(alive: np.ndarray, faction: np.ndarray, hostile: np.ndarray
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The living units split into blocks ``(a, b)`` such that every unit of ``a`` is hostile
    to every unit of ``b`` and each hostile pair of units is in exactly one block.

    Factions with the same enemies (equal rows of the symmetric ``hostile`` matrix) form a
    group; groups are hostile all-or-nothing, so a theatre of garrisons against insurgents is
    one block, and :func:`detect_among` needs one distance matrix per block."""
    groups: dict[bytes, list[int]] = {}
    for fi in range(len(hostile)):
        groups.setdefault(hostile[fi].tobytes(), []).append(fi)
    members = list(groups.values())
    blocks = []
    for gi, ga in enumerate(members):
        for gb in members[gi + 1 :]:
            if hostile[ga[0], gb[0]]:
                a = np.flatnonzero(alive & np.isin(faction, ga))
                b = np.flatnonzero(alive & np.isin(faction, gb))
                if len(a) and len(b):
                    blocks.append((a, b))
    return blocks


def new_contacts(seen_hour: np.ndarray, faction: np.ndarray, observer: np.ndarray,
                 target: np.ndarray, not_seen_since: int) -> list[tuple[int, int]]:
    """``(observer, target)`` of this hour's detections that are *new contacts*: the observer's
    faction had not seen the target since ``not_seen_since`` (``seen_hour``: the factions'
    last-seen hours before this hour's detections). One per (faction, target), first
    observer first."""
    if len(target) == 0:
        return []
    before = seen_hour[faction[observer], target]
    out, logged = [], set()
    for k in np.flatnonzero(before < not_seen_since).tolist():
        o, tg = int(observer[k]), int(target[k])
        if (faction[o], tg) not in logged:
            logged.add((faction[o], tg))
            out.append((o, tg))
    return out
