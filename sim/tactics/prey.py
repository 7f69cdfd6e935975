"""Preying on civilians: a cell attacks truffle hunters and shepherds in the open desert.

In central Syria in 2020 the insurgency killed civilians foraging in the desert every truffle
season (February to April; at least 41 civilians killed in 2020). The groups are out by day,
far from any garrison, and unarmed: a cell that knows where one is drives out, opens fire and is
back among its hides before anyone can react.
"""

from __future__ import annotations

import math

import numpy as np

from sim.rules.state import NEVER_HOUR, Posture
from sim.scenario.vocab import CIVILIAN_KINDS, KINDS, MOBILITIES
from sim.tactics.base import YEAR_HOURS, first_night_hour, last_trip_for, rest_hours
from sim.tactics.cells import CellBehaviour
from sim.tactics.civilians import open_desert
from sim.tactics.raids import (
    MIN_PLANNING_SPEED_KMH,
    PLANNING_SPEED_FRACTION,
    STANDOFF_RANGE_FRACTION,
    STRIKE_HOURS,
)
from sim.world.clock import LightLevel

#: Only civilians seen this recently (hours) are worth a trip: a group in the desert moves on,
#: and goes home in the afternoon.
PREY_MAX_AGE_HOURS = 2
#: A mobile garrison unit (patrol, QRF) the faction saw this recently (hours) still counts as
#: near the place where it was seen; a post (speed 0) counts as long as it is known at all.
GARRISON_MEMORY_HOURS = 12
#: A scouting cell lies up at its look-out this long (hours) watching for civilians, then goes
#: back to its hides.
SCOUT_WATCH_HOURS = 3
#: Look-outs drawn before a scouting trip is given up for the day (the cells drawn were off the
#: map, impassable, in a town, on a road or in a barred zone).
SCOUT_TRIES = 10


