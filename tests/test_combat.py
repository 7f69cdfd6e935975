"""Engagements against Lanchester's and Deitchman's laws, and the modifiers' exact effects.

Reference values come from two independent sources computed here, never hard-coded:
* the deterministic laws (closed forms of the ODEs), and
* the exact mean of the continuous-time stochastic process the sub-step model approximates
  (a pure-death Markov chain, solved by dynamic programming over its states).
The stochastic mean differs from the ODE by a small "Jensen gap" (e.g. 70.6 vs 71.4 survivors
for 100 v 70 under the square law) that no number of replicates removes, so each law test checks
the simulation against the exact stochastic mean within a 99% CI plus a stated allowance for the
sub-step discretisation, and the ODE value within that plus the computed gap.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from pydantic import ValidationError

from sim.rules.combat import (
    DEFAULT_COMBAT,
    CombatConfig,
    FireMode,
    SideState,
    SideStatus,
    area_rate_matching_aimed,
    engage,
    engage_many,
)
from sim.world.clock import LightLevel

Z99 = 2.576


def chain_means(
    a0: int, b0: int, rate_a_loses: Callable[[int, int], float],
    rate_b_loses: Callable[[int, int], float],
) -> tuple[float, float, float]:
    """Exact E[a survivors], E[b survivors], E[duration] of the continuous-time death chain in
    which side a loses one fighter at ``rate_a_loses(a, b)`` and b at ``rate_b_loses(a, b)``,
    until one side is gone."""
    prob = np.zeros((a0 + 1, b0 + 1))
    prob[a0, b0] = 1.0
    duration = 0.0
    for total in range(a0 + b0, 1, -1):  # every event removes one fighter
        for a in range(max(1, total - b0), min(a0, total - 1) + 1):
            b = total - a
            p = prob[a, b]
            if p == 0.0:
                continue
            la, lb = rate_a_loses(a, b), rate_b_loses(a, b)
            duration += p / (la + lb)
            prob[a - 1, b] += p * la / (la + lb)
            prob[a, b - 1] += p * lb / (la + lb)
            prob[a, b] = 0.0
    return (
        float(prob.sum(axis=1) @ np.arange(a0 + 1)),
        float(prob.sum(axis=0) @ np.arange(b0 + 1)),
        duration,
    )


def run(rng, a: SideState, b: SideState, reps: int, cfg: CombatConfig, **kw):
    """``reps`` independent copies of one engagement, as arrays."""
    res = engage_many(rng, [a] * reps, [b] * reps, cfg, **kw)
    return {
        "sa": np.array([r.survivors_a for r in res]),
        "sb": np.array([r.survivors_b for r in res]),
        "la": np.array([r.losses_a for r in res]),
        "lb": np.array([r.losses_b for r in res]),
        "hours": np.array([r.hours for r in res]),
        "winner": [r.winner for r in res],
        "res": res,
    }


def ci99(x: np.ndarray) -> float:
    return Z99 * x.std(ddof=1) / math.sqrt(x.size)


# --------------------------------------------------------------------------- Lanchester square
# b = r = 0.01 kills per shooter per hour, 10 sub-steps an hour: a shooter's kill probability
# per sub-step is 0.001 and a whole side's expected kills per sub-step at most 0.1, so two
# kills within one sub-step (the only way simultaneous sub-step fire departs from the
# continuous-time chain) are rare. Measured against the exact chain over 20,000 replicates the
# bias is under 0.1 fighter; DISCRETISATION_ALLOWANCE states that.
SQUARE_CFG = CombatConfig(substeps_per_hour=10)
DISCRETISATION_ALLOWANCE = 0.1


@pytest.mark.parametrize("red0", [50, 70, 30])
def test_lanchester_square_law(red0):
    blue0, b, r, reps = 100, 0.01, 0.01, 1000
    rng = np.random.default_rng(100 + red0)
    out = run(
        rng, SideState(blue0, kill_rate_per_hour=b), SideState(red0, kill_rate_per_hour=r),
        reps, SQUARE_CFG, hours=400.0,
    )
    assert np.all(out["sb"] == 0) and set(out["winner"]) == {"a"}  # every battle fought out

    law = math.sqrt(blue0**2 - (r / b) * red0**2)
    t_star = math.atanh(red0 / blue0 * math.sqrt(r / b)) / math.sqrt(b * r)
    exact, _, exact_t = chain_means(blue0, red0, lambda B, R: r * R, lambda B, R: b * B)
    mean = out["sa"].mean()
    tol = ci99(out["sa"]) + DISCRETISATION_ALLOWANCE
    assert abs(mean - exact) <= tol, (mean, exact, tol)
    assert abs(law - exact) < 1.0  # the stochastic mean sits within a fighter of Lanchester's
    assert abs(mean - law) <= tol + abs(law - exact), (mean, law)
    # Battle length: within 5% of the ODE's annihilation time (and 99% CI of the exact mean).
    assert abs(out["hours"].mean() - t_star) <= 0.05 * t_star
    assert abs(out["hours"].mean() - exact_t) <= ci99(out["hours"]) + 0.1


def test_square_law_worked_numbers():
    """The module's reference formulas reproduce the worked numbers of the design notes."""
    assert math.sqrt(100**2 - 50**2) == pytest.approx(86.6, abs=0.05)
    assert math.atanh(0.5) / 0.01 == pytest.approx(54.9, abs=0.05)
    assert math.sqrt(100**2 - 90**2) == pytest.approx(43.6, abs=0.05)
    assert math.atanh(0.9) / 0.01 == pytest.approx(147.2, abs=0.05)


