"""Highway interdiction: ambushes beside a road, which close it while they lie in wait."""

from __future__ import annotations

import numpy as np

from sim.rules.state import Posture
from sim.tactics.base import HOURS_PER_DAY, column_strength, first_night_hour, nearest
from sim.tactics.cells import CellBehaviour

#: An ambush cell that lost fighters lies up this many nights before it ambushes again.
RECOVERY_NIGHTS = 3
#: Hours for which a hostile patrol seen near a stretch of road keeps ambushers off it.
PATROL_MEMORY_HOURS = 12
#: "Near" for that rule (km): a patrol or QRF seen this close to the chosen road cell.
PATROL_WATCH_KM = 10.0
#: Unit kinds whose presence makes a road "watched".
WATCHER_KINDS = ("patrol", "qrf")
#: Unit kinds an ambush springs on (vehicles on the road).
PREY_KINDS = ("convoy", "patrol", "escort", "qrf", "civilian_vehicle")
#: The site is drawn at random among this many road cells nearest the hide, so ambushes do not
#: always fall on the same stretch.
ROAD_CHOICES = 8
#: The firing position lies within this fraction of the cell's weapon range of the road cell:
#: in range with a margin.
POSITION_RANGE_FRACTION = 0.8
#: Darkness needed to set out (hours to first light): time to reach the site and settle unseen.
MIN_DARK_HOURS = 3
#: A cell below this fraction of its starting strength is too weak to take on a convoy.
MIN_STRENGTH_FRACTION = 0.5