class Prey(CellBehaviour):
    """**Prey**: by day, attack civilians (foragers) the faction knows of in the open desert,
    far from the garrison, and be back among the hides before the garrison can react.

    Why by day: the prey is out only by day (foragers are home at night), so the cell gives up
    the cover of darkness and makes up for it by striking far from any garrison unit it knows of
    and withdrawing at once. It looks for a target at each daylight decision when rested: a
    civilian unit (``CIVILIAN_KINDS``) its faction saw in the last ``PREY_MAX_AGE_HOURS`` in the
    open desert (not in a town, not on a road: a bus on the highway is gone long before a cell
    reaches where it was seen), within ``max_distance_km``, with no garrison unit it knows of
    within ``garrison_avoid_km`` of it (contact avoidance: posts for as long as they are known,
    patrols and QRFs seen in the last ``GARRISON_MEMORY_HOURS``). With no target known and
    ``scout`` on, it scouts: civilians are rarely seen from a cave, so the cell drives to a
    look-out drawn at random within ``search_km`` of its hide in the open desert (none near a
    known garrison unit), lies up there ``SCOUT_WATCH_HOURS`` and strikes at whatever it sees
    (its own sightings wake it: ``wakes_on_contact``). The strike drives to
    ``STANDOFF_RANGE_FRACTION`` of weapon range short of the target's last-seen cell, following
    fresher sightings, under an attack order of kind ``prey``; after the hour's fight it ceases
    fire and goes to ground (one sharp blow). A trip starts only if the drive (planned as the
    raid plans it, :mod:`sim.tactics.raids`) and ``STRIKE_HOURS`` fit in the daylight left; the
    cell rests ``nights_between`` days between trips.

    States: hidden -> [scout ->] strike -> withdraw -> hidden; scout -> withdraw when the watch
    ends. A strike aborts if the target is destroyed (``target_gone``), no longer known or gone
    home (``lost``), a known garrison unit is near it (``garrison``), the day ends (``dusk``) or
    the cell reaches the target's cell without a fight (``no_contact``).

    Uses: what :class:`CellBehaviour` uses, and ``model.known_enemies``, ``model.force``
    (kinds, speeds, weapon range, strength), ``model.terrain`` (towns, roads, zones, move
    cost), ``model.calendar``, ``model.rng``, ``model.log``; ``unit.go_to``, ``unit.follow``,
    ``unit.attack``, ``unit.cease_fire``, ``unit.path``, ``unit.sleep_until``.
    """

    kind = "prey"
    wakes_on_contact = True

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        f = model.force
        self.speed_kmh = max(float(f.offroad_speed_kmh[unit.idx]), MIN_PLANNING_SPEED_KMH)
        civilian = [KINDS.index(k) for k in CIVILIAN_KINDS]
        self.civilian_kind = np.isin(np.arange(len(KINDS)), civilian)  # by force-table kind
        t = model.terrain
        mob = MOBILITIES[int(f.mobility[unit.idx])]
        self.open_cells = open_desert(t)
        self.lookout_ok = self.open_cells & np.isfinite(t.move_cost[mob]).ravel() & ~t.cave.ravel()
        # the cells start at random points of their rest (see first_night_hour)
        self.last_trip_hour = last_trip_for(first_night_hour(model.rng, params.nights_between),
                                            params.nights_between, NEVER_HOUR)
        self.trip: dict | None = None
        self.watch_until = -1

    # --- what the cell knows ---------------------------------------------------------------
    def _hours_between(self, a: int, b: int) -> float:
        return self.model.distance_km(a, b) / (PLANNING_SPEED_FRACTION * self.speed_kmh)

    def _open(self, cell: int) -> bool:
        """In the open desert, outside the zones the cell's faction is barred from."""
        m = self.model
        zone = int(m.terrain.zone.ravel()[cell])
        barred = m.barred_zones[m.faction_index[self.unit.faction]]
        return bool(self.open_cells[cell]) and not (zone >= 0 and zone in barred)

    def garrison_near(self, cell: int) -> bool:
        """Whether an armed enemy the faction knows of is within ``garrison_avoid_km``."""
        m = self.model
        f = m.force
        idx, cells, ages = m.known_enemies(self.unit, max_age_hours=YEAR_HOURS)
        armed = ~self.civilian_kind[f.kind[idx]]
        recent = (f.speed_kmh[idx] <= 0) | (ages <= GARRISON_MEMORY_HOURS)
        cells = cells[armed & recent]
        if len(cells) == 0:
            return False
        cols = m.terrain.cols
        r, c = divmod(int(cell), cols)
        rr, cc = np.divmod(cells, cols)
        km = np.hypot(rr - r, cc - c) * m.terrain.grid.cell_km
        return bool((km <= self.params.garrison_avoid_km).any())

    def known_prey(self) -> dict[int, int]:
        """Civilian units the faction saw recently: unit index -> last-seen cell."""
        m = self.model
        idx, cells, _ = m.known_enemies(self.unit, max_age_hours=PREY_MAX_AGE_HOURS)
        civ = self.civilian_kind[m.force.kind[idx]]
        return dict(zip(idx[civ].tolist(), cells[civ].tolist(), strict=True))

    def pick_prey(self) -> tuple[int, int] | None:
        """(unit, cell) of the nearest civilian known in the open desert, within reach and away
        from the garrison."""
        m = self.model
        u = self.unit
        best = None
        for i, cell in self.known_prey().items():
            d = m.distance_km(u.cell, cell)
            if d > self.params.max_distance_km or not self._open(cell):
                continue
            if (best is None or d < best[0]) and not self.garrison_near(cell):
                best = (d, i, cell)
        return None if best is None else (best[1], best[2])

    def daylight_left(self) -> int:
        return self.model.calendar.end_of(self.hour, LightLevel.DAY) - self.hour

    def rested_hour(self) -> int:
        return self.last_trip_hour + rest_hours(self.params.nights_between)

    # --- decisions -------------------------------------------------------------------------
    def decide(self) -> None:
        u = self.unit
        if self.reflexes():
            return
        state = self.state
        if state in ("start", "hidden", "to_water"):
            if not self.back_in_hide():
                if u.is_moving:
                    self.until_arrival()
                return
            self.try_launch()
        elif state == "scout":
            self.scouting()
        elif state == "strike":
            self.striking()
        elif state == "withdraw":
            if u.is_moving:
                self.until_arrival()
                return
            self.finish()

    def try_launch(self) -> None:
        u = self.unit
        m = self.model
        if not self.is_day:
            u.sleep_until(self.next_day_hour())
            return
        end_of_day = self.hour + self.daylight_left()
        if m.hour < self.rested_hour():
            u.sleep_until(self.rested_hour())
            return
        if u.supply("ammo") <= 0:
            u.sleep_until(end_of_day)  # nothing to fight with: stay hidden today
            return
        if self.strike(scouted=False):
            return
        if self.params.scout and self.scout():
            return
        u.sleep_until(end_of_day)  # its own sightings wake it (wakes_on_contact)

    def strike(self, scouted: bool) -> bool:
        """Drive at the nearest known prey, if the drive and the fight fit in the daylight."""
        u = self.unit
        m = self.model
        pick = self.pick_prey()
        if pick is None:
            return False
        target, cell = pick
        if self._hours_between(u.cell, cell) + STRIKE_HOURS > self.daylight_left():
            return False
        if not self._approach(target, cell):
            return False
        if self.trip is None:
            self.last_trip_hour = m.hour
            self.trip = {"start_hour": m.hour, "scouted": False}
        self.trip.update(target=target, cell=cell, attacked=False)
        m.log("prey_start", u.cell, u.faction, unit=u.name, target=m.units[target].name,
              distance_km=round(m.distance_km(u.cell, cell), 2), scouted=scouted)  # fmt: skip
        self.set_state("strike")
        u.sleep_until(m.hour + 1)
        return True

    def _approach(self, target: int, cell: int) -> bool:
        """Drive to just inside weapon range of ``cell`` under an attack order on ``target``."""
        u = self.unit
        m = self.model
        if not u.go_to(cell, Posture.MOVING):
            return False
        standoff = STANDOFF_RANGE_FRACTION * float(m.force.weapon_range_km[u.idx])
        stop = max(0, len(u.path) - 1 - int(standoff / m.terrain.grid.cell_km))
        u.follow(u.path[: stop + 1], Posture.MOVING)
        u.attack(target, "prey")
        return True

    def scout(self) -> bool:
        """Drive to a look-out in the open desert within ``search_km`` of the hide."""
        u = self.unit
        m = self.model
        t = m.terrain
        radius = self.params.search_km / t.grid.cell_km
        r0, c0 = u.rc
        for _ in range(SCOUT_TRIES):
            angle = m.rng.uniform(0.0, 2.0 * math.pi)
            dist = radius * math.sqrt(m.rng.random())  # uniform over the disc
            r, c = round(r0 + dist * math.sin(angle)), round(c0 + dist * math.cos(angle))
            if not (0 <= r < t.rows and 0 <= c < t.cols):
                continue
            cell = r * t.cols + c
            if not self.lookout_ok[cell] or not self._open(cell) or self.garrison_near(cell):
                continue
            if self._hours_between(u.cell, cell) + 1 > self.daylight_left():
                continue
            if u.go_to(cell, Posture.MOVING):
                self.last_trip_hour = m.hour
                self.trip = {"start_hour": m.hour, "scouted": True}
                self.watch_until = -1
                m.log("prey_scout", u.cell, u.faction, unit=u.name,
                      distance_km=round(m.distance_km(u.cell, cell), 2))  # fmt: skip
                self.set_state("scout")
                self.until_arrival()
                return True
        return False

    def scouting(self) -> None:
        u = self.unit
        if self.alerted("engaged", "broke_off"):
            u.cease_fire()
            self.withdraw()  # found and fired on: the trip is off
            return
        if self.is_day and u.supply("ammo") > 0 and self.strike(scouted=True):
            return
        if not self.is_day:
            self.withdraw()
            return
        if u.is_moving:
            self.until_arrival()
            return
        if self.watch_until < 0:
            u.halt(Posture.HIDDEN)  # lie up at the look-out and watch
            self.watch_until = min(self.hour + SCOUT_WATCH_HOURS,
                                   self.hour + self.daylight_left())  # fmt: skip
        if self.hour >= self.watch_until:
            self.withdraw()
        else:
            u.sleep_until(self.watch_until)

    def striking(self) -> None:
        u = self.unit
        m = self.model
        trip = self.trip
        target = trip["target"]
        if self.alerted("engaged", "broke_off"):
            # one sharp blow: after the hour's fight, away before the garrison can react
            trip["attacked"] = True
            u.cease_fire()
            self.withdraw()
            return
        if not m.force.alive[target]:
            self.abort("target_gone")
            return
        cell = self.known_prey().get(target)
        if cell is None or not self._open(cell):
            if cell is not None or not u.is_moving:
                self.abort("lost")
                return
            cell = trip["cell"]  # not seen this last hour: drive on to where it was
        if self.garrison_near(cell):
            self.abort("garrison")
        elif not self.is_day:
            self.abort("dusk")
        elif cell != trip["cell"]:
            trip["cell"] = cell  # a fresher sighting: follow it
            if not self._approach(target, cell):
                self.abort("lost")
                return
            u.sleep_until(m.hour + 1)
        elif not u.is_moving:
            self.abort("no_contact")
        else:
            u.sleep_until(m.hour + 1)

    def abort(self, reason: str) -> None:
        u = self.unit
        self.model.log("prey_abort", u.cell, u.faction, unit=u.name, reason=reason)
        if self.trip is not None:
            self.trip["aborted"] = reason
        u.cease_fire()
        self.withdraw()

    def withdraw(self) -> None:
        """Go to ground among the hides nearest to where the cell is."""
        self.go_to_ground()
        self.set_state("withdraw")
        self.until_arrival()

    def on_refuge(self) -> None:
        self._end(in_hide=False, in_refuge=True)

    def finish(self) -> None:
        u = self.unit
        in_hide = self.at_hide()
        u.halt(Posture.HIDDEN)
        self._end(in_hide=bool(in_hide), in_refuge=False)
        self.set_state("hidden")
        u.sleep_until(max(self.rested_hour(), self.hour + 1))

    def _end(self, in_hide: bool, in_refuge: bool) -> None:
        u = self.unit
        if self.trip is not None:
            self.model.log("prey_end", u.cell, u.faction, unit=u.name, in_hide=in_hide,
                           in_refuge=in_refuge, attacked=bool(self.trip.get("attacked")),
                           scouted=bool(self.trip.get("scouted")),
                           aborted=self.trip.get("aborted", ""))  # fmt: skip
        self.trip = None
        self.watch_until = -1
