"""Who fights whom this hour, and what the fights do to the units.

Attrition itself is :mod:`sim.rules.combat`; this module assembles the sides from the run state
(:class:`sim.rules.state.RunState`: the force table, units, knowledge, terrain, ``log`` and
``unit_destroyed``), resolves all of the hour's engagements in one vectorised call, and applies
the outcome (losses, destroyed units, break-offs, ammunition spent, the event log).

An engagement opens when

* a unit ordered to attack (``unit.attack_target``) is within weapon range of its target
  (surprise if the target's faction has not seen the attacker in the last hour: an ambush), or
* a unit that fires on sight (garrison kinds) detected a hostile unit this hour within weapon
  range. A zone guard fires only on factions barred from its zone; an insurgent cell fires only
  when attacking or attacked; a unit out of ammunition does not open fire; nobody fires into a
  zone its faction is barred from.

Engagements are grouped by the attacked unit; the attacked side includes the friendly units in
the same cell (a convoy's escort).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.rules import combat
from sim.rules.state import Posture

if TYPE_CHECKING:
    from sim.rules.state import Detections, RunState, UnitView

#: Concealment a side keeps when it is not lying hidden (moving, resting in the open): half of
#: what the ground offers.
EXPOSED_CONCEALMENT_FACTOR = 0.5
#: Weapon range is measured between cell centres; half a cell of slack lets a unit at the edge
#: of range in the next cell fire.
RANGE_SLACK_CELLS = 0.5
#: Sides of up to this many units are summed up in plain Python (``_side_scalar``): one or two
#: numbers sum, and any numbers compare, the same in any order, so numpy's answer is kept.
SCALAR_SIDE_MEMBERS = 2


def _side(model: RunState, members: list[int], surprised: bool) -> combat.SideState:
    if len(members) <= SCALAR_SIDE_MEMBERS:
        return _side_scalar(model, members, surprised)
    f = model.force
    t = model.terrain
    idx = np.asarray(members)
    strength = f.strength[idx]
    total = int(strength.sum())
    rate = float((f.kill_rate_per_hour[idx] * strength).sum() / total) if total else 0.0
    cells = f.row[idx].astype(np.int64) * t.cols + f.col[idx]
    concealment = float(t.concealment.ravel()[cells].max())
    hidden = (f.posture[idx] == int(Posture.HIDDEN)).any()
    # ammunition in days of normal use; a day of supply is a few hours of sustained fire
    ammo_hours = float(f.ammo_days[idx].min()) * model.config.supplies.fire_hours_per_ammo_day
    return combat.SideState(
        strength=total,
        kill_rate_per_hour=rate,
        fortified=bool(f.fortified[idx].any()),
        concealment=concealment if hidden else concealment * EXPOSED_CONCEALMENT_FACTOR,
        ammo_hours=ammo_hours,
        breakoff_loss_fraction=float(f.breakoff[idx].min()),
        surprised=surprised,
    )


def _side_scalar(model: RunState, members: list[int], surprised: bool) -> combat.SideState:
    """:func:`_side` of one or two units in Python numbers: a sum of one or two floats comes
    out the same in any order, and the maximum and minimum keep numpy's choice between equals
    (the later: ``0.0`` and ``-0.0``), so the side is the same."""
    f = model.force
    t = model.terrain
    cols = t.cols
    conc = t.concealment
    strength = [f.strength.item(i) for i in members]
    total = int(sum(strength))
    rate = (
        float(sum(f.kill_rate_per_hour.item(i) * s for i, s in zip(members, strength, strict=True))
              / total) if total else 0.0
    )
    cells = [f.row.item(i) * cols + f.col.item(i) for i in members]
    concealment = _np_max([conc.item(c) for c in cells])
    hidden = any(f.posture.item(i) == int(Posture.HIDDEN) for i in members)
    ammo_hours = (_np_min([f.ammo_days.item(i) for i in members])
                  * model.config.supplies.fire_hours_per_ammo_day)  # fmt: skip
    return combat.SideState(
        strength=total,
        kill_rate_per_hour=rate,
        fortified=any(f.fortified.item(i) for i in members),
        concealment=concealment if hidden else concealment * EXPOSED_CONCEALMENT_FACTOR,
        ammo_hours=ammo_hours,
        breakoff_loss_fraction=_np_min([f.breakoff.item(i) for i in members]),
        surprised=surprised,
    )


def _np_max(values: list[float]) -> float:
    """``max`` as numpy's ``maximum.reduce`` picks: the later of equal values."""
    best = values[0]
    for v in values[1:]:
        best = best if best > v else v
    return best


