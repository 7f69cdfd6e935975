"""The night raid: leave the hide after dusk, strike a target outpost, be hidden by first light."""

from __future__ import annotations

import numpy as np

from sim.rules.state import Posture
from sim.scenario.vocab import KINDS
from sim.tactics.base import HOURS_PER_DAY, first_night_hour
from sim.tactics.cells import CellBehaviour
from sim.world.clock import LightLevel

#: The force table's kind code of quick-reaction forces, whose bases raids may avoid.
QRF_KIND = KINDS.index("qrf")
#: A raid detected farther than this (km) from its target is "detected early" and aborts.
EARLY_DETECTION_KM = 3.0
#: Hours of darkness a raid keeps in hand for the unexpected.
DAWN_MARGIN_HOURS = 1.0
#: Hours planned at the target for the fight itself (a raid is one sharp blow).
STRIKE_HOURS = 1.0
#: Raids are planned on a straight line at this fraction of the cell's off-road speed: the
#: real route winds round obstacles and is walked with care in the dark.
PLANNING_SPEED_FRACTION = 0.7
#: Planning speed floor (km/h), so a cell with no off-road speed on record still plans.
MIN_PLANNING_SPEED_KMH = 1.0
#: The approach stops this fraction of the cell's weapon range short of the target: inside
#: range with a margin, without walking into the defenders' wire.
STANDOFF_RANGE_FRACTION = 0.8