# --------------------------------------------------------------------------- Lanchester linear
@pytest.mark.parametrize(("blue0", "red0", "b", "r"), [(100, 50, 0.002, 0.002),
                                                        (60, 40, 0.002, 0.001)])
def test_lanchester_linear_law(blue0, red0, b, r):
    """Area fire both ways: survivors B0 - (r/b) R0."""
    rng = np.random.default_rng(blue0 + red0)
    out = run(
        rng,
        SideState(blue0, fire=FireMode.AREA, area_kill_rate_per_hour=b),
        SideState(red0, fire=FireMode.AREA, area_kill_rate_per_hour=r),
        1000, SQUARE_CFG, hours=600.0,
    )
    assert np.all((out["sa"] == 0) | (out["sb"] == 0))
    law = blue0 - (r / b) * red0
    exact, _, _ = chain_means(blue0, red0, lambda B, R: r * B * R, lambda B, R: b * B * R)
    mean = out["sa"].mean()
    tol = ci99(out["sa"]) + DISCRETISATION_ALLOWANCE
    assert abs(mean - exact) <= tol, (mean, exact, tol)
    assert abs(mean - law) <= tol + abs(law - exact), (mean, law)


# --------------------------------------------------------------------------- Deitchman ambush
# Guerrillas fire aimed at g = 0.5 per hour each; soldiers reply with area fire at s per
# soldier per guerrilla. 60 sub-steps an hour keeps a guerrilla's per-sub-step kill probability
# at 0.008 (20 guerrillas: 0.17 expected kills per sub-step).
DEITCHMAN_CFG = CombatConfig(substeps_per_hour=60)


