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

from sim.compiled import kernel

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


#: Bits of the refill code of a (faction, cell) (:meth:`SupplyPoints.codes`): water; a cave the
#: faction refills water and fuel at; a living supply point of the faction (everything).
#: Ordered by what they refill, so that a code (its ``POINT`` bit kept only for a living unit)
#: refills water if not 0, fuel if ``>= CAVE``, ammunition if ``>= POINT``.
WATER, CAVE, POINT = 1, 2, 4
#: A unit's code mask by ``alive``: the dead keep no ``POINT`` bit.
_ALIVE_MASK = np.array([WATER | CAVE, WATER | CAVE | POINT], dtype=np.uint8)


class SupplyPoints:
    """Where each faction has a living supply point (strongpoint, border post), kept with the
    land's water and caves as each (faction, cell)'s refill code (``POINT``, ``WATER``, ``CAVE``
    bits) for :func:`resupply`. Supply points hardly ever move, so the codes are rebuilt only
    when one is lost, replaced or moved; the cache belongs to this object."""

    def __init__(self, points: np.ndarray, n_factions: int, shape: tuple[int, int]):
        self.points = np.asarray(points, dtype=np.int64)
        self.n_factions = n_factions
        self.shape = shape
        self._codes_key: tuple | None = None
        self._codes = np.zeros(0, dtype=np.uint8)
        # the compiled hour (:func:`supply_hour`): whether it runs (asked on the first hour,
        # so a model that is never stepped never imports Numba), and the terrain its land
        # codes are of
        self._compiled: bool | None = None
        self._land_of: Terrain | None = None
        self._land = np.zeros(0, dtype=np.uint8)

    def codes(self, force: ForceTable, cells: np.ndarray, terrain: Terrain,
              cave_refill: np.ndarray) -> np.ndarray:
        """Flat ``(factions x cells)`` refill codes: ``POINT`` where the faction has a living
        supply point, ``WATER`` on water, ``CAVE`` on a cave of a faction in ``cave_refill``
        (``cells``: the flat cell of every unit up to the points'). One gather of a unit's
        ``faction x cells + cell`` tells all its refills."""
        p = self.points
        key = (force.alive[p].tobytes() + cells[p].tobytes(), cave_refill.tobytes(),
               id(terrain))  # fmt: skip
        if key != self._codes_key:
            caves = self.land(terrain)
            land = caves & np.uint8(WATER)
            codes = np.where(np.asarray(cave_refill, dtype=bool)[:, None], caves, land)
            live = p[force.alive[p]]
            codes[force.faction[live], cells[live]] |= np.uint8(POINT)
            self._codes_key, self._codes = key, codes.ravel()
        return self._codes

    def land(self, terrain: Terrain) -> np.ndarray:
        """Each cell's ``WATER`` and ``CAVE`` bits (flat; read-only), kept for the last
        terrain asked about."""
        if self._land_of is not terrain:
            land = terrain.water_available.ravel().astype(np.uint8) * np.uint8(WATER)
            land |= terrain.cave.ravel().astype(np.uint8) * np.uint8(CAVE)
            land.flags.writeable = False
            self._land_of, self._land = terrain, land
        return self._land


def resupply(
    force: ForceTable,
    n: int,
    terrain: Terrain,
    insurgent_faction: np.ndarray,
    points: SupplyPoints,
) -> None:
    """Refill this hour: everything at a friendly supply point; water at any water cell; water
    and fuel for insurgents at their cave caches (``insurgent_faction``: per faction, whether
    it refills at any cave)."""
    t = terrain
    # the units' flat cells and the (faction, cell) index into the codes, in the columns'
    # int32 (the index fits, as the product always assumed): arithmetic on one type costs less
    # than mixing in int64
    cells = force.row[:n] * t.cols
    cells += force.col[:n]
    # the (faction, cell) refill code of every unit, in one flat gather (a 2-d gather costs
    # several times more on a few hundred units)
    at = force.faction[:n] * (t.rows * t.cols)
    at += cells
    code = points.codes(force, cells, t, insurgent_faction)[at]
    code &= _ALIVE_MASK[force.alive[:n].view(np.uint8)]  # a supply point serves the living
    # a supply point gives everything; water from the land; insurgents also keep water and
    # fuel cached in their caves (each refill sets the supply to its cap, so one copy of the
    # cap where any of them applies is the same as one after the other)
    np.copyto(force.water_days[:n], force.water_cap[:n], where=code != 0)
    np.copyto(force.fuel_days[:n], force.fuel_cap[:n], where=code >= CAVE)
    np.copyto(force.ammo_days[:n], force.ammo_cap[:n], where=code >= POINT)


