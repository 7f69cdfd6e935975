"""Garrison tactics: hold, patrol, escort, pursue, sweep, border watch, zone guard."""

from __future__ import annotations

from math import trunc

import numpy as np

from sim.rules.state import NEVER_HOUR, Posture
from sim.scenario.vocab import MOBILITIES
from sim.tactics.base import HOURS_PER_DAY, YEAR_HOURS, Behaviour, nearest, shared_route
from sim.world.clock import LightLevel

#: Garrison units do not change their plans because an insurgent saw them.
SEEN = frozenset({"detected"})

#: Sightings older than this (hours) do not launch a pursuit.
PURSUIT_MAX_AGE_HOURS = 3
#: A patrol turns back to investigate a contact it made itself in the last hour if the contact
#: is within this distance (km): a vehicle patrol covers tens of km in the hour it takes to decide.
INVESTIGATE_KM = 40.0
#: A pursuer that finds nobody at the last-seen cell searches this long before returning.
PURSUIT_SEARCH_HOURS = 2
#: How much more often a sweep searching on foot glimpses a hidden group within sensor range
#: than a sentry watching: the searchers look into every cave and fold of the square.
SWEEP_SEARCH_FACTOR = 20.0
#: A road patrol scans the verges for ambushes and mines as it drives: it glimpses a group lying
#: up beside the road more often than a passing convoy does.
PATROL_SEARCH_FACTOR = 4.0
#: A patrol investigates only contacts it made itself this recently (hours): older ones have
#: moved on from where it saw them.
INVESTIGATE_MAX_AGE_HOURS = 1
#: A convoy whose spec names no tactic drives unescorted (fighters); the schema's default
#: ``escort_strength`` is for a convoy given the ``escort`` tactic.
NO_TACTIC_ESCORT_STRENGTH = 0
#: A pursuer within this many cells of the nearest edge cell of a barred zone is at the edge
#: and breaks off, rather than re-routing hour after hour for the last cell or two.
ZONE_EDGE_REACHED_CELLS = 2
#: A searcher sees to both sides of its lane: the sweep width is this many sensor ranges.
SWEEP_WIDTH_SENSOR_RANGES = 2
#: Lanes are spaced for the day sensor range, but for no more than this many night ranges: a
#: square is searched by night as well as by day, so a force with poor night sight walks
#: closer lanes.
SWEEP_NIGHT_RANGE_FACTOR = 2
#: A zone guard re-decides this many hours after setting out for its next patrol point (sooner
#: if it arrives): about half a day's leg, so it keeps moving round the zone.
ZONE_GUARD_LEG_HOURS = 12
#: The light a patrol's ``schedule`` keeps it to (None: any).
SCHEDULE_LIGHT = {"always": None, "day": LightLevel.DAY, "night": LightLevel.NIGHT}


class Hold(Behaviour):
    """**Hold**: a strongpoint watches, fights from its fortification and reports what it sees
    (its detections go to the faction's knowledge like everyone's).

    Uses: ``model.hour``, ``unit.halt``, ``unit.sleep_until``.
    """

    kind = "hold"
    ignores = SEEN

    def decide(self) -> None:
        self.unit.halt(Posture.RESTING)
        self.unit.sleep_until(self.hour + YEAR_HOURS)


class BorderWatch(Hold):
    """**Border watch**: a post on the border; events can change its strength during a run,
    and its faction's ``border_security`` sets the chance of intercepting a crossing.

    Uses: as :class:`Hold`.
    """

    kind = "border_watch"