@pytest.mark.parametrize("s", [0.005, 0.001])
def test_deitchman_ambush_law(s):
    soldiers0, guerrillas0, g, reps = 100, 20, 0.5, 1000
    rng = np.random.default_rng(int(s * 1e6))
    out = run(
        rng,
        SideState(soldiers0, fire=FireMode.AREA, area_kill_rate_per_hour=s),
        SideState(guerrillas0, kill_rate_per_hour=g),
        reps, DEITCHMAN_CFG, hours=1000.0,
    )
    assert np.all((out["sa"] == 0) | (out["sb"] == 0))
    exact_s, exact_g, _ = chain_means(
        soldiers0, guerrillas0, lambda S, G: g * G, lambda S, G: s * S * G
    )
    # Parabolic invariant G - G0 = (s / 2g)(S^2 - S0^2): solve for the side left standing.
    soldiers_win = s * soldiers0**2 > 2 * g * guerrillas0
    if soldiers_win:
        law_s, law_g = math.sqrt(soldiers0**2 - 2 * g * guerrillas0 / s), 0.0
    else:
        law_s, law_g = 0.0, guerrillas0 - s / (2 * g) * soldiers0**2
    for key, exact, law in (("sa", exact_s, law_s), ("sb", exact_g, law_g)):
        mean = out[key].mean()
        tol = ci99(out[key]) + DISCRETISATION_ALLOWANCE
        assert abs(mean - exact) <= tol, (key, mean, exact, tol)
        assert abs(law - exact) < 0.5
        assert abs(mean - law) <= tol + abs(law - exact), (key, mean, law)
    # The predicted side wins nearly always (exact chain: > 99% for both cases).
    wins = np.mean([w == ("a" if soldiers_win else "b") for w in out["winner"]])
    assert wins >= 0.97


def test_deitchman_worked_numbers():
    assert math.sqrt(100**2 - 2 * 0.5 * 20 / 0.005) == pytest.approx(77.5, abs=0.05)
    assert pytest.approx(10.0) == 20 - 0.001 / (2 * 0.5) * 100**2


# --------------------------------------------------------------------------- modifiers, exactly
ONE_STEP = CombatConfig(
    substeps_per_hour=12, night_fire_factor=0.5, twilight_fire_factor=0.75,
    fortification_factor=0.4, concealment_effect=0.8, area_concealment_effect=0.0,
)
TARGETS = 100_000  # so many that the kill cap never binds


@pytest.mark.parametrize(
    ("target_kw", "light", "factor"),
    [
        ({}, LightLevel.DAY, 1.0),
        ({}, LightLevel.NIGHT, 0.5),
        ({}, LightLevel.TWILIGHT, 0.75),
        ({"fortified": True}, LightLevel.DAY, 0.4),
        ({"concealment": 0.5}, LightLevel.DAY, 1 - 0.8 * 0.5),
        ({"fortified": True, "concealment": 0.9}, LightLevel.NIGHT, 0.4 * (1 - 0.8 * 0.9) * 0.5),
    ],
    ids=["day", "night", "twilight", "fortified", "concealed", "all"],
)
def test_one_substep_of_aimed_fire_kills_the_stated_expectation(target_kw, light, factor):
    """Over one sub-step, kills ~ Binomial(shooters, 1 - exp(-k dt m)): the mean over 400
    engagements lies in the 99% binomial CI."""
    rng = np.random.default_rng(11)
    shooters, k, reps = 1000, 1.2, 400
    out = run(
        rng, SideState(shooters, kill_rate_per_hour=k), SideState(TARGETS, **target_kw),
        reps, ONE_STEP, hours=1 / 12, light=light,
    )
    p = -math.expm1(-k / 12 * factor)
    n = shooters * reps
    assert abs(out["lb"].sum() / n - p) <= Z99 * math.sqrt(p * (1 - p) / n)
    assert np.all(out["la"] == 0)


@pytest.mark.parametrize("concealment", [0.0, 0.9])
def test_one_substep_of_area_fire_kills_the_stated_expectation(concealment):
    """Area fire: each target dies with q = 1 - exp(-s * shooters * dt); concealment does not
    shield from it (area_concealment_effect = 0)."""
    rng = np.random.default_rng(12)
    shooters, targets, s, reps = 50, 1000, 0.004, 400
    out = run(
        rng,
        SideState(shooters, fire=FireMode.AREA, area_kill_rate_per_hour=s),
        SideState(targets, concealment=concealment),
        reps, ONE_STEP, hours=1 / 12,
    )
    q = -math.expm1(-s * shooters / 12)
    n = targets * reps
    assert abs(out["lb"].sum() / n - q) <= Z99 * math.sqrt(q * (1 - q) / n)