def _np_min(values: list[float]) -> float:
    """``min`` as numpy's ``minimum.reduce`` picks: the later of equal values."""
    best = values[0]
    for v in values[1:]:
        best = best if best < v else v
    return best


def _in_range(model: RunState, a: int, b: int, range_km: float) -> bool:
    f = model.force
    d = np.hypot(f.row[a] - f.row[b], f.col[a] - f.col[b]) * model.terrain.grid.cell_km
    return d <= range_km + RANGE_SLACK_CELLS * model.terrain.grid.cell_km


def into_barred_zone(model: RunState, shooter_idx: int, target_idx: int) -> bool:
    """Whether the target stands in a zone the shooter's faction is barred from: deconfliction
    forbids firing into it as much as entering it."""
    f = model.force
    zone = model.terrain.zone[f.row[target_idx], f.col[target_idx]]
    return zone >= 0 and zone in model.barred_zones[f.faction[shooter_idx]]


def opens_fire_on(model: RunState, shooter: UnitView, target_idx: int) -> bool:
    """Whether ``shooter`` fires on a hostile unit it has just seen (rules of engagement)."""
    f = model.force
    i = shooter.idx
    if not f.fires[i] or f.ammo_days[i] <= 0 or f.strength[i] <= 0:
        return False
    if into_barred_zone(model, i, target_idx):
        return False
    if shooter.kind == "zone_guard":
        zone = model.terrain.zone[f.row[target_idx], f.col[target_idx]]
        return zone >= 0 and zone in model.barred_zones[f.faction[target_idx]]
    return True