def supply_hour(force: ForceTable, n: int, moving: np.ndarray, cfg: SupplyConfig,
                terrain: Terrain, cave_refill: np.ndarray, points: SupplyPoints) -> None:
    """The hour's supplies: :func:`consume` then :func:`resupply`, in one compiled call
    (:func:`_supply_kernel`, the same float operations unit by unit) unless the kernels are
    off (``$BADIA_KERNELS``: then those two, the reference)."""
    if points._compiled is None:
        points._compiled = _supply_kernel.compiled
    if not points._compiled:
        consume(force, n, moving, cfg)
        resupply(force, n, terrain, cave_refill, points)
        return
    f = force
    _supply_kernel(moving, f.water_days, f.fuel_days, f.ammo_days, f.water_cap, f.fuel_cap,
                   f.ammo_cap, f.vehicles, f.row, f.col, f.faction, f.alive, points.points,
                   points.land(terrain), cave_refill, terrain.cols,
                   cfg.water_days_per_hour_moving, cfg.water_days_per_hour_resting,
                   1.0 / cfg.driving_hours_per_fuel_day)  # fmt: skip


@kernel
def _supply_kernel(moving, water, fuel, ammo, water_cap, fuel_cap, ammo_cap, vehicles, row, col,
                   faction, alive, points, land, cave_refill, cols, water_moving, water_resting,
                   fuel_per_hour):
    """:func:`consume` then :func:`resupply` for the first ``len(moving)`` units, in one loop.

    Per unit, as the numpy rules: ``w <- max(0, w - rate)`` (``np.maximum(x, 0.0)`` gives
    +0.0 for -0.0 and keeps NaN: ``x <= 0`` is false only for a positive x or NaN), the same
    for the fuel of a moving unit with vehicles, then the refill code (``land``: each cell's
    WATER and CAVE bits, CAVE kept where ``cave_refill`` of the unit's faction; POINT for a
    living unit where its faction has a living supply point) and the copies of the caps.

    The living supply points' ``faction x cells + cell`` are put in a small open-addressing
    table first (linear probing, at most half full), which the units look up: a few hundred
    entries made each call, where a (faction, cell) layer would be the size of the map for
    every faction, kept with the model."""
    n_cells = len(land)
    size = 1
    while size < 2 * len(points):
        size *= 2
    mask = size - 1
    table = np.full(size, -1, dtype=np.int64)
    for p in points:
        if alive[p]:
            key = faction[p] * n_cells + row[p] * cols + col[p]
            h = key & mask
            while table[h] >= 0:  # (two points in one cell: two entries, found alike)
                h = (h + 1) & mask
            table[h] = key
    for i in range(len(moving)):
        w = water[i] - (water_moving if moving[i] else water_resting)
        water[i] = 0.0 if w <= 0.0 else w
        if moving[i] and vehicles[i] > 0:
            x = fuel[i] - fuel_per_hour
            fuel[i] = 0.0 if x <= 0.0 else x
        cell = row[i] * cols + col[i]
        code = land[cell] & (WATER | CAVE if cave_refill[faction[i]] else WATER)
        if alive[i]:
            key = faction[i] * n_cells + cell
            h = key & mask
            while table[h] >= 0 and table[h] != key:
                h = (h + 1) & mask
            if table[h] == key:
                code |= POINT
        if code != 0:
            water[i] = water_cap[i]
        if code >= CAVE:
            fuel[i] = fuel_cap[i]
        if code >= POINT:
            ammo[i] = ammo_cap[i]
