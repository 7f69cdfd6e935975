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

from sim.compiled import kernel
from sim.world.geometry import k_smallest

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
    """The ``k`` cells of ``cells`` nearest (straight line) to ``cell``, nearest first: the
    tactics' rule, by a scan of the whole set (:func:`nearest_in`)."""
    if len(cells) == 0:
        return cells
    rows, columns = np.divmod(cells, cols)
    return nearest_in(cells, rows, columns, cell, cols, k)


def nearest_in(cells: np.ndarray, rows: np.ndarray, columns: np.ndarray, cell: int, cols: int,
               k: int = 1, compiled: bool | None = None) -> np.ndarray:
    """:func:`nearest`, given the cells' ``rows, columns = np.divmod(cells, cols)`` (kept with
    a set that is searched again and again); ``compiled``: whether the compiled scan may be
    used (None: ``_nearest_scan.compiled``, asked now).

    The squared distances ``d2`` rank the cells, and where ties reach the ``k`` nearest the
    cell earlier in ``cells`` comes first (:func:`~sim.world.geometry.k_smallest`: the same
    choice on every machine). The compiled scan (:func:`_nearest_scan`, for int64 rows and
    columns) keeps the ``k`` nearest by that very rule in one pass, ties included."""
    if len(cells) == 0:
        return cells
    r, c = divmod(int(cell), cols)
    if compiled is None:
        compiled = _nearest_scan.compiled
    if 0 < k < len(cells) and rows.dtype == np.int64 and compiled:
        d2 = np.empty(len(cells), dtype=np.int64)
        first = np.empty(k, dtype=np.int64)
        _nearest_scan(rows, columns, r, c, d2, first)
        return cells[first]
    d2 = (rows - r) ** 2 + (columns - c) ** 2
    return cells[k_smallest(d2, k)]


@kernel
def _nearest_scan(rows, columns, r, c, d2, first):
    """``d2 = (rows - r)^2 + (columns - c)^2`` (int64, as :func:`nearest_in`'s numpy path), and
    in ``first`` the positions of the ``len(first)`` smallest ``d2``, nearest first, of equals
    the earlier position first: ``k_smallest(d2, len(first))``, kept by insertion into a
    sorted buffer. A position comes after every one held, so it goes behind those at its
    distance and, the buffer full, is dropped if none is farther: the buffer holds the first
    positions in (distance, position) order, ties at its end included."""
    size = len(first)
    held = 0
    for j in range(len(rows)):
        dr = rows[j] - r
        dc = columns[j] - c
        d = dr * dr + dc * dc
        d2[j] = d
        if held == size and d >= d2[first[size - 1]]:
            continue  # no nearer than the farthest kept
        at = held if held < size else size - 1
        while at > 0 and d2[first[at - 1]] > d:
            first[at] = first[at - 1]
            at -= 1
        first[at] = j
        if held < size:
            held += 1


#: Sets of at most this many cells are searched whole (`nearest_in`) by the numpy path: an
#: index costs more there.
NEAREST_INDEX_MIN_CELLS = 4096
#: ... and by the compiled scan (`_nearest_scan`, a few nanoseconds a cell), which costs less
#: than an index query (some tens of microseconds of numpy calls) up to about this many cells.
NEAREST_SCAN_MAX_CELLS = 1 << 15
#: Side, in cells, of the square buckets a `NearestCells` index sorts its cells into.
NEAREST_BUCKET_CELLS = 16