class Patrol(Behaviour):
    """**Patrol**: drive a route out and back every ``period_hours``, by day, by night or both;
    a contact within ``INVESTIGATE_KM`` of the patrol is investigated: the patrol drives at it
    and opens fire, then takes up its route again. That is what makes frequent patrols find
    ambushes lying beside the road before a convoy drives into them.

    States: waiting -> out (route there and back) [-> investigating -> out] -> waiting.

    Uses: ``model.rng``, ``model.calendar``, ``model.known_enemies``,
    ``model.knowledge.seen_by``, ``model.distance_km``, ``model.force.search_factor``,
    ``shared_route``; ``unit.follow``, ``unit.go_to``, ``unit.stay``, ``unit.attack``,
    ``unit.path_pos``, ``unit.sleep_until``.
    """

    kind = "patrol"
    ignores = SEEN
    wakes_on_contact = True

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        waypoints = list(getattr(params, "route", None) or unit_spec.route or [])
        self.schedule = self.param("schedule")
        self._light = SCHEDULE_LIGHT[self.schedule]
        self.period = float(self.param("period_hours"))
        self._period_hours = max(1, int(self.period))  # whole hours from one start to the next
        self.waypoints = waypoints
        self._cells: np.ndarray | None = None
        self.next_start = int(model.rng.integers(0, self._period_hours))
        self.resume_at = 0  # index along the route to take up after an investigation
        self._searching = False  # its search factor set (at its first decision)

    def cells(self) -> np.ndarray:
        if self._cells is None:
            if not self.waypoints:
                self._cells = np.array([self.unit.cell])
                self._cells.flags.writeable = False  # the same round every time: timed once
            else:  # there and back, the array of every patrol of its group (timed once)
                self._cells = shared_route(self.model, self.unit, self.waypoints, "round")
        return self._cells

    def allowed_now(self) -> bool:
        return self._light is None or self.model.light == self._light

    def sleep_on_round(self) -> None:
        """Sleep until the patrol arrives, or until its schedule ends while it is out."""
        # one write of the timer: sleeping until arrival and then until the earlier of the
        # timer and the schedule's end comes to the same hour
        wake = self.arrival_hour()
        if self.state == "out":
            end = self.schedule_end_hour()
            wake = wake if wake < end else end
        self.unit.sleep_until(wake)

    def schedule_end_hour(self) -> int:
        """The first hour from now outside the patrol's schedule (far off for "always")."""
        if self._light is None:
            return self.hour + YEAR_HOURS
        return self.model.calendar.end_of(self.hour, self._light)

    def investigate(self) -> bool:
        """Drive at a fresh contact the patrol itself made near its route."""
        u = self.unit
        m = self.model
        idx, cells, _ = m.known_enemies(u, max_age_hours=INVESTIGATE_MAX_AGE_HOURS)
        mine = m.knowledge.seen_by[m.faction_index[u.faction], idx] == u.idx
        dist = m.distance_km(u.cell, cells)
        near = np.flatnonzero(mine & (dist <= INVESTIGATE_KM))
        if len(near) == 0:
            return False
        # the nearest contact, the lowest unit index of equals
        k = near[np.lexsort((idx[near], dist[near]))[0]]
        quarry, cell = int(idx[k]), int(cells[k])
        if self.state == "out":
            self.resume_at = u.path_pos
        if u.go_to(cell, Posture.PURSUING):
            u.attack(quarry, "patrol_contact")
            self.set_state("investigating")
            u.sleep_until(m.hour + 1)
            return True
        return False

    def decide(self) -> None:
        u = self.unit
        state = self.state
        if state == "waiting" and not u.is_moving:
            self._start_or_wait(u, back=False)  # the usual wake: a round is due (or not yet)
            return
        busy = state in ("out", "investigating")
        if busy and "contact" in u.alerts and self.investigate():
            return
        if self.state == "investigating":
            if u.is_moving and not self.alerted("engaged", "broke_off", "target_gone"):
                u.sleep_until(self.hour + 1)
                return
            u.cease_fire()
            rest = self.cells()[self.resume_at :]
            if len(rest) > 1 and u.go_to(int(rest[0]), Posture.MOVING):
                u.follow(np.concatenate([u.path, rest[1:]]), Posture.MOVING)
                self.set_state("out")
            else:
                u.go_to(u.home, Posture.MOVING, often=True)
                self.set_state("return")
            return
        if u.is_moving:
            if not self.allowed_now() and self.state == "out":
                # the schedule ended while out: head straight home
                u.go_to(u.home, Posture.MOVING, often=True)
                self.set_state("return")
            self.sleep_on_round()
            return
        back = self.state in ("out", "return")
        if back:
            self.set_state("waiting")
        self._start_or_wait(u, back)

    def _start_or_wait(self, u, back: bool) -> None:
        """A patrol standing at its base (``back``: just arrived there): out on its round if
        one is due and the schedule allows, else wait for that."""
        m = self.model
        hour = m.hour
        light = self._light
        if not self._searching:  # the factor is the patrol's from its first decision on
            m.force.search_factor[u.idx] = PATROL_SEARCH_FACTOR
            self._searching = True
        if hour >= self.next_start and (light is None or m.light == light):  # allowed_now
            # back and out again at once: the new round replaces the path, posture and clock a
            # halt would have set, so the patrol is not halted first
            u.follow(self.cells(), Posture.MOVING)
            self.set_state("out")
            self.resume_at = 0
            self.next_start = hour + self._period_hours
            # sleep_on_round for a round just begun (its clock at 0, so arrival_hour is the
            # round's hours on from now, and schedule_end_hour), written out without calls to
            # int, min and max (each costs more than the arithmetic): the commonest decision
            ahead = trunc(u.path_hours.item(-1)) + 1
            arrival = hour + (ahead if ahead > 1 else 1)
            end = hour + YEAR_HOURS if light is None else m.calendar.end_of(hour, light)
            u.sleep_until(arrival if arrival < end else end)
            return
        if back:
            u.stay(Posture.RESTING)
        if hour >= self.next_start:  # due, but outside the schedule: wait for it
            u.sleep_until(self.next_day_hour() if light == LightLevel.DAY
                          else self.next_night_hour())
        else:
            u.sleep_until(self.next_start)