def test_aimed_kills_are_capped_at_the_targets_strength():
    out = run(np.random.default_rng(13), SideState(500, kill_rate_per_hour=50.0), SideState(3),
              50, ONE_STEP, hours=1 / 12)
    assert np.all(out["lb"] == 3) and np.all(out["sb"] == 0)


def test_surprised_side_holds_fire_in_the_first_substep():
    rng = np.random.default_rng(14)
    out = run(
        rng, SideState(20, kill_rate_per_hour=3.0),
        SideState(20, kill_rate_per_hour=3.0, surprised=True),
        500, ONE_STEP, hours=1 / 12,
    )
    assert np.all(out["la"] == 0)
    assert out["lb"].sum() > 0
    # Two silent sub-steps when configured.
    cfg2 = ONE_STEP.model_copy(update={"ambush_silent_substeps": 2})
    out = run(rng, SideState(20, kill_rate_per_hour=3.0),
              SideState(20, kill_rate_per_hour=3.0, surprised=True), 500, cfg2, hours=2 / 12)
    assert np.all(out["la"] == 0)


# ------------------------------------------------------------------------ modifiers, whole fights
def _mean_diff_significant(x: np.ndarray, y: np.ndarray) -> bool:
    """x's mean exceeds y's by more than 3 standard errors of the difference."""
    se = math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
    return x.mean() - y.mean() > 3 * se


def test_ambush_lowers_the_ambushers_losses():
    rng = np.random.default_rng(15)
    cfg = CombatConfig(substeps_per_hour=12, ambush_silent_substeps=3)
    raiders = SideState(12, kill_rate_per_hour=1.0)
    plain = run(rng, raiders, SideState(30, kill_rate_per_hour=0.5), 2000, cfg)
    ambush = run(rng, raiders, SideState(30, kill_rate_per_hour=0.5, surprised=True), 2000, cfg)
    assert _mean_diff_significant(plain["la"], ambush["la"])


def test_fortification_lowers_the_defenders_losses():
    rng = np.random.default_rng(16)
    attackers = SideState(40, kill_rate_per_hour=0.6)
    open_ground = run(rng, attackers, SideState(30, kill_rate_per_hour=0.5), 2000, ONE_STEP)
    dug_in = run(rng, attackers, SideState(30, kill_rate_per_hour=0.5, fortified=True), 2000,
                 ONE_STEP)
    assert _mean_diff_significant(open_ground["lb"], dug_in["lb"])
    # Dug-in defenders last longer, so the attackers lose at least as many.
    assert not _mean_diff_significant(open_ground["la"], dug_in["la"])


def test_night_lowers_total_fire():
    rng = np.random.default_rng(17)
    a, b = SideState(30, kill_rate_per_hour=0.5), SideState(30, kill_rate_per_hour=0.5)
    day = run(rng, a, b, 2000, ONE_STEP)
    night = run(rng, a, b, 2000, ONE_STEP, light=LightLevel.NIGHT)
    assert _mean_diff_significant(day["la"] + day["lb"], night["la"] + night["lb"])


# --------------------------------------------------------------------------- ending a fight
def test_breakoff_at_the_loss_threshold():
    rng = np.random.default_rng(18)
    out = run(
        rng, SideState(30, kill_rate_per_hour=0.3, breakoff_loss_fraction=0.3),
        SideState(30, kill_rate_per_hour=0.6), 1000, ONE_STEP, hours=10.0,
    )
    status = np.array([r.status_a for r in out["res"]])
    broke = status == SideStatus.BROKE_OFF_LOSSES
    assert broke.mean() > 0.95
    assert np.all(out["la"][broke] >= 9)  # 30% of 30
    # Before the last sub-step it had lost fewer than 9: the overshoot is one sub-step's kills.
    assert np.all(out["la"][broke] < 9 + 8)
    assert all(out["winner"][i] == "b" for i in np.flatnonzero(broke))
    assert np.all(out["la"][status == SideStatus.HOLDING] < 9)
    # Threshold 1.0: fights to the end.
    out = run(rng, SideState(30, kill_rate_per_hour=0.3), SideState(30, kill_rate_per_hour=0.6),
              200, ONE_STEP, hours=50.0)
    assert np.all((out["sa"] == 0) | (out["sb"] == 0))


