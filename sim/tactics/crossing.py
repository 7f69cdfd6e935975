"""Border crossing: at night, over a border line to a rendezvous and back, resupplied."""

from __future__ import annotations

import numpy as np

from sim.rules.state import NEVER_HOUR, Posture
from sim.scenario.vocab import KINDS, MOBILITIES
from sim.tactics.base import first_night_hour, last_trip_for, nearest, rest_hours
from sim.tactics.cells import CellBehaviour

#: A border crossing looks for a gap at most this much longer (km) than the direct route.
GAP_DETOUR_KM = 15.0
#: The force table's code of a border post (the posts a gap is chosen to keep clear of).
BORDER_POST = KINDS.index("border_post")
#: Darkness needed to set out (hours to first light): enough to cross the line unseen.
MIN_DARK_HOURS = 5


class BorderCrossing(CellBehaviour):
    """**Border crossing**: at night, cross to a rendezvous on the far side, away from posts or
    through a crossing point; rest there a day and come back with supplies and fighters.

    Each time a cell crosses the line, the far side's ``border_security`` level is the chance
    that it is intercepted there and turned back (see :func:`sim.rules.borders.attempt_crossing`,
    which calls :meth:`intercepted`).

    States: hidden -> outbound -> far_side -> inbound -> hidden; turned_back after an
    interception.

    Uses: what :class:`CellBehaviour` uses, and ``model.cell_of_place``, ``model.terrain``
    (border lines, crossing points), ``model.force`` (hostile border posts by kind, supplies,
    strength), ``model.router.local_path``; ``unit.go_to``, ``unit.follow``,
    ``unit.path``.
    """

    kind = "border_crossing"

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        t = model.terrain
        self.rendezvous = model.cell_of_place(params.rendezvous)
        self.border = t.border_index(params.border)
        self.home_cell = unit.cell
        # the cells start at random points of their rest (see first_night_hour)
        self.last_trip_hour = last_trip_for(first_night_hour(model.rng, params.nights_between),
                                            params.nights_between, NEVER_HOUR)

    def decide(self) -> None:
        u = self.unit
        m = self.model
        if self.reflexes():
            return
        state = self.state
        if state in ("start", "hidden", "to_water", "refuge"):
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            self.set_state("hidden")
            rested = m.hour - self.last_trip_hour >= rest_hours(self.params.nights_between)
            if not self.is_night or self.hours_to_first_light() < MIN_DARK_HOURS or not rested:
                u.sleep_until(self.next_dusk_hour())
                return
            self.last_trip_hour = m.hour
            if self.travel_via_gap(self.rendezvous):
                self.set_state("outbound")
                m.log("crossing_attempt", u.cell, u.faction, unit=u.name, direction="out")
            else:
                u.sleep_until(self.next_dusk_hour())
        elif state == "outbound":
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            self.set_state("far_side")
            u.sleep_until(self.next_dusk_hour())
        elif state == "far_side":
            if not self.is_night:
                u.sleep_until(self.next_dusk_hour())
                return
            f = m.force
            for name in ("water", "fuel", "ammo"):
                getattr(f, f"{name}_days")[u.idx] = getattr(f, f"{name}_cap")[u.idx]
            f.strength[u.idx] = max(f.strength[u.idx], f.strength0[u.idx])  # recruits
            target = self.home_side_hide()
            if self.travel_via_gap(target):
                self.set_state("inbound")
                m.log("crossing_attempt", u.cell, u.faction, unit=u.name, direction="in")
        elif state in ("inbound", "turned_back"):
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            self.set_state("hidden")
            u.sleep_until(self.next_dusk_hour())

    def home_side_hide(self) -> int:
        """Where to come back to: the hide nearest home on the home side of the line (a hide
        on the far side would leave the cell shuttling there, never crossing again), else the
        cell it started from."""
        side = self.model.terrain.border_side[self.border].ravel()
        hides = self.hides[side[self.hides] == side[self.home_cell]]
        home = nearest(hides, self.home_cell, self.model.terrain.cols, 1)
        return int(home[0]) if len(home) else self.home_cell

    def gap(self, a: int, b: int) -> int:
        """Where to cross the line between cells ``a`` and ``b``: the nearest crossing point
        (``use_crossings``), or else, among the border cells within reach of the direct line,
        the one farthest from the hostile posts."""
        m = self.model
        t = m.terrain
        line = self._line_cells()
        if self.params.use_crossings:
            points = line[t.crossing.ravel()[line]]
            if len(points):
                return int(nearest(points, a, t.cols, 1)[0])
        f = m.force
        n = f.n
        fi = m.faction_index[self.unit.faction]
        # the living hostile posts, in unit order (columns, not a walk over every unit)
        posts = ((f.kind[:n] == BORDER_POST) & f.alive[:n]
                 & m.hostile[fi, f.faction[:n]]).nonzero()[0]  # fmt: skip
        (ra, ca), (rb, cb) = divmod(a, t.cols), divmod(b, t.cols)
        rr, cc = np.divmod(line, t.cols)
        detour = np.hypot(rr - ra, cc - ca) + np.hypot(rr - rb, cc - cb)
        direct = np.hypot(ra - rb, ca - cb)
        near_route = line[detour <= direct + GAP_DETOUR_KM / t.grid.cell_km]
        if len(near_route) == 0 or len(posts) == 0:
            return int(line[np.argmin(detour)]) if len(line) else b
        rr, cc = np.divmod(near_route, t.cols)
        pr, pc = f.row[posts].astype(float), f.col[posts].astype(float)
        clearance = np.min(np.hypot(rr[:, None] - pr, cc[:, None] - pc), axis=1)
        return int(near_route[np.argmax(clearance)])

    def _line_cells(self) -> np.ndarray:
        """The cells of the border line the cell crosses (the terrain's, which never change:
        found once, not by a scan of the whole grid at every crossing)."""
        line = self.__dict__.get("_line")
        if line is None:
            line = self._line = np.flatnonzero(self.model.terrain.border.ravel() == self.border)
        return line

    def travel_via_gap(self, target: int) -> bool:
        """Go to ``target`` by way of the chosen gap in the line."""
        u = self.unit
        gap = self.gap(u.cell, target)
        if not u.go_to(gap, Posture.MOVING):
            return u.go_to(target, Posture.MOVING)
        first = u.path
        # the second leg starts from the gap: plan it from there and join the two. The route
        # graph is symmetric and the unit reaches the gap, so the target is out of the unit's
        # reach exactly when it is out of the gap's: no route from the unit is needed to know
        # (the unit then keeps going to the gap, as when that route was asked for and failed)
        second = self.model.router.local_path(
            gap, target, MOBILITIES[int(self.model.force.mobility[u.idx])],
            self.model.barred_zones[self.model.force.faction[u.idx]],
        )
        if len(second) == 0:
            return False
        u.follow(np.concatenate([first, second[1:]]), Posture.MOVING)
        return True

    def intercepted(self) -> None:
        """Turned back at the line: go back to the side it came from."""
        u = self.unit
        back = self.home_cell if self.state == "outbound" else self.rendezvous
        u.go_to(back, Posture.WITHDRAWING)
        self.set_state("turned_back")
