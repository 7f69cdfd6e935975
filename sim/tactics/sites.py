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


def nearest(cells: np.ndarray, cell: int, cols: int, k: int = 1) -> np.ndarray:
    """The ``k`` cells of ``cells`` nearest (straight line) to ``cell``, nearest first (ties in
    the order of ``cells``): the tactics' rule, by a scan of the whole set."""
    if len(cells) == 0:
        return cells
    r, c = divmod(int(cell), cols)
    rr, cc = np.divmod(cells, cols)
    d2 = (rr - r) ** 2 + (cc - c) ** 2
    if k >= len(cells):
        return cells[np.argsort(d2, kind="stable")]
    part = np.argpartition(d2, k)[:k]
    return cells[part[np.argsort(d2[part], kind="stable")]]


#: Sets of at most this many cells are searched whole (`nearest`): an index costs more there.
NEAREST_INDEX_MIN_CELLS = 4096
#: Side, in cells, of the square buckets a `NearestCells` index sorts its cells into.
NEAREST_BUCKET_CELLS = 16


class NearestCells:
    """`nearest(cells, cell, cols, k)` answered from an index of the cells by square buckets
    (`NEAREST_BUCKET_CELLS` a side): of the buckets, only those that may hold one of the
    `k + 1` nearest cells are searched. A bucket holding `k + 1` cells has them all within
    its farthest corner's distance `U`; every cell within `U` lies in a bucket whose nearest
    point is within `U`, so those buckets hold the `k + 1` nearest cells (and any tied with
    the last).

    The answer is `nearest`'s exactly: where the `k` nearest are one set, in one order of
    distance (no two at the same distance, none left out tied with the farthest), that is the
    set and order `nearest` returns; otherwise (ties, whose order `nearest` leaves to
    `np.argpartition`) the query is handed to `nearest` itself.
    """

    def __init__(self, cells: np.ndarray, cols: int, bucket: int = NEAREST_BUCKET_CELLS):
        self.cells = cells
        self.cols = cols
        rr, cc = np.divmod(cells.astype(np.int64), cols)
        n_cols = cols // bucket + 1
        key = (rr // bucket) * n_cols + cc // bucket
        order = np.argsort(key, kind="stable")
        self.order = order
        self.rr, self.cc = rr[order], cc[order]
        keys, starts, counts = np.unique(key[order], return_index=True, return_counts=True)
        # the non-empty buckets: their first row and column, and their cells in `order`
        self.top = (keys // n_cols) * bucket
        self.left = (keys % n_cols) * bucket
        self.last = bucket - 1
        self.starts, self.counts = starts, counts

    def query(self, cell: int, k: int = 1) -> np.ndarray:
        """The `k` cells nearest (straight line) to `cell`, nearest first (`nearest`)."""
        n = len(self.cells)
        if n == 0 or k >= n or k <= 0:
            return nearest(self.cells, cell, self.cols, k)
        r, c = divmod(int(cell), self.cols)
        up, down = self.top - r, r - (self.top + self.last)
        lt, rt = self.left - c, c - (self.left + self.last)
        near = np.maximum(np.maximum(up, down), 0) ** 2 + np.maximum(np.maximum(lt, rt), 0) ** 2
        far = (np.maximum(np.abs(up), np.abs(down)) ** 2
               + np.maximum(np.abs(lt), np.abs(rt)) ** 2)
        full = self.counts > k
        if not full.any():
            return nearest(self.cells, cell, self.cols, k)
        within = far[full].min()
        buckets = np.flatnonzero(near <= within)
        pick = np.concatenate([np.arange(self.starts[b], self.starts[b] + self.counts[b])
                               for b in buckets.tolist()])
        d2 = (self.rr[pick] - r) ** 2 + (self.cc[pick] - c) ** 2
        first = np.argpartition(d2, k)[:k + 1] if len(pick) > k + 1 else np.arange(len(pick))
        first = first[np.argsort(d2[first], kind="stable")]
        ranked = d2[first]
        if (np.diff(ranked) == 0).any():
            return nearest(self.cells, cell, self.cols, k)     # ties: `nearest`'s own order
        return self.cells[self.order[pick[first[:k]]]]


class Sites:
    """Per-run cache of the places tactics look for."""

    def __init__(self, terrain: Terrain):
        self.terrain = terrain
        self._hides: dict[tuple[str, ...], np.ndarray] = {}
        self._refuges: dict[tuple[tuple[int, ...], float], np.ndarray] = {}
        self._edges: dict[frozenset[int], np.ndarray] = {}
        self._zone_points: dict[int, np.ndarray] = {}
        self._water: np.ndarray | None = None
        # nearest-cell indexes by the id of the (kept, read-only) set they index
        self._nearest: dict[int, NearestCells] = {}

    def nearest(self, cells: np.ndarray, cell: int, k: int = 1) -> np.ndarray:
        """`nearest(cells, cell, cols, k)`, from an index of `cells` kept for the next query
        (`NearestCells`) where the set is large. For sets that stay the same between queries
        (hides, refuges, water)."""
        if len(cells) <= NEAREST_INDEX_MIN_CELLS:
            return nearest(cells, cell, self.terrain.cols, k)
        index = self._nearest.get(id(cells))
        if index is None or index.cells is not cells:
            index = self._nearest[id(cells)] = NearestCells(cells, self.terrain.cols)
        return index.query(cell, k)

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