class Escort(Behaviour):
    """**Escort**: a convoy drives its route by day every ``depart_every_hours`` with an
    escort of ``escort_strength`` fighters riding with it (an attached unit that fights back).

    Uses: ``model.rng``, ``model.calendar``, ``model.spawn_attached``, ``model.log``,
    ``shared_route``; ``unit.follow``, ``unit.stay``, ``unit.sleep_until``.
    """

    kind = "escort"
    ignores = SEEN

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        waypoints = list(getattr(params, "route", None) or unit_spec.route or [])
        self.waypoints = waypoints
        self.period = float(self.param("depart_every_hours"))
        self._period_hours = max(1, int(self.period))  # whole hours from one start to the next
        self.next_start = int(model.rng.integers(0, self._period_hours))
        self._out: np.ndarray | None = None
        self.escort = None
        strength = NO_TACTIC_ESCORT_STRENGTH if params is None else int(params.escort_strength)
        if strength > 0:
            self.escort = model.spawn_attached(unit, "escort", strength)

    def decide(self) -> None:
        u = self.unit
        if u.is_moving:
            self.until_arrival()
            return
        if self._out is None:  # the runs of every convoy of its group (each timed once)
            self._out = shared_route(self.model, u, self.waypoints, "out")
            self._back = shared_route(self.model, u, self.waypoints, "back")
        m = self.model
        hour = m.hour
        day = m.light == LightLevel.DAY
        back = self.state == "out"
        if back:
            # arrived at the far end: drive back next time
            self._out, self._back = self._back, self._out
            self.set_state("waiting")
            m.log("convoy_arrived", u.cell, u.faction, unit=u.name)
        if hour >= self.next_start and day:
            # out again at once: the new run replaces what a halt would set (not halted first)
            u.follow(self._out, Posture.MOVING)
            self.set_state("out")
            self.next_start = hour + self._period_hours
            # until_arrival for a run just begun (its clock at 0), written out as the patrol's
            ahead = trunc(u.path_hours.item(-1)) + 1
            u.sleep_until(hour + (ahead if ahead > 1 else 1))
            return
        if back:
            u.stay(Posture.RESTING)
        # (sleep_until wakes it at the next hour at the soonest, as a departure due now needs)
        u.sleep_until(self.next_start if day else self.next_day_hour())