class Ambush(CellBehaviour):
    """**Highway interdiction**: move at night to a concealed spot beside a road segment and lie
    in wait (through the next day) for ``wait_hours``; spring on a passing convoy or patrol no
    stronger than ``max_odds`` times the cell; withdraw to a hide at the following dusk.
    A segment under ambush, or attacked in the last ``closure_hours``, counts as closed.

    States: hidden -> to_site -> waiting -> (attack) -> withdraw -> hidden.

    Uses: what :class:`CellBehaviour` uses, and ``model.roads.cells_of``, ``model.roads.close``,
    ``model.tripwires``, ``model.escorts_of``, ``model.known_enemies``, ``model.terrain``
    (concealment, roads, caves), ``model.force`` (strength, weapon range, ammunition);
    ``unit.go_to``, ``unit.attack``, ``unit.alert``, ``unit.cease_fire``. The model calls
    :meth:`spring` when a unit drives over a tripwire.
    """

    kind = "ambush"

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        self.site: int | None = None
        self.road_cell: int | None = None
        self.wait_until = -1
        self.watching: list[int] = []  # road cells this ambush covers (model tripwires)
        self.set_hour = -1
        self.strength_at_set = 0.0
        # a rest of ``nights_between`` nights after each ambush; the cells start at random
        # points of it (see first_night_hour)
        self.rest_until = first_night_hour(model.rng, params.nights_between) or -1

    def _road_cells(self) -> np.ndarray:
        return self.model.roads.cells_of(self.params.road, self.params.segment)

    def _pick_site(self) -> tuple[int, int] | None:
        """(lying-up cell, road cell): a road cell near the hide, and the best-concealed cell
        within weapon range of it (rugged ground or a wadi bank beats the open)."""
        m = self.model
        t = m.terrain
        road = nearest(self._road_cells(), self.unit.cell, t.cols, ROAD_CHOICES)
        if len(road) == 0:
            return None
        road_cell = int(road[m.rng.integers(len(road))])
        r, c = divmod(road_cell, t.cols)
        weapon_km = m.force.weapon_range_km[self.unit.idx]
        reach = max(1, int(POSITION_RANGE_FRACTION * weapon_km / t.grid.cell_km))
        r0, r1 = max(0, r - reach), min(t.rows, r + reach + 1)
        c0, c1 = max(0, c - reach), min(t.cols, c + reach + 1)
        window = t.concealment[r0:r1, c0:c1]
        passable = np.isfinite(t.move_cost["foot"][r0:r1, c0:c1])
        # a firing position needs a view of the road: folds and wadi banks, not caves
        usable = passable & (t.road[r0:r1, c0:c1] == 0) & ~t.cave[r0:r1, c0:c1]
        score = np.where(usable, window, -1.0)
        k = int(np.argmax(score))
        rr, cc = divmod(k, c1 - c0)
        return (rr + r0) * t.cols + (cc + c0), road_cell

    def decide(self) -> None:
        u = self.unit
        m = self.model
        if self.reflexes():
            return
        state = self.state
        if state in ("start", "hidden", "to_water", "refuge"):
            if not self.back_in_hide():
                return
            resting = m.hour < self.rest_until
            if not self.is_night or self.hours_to_first_light() < MIN_DARK_HOURS or resting:
                u.sleep_until(self.next_dusk_hour())
                return
            if m.force.strength[u.idx] < MIN_STRENGTH_FRACTION * m.force.strength0[u.idx]:
                u.sleep_until(self.next_dusk_hour())  # too weak to take on a convoy
                return
            pick = self._pick_site()
            if pick is None or self._patrolled(pick[1]):
                u.sleep_until(self.next_dusk_hour())  # the road is watched tonight: lie low
                return
            if not u.go_to(pick[0], Posture.MOVING):
                u.sleep_until(self.next_dusk_hour())
                return
            self.site, self.road_cell = pick
            self.set_state("to_site")
        elif state == "to_site":
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            self.set_state("waiting")
            self.wait_until = m.hour + int(self.params.wait_hours)
            self.set_hour = m.hour
            self.strength_at_set = float(m.force.strength[u.idx])
            m.log("ambush_set", u.cell, u.faction, unit=u.name)
            self.wait()
        elif state == "waiting":
            if self.alerted("engaged", "broke_off"):
                self.withdraw("blown")  # found and fired on
                return
            if m.hour >= self.wait_until and self.is_night:
                self.withdraw("waited")
                return
            self.wait()
        elif state == "attack":
            # one burst of fire, then away before the garrison reacts
            self.withdraw("sprung")
        elif state == "withdraw":
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            self.set_state("hidden")
            u.sleep_until(self.next_dusk_hour())

    def wait(self) -> None:
        """Keep the road closed while in position (the model springs the ambush when a hostile
        unit drives into the watched stretch, see :meth:`spring`)."""
        m = self.model
        m.roads.close(self.road_cell, m.hour + 1)
        if not self.watching:
            t = m.terrain
            reach = max(1, int(m.force.weapon_range_km[self.unit.idx] / t.grid.cell_km))
            road = self._road_cells()
            r, c = divmod(self.unit.cell, t.cols)
            rr, cc = np.divmod(road, t.cols)
            self.watching = road[(np.abs(rr - r) <= reach) & (np.abs(cc - c) <= reach)].tolist()
            for cell in self.watching:
                m.tripwires[int(cell)] = self.unit
        self.unit.sleep_until(m.hour + 1)

    def spring(self, prey) -> bool:
        """A hostile unit drives into the watched stretch: open fire if the odds are right."""
        u = self.unit
        m = self.model
        f = m.force
        if self.state != "waiting" or prey.kind not in PREY_KINDS:
            return False
        leader, odds = column_strength(m, prey)
        own = float(f.strength[u.idx])
        if odds < self.params.min_convoy_strength or odds > self.params.max_odds * own:
            return False
        if f.ammo_days[u.idx] <= 0:
            return False
        u.attack(leader.idx, "ambush")
        self.set_state("attack")
        m.roads.close(self.road_cell, m.hour + int(self.params.closure_hours))
        u.alert("sprung")
        return True

    def _unwatch(self) -> None:
        for cell in self.watching:
            if self.model.tripwires.get(cell) is self.unit:
                del self.model.tripwires[cell]
        self.watching = []

    def _patrolled(self, road_cell: int) -> bool:
        """Whether the cell's faction saw a hostile patrol or QRF near this stretch of road in
        the last ``PATROL_MEMORY_HOURS``: a watched road is left alone for the night."""
        m = self.model
        idx, cells, _ = m.known_enemies(self.unit, max_age_hours=PATROL_MEMORY_HOURS)
        for i, c in zip(idx.tolist(), cells.tolist(), strict=True):
            if m.units[i].kind in WATCHER_KINDS and m.distance_km(c, road_cell) <= PATROL_WATCH_KM:
                return True
        return False

    def withdraw(self, reason: str = "") -> None:
        m = self.model
        f = m.force
        # the tempo: no new ambush for ``nights_between`` nights after this one
        rest = int(self.params.nights_between)
        if rest > 0:
            self.rest_until = max(self.rest_until, m.hour + HOURS_PER_DAY * rest)
        if reason in ("blown", "sprung") and f.strength[self.unit.idx] < self.strength_at_set:
            # a fight that cost the cell fighters: it lies up for a few nights to recover
            self.rest_until = max(self.rest_until, m.hour + HOURS_PER_DAY * RECOVERY_NIGHTS)
        if self.watching:
            self.model.log("ambush_end", self.unit.cell, self.unit.faction, unit=self.unit.name,
                           reason=reason, hours=self.model.hour - self.set_hour)  # fmt: skip
        self._unwatch()
        self.unit.cease_fire()
        self.go_to_ground()
        self.set_state("withdraw")
