"""Sites tactics look for on the map, computed once per run and kept here: hides, refuges,
water, the edges of barred zones and zone guards' patrol points.

Every query is a pure function of the terrain and its arguments; the caches belong to this
object (one per run, ``model.sites``), so no tactic stores anything on the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy.ndimage import binary_dilation, binary_erosion

if TYPE_CHECKING:
    from sim.world.raster import Terrain

#: Concealment at which ground counts as rugged enough to hide in when a map has no caves.
RUGGED_CONCEALMENT = 0.5
#: Patrol points per zone for its guards (each point's route field is searched once).
ZONE_PATROL_POINTS = 6
#: Seed base of the zone patrol points: fixed per map, not per run, so every run of a batch
#: shares their route fields.
ZONE_POINTS_SEED = 1000


class Sites:
    """Per-run cache of the places tactics look for."""

    def __init__(self, terrain: Terrain):
        self.terrain = terrain
        self._hides: dict[tuple[str, ...], np.ndarray] = {}
        self._refuges: dict[tuple[tuple[int, ...], float], np.ndarray] = {}
        self._edges: dict[frozenset[int], np.ndarray] = {}
        self._zone_points: dict[int, np.ndarray] = {}
        self._water: np.ndarray | None = None

    def hides(self, areas: Sequence[str]) -> np.ndarray:
        """Cave cells in the named areas (all caves if none are named); where there are none,
        passable rugged ground."""
        key = tuple(areas)
        cells = self._hides.get(key)
        if cells is None:
            t = self.terrain
            mask = np.zeros(t.shape, bool)
            for name in areas:
                mask |= t.areas[name]
            cells = np.flatnonzero(mask & t.cave) if areas else np.flatnonzero(t.cave)
            if len(cells) == 0:
                rugged = mask if areas else (t.concealment >= RUGGED_CONCEALMENT)
                cells = np.flatnonzero(rugged & np.isfinite(t.move_cost["foot"]))
            self._hides[key] = cells
        return cells

    def refuge_cells(self, zones: Sequence[int], depth_km: float) -> np.ndarray:
        """Cells at least ``depth_km`` inside the given zones (all their cells if none is that
        deep), so a cell that reaches one is clearly in."""
        key = (tuple(zones), float(depth_km))
        cells = self._refuges.get(key)
        if cells is None:
            t = self.terrain
            inside = np.isin(t.zone, list(zones))
            deep = binary_erosion(inside, iterations=max(1, round(depth_km / t.cell_km)))
            cells = self._refuges[key] = np.flatnonzero(deep if deep.any() else inside)
        return cells

    def water(self) -> np.ndarray:
        """Cells with water to draw (oasis, well, town, river) or a cave cache."""
        if self._water is None:
            t = self.terrain
            self._water = np.flatnonzero(t.water_available.ravel() | t.cave.ravel())
        return self._water

    def zone_edges(self, barred: frozenset[int]) -> np.ndarray:
        """Cells just outside the ``barred`` zones (where a pursuit must stop)."""
        cells = self._edges.get(barred)
        if cells is None:
            inside = np.isin(self.terrain.zone, sorted(barred))
            cells = np.flatnonzero(binary_dilation(inside, iterations=1) & ~inside)
            self._edges[barred] = cells
        return cells

    def zone_patrol_points(self, zone: int, fallback_cell: int) -> np.ndarray:
        """A handful of patrol points inside ``zone``, shared by its guards (``fallback_cell``
        alone when the unit is in no zone)."""
        points = self._zone_points.get(zone)
        if points is None:
            t = self.terrain
            if zone >= 0:
                cells = np.flatnonzero(t.zone.ravel() == zone)
            else:
                cells = np.array([fallback_cell])
            pick = np.random.default_rng(ZONE_POINTS_SEED + max(zone, 0))
            points = pick.choice(cells, size=min(ZONE_PATROL_POINTS, len(cells)), replace=False)
            self._zone_points[zone] = points
        return points