def resolve_engagements(model: RunState, det: Detections) -> None:
    """Open, fight and apply every engagement of this hour."""
    f = model.force
    n = f.n
    if len(det.observer) == 0 and (n == 0 or model.attack_targets[:n].max() < 0):
        return  # no attack orders and nobody seen: no engagement (most hours)
    hour = model.hour
    attackers: dict[int, list[int]] = {}  # attacked unit -> attacking units
    surprise: dict[int, bool] = {}
    initiated: dict[int, UnitView] = {}  # attacked unit -> the unit whose attack order opened it
    ordered = model.attack_targets[:n]
    for i in np.flatnonzero((ordered >= 0) & f.alive[:n]).tolist():  # in unit order
        unit = model.units[i]
        tgt = int(ordered[i])
        if not f.alive[tgt]:
            unit.attack_target = None
            unit.alert("target_gone")
            continue
        if into_barred_zone(model, unit.idx, tgt):
            continue
        if _in_range(model, unit.idx, tgt, f.weapon_range_km[unit.idx]):
            attackers.setdefault(tgt, []).append(unit.idx)
            # surprise: the defenders had not seen the attackers on their way in (a sighting in
            # this very hour gives minutes of warning, not enough to stand to)
            seen = model.knowledge.seen_hour[f.faction[tgt], unit.idx]
            if unit.operation is None:  # a pursuit in the open surprises nobody
                surprise[tgt] = False
            else:
                since = unit.operation.since
                surprise[tgt] = surprise.get(tgt, True) and not (since <= seen < hour)
            initiated.setdefault(tgt, unit)
    engaged = {i for group in attackers.values() for i in group} | set(attackers)
    for o, t in zip(det.observer.tolist(), det.target.tolist(), strict=True):
        if o in engaged or t in engaged:
            continue
        shooter = model.units[o]
        if not opens_fire_on(model, shooter, t):
            continue
        if not _in_range(model, o, t, f.weapon_range_km[o]):
            continue
        attackers[t] = [o]
        surprise[t] = bool(model.knowledge.seen_hour[f.faction[t], o] < hour) and bool(
            f.posture[t] != int(Posture.ATTACKING)
        )
        engaged |= {o, t}
    if not attackers:
        return

    targets = []
    a_sides, b_sides, b_members = [], [], []
    for tgt in list(attackers):
        cell_mates = np.flatnonzero(
            f.alive[: f.n]
            & (f.faction[: f.n] == f.faction[tgt])
            & (f.row[: f.n] == f.row[tgt])
            & (f.col[: f.n] == f.col[tgt])
        ).tolist()
        defenders = [tgt] + [m for m in cell_mates if m != tgt and m not in engaged]
        if f.strength[attackers[tgt]].sum() <= 0 or f.strength[defenders].sum() <= 0:
            continue
        targets.append(tgt)
        b_members.append(defenders)
        a_sides.append(_side(model, attackers[tgt], surprised=False))
        b_sides.append(_side(model, defenders, surprised=surprise[tgt]))
    light = int(model.light_by_hour[hour])
    results = combat.engage_many(model.rng, a_sides, b_sides, model.config.combat, light=light)

    for tgt, res, defenders in zip(targets, results, b_members, strict=True):
        atk = attackers[tgt]
        apply_losses(model, atk, res.losses_a)
        apply_losses(model, defenders, res.losses_b)
        _spend_ammo(model, atk, res.ammo_used_hours_a)
        _spend_ammo(model, defenders, res.ammo_used_hours_b)
        a_faction = model.faction_names[f.faction[atk[0]]]
        b_faction = model.faction_names[f.faction[tgt]]
        losses = {a_faction: int(res.losses_a)}
        losses[b_faction] = losses.get(b_faction, 0) + int(res.losses_b)
        opener = initiated.get(tgt)
        attack_kind = opener.operation.kind if opener and opener.operation else ""
        model.log(
            "engagement",
            model.units[tgt].cell,
            a_faction,
            attacker=[model.units[i].name for i in atk],
            defender=[model.units[i].name for i in defenders],
            defender_faction=b_faction,
            losses=losses,
            surprise=bool(surprise[tgt]),
            attack=attack_kind,
            winner={"a": "attacker", "b": "defender"}.get(res.winner or "", "none"),
            hours=round(float(res.hours), 3),
        )
        succeeded = (
            res.status_b != combat.SideStatus.HOLDING
            or res.losses_b > res.losses_a
        ) and res.status_a in (combat.SideStatus.HOLDING,)
        if opener is not None and opener.operation and not opener.operation.logged:
            opener.operation.logged = True
            opener.operation.succeeded = bool(succeeded)
            model.log(attack_kind, model.units[tgt].cell, a_faction, unit=opener.name,
                      target=model.units[tgt].name)  # fmt: skip
            model.log("attack_result", model.units[tgt].cell, a_faction, attack=attack_kind,
                      succeeded=bool(succeeded), unit=opener.name)  # fmt: skip
        for side, status in ((atk, res.status_a), (defenders, res.status_b)):
            for i in side:
                u = model.units[i]
                if not f.alive[i]:
                    continue
                u.alert("engaged")
                if status in (combat.SideStatus.BROKE_OFF_LOSSES, combat.SideStatus.BROKE_OFF_AMMO):
                    u.alert("broke_off")


def apply_losses(model: RunState, members: list[int], losses: int) -> None:
    """Share a side's losses among its units in proportion to their strength."""
    f = model.force
    if losses <= 0:
        return
    idx = np.asarray(members)
    idx = idx[f.alive[idx] & (f.strength[idx] > 0)]
    if len(idx) == 0:
        return
    strength = f.strength[idx].copy()
    losses = min(int(losses), int(strength.sum()))
    share = strength / strength.sum() * losses
    take = np.floor(share)
    rest = int(losses - take.sum())
    if rest > 0:  # largest remainders first, ties by order: deterministic
        order = np.argsort(-(share - take), kind="stable")[:rest]
        take[order] += 1
    f.strength[idx] = np.maximum(strength - take, 0.0)
    for i in idx[f.strength[idx] <= 0]:
        model.unit_destroyed(model.units[int(i)])


def _spend_ammo(model: RunState, members: list[int], hours_fired: float) -> None:
    f = model.force
    per_day = model.config.supplies.fire_hours_per_ammo_day
    idx = np.asarray(members)
    f.ammo_days[idx] = np.maximum(f.ammo_days[idx] - hours_fired / per_day, 0.0)