@pytest.mark.parametrize(("ammo", "steps"), [(0.25, 3), (0.3, 4), (0.0, 1)])
def test_ammunition_exhaustion_ends_the_fight(ammo, steps):
    rng = np.random.default_rng(19)
    out = run(
        rng, SideState(50, kill_rate_per_hour=0.01, ammo_hours=ammo),
        SideState(50, kill_rate_per_hour=0.01), 50, ONE_STEP, hours=2.0,
    )
    for r in out["res"]:
        assert r.status_a == SideStatus.BROKE_OFF_AMMO and r.status_b == SideStatus.HOLDING
        assert r.substeps == steps and r.winner == "b"
        assert r.ammo_used_hours_a == pytest.approx(ammo)
        assert r.ammo_used_hours_b == pytest.approx(steps / 12)
    if ammo == 0.0:
        assert np.all(out["lb"] == 0)  # no ammunition, no fire


def test_time_running_out_is_a_draw():
    r = engage(np.random.default_rng(20), SideState(50, kill_rate_per_hour=0.01),
               SideState(50, kill_rate_per_hour=0.01), ONE_STEP, hours=1.0)
    assert (r.status_a, r.status_b, r.winner) == (SideStatus.HOLDING, SideStatus.HOLDING, None)
    assert r.substeps == 12 and r.hours == pytest.approx(1.0)
    assert r.losses_a + r.survivors_a == 50


def test_empty_side_loses_without_a_fight():
    r = engage(np.random.default_rng(21), SideState(10, kill_rate_per_hour=1.0), SideState(0))
    assert r.winner == "a" and r.status_b == SideStatus.DESTROYED and r.substeps == 0


def test_engage_is_engage_many_of_one_and_reproducible():
    a = SideState(20, kill_rate_per_hour=0.8, breakoff_loss_fraction=0.4)
    b = SideState(15, kill_rate_per_hour=1.0, concealment=0.5, surprised=True)
    one = engage(np.random.default_rng(5), a, b, hours=3.0, light=LightLevel.TWILIGHT)
    many = engage_many(np.random.default_rng(5), [a], [b], hours=3.0, light=LightLevel.TWILIGHT)
    assert one == many[0]
    assert one == engage(np.random.default_rng(5), a, b, hours=3.0, light=LightLevel.TWILIGHT)


def test_area_rate_matching_aimed():
    """At the start, area fire at the matching rate kills as fast as aimed fire would."""
    s = area_rate_matching_aimed(0.6, 25)
    assert s * 25 == pytest.approx(0.6)
    assert area_rate_matching_aimed(0.6, 0) == 0.6


def test_bad_input_is_a_one_line_error():
    with pytest.raises(ValueError, match="strength"):
        SideState(-1)
    with pytest.raises(ValueError, match="strength"):
        SideState(2.5)
    with pytest.raises(ValueError, match="kill_rate_per_hour"):
        SideState(5, kill_rate_per_hour=-0.1)
    with pytest.raises(ValueError, match="concealment"):
        SideState(5, concealment=1.5)
    with pytest.raises(ValueError, match="breakoff_loss_fraction"):
        SideState(5, breakoff_loss_fraction=2.0)
    with pytest.raises(ValueError):
        SideState(5, fire="sniping")
    with pytest.raises(ValidationError, match="substeps_per_hour"):
        CombatConfig(substeps_per_hour=0)
    with pytest.raises(ValidationError, match="extra"):
        CombatConfig(night_factor=0.5)
    with pytest.raises(ValueError, match="pair up"):
        engage_many(np.random.default_rng(0), [SideState(1)], [])