class NearestCells:
    """What is kept of a set of cells searched again and again: its rows and columns, for
    `scan` (`nearest_in`), and an index by square buckets (`NEAREST_BUCKET_CELLS` a side),
    built at the first `query`.

    `query` searches, of the buckets, only those that may hold one of the `k + 1` nearest
    cells. A bucket holding `k + 1` cells has them all within its farthest corner's distance
    `U`; every cell within `U` lies in a bucket whose nearest point is within `U`, so those
    buckets hold the `k + 1` nearest cells (and any tied with the last).

    Both answer as `nearest` exactly: where the `k` nearest are one set, in one order of
    distance (no two at the same distance, none left out tied with the farthest), that is the
    set and order `nearest` returns; otherwise (ties, which `nearest` breaks by position in
    the set, `k_smallest`) `query` hands the question to `scan`.
    """

    def __init__(self, cells: np.ndarray, cols: int, bucket: int = NEAREST_BUCKET_CELLS):
        self.cells = cells
        self.cols = cols
        self.bucket = bucket
        self.rows, self.columns = np.divmod(cells, cols)  # as `nearest` computes them
        self.compiled = _nearest_scan.compiled  # asked once: the environment costs a look-up
        self._buckets: tuple | None = None

    def scan(self, cell: int, k: int = 1) -> np.ndarray:
        """The `k` cells nearest (straight line) to `cell`, nearest first (`nearest`), by a
        scan of the whole set."""
        return nearest_in(self.cells, self.rows, self.columns, cell, self.cols, k, self.compiled)

    def _index(self) -> tuple:
        """``(order, rows, columns, tops, lefts, starts, counts)``: the cells sorted by bucket
        (their positions in the set, rows and columns), and per non-empty bucket its first row
        and column and its cells' span in that order."""
        if self._buckets is None:
            bucket = self.bucket
            rr, cc = np.divmod(self.cells.astype(np.int64), self.cols)
            n_cols = self.cols // bucket + 1
            key = (rr // bucket) * n_cols + cc // bucket
            order = np.argsort(key, kind="stable")
            keys, starts, counts = np.unique(key[order], return_index=True, return_counts=True)
            self._buckets = (order, rr[order], cc[order], (keys // n_cols) * bucket,
                             (keys % n_cols) * bucket, starts, counts)
        return self._buckets

    def query(self, cell: int, k: int = 1) -> np.ndarray:
        """The `k` cells nearest (straight line) to `cell`, nearest first (`nearest`), from the
        buckets."""
        n = len(self.cells)
        if n == 0 or k >= n or k <= 0:
            return self.scan(cell, k)
        order, rows, columns, top, left, starts, counts = self._index()
        last = self.bucket - 1
        r, c = divmod(int(cell), self.cols)
        up, down = top - r, r - (top + last)
        lt, rt = left - c, c - (left + last)
        near = np.maximum(np.maximum(up, down), 0) ** 2 + np.maximum(np.maximum(lt, rt), 0) ** 2
        far = (np.maximum(np.abs(up), np.abs(down)) ** 2
               + np.maximum(np.abs(lt), np.abs(rt)) ** 2)
        full = counts > k
        if not full.any():
            return self.scan(cell, k)
        within = far[full].min()
        buckets = np.flatnonzero(near <= within)
        pick = np.concatenate([np.arange(starts[b], starts[b] + counts[b])
                               for b in buckets.tolist()])
        d2 = (rows[pick] - r) ** 2 + (columns[pick] - c) ** 2
        first = np.argpartition(d2, k)[:k + 1] if len(pick) > k + 1 else np.arange(len(pick))
        first = first[np.argsort(d2[first], kind="stable")]
        ranked = d2[first]
        if (np.diff(ranked) == 0).any():
            return self.scan(cell, k)     # ties: `nearest`'s own order
        return self.cells[order[pick[first[:k]]]]


class Sites:
    """Per-run cache of the places tactics look for."""

    def __init__(self, terrain: Terrain):
        self.terrain = terrain
        self._hides: dict[tuple[str, ...], np.ndarray] = {}
        self._refuges: dict[tuple[tuple[int, ...], float], np.ndarray] = {}
        self._edges: dict[frozenset[int], np.ndarray] = {}
        self._zone_points: dict[int, np.ndarray] = {}
        self._water: np.ndarray | None = None
        # what is kept of the sets searched for the nearest cells, by the id of the set
        self._nearest: dict[int, NearestCells] = {}

    def nearest(self, cells: np.ndarray, cell: int, k: int = 1) -> np.ndarray:
        """`nearest(cells, cell, cols, k)` for a set that stays the same between queries (hides,
        refuges, water), from what is kept of it for the next query (`NearestCells`): a scan
        with its rows and columns at hand, or where the set is large (see
        `NEAREST_SCAN_MAX_CELLS`) its index."""
        kept = self._nearest.get(id(cells))
        if kept is None or kept.cells is not cells:
            kept = self._nearest[id(cells)] = NearestCells(cells, self.terrain.cols)
        large = NEAREST_SCAN_MAX_CELLS if kept.compiled else NEAREST_INDEX_MIN_CELLS
        return kept.query(cell, k) if len(cells) > large else kept.scan(cell, k)

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
