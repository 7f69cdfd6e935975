"""Tactics: what a unit decides when it wakes, as small state machines.

A :class:`Behaviour` is attached to one unit. The engine calls :meth:`Behaviour.decide` when the
unit's timer is due (``unit.sleep_until``), when something alerted it (it arrived, was detected,
fought, broke off) or, for behaviours with ``wakes_on_light``, at dusk and dawn. Between
decisions the engine moves, detects and fights for every unit at once, so a decision is an order
(a path to follow, a target to attack, a posture), not per-hour work.

Behaviours are typed against :class:`TacticState`, the narrow view of a run they use (the
engine's ``DesertModel`` provides it); they never import the engine.
"""

from __future__ import annotations

from math import trunc
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from sim.rules.state import RunState
from sim.scenario.schema import TACTIC_MODELS
from sim.scenario.vocab import MOBILITIES
from sim.tactics.sites import nearest  # noqa: F401  (the tactics' rule; beside its index)
from sim.world.clock import HOURS_PER_DAY, LightLevel

if TYPE_CHECKING:
    from sim.rules.mines import Minefield
    from sim.rules.state import UnitView
    from sim.tactics.sites import Sites
    from sim.world.clock import Clock, LightCalendar
    from sim.world.roads import RoadState
    from sim.world.routes import Router

#: A sleep longer than any run (a year, in hours): "until something alerts the unit". Kept at a
#: year rather than ``NEVER_HOUR`` so a unit that only reacts to alerts still re-decides once a
#: year, as it always has.
YEAR_HOURS = 365 * HOURS_PER_DAY
#: A cell's rest between trips is ``nights_between + 1`` days less this many hours, so that a
#: cell back in its hide before first light is rested by dusk on the due night, whatever hour
#: dusk falls at (see :func:`rest_hours`).
REST_SLACK_HOURS = 12


def rest_hours(nights_between: int) -> int:
    """Hours a cell rests after setting out before it may set out again:
    ``24 (n + 1) - REST_SLACK_HOURS`` for a rest of ``n`` nights."""
    return HOURS_PER_DAY * (int(nights_between) + 1) - REST_SLACK_HOURS


def first_night_hour(rng: np.random.Generator, nights_between: int) -> int:
    """The run hour before which a cell with a rest of ``n = nights_between`` nights does not
    set out: ``24 k`` with ``k ~ U{0, ..., n}`` (one draw from ``rng`` when ``n > 0``; 0 and no
    draw otherwise).

    Why: a scenario starts a campaign that is already under way, so its cells are at random
    points of their rest. Starting them all rested sends every cell out on the first night at
    once, a start-up transient (a burst of exposure, contacts and losses in the first week)
    that the documented insurgency does not have."""
    n = int(nights_between)
    return int(rng.integers(0, n + 1)) * HOURS_PER_DAY if n > 0 else 0


def last_trip_for(first_hour: int, nights_between: int, never: int) -> int:
    """The ``last_trip_hour`` that makes a cell rested exactly from ``first_hour``
    (``hour - last >= rest_hours(n)`` iff ``hour >= first_hour``); ``-never`` (rested from the
    start) when ``first_hour`` is 0."""
    return first_hour - rest_hours(nights_between) if first_hour > 0 else -never