def _random_side(rng: np.random.Generator) -> SideState:
    """A side drawn over every field's range, edge values included (empty sides, no ammunition,
    no breakoff, area fire)."""
    return SideState(
        strength=int(rng.choice([0, 1, 2, int(rng.integers(1, 60))])),
        kill_rate_per_hour=float(rng.choice([0.0, rng.uniform(0.0, 3.0)])),
        fire=FireMode.AREA if rng.random() < 0.3 else FireMode.AIMED,
        area_kill_rate_per_hour=float(rng.uniform(0.0, 0.2)),
        fortified=bool(rng.random() < 0.3),
        concealment=float(rng.choice([0.0, 1.0, rng.uniform()])),
        ammo_hours=float(rng.choice([math.inf, 0.0, rng.uniform(0.0, 0.5), rng.uniform(0, 3)])),
        breakoff_loss_fraction=float(rng.choice([1.0, 0.0, rng.uniform()])),
        surprised=bool(rng.random() < 0.4),
    )


@pytest.mark.parametrize("seed", range(40))
def test_scalar_fight_is_the_array_fight(seed):
    """The plain-Python path for a few engagements (``_engage_scalar``), and for one,
    gives the array path's results and leave the generator in the same state,
    on random sides and settings."""
    from sim.rules.combat import _engage_arrays, _engage_scalar

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 12))
    a = [_random_side(rng) for _ in range(n)]
    b = [_random_side(rng) for _ in range(n)]
    cfg = CombatConfig(
        substeps_per_hour=int(rng.choice([1, 5, 12, 60])),
        night_fire_factor=float(rng.uniform()), twilight_fire_factor=float(rng.uniform()),
        fortification_factor=float(rng.uniform()), concealment_effect=float(rng.uniform()),
        area_concealment_effect=float(rng.uniform()),
        ambush_silent_substeps=int(rng.integers(0, 4)),
    )
    dt = 1.0 / cfg.substeps_per_hour
    n_steps = int(rng.integers(0, 3 * cfg.substeps_per_hour + 1))
    light_f = float(rng.choice([1.0, cfg.twilight_fire_factor, cfg.night_fire_factor]))
    g1, g2 = np.random.default_rng(seed + 1000), np.random.default_rng(seed + 1000)
    arrays = _engage_arrays(g1, a, b, cfg, dt, n_steps, light_f)
    scalar = _engage_scalar(g2, a, b, cfg, dt, n_steps, light_f)
    assert scalar == arrays
    assert g1.bit_generator.state == g2.bit_generator.state
    assert g1.random() == g2.random()
    # and each engagement alone
    for e in range(n):
        g1, g2 = np.random.default_rng(seed + e), np.random.default_rng(seed + e)
        one = _engage_scalar(g2, a[e : e + 1], b[e : e + 1], cfg, dt, n_steps, light_f)[0]
        assert one == _engage_arrays(g1, a[e : e + 1], b[e : e + 1], cfg, dt, n_steps, light_f)[0]
        assert g1.bit_generator.state == g2.bit_generator.state


def test_engage_many_fights_a_few_engagements_in_plain_python():
    """``engage_many`` takes the scalar path up to ``FEW_ENGAGEMENTS``, the arrays above, with
    the same results."""
    from sim.rules import combat

    rng = np.random.default_rng(3)
    a = [_random_side(rng) for _ in range(combat.FEW_ENGAGEMENTS + 1)]
    b = [_random_side(rng) for _ in range(combat.FEW_ENGAGEMENTS + 1)]
    for n in (1, combat.FEW_ENGAGEMENTS, combat.FEW_ENGAGEMENTS + 1):
        got = engage_many(np.random.default_rng(9), a[:n], b[:n], hours=2.0)
        cfg = DEFAULT_COMBAT
        want = combat._engage_arrays(np.random.default_rng(9), a[:n], b[:n], cfg,
                                     1.0 / cfg.substeps_per_hour, 2 * cfg.substeps_per_hour, 1.0)
        assert got == want