class Pursue(Behaviour):
    """**Pursue**: a quick-reaction force drives to where the enemy was last seen and chases it
    as far as ``max_range_km`` from base; it stops at the edge of a zone its faction is barred
    from (the event log records the break-off) and returns to base. With ``muster_hours`` it
    needs that long to mount up after news reaches it, and then chases sightings up to that much
    older.

    Uses: ``model.knowledge.latest_share``, ``model.known_enemies``, ``model.distance_km``,
    ``model.barred_zones``, ``model.sites.zone_edges``, ``model.cell_of_place``, ``model.log``;
    ``unit.go_to``, ``unit.attack_target``, ``unit.destination``, ``unit.cease_fire``,
    ``unit.sleep_until``.
    """

    kind = "pursue"
    ignores = SEEN
    wakes_on_news = True

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        base = self.param("base")
        self.base = unit.cell if base is None else model.cell_of_place(base)
        self.max_range = float(self.param("max_range_km"))
        self.quarry: int | None = None
        self.search_until = -1
        self.muster_until = -1
        # (knowledge version, hostility) when the force at readiness last found no enemy
        # near its base (see decide)
        self._none_near: tuple[int, bytes] | None = None

    def decide(self) -> None:
        u = self.unit
        m = self.model
        fi = m.faction_index[u.faction]
        latest = int(m.knowledge.latest_share[fi])
        if self.state == "ready" and not (m.hour - PURSUIT_MAX_AGE_HOURS <= latest <= m.hour):
            # nothing new has reached the faction: stay at readiness until news arrives (the
            # model wakes the force when a sighting is shared; one may already be on its way)
            u.sleep_until(latest if latest > m.hour else NEVER_HOUR)
            return
        muster = int(self.param("muster_hours"))
        if self.state == "ready" and muster > 0:
            # news came in: the force mounts up before it can drive out
            self.set_state("mustering")
            self.muster_until = m.hour + muster
        if self.state == "mustering" and m.hour < self.muster_until:
            u.sleep_until(self.muster_until)  # more news does not make it mount up faster
            return
        max_age = PURSUIT_MAX_AGE_HOURS + (muster if self.state == "mustering" else 0)
        # At readiness (so every sighting made has reached the faction: latest <= hour, above)
        # the enemies known near the base can only grow by a new sighting or a change of
        # hostility; sightings only age out and dead units are forgotten, each a new knowledge
        # version. Nothing near then and neither since: nothing near now, unlooked at.
        idle = (m.knowledge.version, m.hostile[fi].tobytes()) if self.state == "ready" else None
        if idle is not None and idle == self._none_near:
            idx = ()
        else:
            idx, cells, ages = m.known_enemies(u, max_age_hours=max_age)
        if self.quarry is not None and not m.force.alive[self.quarry]:
            self.quarry = None
        if len(idx):
            # one numpy pass over every known enemy (a big theatre's QRF weighs hundreds)
            near = m.distance_km(self.base, cells) <= self.max_range
            if near.any():
                idx, cells, ages = idx[near], cells[near], ages[near]
                # the quarry already chased, if still known; else the freshest, nearest
                # sighting (the first of equals, in unit order)
                k = np.flatnonzero(idx == self.quarry) if self.quarry is not None else ()
                if len(k) == 0:
                    k = np.lexsort((m.distance_km(u.cell, cells), ages))
                if self.chase(int(idx[k[0]]), int(cells[k[0]])):
                    return
            elif self.state == "pursuing" and self.quarry is not None:
                self.break_off("range")
                return
        self._none_near = idle  # (None unless at readiness)
        if self.state == "pursuing":
            if u.is_moving:
                u.sleep_until(m.hour + 1)
                return
            if self.search_until < 0:
                self.search_until = m.hour + PURSUIT_SEARCH_HOURS
            if m.hour < self.search_until:
                u.sleep_until(m.hour + 1)
                return
            self.return_to_base()
            return
        if self.state == "returning" and u.is_moving:
            u.sleep_until(m.hour + 1)
            return
        if self.state == "mustering":
            self.set_state("ready")  # mustered for nothing: the trail went cold
        if u.cell == self.base:
            u.halt(Posture.RESTING)
            self.set_state("ready")
        u.sleep_until(m.hour + 1)

    def chase(self, quarry: int, cell: int) -> bool:
        """Drive at the quarry's last-seen cell; break off at a barred zone's edge."""
        u = self.unit
        m = self.model
        t = m.terrain
        zone = t.zone.ravel()[cell]
        barred = m.barred_zones[m.faction_index[u.faction]]
        if zone >= 0 and zone in barred:
            # the quarry is inside a zone this force may not enter: drive to the edge nearest
            # to where it was last seen, and stop there
            edge = nearest(self._edge_cells(barred), cell, t.cols, 1)
            reached_km = ZONE_EDGE_REACHED_CELLS * t.grid.cell_km
            at_edge = len(edge) and m.distance_km(u.cell, int(edge[0])) <= reached_km
            if at_edge or len(edge) == 0 or not u.go_to(int(edge[0]), Posture.PURSUING):
                self.break_off("zone", zone=t.zones[zone].name)
                return True
            self.quarry = quarry
            self.set_state("pursuing")
            u.sleep_until(m.hour + 1)
            return True
        if self.quarry != quarry or u.destination != cell:
            if not u.go_to(cell, Posture.PURSUING):
                self.break_off("unreachable")
                return True
            if self.quarry != quarry:
                m.log("pursuit_start", u.cell, u.faction, unit=u.name,
                      quarry=m.units[quarry].name)  # fmt: skip
        self.quarry = quarry
        self.search_until = -1
        self.set_state("pursuing")
        u.attack_target = quarry  # fire when in range
        u.sleep_until(m.hour + 1)
        return True

    def _edge_cells(self, barred: frozenset[int]) -> np.ndarray:
        """Cells just outside the barred zones (where a pursuit must stop)."""
        return self.model.sites.zone_edges(barred)

    def break_off(self, reason: str, **extra) -> None:
        u = self.unit
        m = self.model
        m.log("breakoff", u.cell, u.faction, unit=u.name, reason=reason,
              quarry=m.units[self.quarry].name if self.quarry is not None else "",
              **extra)  # fmt: skip
        self.return_to_base()

    def return_to_base(self) -> None:
        u = self.unit
        u.cease_fire()
        u.operation = None
        self.quarry = None
        self.search_until = -1
        if u.cell != self.base and u.go_to(self.base, Posture.MOVING, often=True):
            self.set_state("returning")
        else:
            u.halt(Posture.RESTING)
            self.set_state("ready")
        u.sleep_until(self.model.hour + 1)