class TacticState(RunState, Protocol):
    """What tactics use of a run, beyond the rules' :class:`~sim.rules.state.RunState`.

    State: the light ``calendar``, the ``router``, the ``roads`` (segments, closures), the
    ``sites`` (hides, refuges, water, zone edges), the ambush ``tripwires`` (road cell ->
    ambusher), the ``minefield`` (None without mines), the current ``light``, the wall
    ``clock`` (dates, seasons). Queries: ``known_enemies``, ``distance_km``,
    ``cell_of_place``, ``escorts_of``, ``found_fraction``. Orders with effects beyond the unit:
    ``spawn_attached`` (an escort), ``spawn_cell`` (a pursued cell splitting), ``town_assaulted``
    and ``town_seized``.
    """

    clock: Clock
    calendar: LightCalendar
    router: Router
    roads: RoadState
    sites: Sites
    tripwires: dict[int, UnitView]
    minefield: Minefield | None

    @property
    def light(self) -> LightLevel: ...
    def known_enemies(self, unit: UnitView, max_age_hours: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def distance_km(self, a: int, b: int) -> float: ...
    def cell_of_place(self, name: str) -> int: ...
    def escorts_of(self, leader: UnitView) -> list[UnitView]: ...
    def found_fraction(self) -> float: ...
    def spawn_attached(self, leader: UnitView, kind: str, strength: int) -> UnitView: ...
    def spawn_cell(self, faction: str, cell: int, strength: int, tactic, *, name: str,
                   like: UnitView | None = None) -> UnitView | None: ...
    def town_assaulted(self, town: str, unit: UnitView) -> None: ...
    def town_seized(self, town: str, unit: UnitView) -> None: ...


class Behaviour:
    """Base class: a tactic's state and the unit it drives.

    Uses: ``model.hour``, ``model.light``, ``model.calendar``, ``model.force.path_clock``,
    ``unit.alerts``, ``unit.path_hours``, ``unit.sleep_until``.
    """

    kind: ClassVar[str] = ""
    wakes_on_light: ClassVar[bool] = False
    wakes_on_contact: ClassVar[bool] = False  # woken when the unit itself sees an enemy
    wakes_on_news: ClassVar[bool] = False  # woken when a sighting reaches the unit's faction
    #: Alerts that do not need a decision (a garrison does not react to being seen).
    ignores: ClassVar[frozenset[str]] = frozenset()

    def woken_by(self, alerts: list[str]) -> bool:
        """Whether any of the unit's alerts calls for a decision now (one not all ignored)."""
        return not self.ignores.issuperset(alerts)

    def __init__(self, model: TacticState, unit: UnitView, params=None, unit_spec=None):
        self.model = model
        self.unit = unit
        self.params = params
        self.unit_spec = unit_spec
        self.state = "start"

    def decide(self) -> None:  # pragma: no cover - every tactic overrides it
        raise NotImplementedError

    def param(self, name: str):
        """The tactic parameter ``name``: the scenario's value, or the schema's default for this
        kind when the unit's spec names no tactic (``params`` is None)."""
        if self.params is not None:
            return getattr(self.params, name)
        return TACTIC_MODELS[self.kind].model_fields[name].get_default(call_default_factory=True)

    # small helpers shared by tactics ------------------------------------------------------
    @property
    def hour(self) -> int:
        return self.model.hour

    @property
    def is_night(self) -> bool:
        return self.model.light == LightLevel.NIGHT

    @property
    def is_day(self) -> bool:
        return self.model.light == LightLevel.DAY

    def set_state(self, state: str) -> None:
        self.state = state

    def until_arrival(self) -> None:
        """Sleep while the unit follows its path: "arrived" (or any other alert) wakes it."""
        self.unit.sleep_until(self.arrival_hour())

    def arrival_hour(self) -> int:
        """The first hour after the unit has followed its path to the end (at least the next
        hour): the hour :meth:`until_arrival` sleeps until."""
        u = self.unit
        m = self.model
        remaining = u.path_hours.item(-1) - m.force.path_clock.item(u.idx)
        # max(1, int(remaining) + 1) without the calls (trunc rounds a float as int does)
        ahead = trunc(remaining) + 1
        return m.hour + (ahead if ahead > 1 else 1)

    def alerted(self, *reasons: str) -> bool:
        """Whether the unit was alerted for any of ``reasons``."""
        alerts = self.unit.alerts
        if alerts:
            for r in reasons:  # a loop: any() of a generator costs ten times more
                if r in alerts:
                    return True
        return False

    def hours_to_first_light(self) -> float:
        """Hours from now until morning twilight begins (the end of darkness)."""
        return self.model.calendar.hours_to_first_light(self.hour)

    def next_dusk_hour(self) -> int:
        """The first hour of the next night (after the coming day if it is night now)."""
        return self.model.calendar.next_dusk_hour(self.hour)

    def next_night_hour(self) -> int:
        """The next hour of full night (now, if it is night)."""
        return self.model.calendar.next_night_hour(self.hour)

    def next_day_hour(self) -> int:
        """The next hour of full daylight."""
        return self.model.calendar.next_day_hour(self.hour)


def route_cells(model: TacticState, unit: UnitView, waypoints, closed: bool = False) -> np.ndarray:
    """Flat cells through ``waypoints`` (places or [lat, lon]), on roads where the unit is
    road-bound or both ends are on the road network, else over its cost field."""
    t = model.terrain
    here = unit.cell  # where the next leg starts: the end of the route so far
    legs = [np.array([here], dtype=np.int64)]  # joined once at the end, not cell by cell
    points = list(waypoints) + ([waypoints[0]] if closed else [])
    mob = MOBILITIES[int(model.force.mobility[unit.idx])]
    barred = model.barred_zones[model.force.faction[unit.idx]]
    for wp in points:
        r, c = t.locate(wp)
        target = r * t.cols + c
        if mob != "foot" and isinstance(wp, str) and wp in t.road_graph:
            # vehicles drive between places on the road network's shortest route
            try:
                leg = model.router.road_route(model.router.nearest_node(divmod(here, t.cols)),
                                              wp).cells
                flat = leg[:, 0].astype(np.int64) * t.cols + leg[:, 1]
                if barred:
                    # a comparison per barred zone (a faction is barred from one or two), not
                    # np.isin, which sorts both arrays first
                    zones = t.zone.ravel()[flat]
                    if any(bool((zones == z).any()) for z in barred):
                        raise ValueError("the road runs through a zone this unit may not enter")
                if len(flat) and flat[0] != here:
                    link = model.router.local_path(here, int(flat[0]), mob, barred)
                    flat = np.concatenate([link, flat[1:]]) if len(link) else flat
                if len(flat) > 1:
                    legs.append(flat[1:])
                    here = int(flat[-1])
                continue
            except ValueError:
                pass
        flat = model.router.local_path(here, target, mob, barred)
        if len(flat) > 1:
            legs.append(flat[1:])
            here = int(flat[-1])
    return np.concatenate(legs).astype(np.int64, copy=False)


#: The forms of a route through waypoints :func:`shared_route` gives.
ROUTE_FORMS = ("out", "back", "round")


def shared_route(model: TacticState, unit: UnitView, waypoints, form: str) -> np.ndarray:
    """:func:`route_cells` from the unit's cell through ``waypoints``, read-only, as ``form``:
    "out" (as it is), "back" (reversed) or "round" (out and back, the turning point once).

    One array per form for every unit starting from the same cell through the same waypoints
    with the same mobility and barred zones, kept by the router (``Router.kept``). Why: a
    scenario's patrols and convoys come in groups driving one route from one base; one array
    spares the routing of the waypoints for all but the first, and lets the group share one
    timing of it per speed, one copy in the path book and one finding of its border crossings
    (each kept by the array)."""
    if form not in ROUTE_FORMS:
        raise ValueError(f"route form {form!r}: use one of {', '.join(ROUTE_FORMS)}")
    f = model.force
    mob = int(f.mobility[unit.idx])
    barred = model.barred_zones[f.faction[unit.idx]]
    stops = tuple(wp if isinstance(wp, str) else tuple(float(v) for v in wp) for wp in waypoints)
    key = ("route_cells", unit.cell, stops, mob, barred)

    def out() -> np.ndarray:
        return route_cells(model, unit, waypoints)

    if form == "out":
        return model.router.kept(key, out)
    there = model.router.kept(key, out)
    if form == "back":
        return model.router.kept((*key, form), lambda: there[::-1].copy())
    return model.router.kept((*key, form), lambda: np.concatenate([there, there[::-1][1:]]))


def column_strength(model: TacticState, prey: UnitView) -> tuple[UnitView, float]:
    """The column a vehicle belongs to (its convoy if it is an escort) and the fighters in it,
    escorts included: what an ambush or a checkpoint weighs before it opens fire."""
    f = model.force
    leader = prey.attached_to if prey.attached_to is not None else prey
    strength = float(f.strength[leader.idx]) + sum(
        float(f.strength[x.idx]) for x in model.escorts_of(leader))
    return leader, strength