class NightRaid(CellBehaviour):
    """**Night raid**: leave the hide after dusk, strike a target outpost with surprise, and be
    back in a hide (not necessarily the same) before first light.

    States: hidden -> approach (guns ready: the fight opens when in range) -> withdraw ->
    hidden (or the refuge when one is nearer than the hides). Aborts if detected on the
    approach (``abort_if_detected``) or if dawn would catch the group in the open.

    Uses: what :class:`CellBehaviour` uses, and ``model.cell_of_place``, ``model.force``
    (position, strength, speed, weapon range of the cell and the defenders), ``model.light``,
    ``model.units`` (the QRFs' bases, with ``avoid_qrf_km``); ``unit.go_to``, ``unit.follow``,
    ``unit.attack``, ``unit.cease_fire``.
    """

    kind = "night_raid"

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        self.targets = [model.cell_of_place(name) for name in params.targets]
        self.raid: dict | None = None
        self.speed_kmh = max(float(model.force.offroad_speed_kmh[unit.idx]), MIN_PLANNING_SPEED_KMH)
        # the tempo: a cell rests ``nights_between`` nights after a raid; the cells of a scenario
        # start at random points of that rest, so they do not all strike on the first night
        self.rest_until = first_night_hour(model.rng, params.nights_between) or -1

    def _hours_between(self, a: int, b: int) -> float:
        # a quick estimate for planning: straight line at a fraction of off-road speed
        return self.model.distance_km(a, b) / (PLANNING_SPEED_FRACTION * self.speed_kmh)

    def _pick_target(self) -> tuple[int, int] | None:
        """(target cell, defending unit) of the nearest defended target within reach.

        Contact avoidance: with ``avoid_qrf_km`` > 0, no target within that distance of a
        hostile QRF's base (:meth:`_qrf_bases`); with ``max_odds``, no target whose defenders
        (every hostile unit in its cell, all of whom fight) number more than ``max_odds`` x the
        cell's own strength."""
        m = self.model
        f = m.force
        fi = m.faction_index[self.unit.faction]
        avoid_km = float(self.params.avoid_qrf_km)
        bases = self._qrf_bases() if avoid_km > 0 else None
        max_odds = self.params.max_odds
        best = None
        for cell in self.targets:
            d = m.distance_km(self.unit.cell, cell)
            if d > self.params.max_distance_km:
                continue
            r, c = divmod(cell, m.terrain.cols)
            here = np.flatnonzero(
                f.alive[: f.n] & (f.row[: f.n] == r) & (f.col[: f.n] == c)
                & m.hostile[fi, f.faction[: f.n]]
            )
            if len(here) == 0:
                continue
            if bases is not None and any(m.distance_km(cell, b) <= avoid_km for b in bases):
                continue  # a QRF would be on the raiders within the hour
            if max_odds is not None and f.strength[here].sum() > max_odds * f.strength[
                self.unit.idx
            ]:
                continue  # a fight the cell would lose
            if best is None or d < best[0]:
                best = (d, cell, int(here[np.argmax(f.strength[here])]))
        return None if best is None else (best[1], best[2])

    def decide(self) -> None:
        u = self.unit
        m = self.model
        if self.reflexes():
            if self.raid and self.state == "fleeing":
                self.raid["fled"] = True
            return
        state = self.state
        if state in ("start", "hidden", "to_water"):
            if not self.back_in_hide():
                return
            if not self.is_night or m.hour < self.rest_until:
                u.sleep_until(self.next_dusk_hour())
                return
            self.try_launch()
        elif state == "approach":
            dark_left = self.hours_to_first_light()
            back = self._hours_between(self.raid["target_cell"], u.cell) + DAWN_MARGIN_HOURS
            far = m.distance_km(u.cell, self.raid["target_cell"]) > EARLY_DETECTION_KM
            if self.alerted("engaged", "broke_off"):
                # a raid is one sharp blow: after the hour's fight, away before the relief comes
                u.cease_fire()
                self.withdraw()
            elif not m.force.alive[self.raid["defender"]]:
                self.abort("target_gone")
            elif self.params.abort_if_detected and self.alerted("detected") and far:
                self.abort("detected")
            elif dark_left < back + STRIKE_HOURS:
                self.abort("dawn")
            elif not u.is_moving:
                # in position but no fight yet (the defenders moved): give up for tonight
                self.abort("no_contact")
            else:
                u.sleep_until(m.hour + 1)
        elif state == "withdraw":
            if u.is_moving:
                return
            self.finish()

    def try_launch(self) -> None:
        u = self.unit
        m = self.model
        if u.supply("ammo") <= 0:
            u.sleep_until(self.next_dusk_hour())  # nothing to fight with: stay hidden
            return
        pick = self._pick_target()
        if pick is None:
            u.sleep_until(self.next_dusk_hour())
            return
        cell, defender = pick
        there = self._hours_between(u.cell, cell)
        back = there  # to a hide near the start or the target: about the same distance
        if there + STRIKE_HOURS + back + DAWN_MARGIN_HOURS > self.hours_to_first_light():
            u.sleep_until(self.next_dusk_hour())  # not enough darkness left tonight
            return
        # drive to just inside weapon range of the target and open fire on arrival
        if not u.go_to(cell, Posture.MOVING):
            u.sleep_until(self.next_dusk_hour())
            return
        weapon_km = float(m.force.weapon_range_km[u.idx])
        standoff = STANDOFF_RANGE_FRACTION * weapon_km / m.terrain.grid.cell_km
        stop = max(0, len(u.path) - 1 - int(standoff))
        u.follow(u.path[: stop + 1], Posture.MOVING)
        u.attack(defender, "raid")
        self.raid = {"target_cell": cell, "defender": defender, "start_hour": m.hour,
                     "light": int(m.light)}  # fmt: skip
        m.log("raid_start", u.cell, u.faction, unit=u.name, light=int(m.light),
              night=bool(m.light == LightLevel.NIGHT))  # fmt: skip
        self.set_state("approach")

    def _qrf_bases(self) -> list[int]:
        """Base cells of the living hostile QRFs (a pursuit's ``base``, else the unit's home):
        where a reaction force comes from is no secret (it sits in a town or an airbase), so the
        raiders know it without a sighting."""
        m = self.model
        f = m.force
        fi = m.faction_index[self.unit.faction]
        n = f.n
        qrf = np.flatnonzero(f.alive[:n] & (f.kind[:n] == QRF_KIND) & m.hostile[fi, f.faction[:n]])
        units = [m.units[i] for i in qrf.tolist()]
        return sorted({int(getattr(u.behaviour, "base", u.home)) for u in units})

    def on_split(self) -> None:
        if self.raid is not None and self.state == "approach":
            self.model.log("raid_abort", self.unit.cell, self.unit.faction,
                           unit=self.unit.name, reason="split")  # fmt: skip
            self.raid["aborted"] = "split"

    def abort(self, reason: str) -> None:
        self.model.log("raid_abort", self.unit.cell, self.unit.faction, unit=self.unit.name,
                       reason=reason)  # fmt: skip
        self.raid["aborted"] = reason
        self.withdraw()

    def withdraw(self) -> None:
        """Fall back to a hide; or, when a refuge zone is nearer than any hide, run for it
        (the raid has stirred up the garrison and the zone is where pursuit must stop)."""
        u = self.unit
        m = self.model
        if self.refuge_zones and self.raid is not None:
            hide = self.nearest_hides(u.cell, 1)
            refuge = self._refuge_cells()
            near_refuge = m.sites.nearest(refuge, u.cell, 1)
            if len(near_refuge) and (
                len(hide) == 0
                or m.distance_km(u.cell, int(near_refuge[0])) < m.distance_km(u.cell, int(hide[0]))
            ) and self.seek_refuge():
                return
        self.go_to_ground()
        self.set_state("withdraw")

    def on_refuge(self) -> None:
        if self.raid is not None:
            u = self.unit
            self.model.log("raid_end", u.cell, u.faction, unit=u.name, in_hide=False,
                           in_refuge=True, before_first_light=bool(self.is_night),
                           aborted=self.raid.get("aborted", ""))  # fmt: skip
            self.raid = None

    def finish(self) -> None:
        u = self.unit
        m = self.model
        in_hide = self.at_hide()
        before_light = m.light == LightLevel.NIGHT
        u.halt(Posture.HIDDEN)
        if self.raid is not None:
            m.log("raid_end", u.cell, u.faction, unit=u.name, in_hide=bool(in_hide),
                  in_refuge=False, before_first_light=bool(before_light and in_hide),
                  aborted=self.raid.get("aborted", ""))  # fmt: skip
        if self.raid is not None:  # a raid went out (struck or aborted): the cell rests
            self.rest_until = m.hour + HOURS_PER_DAY * int(self.params.nights_between)
        self.raid = None
        self.set_state("hidden")
        u.sleep_until(self.next_dusk_hour())
