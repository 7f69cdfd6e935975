"""Engagements: stochastic Lanchester-type attrition in sub-steps of an hour.

The model
---------
An engagement between two sides ``a`` and ``b`` is fought in sub-steps of
``dt = 1 / substeps_per_hour`` hours. In each sub-step both sides fire simultaneously, using their
strengths at the start of the sub-step, and the losses are then applied together. Fire takes
one of two forms, Lanchester's two classic laws in stochastic form:

* **Aimed fire** (the shooter sees its target): each of the ``n`` shooters kills with
  probability ``p = 1 - exp(-k dt m)``, so kills ~ Binomial(n, p), capped at the target's
  strength. ``k`` is ``kill_rate_per_hour`` (kills per shooter per hour) and ``m`` the product of
  the modifiers below. In the limit of small ``dt`` this is the square law dB/dt = -r R, whose
  invariant is b (B0^2 - B^2) = r (R0^2 - R^2).
* **Area fire** (the shooter fires at where the enemy might be, as troops do when ambushed by
  an enemy they cannot see): each target dies with probability ``q = 1 - exp(-s n dt m)``, so
  kills ~ Binomial(targets, q). ``s`` is ``area_kill_rate_per_hour`` (per shooter *per target*
  per hour): the fewer targets, the fewer hits, the linear law dB/dt = -r B R. Aimed fire
  against area fire is Deitchman's guerrilla-ambush model, with the parabolic invariant
  G - G0 = (s / 2g)(S^2 - S0^2).

Using ``1 - exp(-rate dt)`` rather than ``rate dt`` keeps each sub-step a valid probability and
makes the sub-step count a resolution setting, not a change of rates.

Modifiers (all in :class:`CombatConfig`), multiplying the *rate* of the fire they affect:

* light: both sides' fire x ``twilight_fire_factor`` or ``night_fire_factor``;
* a fortified side's incoming fire x ``fortification_factor`` (walls and berms);
* a concealed side's incoming *aimed* fire x ``1 - concealment_effect * concealment``
  (area fire is not aimed, so only ``area_concealment_effect`` applies to it, default none);
* ambush: a ``surprised`` side holds its fire for the first ``ambush_silent_substeps``.

A side breaks off (and the engagement ends) when its losses reach ``breakoff_loss_fraction`` of
its starting strength (and at least one fighter), or when its ammunition runs out: a side
carries ``ammo_hours`` of sustained fire and each sub-step of firing uses ``dt``. The engagement
also ends when a side is destroyed or the time runs out. The side left holding the field wins;
if the time runs out, or both sides end at once, nobody wins.

Randomness only comes from the ``numpy.random.Generator`` passed in. :func:`engage_many`
resolves any number of independent engagements at once (numpy over engagements, a Python loop
over sub-steps only; a few engagements, as in a model's hour, in plain Python numbers, which
give the same results and draws); :func:`engage` is the single-engagement form of the same code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sim.world.clock import LightLevel

__all__ = [
    "CombatConfig",
    "EngagementResult",
    "FireMode",
    "SideState",
    "SideStatus",
    "area_rate_matching_aimed",
    "engage",
    "engage_many",
]


class FireMode(StrEnum):
    """How a side fires: at targets it sees (aimed) or at an area (unaimed)."""

    AIMED = "aimed"
    AREA = "area"


class SideStatus(IntEnum):
    """How a side came out of an engagement."""

    HOLDING = 0
    """Still in the fight (it won, or the time ran out)."""
    DESTROYED = 1
    BROKE_OFF_LOSSES = 2
    """Losses reached its ``breakoff_loss_fraction``."""
    BROKE_OFF_AMMO = 3
    """Ammunition ran out."""


class CombatConfig(BaseModel):
    """Rules of an engagement (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    substeps_per_hour: int = Field(
        12, ge=1, le=3600, description="Resolution: 12 = 5-minute steps."
    )
    night_fire_factor: float = Field(
        0.5, ge=0.0, le=1.0, description="Both sides' fire rate at night."
    )
    twilight_fire_factor: float = Field(0.75, ge=0.0, le=1.0)
    fortification_factor: float = Field(
        0.4, ge=0.0, le=1.0, description="Incoming fire rate on a fortified side."
    )
    concealment_effect: float = Field(
        1.0, ge=0.0, le=1.0,
        description="Incoming aimed fire rate x (1 - concealment_effect * concealment).",
    )
    area_concealment_effect: float = Field(
        0.0, ge=0.0, le=1.0,
        description="Incoming area fire rate x (1 - area_concealment_effect * concealment).",
    )
    ambush_silent_substeps: int = Field(
        1, ge=0, description="Sub-steps a surprised side holds its fire."
    )


DEFAULT_COMBAT = CombatConfig()

#: :func:`engage_many` fights up to this many engagements in plain Python (an hour of a run
#: holds one or two), more with numpy arrays: below it the arrays' fixed cost is the larger.
FEW_ENGAGEMENTS = 8


@dataclass(frozen=True, slots=True)
class SideState:
    """One side of an engagement at its start."""

    strength: int
    """Fighters."""
    kill_rate_per_hour: float = 0.0
    """Aimed fire: kills per shooter per hour against an unmodified target."""
    fire: FireMode = FireMode.AIMED
    area_kill_rate_per_hour: float = 0.0
    """Area fire: kill rate per shooter per target per hour (see
    :func:`area_rate_matching_aimed`)."""
    fortified: bool = False
    concealment: float = 0.0
    """Concealment of the side's position in [0, 1] (terrain, cover)."""
    ammo_hours: float = math.inf
    """Hours of sustained fire the side carries."""
    breakoff_loss_fraction: float = 1.0
    """Break off when losses reach this fraction of the starting strength (1 = fight on)."""
    surprised: bool = False
    """Ambushed: holds fire for the first ``CombatConfig.ambush_silent_substeps``."""

    def __post_init__(self) -> None:
        if isinstance(self.strength, bool) or int(self.strength) != self.strength or (
            self.strength < 0
        ):
            raise ValueError(f"strength must be a whole number >= 0, got {self.strength!r}")
        for name in ("kill_rate_per_hour", "area_kill_rate_per_hour"):
            v = getattr(self, name)
            if not (v >= 0.0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not 0.0 <= self.concealment <= 1.0:
            raise ValueError(f"concealment must be within [0, 1], got {self.concealment!r}")
        if not self.ammo_hours >= 0.0:
            raise ValueError(f"ammo_hours must be >= 0, got {self.ammo_hours!r}")
        if not 0.0 <= self.breakoff_loss_fraction <= 1.0:
            raise ValueError(
                f"breakoff_loss_fraction must be within [0, 1], got {self.breakoff_loss_fraction!r}"
            )
        object.__setattr__(self, "fire", FireMode(self.fire))


@dataclass(frozen=True, slots=True)
class EngagementResult:
    """Outcome of one engagement."""

    losses_a: int
    losses_b: int
    survivors_a: int
    survivors_b: int
    status_a: SideStatus
    status_b: SideStatus
    substeps: int
    """Sub-steps fought."""
    hours: float
    """Time fought (``substeps / substeps_per_hour``)."""
    ammo_used_hours_a: float
    ammo_used_hours_b: float
    winner: Literal["a", "b"] | None
    """The side left holding the field; None if the time ran out or both sides ended together."""


def area_rate_matching_aimed(kill_rate_per_hour: float, target_strength: int) -> float:
    """Area-fire rate (per shooter per target per hour) that, against ``target_strength``
    targets, kills as fast as aimed fire at ``kill_rate_per_hour`` would; it then weakens as the
    targets thin out."""
    return kill_rate_per_hour / max(int(target_strength), 1)


def _stack(sides: Sequence[SideState]) -> dict[str, np.ndarray]:
    return {
        "n": np.array([s.strength for s in sides], dtype=np.int64),
        "k": np.array([s.kill_rate_per_hour for s in sides], dtype=float),
        "s": np.array([s.area_kill_rate_per_hour for s in sides], dtype=float),
        "area": np.array([s.fire == FireMode.AREA for s in sides], dtype=bool),
        "fort": np.array([s.fortified for s in sides], dtype=bool),
        "conc": np.array([s.concealment for s in sides], dtype=float),
        "ammo": np.array([s.ammo_hours for s in sides], dtype=float),
        "brk": np.array([s.breakoff_loss_fraction for s in sides], dtype=float),
        "surp": np.array([s.surprised for s in sides], dtype=bool),
    }


def _incoming_factor(target: dict[str, np.ndarray], cfg: CombatConfig, aimed: np.ndarray
                     ) -> np.ndarray:
    """Multiplier on fire *received* by ``target`` (fortification, concealment)."""
    fort = np.where(target["fort"], cfg.fortification_factor, 1.0)
    conc_eff = np.where(aimed, cfg.concealment_effect, cfg.area_concealment_effect)
    return fort * np.clip(1.0 - conc_eff * target["conc"], 0.0, 1.0)


def engage_many(
    rng: np.random.Generator,
    a: Sequence[SideState],
    b: Sequence[SideState],
    cfg: CombatConfig = DEFAULT_COMBAT,
    *,
    hours: float = 1.0,
    light: LightLevel | int = LightLevel.DAY,
) -> list[EngagementResult]:
    """Resolve ``len(a)`` independent engagements ``a[i]`` against ``b[i]`` for up to ``hours``
    under ``light``, vectorised over engagements. See the module docstring for the rules.

    Up to ``FEW_ENGAGEMENTS`` engagements (a model's hour holds one or two) are fought in plain
    Python (:func:`_engage_scalar`), which skips the fixed cost of the arrays; the results and
    the draws from ``rng`` are the same either way."""
    if len(a) != len(b):
        raise ValueError(f"a and b must pair up, got {len(a)} and {len(b)} sides")
    if not (hours >= 0.0 and math.isfinite(hours)):
        raise ValueError(f"hours must be a finite number >= 0, got {hours!r}")
    light = LightLevel(int(light))
    if not a:
        return []
    dt = 1.0 / cfg.substeps_per_hour
    n_steps = round(hours * cfg.substeps_per_hour)
    light_f = {
        LightLevel.DAY: 1.0,
        LightLevel.TWILIGHT: cfg.twilight_fire_factor,
        LightLevel.NIGHT: cfg.night_fire_factor,
    }[light]
    fight = _engage_scalar if len(a) <= FEW_ENGAGEMENTS else _engage_arrays
    return fight(rng, a, b, cfg, dt, n_steps, light_f)


def _engage_arrays(
    rng: np.random.Generator,
    a: Sequence[SideState],
    b: Sequence[SideState],
    cfg: CombatConfig,
    dt: float,
    n_steps: int,
    light_f: float,
) -> list[EngagementResult]:
    """:func:`engage_many`'s fight, numpy over the engagements (a loop over sub-steps only)."""
    sides = (_stack(a), _stack(b))
    n_eng = len(a)
    # Both sides in (2, n) arrays, row 0 = a, row 1 = b; row-reversal gives "the other side".
    n0 = np.stack([sides[0]["n"], sides[1]["n"]])
    strength = n0.copy()
    ammo = np.stack([sides[0]["ammo"], sides[1]["ammo"]])
    used = np.zeros((2, n_eng))
    status = np.zeros((2, n_eng), np.int8)
    aimed = np.stack([~sides[0]["area"], ~sides[1]["area"]])
    surprised = np.stack([sides[0]["surp"], sides[1]["surp"]])
    # Hazard of fire FROM each side per sub-step (per shooter for aimed fire, per shooter per
    # target for area fire), with the modifiers on what the other side receives folded in.
    hazard = np.stack([
        np.where(aimed[i], sides[i]["k"], sides[i]["s"])
        * light_f * _incoming_factor(sides[1 - i], cfg, aimed[i]) * dt
        for i in (0, 1)
    ])
    # Breakoff when losses >= fraction * start, and at least one fighter lost.
    threshold = np.maximum(np.stack([sides[0]["brk"], sides[1]["brk"]]) * n0, 1.0)
    active = (n0[0] > 0) & (n0[1] > 0)
    fought = np.zeros(n_eng, np.int64)

    for step in range(n_steps):
        if not active.any():
            break
        # A side with less than a sub-step of ammunition left fires for the part it has.
        frac = np.minimum(ammo / dt, 1.0) * active
        if step < cfg.ambush_silent_substeps:
            frac[surprised] = 0.0
        x = hazard * frac
        # Area fire: each target's hazard grows with the number of shooters.
        p = -np.expm1(-np.where(aimed, x, x * strength))
        other = strength[::-1]
        kills = np.minimum(rng.binomial(np.where(aimed, strength, other), p), other)
        strength -= kills[::-1]
        spent = frac * dt
        ammo = np.maximum(ammo - spent, 0.0)
        used += spent
        fought += active
        new = np.where(
            strength == 0, SideStatus.DESTROYED,
            np.where(ammo <= 1e-12, SideStatus.BROKE_OFF_AMMO,
                     np.where(n0 - strength >= threshold, SideStatus.BROKE_OFF_LOSSES,
                              SideStatus.HOLDING)),
        )
        status = np.where(active, new, status).astype(np.int8)
        active &= ~status.any(axis=0)

    return [
        _result(int(n0[0][e]), int(n0[1][e]), int(strength[0][e]), int(strength[1][e]),
                int(status[0][e]), int(status[1][e]), int(fought[e]), dt,
                float(used[0][e]), float(used[1][e]))
        for e in range(n_eng)
    ]


def _engage_scalar(
    rng: np.random.Generator,
    a: Sequence[SideState],
    b: Sequence[SideState],
    cfg: CombatConfig,
    dt: float,
    n_steps: int,
    light_f: float,
) -> list[EngagementResult]:
    """:func:`_engage_arrays` in plain Python floats and ints, for a few engagements: the same
    operations in the same order (so the same numbers), and the same binomial draws from
    ``rng`` in the same order (side a's engagements, then side b's, at each sub-step). A draw
    with no shooters (or targets) or a zero hazard takes nothing from the generator in either
    path, so the draws of engagements that ended are simply skipped."""
    n_eng = len(a)
    sides = (a, b)
    n0 = [[s.strength for s in a], [s.strength for s in b]]
    strength = [list(n0[0]), list(n0[1])]
    ammo = [[s.ammo_hours for s in a], [s.ammo_hours for s in b]]
    used = [[0.0] * n_eng, [0.0] * n_eng]
    status = [[0] * n_eng, [0] * n_eng]
    area = [[s.fire == FireMode.AREA for s in a], [s.fire == FireMode.AREA for s in b]]
    surprised = [[s.surprised for s in a], [s.surprised for s in b]]
    hazard = [[0.0] * n_eng, [0.0] * n_eng]
    threshold = [[0.0] * n_eng, [0.0] * n_eng]
    for i in (0, 1):
        for e in range(n_eng):
            shooter, target = sides[i][e], sides[1 - i][e]
            # _incoming_factor of the target, as numpy computes it (the same rounding)
            fort = cfg.fortification_factor if target.fortified else 1.0
            conc_eff = cfg.area_concealment_effect if area[i][e] else cfg.concealment_effect
            cover = min(max(1.0 - conc_eff * target.concealment, 0.0), 1.0)
            rate = shooter.area_kill_rate_per_hour if area[i][e] else shooter.kill_rate_per_hour
            hazard[i][e] = rate * light_f * (fort * cover) * dt
            threshold[i][e] = max(shooter.breakoff_loss_fraction * n0[i][e], 1.0)
    active = [n0[0][e] > 0 and n0[1][e] > 0 for e in range(n_eng)]
    fought = [0] * n_eng
    p_of: dict[float, float] = {}  # -expm1(-x) by x: numpy's own value, computed once each
    kills = [[0] * n_eng, [0] * n_eng]

    for step in range(n_steps):
        if not any(active):
            break
        silent = step < cfg.ambush_silent_substeps
        frac = [[0.0] * n_eng, [0.0] * n_eng]
        for i in (0, 1):  # the draws in the arrays' order: all of side a, then all of side b
            own, other = strength[i], strength[1 - i]
            for e in range(n_eng):
                kills[i][e] = 0
                if not active[e]:
                    continue
                f = 0.0 if silent and surprised[i][e] else min(ammo[i][e] / dt, 1.0)
                frac[i][e] = f
                x = hazard[i][e] * f
                if area[i][e]:
                    x, shots = x * own[e], other[e]
                else:
                    shots = own[e]
                p = p_of.get(x)
                if p is None:
                    p = p_of[x] = float(-np.expm1(-x))
                if shots == 0 or p == 0.0:
                    continue  # the generator returns 0 without a draw
                kills[i][e] = min(int(rng.binomial(shots, p)), other[e])
        for e in range(n_eng):
            if not active[e]:
                continue
            strength[0][e] -= kills[1][e]
            strength[1][e] -= kills[0][e]
            for i in (0, 1):
                spent = frac[i][e] * dt
                ammo[i][e] = max(ammo[i][e] - spent, 0.0)
                used[i][e] += spent
            fought[e] += 1
            for i in (0, 1):
                if strength[i][e] == 0:
                    status[i][e] = SideStatus.DESTROYED
                elif ammo[i][e] <= 1e-12:
                    status[i][e] = SideStatus.BROKE_OFF_AMMO
                elif n0[i][e] - strength[i][e] >= threshold[i][e]:
                    status[i][e] = SideStatus.BROKE_OFF_LOSSES
                else:
                    status[i][e] = SideStatus.HOLDING
            active[e] = not (status[0][e] or status[1][e])

    return [
        _result(n0[0][e], n0[1][e], strength[0][e], strength[1][e], int(status[0][e]),
                int(status[1][e]), fought[e], dt, used[0][e], used[1][e])
        for e in range(n_eng)
    ]


def _result(n0_a: int, n0_b: int, survivors_a: int, survivors_b: int, status_a: int,
            status_b: int, fought: int, dt: float, used_a: float, used_b: float
            ) -> EngagementResult:
    """One engagement's outcome from the fight's final numbers."""
    st = [SideStatus(status_a), SideStatus(status_b)]
    for i, n0 in enumerate((n0_a, n0_b)):
        if n0 == 0:  # an empty side never fought: it is simply not there
            st[i] = SideStatus.DESTROYED
    winner: Literal["a", "b"] | None = None
    if st[0] == SideStatus.HOLDING and st[1] != SideStatus.HOLDING:
        winner = "a"
    elif st[1] == SideStatus.HOLDING and st[0] != SideStatus.HOLDING:
        winner = "b"
    return EngagementResult(
        losses_a=n0_a - survivors_a,
        losses_b=n0_b - survivors_b,
        survivors_a=survivors_a,
        survivors_b=survivors_b,
        status_a=st[0],
        status_b=st[1],
        substeps=fought,
        hours=float(fought * dt),
        ammo_used_hours_a=used_a,
        ammo_used_hours_b=used_b,
        winner=winner,
    )


def engage(
    rng: np.random.Generator,
    a: SideState,
    b: SideState,
    cfg: CombatConfig = DEFAULT_COMBAT,
    *,
    hours: float = 1.0,
    light: LightLevel | int = LightLevel.DAY,
) -> EngagementResult:
    """Resolve one engagement of ``a`` against ``b`` for up to ``hours`` under ``light``
    (the single-engagement form of :func:`engage_many`)."""
    return engage_many(rng, [a], [b], cfg, hours=hours, light=light)[0]
