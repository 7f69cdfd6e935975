"""Tactics: what a unit decides when it wakes, as small state machines.

A :class:`Behaviour` is attached to one unit. The model calls :meth:`Behaviour.decide` when the
unit's timer is due (``unit.sleep_until``), when something alerted it (it arrived, was detected,
fought, broke off) or, for behaviours with ``wakes_on_light``, at dusk and dawn. Between
decisions the model moves, detects and fights for every unit at once, so a decision is an order
(a path to follow, a target to attack, a posture), not per-hour work.

Insurgent behaviours are in :mod:`sim.tactics.insurgent`, garrison ones in
:mod:`sim.tactics.garrison`; ``docs/tactics.md`` lists states and parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from sim.world.clock import LightLevel

if TYPE_CHECKING:
    from sim.engine.model import DesertModel
    from sim.engine.units import Unit


class Behaviour:
    """Base class: a tactic's state and the unit it drives."""

    kind: ClassVar[str] = ""
    wakes_on_light: ClassVar[bool] = False
    wakes_on_contact: ClassVar[bool] = False  # woken when the unit itself sees an enemy
    wakes_on_news: ClassVar[bool] = False  # woken when a sighting reaches the unit's faction
    #: Alerts that do not need a decision (a garrison does not react to being seen).
    ignores: ClassVar[frozenset[str]] = frozenset()

    def woken_by(self, alerts: list[str]) -> bool:
        """Whether any of the unit's alerts calls for a decision now."""
        return any(a not in self.ignores for a in alerts)

    def __init__(self, model: DesertModel, unit: Unit, params=None, unit_spec=None):
        self.model = model
        self.unit = unit
        self.params = params
        self.unit_spec = unit_spec
        self.state = "start"

    def decide(self) -> None:  # pragma: no cover - every tactic overrides it
        raise NotImplementedError

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
        u = self.unit
        remaining = u.path_hours[-1] - float(self.model.force.path_clock[u.idx])
        u.sleep_until(self.hour + max(1, int(remaining) + 1))

    def alerted(self, *reasons: str) -> bool:
        return any(r in self.unit.alerts for r in reasons)

    def hours_to_first_light(self) -> float:
        """Hours from now until morning twilight begins (the end of darkness)."""
        levels = self.model.light_by_hour
        h = self.hour
        end = min(len(levels), h + 30)
        later = np.flatnonzero(levels[h:end] != LightLevel.NIGHT)
        return float(later[0]) if len(later) else float(end - h)

    def next_dusk_hour(self) -> int:
        """The first hour of the next night (after the coming day if it is night now)."""
        levels = self.model.light_by_hour
        h = self.hour
        night = levels[h : h + 48] == LightLevel.NIGHT
        starts = np.flatnonzero(night[1:] & ~night[:-1]) + 1
        return h + int(starts[0]) if len(starts) else h + 24

    def next_night_hour(self) -> int:
        """The next hour of full night (now, if it is night)."""
        levels = self.model.light_by_hour
        h = self.hour
        later = np.flatnonzero(levels[h : h + 36] == LightLevel.NIGHT)
        return h + int(later[0]) if len(later) else h + 24

    def next_day_hour(self) -> int:
        """The next hour of full daylight."""
        levels = self.model.light_by_hour
        h = self.hour + 1
        later = np.flatnonzero(levels[h : h + 36] == LightLevel.DAY)
        return h + int(later[0]) if len(later) else h + 24


def nearest(cells: np.ndarray, cell: int, cols: int, k: int = 1) -> np.ndarray:
    """The ``k`` cells of ``cells`` nearest (straight line) to ``cell``."""
    if len(cells) == 0:
        return cells
    r, c = divmod(int(cell), cols)
    rr, cc = np.divmod(cells, cols)
    d2 = (rr - r) ** 2 + (cc - c) ** 2
    if k >= len(cells):
        return cells[np.argsort(d2, kind="stable")]
    part = np.argpartition(d2, k)[:k]
    return cells[part[np.argsort(d2[part], kind="stable")]]


def route_cells(model: DesertModel, unit: Unit, waypoints, closed: bool = False) -> np.ndarray:
    """Flat cells through ``waypoints`` (places or [lat, lon]), on roads where the unit is
    road-bound or both ends are on the road network, else over its cost field."""
    t = model.terrain
    cells = [unit.cell]
    points = list(waypoints) + ([waypoints[0]] if closed else [])
    mob = ("foot", "offroad", "road")[int(model.force.mobility[unit.idx])]
    barred = model.barred_zones[model.force.faction[unit.idx]]
    for wp in points:
        r, c = t.locate(wp)
        target = r * t.cols + c
        if mob != "foot" and isinstance(wp, str) and wp in t.road_graph:
            # vehicles drive between places on the road network's shortest route
            try:
                here = divmod(cells[-1], t.cols)
                leg = model.router.road_route(model.router.nearest_node(here), wp).cells
                flat = leg[:, 0].astype(np.int64) * t.cols + leg[:, 1]
                if barred and np.isin(t.zone.ravel()[flat], sorted(barred)).any():
                    raise ValueError("the road runs through a zone this unit may not enter")
                if len(flat) and flat[0] != cells[-1]:
                    link = model.router.local_path(cells[-1], int(flat[0]), mob, barred)
                    flat = np.concatenate([link, flat[1:]]) if len(link) else flat
                cells.extend(flat[1:].tolist())
                continue
            except ValueError:
                pass
        flat = model.router.local_path(cells[-1], target, mob, barred)
        if len(flat):
            cells.extend(flat[1:].tolist())
    return np.asarray(cells, dtype=np.int64)


def make_behaviour(model: DesertModel, unit: Unit, tactic, unit_spec) -> Behaviour | None:
    """The behaviour for a unit: its scenario ``tactic``, else its kind's default."""
    from sim.tactics import garrison, insurgent

    registry: dict[str, type[Behaviour]] = {
        cls.kind: cls
        for mod in (garrison, insurgent)
        for cls in vars(mod).values()
        if isinstance(cls, type) and issubclass(cls, Behaviour) and cls.kind
    }
    kind = tactic.kind if tactic is not None else DEFAULT_TACTIC.get(unit.kind)
    if kind is None:
        return None
    return registry[kind](model, unit, tactic, unit_spec)


#: The tactic a unit kind follows when its spec names none.
DEFAULT_TACTIC = {
    "cell": "hide",
    "strongpoint": "hold",
    "patrol": "patrol",
    "convoy": "escort",
    "qrf": "pursue",
    "border_post": "border_watch",
    "zone_guard": "zone_guard",
}
