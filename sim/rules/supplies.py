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
    from sim.engine.model import DesertModel
    from sim.engine.units import ForceTable

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
    """Spend one hour of water (and fuel for units that moved), never below zero."""
    water = np.where(moving, cfg.water_days_per_hour_moving, cfg.water_days_per_hour_resting)
    force.water_days[:n] = np.maximum(force.water_days[:n] - water, 0.0)
    fuel = np.where(moving & (force.vehicles[:n] > 0), 1.0 / cfg.driving_hours_per_fuel_day, 0.0)
    force.fuel_days[:n] = np.maximum(force.fuel_days[:n] - fuel, 0.0)


def resupply_mask(model: DesertModel, n: int) -> np.ndarray:
    """Units that refill everything this hour: at a friendly supply point (strongpoint, post)."""
    f = model.force
    t = model.terrain
    cells = f.row[:n].astype(np.int64) * t.cols + f.col[:n]
    fac = f.faction[:n]
    full = _supply_layer(model)[fac, cells] & f.alive[:n]
    # water from the land; insurgents also keep water and fuel cached in their caves
    water_here = t.water_available.ravel()[cells]
    cache = model.insurgent_faction[fac] & t.cave.ravel()[cells]
    water_here |= cache
    f.water_days[:n] = np.where(water_here & ~full, f.water_cap[:n], f.water_days[:n])
    f.fuel_days[:n] = np.where(cache & ~full, f.fuel_cap[:n], f.fuel_days[:n])
    return full


def _supply_layer(model: DesertModel) -> np.ndarray:
    """``(factions, cells)`` bool: where each faction has a living supply point. Supply points
    hardly ever move, so the layer is rebuilt only when one is lost, replaced or moved."""
    f = model.force
    points = model.supply_points
    key = f.alive[points].tobytes() + f.row[points].tobytes() + f.col[points].tobytes()
    cached = model.__dict__.get("_supply_cache")
    if cached is None or cached[0] != key:
        t = model.terrain
        layer = np.zeros((len(model.faction_names), t.rows * t.cols), dtype=bool)
        live = points[f.alive[points]]
        layer[f.faction[live], f.row[live].astype(np.int64) * t.cols + f.col[live]] = True
        cached = model.__dict__["_supply_cache"] = (key, layer)
    return cached[1]