class Sweep(Behaviour):
    """**Sweep**: divide an area into squares of ``square_km``; clear them one at a time,
    walking lanes one sensor width apart inside the square for ``hours_per_square``, while a
    cordon (``cordon: true``) watches the square's edge: a hidden cell that moves out of the
    square being searched is seen by the cordon.

    Why clearing a large area takes so long: a square is only searched as thoroughly as its
    lanes cover it in the time given. With sweep width ``W`` (twice the searchers' sensor range),
    speed ``v`` and ``h`` hours, the covered fraction is ``min(1, W v h / square_km^2)``
    (Koopman's exhaustive sweep); squares wider than the lanes the time allows leave gaps.

    Uses: ``model.terrain.areas``, ``model.force.sensor_day_km`` / ``sensor_night_km``,
    ``model.force.search_factor``, ``model.found_fraction``, ``model.log``; ``unit.go_to``,
    ``unit.follow``, ``unit.path_hours``, ``unit.sleep_until``. The cordon rule
    (:mod:`sim.rules.cordon`) reads :meth:`square_mask_cells`.
    """

    kind = "sweep"
    ignores = SEEN

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        t = model.terrain
        mask = t.areas[params.area]
        side = max(1, round(params.square_km / t.grid.cell_km))
        rr, cc = np.nonzero(mask)
        blocks = sorted({(r // side, c // side) for r, c in zip(rr.tolist(), cc.tolist(),
                                                               strict=True)})  # fmt: skip
        # serpentine order of squares, so the force moves to the neighbouring square
        by_row: dict[int, list[tuple[int, int]]] = {}
        for b in blocks:
            by_row.setdefault(b[0], []).append(b)
        self.squares = [
            sq for k, row in enumerate(sorted(by_row)) for sq in
            (by_row[row] if k % 2 == 0 else by_row[row][::-1])
        ]
        self.side = side
        self.current = -1
        self.square_until = -1
        self.cleared_squares = 0

    def _lanes(self, sq: tuple[int, int]) -> np.ndarray:
        """Flat cells of a boustrophedon path through a square, lanes a sweep width apart."""
        m = self.model
        t = m.terrain
        f = m.force
        r0, c0 = sq[0] * self.side, sq[1] * self.side
        r1, c1 = min(r0 + self.side, t.rows), min(c0 + self.side, t.cols)
        night_km = f.sensor_night_km[self.unit.idx] * SWEEP_NIGHT_RANGE_FACTOR
        sensor = min(f.sensor_day_km[self.unit.idx], night_km)
        spacing = max(1, int(SWEEP_WIDTH_SENSOR_RANGES * sensor / t.grid.cell_km))
        lane_rows = np.arange(r0 + spacing // 2, r1, spacing, dtype=np.int64)
        if len(lane_rows) == 0:
            lane_rows = np.array([min((r0 + r1) // 2, t.rows - 1)], dtype=np.int64)
        # one row of cells per lane, every other lane walked back (a serpentine)
        lanes = lane_rows[:, None] * t.cols + np.arange(c0, c1, dtype=np.int64)
        lanes[1::2] = lanes[1::2, ::-1]
        return lanes.ravel()

    def decide(self) -> None:
        u = self.unit
        m = self.model
        if self.current >= len(self.squares):
            u.sleep_until(m.hour + YEAR_HOURS)  # the sweep is over
            return
        if self.current >= 0 and m.hour < self.square_until:
            u.sleep_until(self.square_until)  # still searching (or watching) this square
            return
        if self.current >= 0:
            self.cleared_squares += 1
            m.log("square_cleared", u.cell, u.faction, unit=u.name, square=self.current)
        self.current += 1
        m.force.search_factor[u.idx] = SWEEP_SEARCH_FACTOR
        if self.current >= len(self.squares):
            m.force.search_factor[u.idx] = 1.0
            days = round(m.hour / HOURS_PER_DAY, 2)
            m.log("sweep_done", u.cell, u.faction, unit=u.name, squares=len(self.squares),
                  found_fraction=m.found_fraction(), days=days)  # fmt: skip
            u.halt(Posture.RESTING)
            u.sleep_until(m.hour + YEAR_HOURS)
            return
        lanes = self._lanes(self.squares[self.current])
        reach_hours = 0.0
        if u.go_to(int(lanes[0]), Posture.MOVING):
            approach = len(u.path)
            u.follow(self._walkable(np.concatenate([u.path, lanes[1:]])), Posture.MOVING)
            reach_hours = float(u.path_hours[min(approach, len(u.path)) - 1])
        # the square's search time starts when the force reaches it; the lanes are walked as
        # far as that time allows, then the force moves on
        self.square_until = m.hour + int(np.ceil(reach_hours + self.params.hours_per_square))
        u.sleep_until(self.square_until)

    def _walkable(self, cells: np.ndarray) -> np.ndarray:
        """Drop cells the unit cannot enter (rivers for vehicles), keeping order."""
        m = self.model
        mob = MOBILITIES[int(m.force.mobility[self.unit.idx])]
        ok = np.isfinite(m.terrain.move_cost[mob].ravel()[cells])
        return cells[ok]

    def square_mask_cells(self) -> tuple[int, int, int, int]:
        sq = self.squares[self.current]
        return sq[0] * self.side, sq[1] * self.side, self.side, self.side


class ZoneGuard(Behaviour):
    """**Zone guard**: the zone's guarding faction patrols inside it, between random points,
    and engages units of factions barred from the zone (see ``engagements.opens_fire_on``).

    Uses: ``model.sites.zone_patrol_points``, ``model.rng``; ``unit.go_to``, ``unit.halt``,
    ``unit.sleep_until``.
    """

    kind = "zone_guard"
    ignores = SEEN

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        t = model.terrain
        z = t.zone_index(params.zone) if params is not None else int(t.zone.ravel()[unit.cell])
        self.cells = model.sites.zone_patrol_points(z, unit.cell)
        self._points = self.cells.tolist()  # drawn from at every leg: a list's item costs less

    def decide(self) -> None:
        u = self.unit
        m = self.model
        if u.is_moving:
            self.until_arrival()
            return
        target = self._points[m.rng.integers(len(self._points))]
        if not u.go_to(target, Posture.MOVING, often=True):
            u.halt(Posture.RESTING)
        u.sleep_until(m.hour + ZONE_GUARD_LEG_HOURS)


__all__ = ["BorderWatch", "Escort", "Hold", "Patrol", "Pursue", "Sweep", "ZoneGuard", "nearest"]
