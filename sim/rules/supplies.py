"""Supplies: water, fuel and ammunition in days of normal use, spent and refilled each hour.

A day of water is what the group drinks in 24 hours; resting in the shade of a cave uses less,
moving in the heat more. A day of fuel is ``driving_hours_per_fuel_day`` hours of driving. A day
of ammunition is ``fire_hours_per_ammo_day`` hours of sustained fire (spent in engagements).
Refills: water at any water cell (oasis, well, river, town); for insurgents, water and fuel at
their cave caches (ammunition only from a seized town or a trip across the border); everything
at a friendly strongpoint or border post (garrisons supply their own). A vehicle unit out of fuel
walks; a cell out of ammunition launches no attack and holds its fire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.rules.force import ForceTable
    from sim.world.raster import Terrain

#: Unit kinds that act as supply points for their faction.
SUPPLY_POINT_KINDS = ("strongpoint", "border_post")


@dataclass(frozen=True)
class SupplyConfig:
    """Consumption rates and what a day of supply means."""

    water_days_per_hour_resting: float = 0.6 / 24
    water_days_per_hour_moving: float = 1.3 / 24
    driving_hours_per_fuel_day: float = 8.0
    fire_hours_per_ammo_day: float = 2.0


def consume(force: ForceTable, n: int, moving: np.ndarray, cfg: SupplyConfig) -> None:
    """Spend one hour of water (and fuel for units that moved), never below zero:
    ``w <- max(0, w - water rate)`` for every unit, ``f <- max(0, f - 1 / driving hours per
    fuel day)`` for the moving ones with vehicles (the others' fuel, never below zero, stays as
    it is, so only theirs is touched)."""
    water = force.water_days[:n]
    np.subtract(water, np.where(moving, cfg.water_days_per_hour_moving,
                                cfg.water_days_per_hour_resting), out=water)
    np.maximum(water, 0.0, out=water)
    driving = force.vehicles[:n] > 0
    driving &= moving
    fuel = force.fuel_days[:n]
    np.subtract(fuel, 1.0 / cfg.driving_hours_per_fuel_day, out=fuel, where=driving)
    np.maximum(fuel, 0.0, out=fuel, where=driving)


class SupplyPoints:
    """Where each faction has a living supply point (strongpoint, border post), as a
    ``(factions, cells)`` bool layer. Supply points hardly ever move, so the layer is rebuilt only
    when one is lost, replaced or moved; the cache belongs to this object."""

    def __init__(self, points: np.ndarray, n_factions: int, shape: tuple[int, int]):
        self.points = np.asarray(points, dtype=np.int64)
        self.n_factions = n_factions
        self.shape = shape
        self._key: bytes | None = None
        self._layer = np.zeros((n_factions, shape[0] * shape[1]), dtype=bool)

    def layer(self, force: ForceTable, cells: np.ndarray | None = None) -> np.ndarray:
        """The layer now (``cells``: the flat cell of every unit up to the points', if known)."""
        p = self.points
        where = cells[p] if cells is not None else force.cells(p, self.shape[1])
        key = force.alive[p].tobytes() + where.tobytes()
        if key != self._key:
            layer = np.zeros((self.n_factions, self.shape[0] * self.shape[1]), dtype=bool)
            live = p[force.alive[p]]
            layer[force.faction[live], force.cells(live, self.shape[1])] = True
            self._key, self._layer = key, layer
        return self._layer


def resupply(
    force: ForceTable,
    n: int,
    terrain: Terrain,
    insurgent_faction: np.ndarray,
    points: SupplyPoints,
) -> None:
    """Refill this hour: everything at a friendly supply point; water at any water cell; water
    and fuel for insurgents at their cave caches."""
    t = terrain
    cells = force.cells(slice(0, n), t.cols)
    fac = force.faction[:n]
    full = points.layer(force, cells)[fac, cells]
    full &= force.alive[:n]
    # water from the land; insurgents also keep water and fuel cached in their caves; a
    # supply point gives everything (each refill sets the supply to its cap, so one copy of
    # the cap where any of them applies is the same as one after the other)
    cache = t.cave.ravel()[cells]
    cache &= insurgent_faction[fac]
    water = t.water_available.ravel()[cells]
    water |= cache
    water |= full
    cache |= full
    np.copyto(force.water_days[:n], force.water_cap[:n], where=water)
    np.copyto(force.fuel_days[:n], force.fuel_cap[:n], where=cache)
    np.copyto(force.ammo_days[:n], force.ammo_cap[:n], where=full)
