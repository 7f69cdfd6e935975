"""Civilians: traffic on the highways and foragers in the open desert.

Civilian units never fire (their kinds are not among the engine's fire-on-sight kinds and their
kill rate is 0); they are what an insurgency preys on (:mod:`sim.tactics.prey`, the fake
checkpoint). Two behaviours:

- :class:`Traffic` (``traffic``): a bus, truck or workers' convoy drives a road route on a
  timetable, only within its wall-clock ``hours``;
- :class:`Forage` (``forage``): a group of truffle hunters (or shepherds) drives out each morning
  of its season to a random cell of its areas and is home in town again by the afternoon; out of
  season it stays at home.

Both sleep while they drive (:meth:`~sim.tactics.base.Behaviour.until_arrival`) and between
trips, so a civilian layer costs a few decisions per unit and day. Times of day and months come
from the run's wall clock (``model.clock``), not from the light: timetables and seasons are
clock and calendar things.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np

from sim.rules.state import NEVER_HOUR, Posture
from sim.scenario.vocab import MOBILITIES
from sim.tactics.base import HOURS_PER_DAY, Behaviour, route_cells
from sim.world.raster import shared_hours_per_cell

#: Civilians do not change their plans because someone saw them: they do not know it.
UNAWARE = frozenset({"detected"})
#: A forager is home again this many hours before its ``end_hour`` would strictly allow: its
#: route home (a cached field to its town) may be a little slower than the one it came by.
RETURN_MARGIN_HOURS = 1
#: A day out is worth it only with at least this many hours at the search cell.
MIN_FORAGE_HOURS = 2
#: A forager draws at most this many search cells a morning before giving up for the day (the
#: cells drawn were out of reach for the hours of the day).
SEARCH_CELL_TRIES = 5
#: Days looked ahead for the next day of a foraging season (a year and a day: every month).
SEASON_LOOKAHEAD_DAYS = 367


def open_desert(terrain) -> np.ndarray:
    """Flat cells of the open desert: neither in a town nor on a road."""
    return ((terrain.town < 0) & (terrain.road == 0)).ravel()


def wall_clock(model, hour: int) -> datetime:
    """Local wall-clock start of step ``hour`` (what ``model.clock.at(hour).local`` gives, also
    for hours past the end of the run)."""
    return model.clock.start_local + timedelta(hours=int(hour))


def next_hour_of_day(model, hour: int, hour_of_day: int) -> int:
    """The first step at or after ``hour`` whose local wall-clock hour is ``hour_of_day``."""
    now = wall_clock(model, hour).hour
    return hour + (hour_of_day - now) % HOURS_PER_DAY


def refill(model, unit, *names: str) -> None:
    """Fill the unit's named supplies (``water``, ``fuel``) to what it started with: civilians
    buy fuel and water at home and at the ends of their routes."""
    f = model.force
    for name in names:
        getattr(f, f"{name}_days")[unit.idx] = getattr(f, f"{name}_cap")[unit.idx]


class Traffic(Behaviour):
    """**Traffic**: a civilian vehicle (a bus, a truck, an oil or gas field workers' convoy)
    drives its road route on a timetable, ``departures_per_day`` trips a day, and is on the road
    only between the local wall-clock ``hours`` [first, last) (buses do not drive the M20 at
    night).

    The timetable: a trip takes ``trip_hours`` (whole hours; the slower direction at the
    vehicle's speeds, timed as the engine times paths). Departures leave at
    ``departures_per_day`` local hours spread evenly over the hours from which a trip still ends
    by ``last``, shifted by a random phase per vehicle so that several vehicles on one route do
    not travel in a bunch. A vehicle still on the road at a departure hour skips it; if no trip
    fits the hours it never leaves. At the end of the route it waits and drives back on its next
    departure (``turn_around``), or drives straight back home, the whole round being one trip
    (``return``). At each end it refuels, takes water and a fresh load of passengers (strength
    back to its starting value). A vehicle still on the road when its hours end (held up on the
    way) pulls over and drives on at the next ``first`` hour. Attacked, it drives on; a
    destroyed vehicle is replaced at its home terminus by the next one
    (``DesertModel.unit_destroyed``) and keeps the timetable. The route runs from where the
    vehicle starts (its home terminus) through the ``route`` points; one that ends where it
    starts is a loop, driven whole on each departure.

    States: waiting -> out -> waiting; out -> stopped (pulled over) -> out.

    Uses: ``model.clock``, ``model.rng``, ``model.terrain``, ``model.force`` (speeds, mobility,
    supplies, strength), ``model.log``, ``route_cells``, ``shared_hours_per_cell``; ``unit.follow``,
    ``unit.go_to``, ``unit.halt``, ``unit.path``, ``unit.path_pos``, ``unit.path_hours``,
    ``unit.sleep_until``.
    """

    kind = "traffic"
    ignores = UNAWARE

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        self.waypoints = list(getattr(params, "route", None) or unit_spec.route or [])
        self.first, self.last = (int(h) for h in self.param("hours"))
        self.departures = int(self.param("departures_per_day"))
        self.round_trip = self.param("at_end") == "return"
        self.phase = float(model.rng.random())  # where in its slot each vehicle leaves
        self.legs: dict[int, np.ndarray] | None = None  # terminus cell -> the leg driven from it
        self.slots: frozenset[int] = frozenset()  # local hours of departure
        self.trip_hours = 0
        self.destination = unit.cell
        self.pending: np.ndarray | None = None  # the rest of a leg, when pulled over

    # --- the timetable ---------------------------------------------------------------------
    def _build(self) -> None:
        """The legs (road routes, read-only so they are timed once) and the departure hours."""
        u = self.unit
        out = route_cells(self.model, u, self.waypoints)
        back = out[::-1].copy()
        if out[0] == out[-1]:
            self.legs = {int(out[0]): out}  # a loop back to its start: driven whole each time
        elif self.round_trip:
            self.legs = {int(out[0]): np.concatenate([out, back[1:]])}
        else:
            self.legs = {int(out[0]): out, int(out[-1]): back}
        for leg in self.legs.values():
            leg.flags.writeable = False
        self.trip_hours = max(math.ceil(self._hours(leg) - 1e-9) for leg in self.legs.values())
        span = self.last - self.trip_hours - self.first + 1  # hours a trip can leave at
        if span <= 0 or self.trip_hours <= 0:
            self.slots = frozenset()  # no trip fits the hours: the vehicle never leaves
            return
        spacing = span / self.departures
        self.slots = frozenset(
            self.first + min(span - 1, int(self.phase * spacing + k * spacing))
            for k in range(self.departures)
        )

    def _hours(self, cells: np.ndarray) -> float:
        """Hours to drive ``cells`` at the vehicle's speeds (as the engine's orders time it: a
        side step costs a cell's hours, a diagonal step sqrt 2 times that)."""
        m = self.model
        f = m.force
        i = self.unit.idx
        # the terrain's shared layer for these speeds (a 0.25 km theatre's takes tens of ms to
        # compute, once per vehicle otherwise)
        hpc = shared_hours_per_cell(m.terrain, MOBILITIES[int(f.mobility[i])],
                                    float(f.speed_kmh[i]), float(f.offroad_speed_kmh[i]))
        if len(cells) < 2:
            return 0.0
        hop = np.abs(np.diff(cells))
        diag = (hop > 1) & (hop != m.terrain.cols)
        return float((hpc[cells[1:]] * np.where(diag, np.sqrt(2.0), 1.0)).sum())

    def hour_of_day(self) -> int:
        return wall_clock(self.model, self.hour).hour

    def in_hours(self) -> bool:
        return self.first <= self.hour_of_day() < self.last

    def next_departure(self) -> int:
        """The next step (from the next hour on) at a departure hour."""
        if not self.slots:
            return NEVER_HOUR
        return min(next_hour_of_day(self.model, self.hour + 1, h % HOURS_PER_DAY)
                   for h in self.slots)  # fmt: skip

    def next_first_hour(self) -> int:
        """The next step (from the next hour on) at the first hour of the vehicle's hours."""
        return next_hour_of_day(self.model, self.hour + 1, self.first % HOURS_PER_DAY)

    def end_of_hours(self) -> int:
        """The first step at which the vehicle's hours are over (now, if they are)."""
        hod = self.hour_of_day()
        return self.hour + max(0, self.last - hod) if hod >= self.first else self.hour

    # --- decisions -------------------------------------------------------------------------
    def decide(self) -> None:
        u = self.unit
        if self.legs is None:
            self._build()
        if u.is_moving:
            if self.in_hours():
                self.sleep_on_trip()
            else:
                self.pull_over()
            return
        if self.state == "out" and u.cell != self.destination:
            self.set_state("stopped")  # stopped short of the terminus (held up on the way)
        if self.state == "stopped":
            if not self.in_hours():
                u.halt(Posture.RESTING)
                u.sleep_until(self.next_first_hour())
                return
            if self.pending is not None:
                u.follow(self.pending, Posture.MOVING)
            elif not u.go_to(self.destination, Posture.MOVING):
                u.halt(Posture.RESTING)
                self.set_state("waiting")
                u.sleep_until(self.next_first_hour())
                return
            self.pending = None
            self.set_state("out")
            self.sleep_on_trip()
            return
        if self.state == "out":
            self.arrive()
        self.set_state("waiting")
        leg = self.legs.get(u.cell)
        if leg is None:
            # not at a terminus (cut off on the way): back to its home terminus first
            if self.in_hours() and u.go_to(u.home, Posture.MOVING, often=True):
                self.destination = u.home
                self.set_state("out")
                self.sleep_on_trip()
            else:
                u.halt(Posture.RESTING)
                u.sleep_until(self.next_first_hour())
            return
        u.halt(Posture.RESTING)
        if self.hour_of_day() in self.slots and self.in_hours():
            u.follow(leg, Posture.MOVING)
            if self.hour_of_day() + math.ceil(u.path_hours[-1] - 1e-9) <= self.last:
                self.destination = int(leg[-1])
                self.set_state("out")
                self.sleep_on_trip()
                return
            u.halt(Posture.RESTING)  # this trip would not end within the hours: wait
        u.sleep_until(self.next_departure())

    def sleep_on_trip(self) -> None:
        """Sleep until the vehicle arrives, or until its hours end while it is on the road."""
        self.until_arrival()
        self.unit.sleep_until(min(self.unit.wake_hour, self.end_of_hours()))

    def pull_over(self) -> None:
        """The hours are over and the vehicle is still on the road: stop, drive on later."""
        u = self.unit
        self.pending = u.path[u.path_pos :].copy()
        u.halt(Posture.RESTING)
        self.set_state("stopped")
        u.sleep_until(self.next_first_hour())

    def arrive(self) -> None:
        u = self.unit
        m = self.model
        f = m.force
        u.halt(Posture.RESTING)
        refill(m, u, "water", "fuel")
        f.strength[u.idx] = f.strength0[u.idx]  # a fresh load of passengers
        m.log("traffic_arrived", u.cell, u.faction, unit=u.name)
        self.set_state("waiting")


class Forage(Behaviour):
    """**Forage**: a group of truffle hunters (or shepherds) goes out into the open desert in
    its season and is at home in town otherwise.

    On a day of one of its ``months`` (February to April by default: the desert truffle
    season), the group leaves home at the local ``start_hour``, drives to a cell drawn at random
    among the open-desert cells (no town, no road) of its ``areas``, searches there on foot and
    drives home so as to be back by ``end_hour`` (``RETURN_MARGIN_HOURS`` in hand). A cell too
    far for a day out with ``MIN_FORAGE_HOURS`` of searching is drawn again (at most
    ``SEARCH_CELL_TRIES`` times; then the group stays home that day). Outside its season, and
    every night, it is at home (``home``, a place; by default where it starts) and sleeps until
    the next morning of its season. Fired on, it flees home; it does not recognise danger before
    the shooting starts (it does not react to what it sees). At home it takes fuel and water;
    fighters (people) it lost are lost.

    States: home -> out -> foraging -> returning -> home.

    Uses: ``model.clock``, ``model.rng``, ``model.terrain`` (areas, towns, roads, move cost,
    zones), ``model.barred_zones``, ``model.force`` (mobility, supplies), ``model.cell_of_place``;
    ``unit.go_to``, ``unit.halt``, ``unit.path_hours``, ``unit.sleep_until``.
    """

    kind = "forage"
    ignores = UNAWARE

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        t = model.terrain
        home = self.param("home")
        self.home = unit.cell if home is None else model.cell_of_place(home)
        self.months = frozenset(int(m) for m in self.param("months"))
        self.start_hour = int(self.param("start_hour"))
        self.end_hour = int(self.param("end_hour"))
        mask = np.zeros(t.rows * t.cols, dtype=bool)
        for name in self.param("areas"):
            mask |= t.areas[name].ravel()
        mob = MOBILITIES[int(model.force.mobility[unit.idx])]
        mask &= np.isfinite(t.move_cost[mob]).ravel()
        barred = model.barred_zones[model.force.faction[unit.idx]]
        if barred:
            mask &= ~np.isin(t.zone.ravel(), sorted(barred))
        open_cells = np.flatnonzero(mask & open_desert(t))
        self.search_cells = open_cells if len(open_cells) else np.flatnonzero(mask)
        self.return_at = -1

    def in_season(self, hour: int) -> bool:
        return wall_clock(self.model, hour).month in self.months

    def next_outing(self) -> int:
        """The next step (from the next hour on) at ``start_hour`` on a day of the season."""
        first = next_hour_of_day(self.model, self.hour + 1, self.start_hour)
        for day in range(SEASON_LOOKAHEAD_DAYS):
            h = first + day * HOURS_PER_DAY
            if self.in_season(h):
                return h
        return NEVER_HOUR

    def decide(self) -> None:
        u = self.unit
        if self.state in ("out", "foraging") and self.alerted("engaged", "broke_off"):
            self.go_home(Posture.WITHDRAWING)  # fired on: flee home
            return
        if u.is_moving:
            self.until_arrival()
            return
        if self.state == "out":
            # at the search cell: search on foot until it is time to go home
            u.halt(Posture.RESTING)
            self.set_state("foraging")
            u.sleep_until(self.return_at)
            return
        if self.state == "foraging":
            if self.hour >= self.return_at:
                self.go_home(Posture.MOVING)
            else:
                u.sleep_until(self.return_at)
            return
        if u.cell != self.home:
            self.go_home(Posture.MOVING)  # placed away from home, or stopped short of it
            return
        if self.state != "home":
            refill(self.model, u, "water", "fuel")
            self.set_state("home")
        u.halt(Posture.RESTING)
        hod = wall_clock(self.model, self.hour).hour
        if hod == self.start_hour and self.in_season(self.hour) and self.go_out():
            return
        u.sleep_until(self.next_outing())

    def go_out(self) -> bool:
        """Drive to a random search cell from which the group is home by ``end_hour``."""
        u = self.unit
        m = self.model
        if len(self.search_cells) == 0:
            return False
        hours_left = self.end_hour - self.start_hour
        for _ in range(SEARCH_CELL_TRIES):
            cell = int(self.search_cells[m.rng.integers(len(self.search_cells))])
            if cell == u.cell or not u.go_to(cell, Posture.MOVING):
                continue
            there = math.ceil(float(u.path_hours[-1]) - 1e-9)
            if 2 * there + RETURN_MARGIN_HOURS + MIN_FORAGE_HOURS <= hours_left:
                self.return_at = self.hour + hours_left - there - RETURN_MARGIN_HOURS
                self.set_state("out")
                self.until_arrival()
                return True
        u.halt(Posture.RESTING)
        return False

    def go_home(self, posture: Posture) -> None:
        u = self.unit
        if u.go_to(self.home, posture, often=True):
            self.set_state("returning")
            self.until_arrival()
        else:
            u.halt(Posture.RESTING)
            self.set_state("home")
            u.sleep_until(self.next_outing())
