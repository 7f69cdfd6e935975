"""Routes: shortest road routes (networkx) and off-road cost-distance fields (scipy csgraph).

A cost field answers "how long from every cell to this target?" for one mobility; its companion
next-hop array tells every unit, whatever cell it is in, which neighbouring cell to step to next.
Both come from one `scipy.sparse.csgraph.dijkstra` run from the target over the 8-connected grid
graph (symmetric, so the predecessors point toward the target). Routes are read from such
searches, most of them bounded: stopped at a cost and run on the box of cells that cost can
reach, with a check that the route is the unbounded search's (`search`, `tied_on_route`).
Where compiled kernels are on (`sim.compiled`), searches other than the reference ones
run compiled (`Settling`, `sim.world.gridsearch`): the same distances to the bit, stopped once
the start is settled, their routes checked for ties the same way.

Edge weights are hours for the mobility's reference unit (`TerrainConfig.reference_speed_kmh`):
the step length (cell_km, or cell_km * sqrt(2) diagonally) times the mean of the two cells' hours
per km. A unit with other speeds follows the same next hops; it times its own steps with
`sim.world.raster.hours_per_cell`. Cells of zones the faction is barred from are impassable.

`router_for(terrain)` is the terrain's own router, kept with it and shared by every model that
routes on it in this process: its caches depend on the terrain alone, so sharing them changes
no result.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from sim.compiled import kernel
from sim.errors import NoRouteError
from sim.scenario.vocab import MOBILITIES
from sim.world import gridsearch
from sim.world.geometry import k_smallest, line_cells
from sim.world.raster import Terrain, hours_per_cell, read_only

#: How many recent (from, to, mobility, barred) routes a router keeps.
PATH_CACHE_SIZE = 4096

#: How many cells' nearest road nodes a router keeps (the oldest out first).
NEAREST_NODE_CACHE_SIZE = 4096

#: Bytes of searches a router keeps (least recently used out first): about 64 whole-grid fields
#: of the 1 km theatre, and as many bounded searches (boxes around a target) as fit at finer
#: cells, where one whole-grid field costs 23 MB and 64 of them 1.5 GB.
FIELD_CACHE_BYTES = 96 * 2**20

#: A whole-grid graph is kept for the next whole-grid search only up to this size (the 1 km
#: theatre's is about 17 MB); a 0.25 km theatre's (about 280 MB) is built when needed, which
#: bounded searches make rare.
GRAPH_CACHE_BYTES = 64 * 2**20

#: A bounded search's first limit, in multiples of the least a trip can cost (its octile length
#: over the fastest cells): vehicles off the road go at half their road speed and foot at
#: 0.8 of it on flat ground, so most starts lie inside 2.5 times that; others double it.
REACH_FACTOR = 2.5

#: A corridor search's first limit, in multiples of the least a trip can cost (`CostBound`),
#: and how much it grows while the start is out of reach.
CORRIDOR_FACTOR = 1.1
CORRIDOR_GROWTH = 2.0

#: Cells a side of the coarse layer's blocks (`coarse_hours`): a route found on it, followed
#: at full resolution through a tube of blocks around it (`tube_hours`), costs about what the
#: best route does, so a corridor search limited to its hours reaches the start at once.
TUBE_BLOCK = 4
#: Blocks of the tube on each side of the coarse route's blocks.
TUBE_RADIUS_BLOCKS = 1
#: The coarse search's window: the two ends' blocks, widened on each side by this fraction of
#: their distance (at least `TUBE_MIN_PAD_BLOCKS`), as `local_path`'s windows are.
TUBE_MARGIN = 0.5
TUBE_MIN_PAD_BLOCKS = 4

#: A kept whole-grid search's first limit is at most this many times a route's hours along
#: the coarse sketch (`tube_hours`), where its limit is more than this many times the least
#: the trip can cost (`CostBound`): later starts toward the same target lie about as far.
KEPT_TUBE_FACTOR = 1.5

#: A search over a box of at most this many cells runs without a limit: the bound's own cost
#: (a box, a line, a tie check) outweighs what it saves there (the 1 km theatre's windows
#: hold about 2,000 cells).
UNBOUNDED_CELLS = 1 << 13

#: As `UNBOUNDED_CELLS`, for the compiled search (`route_toward`): it stops once the start is
#: settled and costs little more than the cells it settles (about a tenth of a microsecond
#: each), so a bound pays only over larger boxes (the 1 km theatre's longest trips, and the
#: finer theatres' longer ones).
SETTLED_CELLS = 1 << 15

#: A corridor search over a reference box of more cells than this first finds a route's
#: hours along a coarse sketch (`tube_hours`) to start from.
TUBE_CELLS = 1 << 13

#: Relative slack on a straight line's cost used as a search limit: the search adds the same
#: edges in another order (a relative error of about 1e-13 over thousands of edges).
LINE_SLACK = 1e-9

#: Levels of the cost bound (`CostBound.of`) below the common ground: the slower roads.
ROAD_LEVELS = 2

# (d_row, d_col) of the 8 neighbours
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


@dataclass(frozen=True)
class Route:
    """A road route: cells in travel order, great-circle length and the roads used, in order."""

    cells: np.ndarray       # (n, 2) int32 (row, col)
    length_km: float
    roads: list[str]
    nodes: list[str]


def grid_graph(hours_per_km: np.ndarray, cell_km: float, *, reverse: bool = False) -> csr_matrix:
    """The 8-connected grid graph as a CSR matrix (built without a loop over cells or a sort).

    The edge i -> j weighs `step_km * (h[i] + h[j]) / 2` hours (float64), `step_km` being
    `cell_km` orthogonally and `cell_km * sqrt(2)` diagonally; edges touching an infinite
    (impassable or barred) cell are left out, so a unit standing in one has no next hop (route it
    without the barred zones to get it out). The weight is symmetric bit for bit (IEEE addition
    commutes), so the graph equals its transpose and `reverse=True` (the j -> i graph a search
    from the target runs on) returns the same matrix.

    The matrix is written straight in canonical CSR form: a cell's neighbours, taken in
    `_OFFSETS` order, have increasing flat indices, so each row's columns come out sorted, as
    `csr_matrix((w, (src, dst)))` would sort them. `scipy.sparse.csgraph.dijkstra` breaks ties
    between equal distances by the order it meets the edges in, so this order is part of every
    route the router returns and must not change.
    """
    del reverse     # symmetric: the reversed graph is the graph
    rows, cols = hours_per_km.shape
    n = rows * cols
    h = hours_per_km.astype(np.float64)
    step = np.array([dr * cols + dc for dr, dc in _OFFSETS], np.int32)
    # a cell's edges: to each neighbour on the grid, where both cells are passable
    passable = np.isfinite(h)
    count = np.zeros((rows, cols), np.int32)
    for dr, dc in _OFFSETS:
        src, dst = _shifted(rows, cols, dr, dc)
        count[src] += passable[src] & passable[dst]
    indptr = np.zeros(n + 1, np.int32)
    np.cumsum(count.ravel(), out=indptr[1:])
    # Row blocks of about _BLOCK_CELLS cells keep the (cells, 8) temporaries small: a 0.25 km
    # theatre's whole graph would otherwise need 300 MB of them on top of its own 280 MB.
    block = max(1, _BLOCK_CELLS // max(cols, 1))
    blocks = [(r, min(rows, r + block)) for r in range(0, rows, block)]
    data = np.empty(int(indptr[-1]), np.float64)
    indices = np.empty(int(indptr[-1]), np.int32)
    for r0, r1 in blocks:
        w = _block_weights(h, r0, r1, cell_km)
        ok = np.isfinite(w)
        lo, hi = indptr[r0 * cols], indptr[r1 * cols]
        data[lo:hi] = w[ok]
        cells = np.arange(r0 * cols, r1 * cols, dtype=np.int32).reshape(r1 - r0, cols, 1)
        indices[lo:hi] = (cells + step)[ok]
    return csr_matrix((data, indices, indptr), shape=(n, n))


#: Cells per block `grid_graph` builds at a time (a few MB of temporaries).
_BLOCK_CELLS = 1 << 16


def _shifted(rows: int, cols: int, dr: int, dc: int) -> tuple[tuple[slice, slice], ...]:
    """The cells whose `(dr, dc)` neighbour is on the grid, and those neighbours (slices)."""
    src = (slice(max(0, -dr), rows - max(0, dr)), slice(max(0, -dc), cols - max(0, dc)))
    dst = (slice(max(0, dr), rows - max(0, -dr)), slice(max(0, dc), cols - max(0, -dc)))
    return src, dst


def _block_weights(h: np.ndarray, r0: int, r1: int, cell_km: float) -> np.ndarray:
    """Edge hours from each cell of rows `r0:r1` to its 8 neighbours, in `_OFFSETS` order
    (float64, inf where the neighbour is off the grid or either cell is impassable)."""
    rows, cols = h.shape
    weights = np.full((r1 - r0, cols, len(_OFFSETS)), np.inf)
    for k, (dr, dc) in enumerate(_OFFSETS):
        # source rows of the block whose neighbour row is on the grid, and columns likewise
        a, b = max(r0, -dr), min(r1, rows - dr)
        if a >= b:
            continue
        cs = slice(max(0, -dc), cols - max(0, dc))
        cd = slice(max(0, dc), cols - max(0, -dc))
        step_km = cell_km * (math.sqrt(2.0) if dr and dc else 1.0)
        weights[a - r0:b - r0, cs, k] = _edge_hours(step_km, h[a:b, cs], h[a + dr:b + dr, cd])
    return weights


def _edge_hours(step_km: float, h_from: np.ndarray, h_to: np.ndarray) -> np.ndarray:
    """Hours of the edge between neighbours, exactly as `grid_graph` weighs it (float64)."""
    return step_km * 0.5 * (h_from + h_to)


#: The limit a search without one runs with: finite, so that an edge of infinite hours (to an
#: impassable cell or off a window, `window_graph`) is never taken (`dijkstra` offers a node
#: `d + w <= limit`, which `inf <= inf` would pass); every finite distance is within it.
NO_LIMIT_H = float(np.finfo(np.float64).max)


def window_graph(h: np.ndarray, cell_km: float) -> csr_matrix:
    """The grid graph of the window `h` (hours per km) with all 8 edge slots of every cell kept:
    an edge to an impassable cell or off the window weighs inf (and one off the window points
    back at its own cell). Searched with a finite limit (`NO_LIMIT_H`), such edges are never
    taken and the search runs exactly as on `grid_graph(h, cell_km)`: each cell's other edges
    come in the same order with the same weights to the bit, and nothing else reaches the heap.

    Cheaper to build than `grid_graph` (no count of each cell's edges, no compaction): the
    structure depends on the window's shape alone (`_window_structure`) and the weights are
    one gather from the window padded with a ring of infinite cells, one sum and one product.
    """
    rows, cols = h.shape
    ring = np.full((rows + 2, cols + 2), np.inf)
    ring[1:-1, 1:-1] = h
    indices, indptr, around = _window_structure(rows, cols)
    # `_edge_hours` term by term: step_km * 0.5 * (h_from + h_to)
    weights = ring.ravel()[around]
    weights += ring[1:-1, 1:-1].reshape(-1, 1)
    weights *= _HALF_STEPS_KM * cell_km
    n = rows * cols
    return csr_matrix((weights.reshape(-1), indices, indptr), shape=(n, n))


#: `_edge_hours`'s `step_km * 0.5` per offset, for 1 km cells (times cell_km: exact for the
#: orthogonal steps, and for the diagonal ones as `cell_km * sqrt(2) * 0.5` rounds the same;
#: `test_window_graph_matches_grid_graph` checks it bit for bit).
_HALF_STEPS_KM = np.array([(math.sqrt(2.0) if dr and dc else 1.0) * 0.5 for dr, dc in _OFFSETS])


def _window_structure(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(indices, indptr, around)` of `window_graph` for a window of this shape: each cell's 8
    neighbours in `_OFFSETS` order (a cell's own index where the neighbour is off the window),
    and each neighbour's flat index in the window padded with a one-cell ring, `(cells, 8)`."""
    key = (rows, cols)
    hit = _STRUCTURES.get(key)
    if hit is not None:
        return hit
    wide = cols + 2
    # each cell's flat index in the padded window, and its neighbours' there
    at = ((np.arange(1, rows + 1, dtype=np.int32) * wide)[:, None]
          + np.arange(1, cols + 1, dtype=np.int32)).reshape(-1, 1)
    around = at + np.array([dr * wide + dc for dr, dc in _OFFSETS], np.int32)
    # padded index -> window index (-1 on the ring); a neighbour on the ring is the cell itself
    window = np.full((rows + 2) * wide, -1, np.int32)
    window[at[:, 0]] = np.arange(rows * cols, dtype=np.int32)
    indices = window[around]
    np.copyto(indices, np.arange(rows * cols, dtype=np.int32)[:, None], where=indices < 0)
    indptr = np.arange(0, len(_OFFSETS) * rows * cols + 1, len(_OFFSETS), dtype=np.int32)
    hit = (read_only(indices.reshape(-1)), read_only(indptr), read_only(around))
    if len(_STRUCTURES) >= _STRUCTURE_CACHE_SIZE:
        _STRUCTURES.pop(next(iter(_STRUCTURES)))
    _STRUCTURES[key] = hit
    return hit


#: Window shapes whose `_window_structure` is kept (windows of one trip length repeat).
_STRUCTURE_CACHE_SIZE = 64
_STRUCTURES: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


@dataclass(frozen=True)
class Box:
    """Rows `top:bottom` and columns `left:right` of the grid (a search window)."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def size(self) -> int:
        return (self.bottom - self.top) * self.width

    def local(self, row: int, col: int) -> int:
        """Flat index of a grid cell inside the box."""
        return (row - self.top) * self.width + (col - self.left)

    def within(self, other: Box) -> Box:
        """The part of this box inside `other`."""
        return Box(max(self.top, other.top), min(self.bottom, other.bottom),
                   max(self.left, other.left), min(self.right, other.right))


@dataclass(frozen=True)
class Search:
    """One Dijkstra search from a target cell over a box, up to `limit_h` hours (flat, local).

    `dist` float64 hours to the target, `hop` int32 next local cell toward it (-1 unreached,
    the target maps to itself). `exact` marks the reference search itself (no limit, the whole
    box the answer is defined on), whose routes need no tie check; `exhausted` that every cell
    the target's component holds in the reference box was reached (nothing cut by the limit).
    """

    box: Box
    target: int
    limit_h: float
    dist: np.ndarray
    hop: np.ndarray
    exact: bool
    exhausted: bool

    @property
    def nbytes(self) -> int:
        return self.dist.nbytes + self.hop.nbytes

    def reaches(self, row: int, col: int) -> bool:
        b = self.box
        return (b.top <= row < b.bottom and b.left <= col < b.right
                and self.hop[b.local(row, col)] >= 0)


def search(h: np.ndarray, cell_km: float, box: Box, target_rc: tuple[int, int],
           limit_h: float = math.inf, *, reference: Box | None = None,
           graph: csr_matrix | None = None) -> Search:
    """Dijkstra from `target_rc` over the cells of `box` of the hours-per-km layer `h`, stopping
    at `limit_h` hours (`scipy.sparse.csgraph.dijkstra(limit=...)`).

    `reference` is the box whose unlimited search the answer stands for (default `box`): a
    limited search on a smaller box gives the same distances and, away from ties, the same
    next hops as that one, because every cell within `limit_h` of the target lies in `box`
    (see `reach_box`) and a cell beyond the limit never enters the search.

    The reference search itself (no limit over `reference`) is scipy's. Any other is the
    compiled search where kernels are on (`gridsearch.settle`: the same distances to the bit,
    and next hops that differ only where a tie decided them, which `trace_route` checks such a
    search's routes for anyway). `graph` may pass the box's prebuilt `grid_graph` (for scipy).
    """
    reference = box if reference is None else reference
    t = box.local(*target_rc)
    exact = math.isinf(limit_h) and box == reference
    if exact or not gridsearch.settle.compiled:
        if graph is None:
            graph = window_graph(h[box.top:box.bottom, box.left:box.right], cell_km)
        dist, pred = dijkstra(graph, directed=True, indices=t, return_predecessors=True,
                              limit=min(limit_h, NO_LIMIT_H))
        hop = np.where(pred < 0, -1, pred).astype(np.int32)
        hop[t] = t
    else:
        # not the reference search itself: its routes are checked for ties, so the compiled
        # search serves (the same distances; a hop only a tie decided may differ)
        run = Settling(h, cell_km, box, target_rc, limit_h=limit_h)
        run.run_to_end()
        dist, hop = run.dist, run.hop
    exhausted = exact or not _cut_off(h, box, reference, dist)
    return Search(box, t, float(limit_h), dist, hop, exact, exhausted)


class Settling:
    """A compiled search from one target over a box (`gridsearch.settle`), stopped at
    `limit_h` hours and on the box's cells `allowed` (flat local, bool; None: all), run only
    as far as the starts asked for so far need and resumed for a farther one: a search to keep
    for a target many starts route to. Its distances are the same search's by scipy to the bit
    (`window_graph`, or `corridor_graph` of the allowed cells), and so are its routes, or None
    where a tie decided a hop (then only scipy's search settles it). Kernels must be on
    (`gridsearch.settle.compiled`). Safe to share between threads."""

    def __init__(self, h: np.ndarray, cell_km: float, box: Box, target_rc: tuple[int, int], *,
                 limit_h: float = math.inf, allowed: np.ndarray | None = None):
        n = box.size
        _check_fits(h, box, allowed)
        self.h = h
        self.box = box
        self.target = _local_in(box, target_rc)
        self.limit_h = min(limit_h, NO_LIMIT_H)
        self.allowed = _EVERY_CELL if allowed is None else allowed
        self._at = _kernel_box(box, cell_km)
        self.dist = np.full(n, np.inf)
        self.hop = np.full(n, -1, np.int32)
        self.slot = np.full(n, gridsearch.UNSEEN, np.int32)
        self.heap = np.empty(n, np.int32)
        self.queued = np.ones(1, np.int64)
        self.dist[self.target] = 0.0
        self.hop[self.target] = self.target
        self.slot[self.target] = 0
        self.heap[0] = self.target
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self.dist.nbytes + self.hop.nbytes + self.slot.nbytes + self.heap.nbytes

    def run_to_end(self) -> None:
        """Settle every cell within the limit (the others stay unreached)."""
        with self._lock:
            self._settle(-1)

    def hours(self, source_rc: tuple[int, int]) -> float:
        """The start's distance (inf if the search cannot reach it)."""
        source = _local_in(self.box, source_rc)
        with self._lock:
            self._settle(source)
            settled = self.slot[source] == gridsearch.SETTLED
            return float(self.dist[source]) if settled else math.inf

    def route(self, source_rc: tuple[int, int], cols: int) -> np.ndarray | None:
        """Flat cells (of a grid `cols` wide) from `source_rc` (in the box) to the target,
        empty if it cannot reach it, or None where a tie decided a hop on the route
        (`gridsearch.route`)."""
        source = _local_in(self.box, source_rc)
        with self._lock:
            self._settle(source)
            tied, cells = gridsearch.route(self.h, *self._at, self.dist, self.hop, source,
                                           self.target, cols)
        # numba's arrays carry an int64 dtype equal to numpy's but not numpy's own object: a
        # view gives a route numpy's, as scipy's routes have (a caller may test by identity)
        return None if tied else cells.view(np.int64)

    def _settle(self, source: int) -> None:
        gridsearch.settle(self.h, *self._at, self.allowed, source, self.limit_h, self.dist,
                          self.hop, self.slot, self.heap, self.queued)


def route_toward(h: np.ndarray, cell_km: float, box: Box, target_rc: tuple[int, int],
                 source_rc: tuple[int, int], cols: int) -> np.ndarray | None:
    """`Settling(h, cell_km, box, target_rc).route(source_rc, cols)`, the same answer (the
    reference search's route, empty if none, None where a tie decided a hop on it) from an A*
    search toward the start (`gridsearch.settle_toward`): a search asked for one start
    settles the cells whose distance plus the straight line to the start at the box's
    fastest rate is below the start's distance, not all cells nearer than the start (about
    two fifths as many on a theatre's everyday routes). Kernels must be on."""
    _check_fits(h, box, None)
    source, target = _local_in(box, source_rc), _local_in(box, target_rc)
    least = float(h[box.top:box.bottom, box.left:box.right].min())
    if not 0.0 < least < math.inf:  # no passable cell (or a free one): the plain search
        return Settling(h, cell_km, box, target_rc).route(source_rc, cols)
    per_step = least * cell_km * (1.0 - gridsearch.TOWARD_SLACK)
    n = box.size
    dist, hop = np.empty(n), np.empty(n, np.int32)
    slot, heap = np.empty(n, np.int32), np.empty(n, np.int32)
    at = _kernel_box(box, cell_km)
    if (gridsearch.settle_toward(h, *at, target, source, per_step, dist, hop, slot, heap)
            and dist[source] > gridsearch.TOWARD_MAX_STEPS * per_step):
        # too far, in steps at the fastest rate, for the margin to cover the rounding
        return Settling(h, cell_km, box, target_rc).route(source_rc, cols)
    tied, cells = gridsearch.route(h, *at, dist, hop, source, target, cols)
    return None if tied else cells.view(np.int64)  # (numpy's int64 object: see Settling.route)


def _check_fits(h: np.ndarray, box: Box, allowed: np.ndarray | None) -> None:
    """Refuse a box (or allowed cells) the grid searches' kernels would read outside of."""
    if not (0 <= box.top < box.bottom <= h.shape[0] and 0 <= box.left < box.right <= h.shape[1]
            and (allowed is None or allowed.shape == (box.size,))):
        # the kernels do not check their indices: a stray one would read or write anywhere
        raise ValueError(f"{box} does not fit the {h.shape} layer or its allowed cells")


def _local_in(box: Box, rc: tuple[int, int]) -> int:
    """The local index of cell `rc` in `box` (refused outside it)."""
    if not (box.top <= rc[0] < box.bottom and box.left <= rc[1] < box.right):
        raise ValueError(f"cell {rc} outside {box}")
    return box.local(*rc)


#: `Settling.allowed` where every cell is.
_EVERY_CELL = np.zeros(0, bool)


def _kernel_box(box: Box, cell_km: float) -> tuple:
    """The box and the grid graph's steps as `gridsearch`'s kernels take them: `top, left,
    rows, cols, d_row, d_col, half_steps` (`window_graph`'s weights per offset)."""
    return (box.top, box.left, box.bottom - box.top, box.width, _D_ROW, _D_COL,
            _HALF_STEPS_KM * cell_km)


#: `_OFFSETS` as `gridsearch`'s kernels take them.
_D_ROW = np.array([dr for dr, _ in _OFFSETS], np.int64)
_D_COL = np.array([dc for _, dc in _OFFSETS], np.int64)


def _cut_off(h: np.ndarray, box: Box, reference: Box, dist: np.ndarray) -> bool:
    """True if a reached cell has a passable neighbour in `reference` the search did not reach
    (the limit or the box stopped it there): only then may an unreached cell be reachable."""
    reached = np.zeros((reference.bottom - reference.top, reference.right - reference.left), bool)
    inner = box.within(reference)
    reached[inner.top - reference.top:inner.bottom - reference.top,
            inner.left - reference.left:inner.right - reference.left] = np.isfinite(
        dist.reshape(box.bottom - box.top, box.width))
    passable = np.isfinite(h[reference.top:reference.bottom, reference.left:reference.right])
    # a passable cell next to a reached one (8-neighbourhood), itself not reached
    near = reached.copy()
    near[1:, :] |= reached[:-1, :]
    near[:-1, :] |= reached[1:, :]
    near[:, 1:] |= near[:, :-1].copy()
    near[:, :-1] |= near[:, 1:].copy()
    return bool((near & passable & ~reached).any())


def reach_box(target_rc: tuple[int, int], limit_h: float, cell_km: float,
              min_hours_per_km: float) -> Box:
    """The box of cells a search from `target_rc` can reach within `limit_h` hours.

    Every edge weighs at least `step_km * min_hours_per_km` and a cell `k` steps away (Chebyshev)
    needs at least `k` steps, so cells farther than `limit_h / (cell_km * min_hours_per_km)` are
    out of reach; one cell and a relative 1e-9 of slack cover rounding.
    """
    reach = limit_h / (cell_km * min_hours_per_km)
    k = int(min(reach * (1.0 + 1e-9) + 1.0, 2.0**31))
    r, c = target_rc
    return Box(r - k, r + k + 1, c - k, c + k + 1)


@dataclass(frozen=True)
class CostBound:
    """A lower bound on the hours of any route between two cells of one hours-per-km layer,
    sharper than the straight line at the fastest rate where fast cells (roads) are few.

    Let `fast_h` be the least hours per km of any passable cell and `levels` increasing hours
    per km `l_1 < l_2 < ...` above it (`l_0 = fast_h`); so every cell's `h >= fast_h +
    sum_k (l_k - l_{k-1}) [h >= l_k]`. A route's hours are `cell_km * sum_j w_j h_j` over its
    cells, `w_j` half the lengths (in cells: 1, or sqrt(2) diagonally) of the steps into and out
    of cell `j`; the weights add up to the route's length `L`, at least the octile distance
    `O(a, b)`. A route from `a` passes at least `r_k(a)` cells (`reach[k]`: the Chebyshev
    distance to the nearest cell with `h < l_k`) before its first such cell, whose weights add
    up to at least `r_k(a) - 1/2`; so its cells with `h >= l_k` weigh at least
    `S_k = min(O(a, b), s_k(a) + s_k(b))`, `s_k = max(r_k - 1/2, 0)` (or it has no such cell at
    all and `S_k = L >= O`). Hence, in units of `cell_km * fast_h` hours (one step at the
    fastest rate),

        hours(a -> b) / (cell_km * fast_h)  >=  O(a, b) + sum_k (l_k - l_{k-1}) / fast_h * S_k

    With no level it is the octile distance alone. Built from a layer without barred zones, it
    holds for the layer with them too (barring only removes cells).
    """

    fast_h: float
    levels: tuple[float, ...]
    reach: tuple[np.ndarray, ...]   # per level, (rows, cols) uint16 Chebyshev cells, capped
    #: per level, the least `reach` in each block of `_BLOCK` x `_BLOCK` cells (from the grid's
    #: corner): a bound for a whole block at once
    block_reach: tuple[np.ndarray, ...] = ()

    @classmethod
    def of(cls, h: np.ndarray, max_levels: int = 3,
           max_road_levels: int = ROAD_LEVELS) -> CostBound:
        """The bound for hours-per-km layer `h`, with levels at the median passable cell's hours
        (the common ground: cells below it are the roads) and the next `max_levels - 1` distinct
        hours above it (rougher ground), and below the median up to `max_road_levels` distinct
        hours of the slower roads above the fastest (a track is not a highway: far from the
        highways a trip costs at least the tracks' hours)."""
        finite = h[np.isfinite(h)]
        if finite.size == 0:
            return cls(math.inf, (), ())
        values, counts = _distinct(finite)
        fast_h = float(values[0])
        # the median: the value of sorted index size // 2
        median = values[int(np.searchsorted(np.cumsum(counts), finite.size // 2, "right"))]
        above = values[values >= median]
        below = values[(values < median) & (values > fast_h)]
        levels = tuple(float(v) for v in below[:max_road_levels]) + tuple(
            float(v) for v in above[above > fast_h][:max_levels])
        from scipy.ndimage import distance_transform_cdt  # heavy import, fine grids only

        # capping only lowers the bound, which stays a bound
        reach = tuple(np.minimum(distance_transform_cdt(~(h < v), metric="chessboard"),
                                 _REACH_CAP).astype(np.uint16) for v in levels)
        return cls(fast_h, levels, reach, tuple(_block_min(r) for r in reach))

    def _weights(self) -> list[float]:
        low = [self.fast_h, *self.levels][:len(self.levels)]
        return [(v - lo) / self.fast_h for v, lo in zip(self.levels, low, strict=True)]

    def steps(self, a: tuple[int, int], b: tuple[int, int]) -> float:
        """The bound between two cells, in units of `cell_km * fast_h` hours."""
        o = _octile_steps(a, b)
        total = o
        for weight, reach in zip(self._weights(), self.reach, strict=True):
            total += weight * min(o, _slack(reach[a]) + _slack(reach[b]))
        return total

    def corridor(self, box: Box, a: tuple[int, int], b: tuple[int, int],
                 within: float) -> np.ndarray:
        """The cells `y` of `box` with `steps(a, y) + steps(y, b) <= within`: flat indices into
        the box, increasing.

        Over the cells of the blocks the bound may leave in (`_candidates`): the octile part
        first, then the levels' parts (which only add) over the cells that leaves in."""
        cells = _candidates(self, box, a, b, within)
        if self.levels and _corridor_keep.compiled:
            # the sums below cell by cell in one call (the same operations in the same order,
            # so the same cells): numpy's dozen passes over the candidates are most of a
            # 0.25 km theatre's corridor searches
            out = np.empty(len(cells), np.int64)
            slack_a = np.array([_slack(r[a]) for r in self.reach])
            slack_b = np.array([_slack(r[b]) for r in self.reach])
            kept = _corridor_keep(cells, box.width, box.top, box.left, a[0], a[1], b[0], b[1],
                                  float(within), np.array(self._weights()), self.reach,
                                  slack_a, slack_b, out)
            return out[:kept]
        r, c = np.divmod(cells, box.width)
        r += box.top
        c += box.left
        oa = _octile_array(r - a[0], c - a[1])
        ob = _octile_array(r - b[0], c - b[1])
        total = oa + ob
        keep = total <= within
        cells, r, c, oa, ob, total = (v[keep] for v in (cells, r, c, oa, ob, total))
        if not self.levels:
            return cells
        at = r * self.reach[0].shape[1] + c
        for weight, reach in zip(self._weights(), self.reach, strict=True):
            sy = reach.ravel()[at] - np.float64(0.5)
            np.maximum(sy, 0.0, out=sy)
            part = np.minimum(oa, sy + _slack(reach[a]))
            np.minimum(ob, sy + _slack(reach[b]), out=sy)
            part += sy
            part *= weight
            total += part
        return cells[total <= within]


@kernel
def _corridor_keep(cells, width, top, left, a_r, a_c, b_r, b_c, within, weights, reach,
                   slack_a, slack_b, out):
    """`CostBound.corridor`'s numpy path over the candidate `cells` (flat in the box, at
    `top, left`, `width` wide) for a bound with levels, cell by cell: each cell's octile
    distances to `a` and `b` (`_octile_array`: the larger offset plus (sqrt 2 - 1) times the
    smaller, in float64), their sum, then per level (`weights`, `reach`, the ends' slacks) its
    part added, each operation as numpy does it; the cells whose total is within `within` are
    written to `out` in order and counted. (A cell whose octile sum is already over is
    dropped there: the parts only add.)"""
    diag = np.sqrt(2.0) - 1.0
    kept = 0
    for k in range(len(cells)):
        cell = cells[k]
        row = cell // width
        r = row + top
        c = cell - row * width + left
        dr, dc = abs(r - a_r), abs(c - a_c)
        oa = np.float64(max(dr, dc)) + diag * min(dr, dc)
        dr, dc = abs(r - b_r), abs(c - b_c)
        ob = np.float64(max(dr, dc)) + diag * min(dr, dc)
        total = oa + ob
        if not total <= within:
            continue
        for lv in range(len(weights)):
            sy = np.float64(reach[lv][r, c]) - 0.5
            if sy < 0.0:
                sy = 0.0
            part = min(oa, sy + slack_a[lv])
            part += min(ob, sy + slack_b[lv])
            part *= weights[lv]
            total += part
        if total <= within:
            out[kept] = cell
            kept += 1
    return kept


#: `_distinct` finds this many values one by one before it sorts the layer instead.
FEW_VALUES = 64


def _distinct(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(a, return_counts=True)` of a non-empty 1-d array, by picking the least
    remaining value while there are few distinct ones (a terrain layer has a handful: a few
    passes over millions of cells instead of sorting them)."""
    values, counts = [], []
    rest = a
    while rest.size:
        if len(values) == FEW_VALUES:
            return np.unique(a, return_counts=True)
        v = rest.min()
        higher = rest > v
        values.append(v)
        counts.append(rest.size - int(np.count_nonzero(higher)))
        rest = rest[higher]
    return np.array(values, a.dtype), np.array(counts, np.int64)


#: Side of the blocks `_candidates` tries whole.
_BLOCK = 8


def _candidates(bound: CostBound, box: Box, a: tuple[int, int], b: tuple[int, int],
                within: float) -> np.ndarray:
    """Flat indices into `box` (increasing) of a set of cells holding every cell `y` of the box
    with `bound.steps(a, y) + bound.steps(y, b) <= within`: the cells of the blocks (`_BLOCK`
    cells a side, from the grid's corner) where a bound on these sums over the whole block is
    within that. For a block with centre `m` and a cell `y` in it, `octile(a, y) >=
    octile(a, m) - octile(m, y)` (the triangle inequality), `octile(m, y)` at most
    `(_BLOCK - 1) / 2 * sqrt(2)`, and a level's reach at `y` is at least the block's least
    (`CostBound.block_reach`); each term of the bound only grows with these."""
    half = (_BLOCK - 1) / 2.0
    r0, r1 = box.top // _BLOCK, (box.bottom - 1) // _BLOCK + 1
    c0, c1 = box.left // _BLOCK, (box.right - 1) // _BLOCK + 1
    centre_r = (np.arange(r0, r1) * _BLOCK + half).reshape(-1, 1)
    centre_c = (np.arange(c0, c1) * _BLOCK + half).reshape(1, -1)
    far = half * math.sqrt(2.0) * (1.0 + 1e-9) + 1e-9
    oa = np.maximum(_octile_array(centre_r - a[0], centre_c - a[1]) - far, 0.0)
    ob = np.maximum(_octile_array(centre_r - b[0], centre_c - b[1]) - far, 0.0)
    total = oa + ob
    for weight, reach, least in zip(bound._weights(), bound.reach, bound.block_reach,
                                    strict=True):
        sy = np.maximum(least[r0:r1, c0:c1] - np.float64(0.5), 0.0)
        total += weight * (np.minimum(oa, sy + _slack(reach[a]))
                           + np.minimum(ob, sy + _slack(reach[b])))
    near = total <= within
    # the blocks' cells, cut to the box
    cells = np.repeat(np.repeat(near, _BLOCK, axis=0), _BLOCK, axis=1)
    top, left = box.top - r0 * _BLOCK, box.left - c0 * _BLOCK
    cells = cells[top:top + box.bottom - box.top, left:left + box.width]
    return np.flatnonzero(cells)


def _block_min(a: np.ndarray) -> np.ndarray:
    """The least value in each block of `_BLOCK` x `_BLOCK` cells of `a` (from its corner)."""
    rows, cols = a.shape
    n, m = -(-rows // _BLOCK), -(-cols // _BLOCK)
    padded = np.full((n * _BLOCK, m * _BLOCK), np.iinfo(a.dtype).max, a.dtype)
    padded[:rows, :cols] = a
    return padded.reshape(n, _BLOCK, m, _BLOCK).min(axis=(1, 3))


def _slack(reach: Any) -> float:
    """`max(r - 1/2, 0)`: the least weight of the `r` cells a route passes before a level's
    first lower cell."""
    return max(float(reach) - 0.5, 0.0)


#: `CostBound.reach` is kept in 16 bits.
_REACH_CAP = 2**16 - 1


def corridor_search(h: np.ndarray, cell_km: float, reference: Box, source_rc: tuple[int, int],
                    target_rc: tuple[int, int], limit_h: float, bound: CostBound) -> Search:
    """Dijkstra from `target_rc`, stopped at `limit_h` hours, over the cells a route from
    `source_rc` of at most that cost can pass through (in `reference`).

    A route through cell `y` costs at least the bound (`CostBound`) from the source to `y`
    plus that from `y` to the target, so the corridor is

        bound.steps(s, y) + bound.steps(y, t) <= limit_h / (cell_km * bound.fast_h)

    (plus one cell and a relative 1e-9 for rounding), inside the box of rows and columns whose
    distances to the two ends add up to at most that (`bound.steps` is at least the row and
    the column distance); the graph has the corridor's cells only. If the source's distance is
    within the limit, every shortest route to it, and every neighbour that could tie on one,
    lies inside, with the same distances to the bit, so a route read from this search with
    `trace_route` (which checks ties) is the unlimited search's. The search is for this source
    only: cells off its routes may have longer distances than without the corridor.
    """
    reach = limit_h / (cell_km * bound.fast_h) * (1.0 + 1e-9) + 1.0
    box = _ellipse_box(source_rc, target_rc, reach).within(reference)
    # a limit below the bound may leave the target out: keep it in (the search is then short)
    box = Box(min(box.top, target_rc[0]), max(box.bottom, target_rc[0] + 1),
              min(box.left, target_rc[1]), max(box.right, target_rc[1] + 1))
    cells = bound.corridor(box, source_rc, target_rc, reach)
    t = box.local(*target_rc)
    k = int(np.searchsorted(cells, t))
    if k == len(cells) or cells[k] != t:
        cells = np.insert(cells, k, t)
    if gridsearch.settle.compiled:
        # the same search, compiled: the same distances, hops differing only where a tie
        # decided them (which `trace_route` checks for)
        allowed = np.zeros(box.size, bool)
        allowed[cells] = True
        run = Settling(h, cell_km, box, target_rc, limit_h=limit_h, allowed=allowed)
        run.run_to_end()
        return Search(box, t, float(limit_h), run.dist, run.hop, exact=False, exhausted=False)
    graph = corridor_graph(h[box.top:box.bottom, box.left:box.right], cells, cell_km)
    # the search runs on the corridor's cells alone (numbered in row-major order, as in the
    # box), then its answer is spread back over the box
    dist_c, pred_c = dijkstra(graph, directed=True, indices=k, return_predecessors=True,
                              limit=limit_h)
    dist = np.full(box.size, np.inf)
    dist[cells] = dist_c
    hop = np.full(box.size, -1, np.int32)
    came = pred_c >= 0
    hop[cells[came]] = cells[pred_c[came]]
    hop[t] = t
    return Search(box, t, float(limit_h), dist, hop, exact=False, exhausted=False)


def _ellipse_box(a: tuple[int, int], b: tuple[int, int], reach: float) -> Box:
    """The rows and columns of the cells `y` with `|y - a| + |y - b| <= reach` along each axis
    (a bound on octile distances, so on `CostBound.steps`, whatever the other axis)."""
    def span(u: int, v: int) -> tuple[int, int]:
        lo, hi = (u + v - reach) / 2.0, (u + v + reach) / 2.0
        # whole cells, one more each side for rounding; hi is exclusive
        return (int(max(math.floor(lo) - 1, -2.0**31)), int(min(math.ceil(hi) + 2, 2.0**31)))

    top, bottom = span(a[0], b[0])
    left, right = span(a[1], b[1])
    return Box(top, bottom, left, right)


def corridor_graph(hours_per_km: np.ndarray, cells: np.ndarray, cell_km: float) -> csr_matrix:
    """The grid graph of `cells` (flat indices into the layer, increasing): `grid_graph` of the
    layer with the other cells impassable, cut down to the rows and columns of these cells (the
    same weights to the bit, in the same canonical order; node `k` is cell `cells[k]`). Built at
    a cost that grows with the corridor rather than its box."""
    rows, cols = hours_per_km.shape
    wide = cols + 2
    h = hours_per_km.ravel()[cells].astype(np.float64)
    # every cell's node number (-1 outside), with a ring of -1 so no neighbour is off the layer
    at = (cells // cols + 1) * wide + (cells % cols + 1)
    node = np.full((rows + 2, wide), -1, np.int32)
    flat = node.ravel()
    flat[at] = np.arange(len(cells), dtype=np.int32)
    # one row per neighbour: its node and the edge's hours, computed as `_edge_hours` does
    # (step_km * 0.5 * (a + b)); an edge touching an impassable cell is infinite and left out
    nbr = np.empty((len(_OFFSETS), len(cells)), np.int32)
    weights = np.empty((len(_OFFSETS), len(cells)))
    for k, (dr, dc) in enumerate(_OFFSETS):
        step_km = cell_km * (math.sqrt(2.0) if dr and dc else 1.0)
        np.take(flat, at + (dr * wide + dc), out=nbr[k])
        np.take(h, nbr[k], out=weights[k])
        np.add(h, weights[k], out=weights[k])
        np.multiply(step_km * 0.5, weights[k], out=weights[k])
    ok = (nbr >= 0) & np.isfinite(weights)
    indptr = np.zeros(len(cells) + 1, np.int32)
    np.cumsum(ok.sum(axis=0), out=indptr[1:])
    # a node's edges in `_OFFSETS` order (increasing neighbour number), node after node
    ok = ok.T
    return csr_matrix((weights.T[ok], nbr.T[ok], indptr), shape=(len(cells), len(cells)))


def coarse_hours(h: np.ndarray, block: int) -> np.ndarray:
    """The hours-per-km layer `h` in blocks of `block` x `block` cells: each block's fastest
    cell (inf where all are impassable; the grid's edge padded with impassable cells). A
    sketch to find a good route on, not a bound: `tube_hours` checks what it finds."""
    rows, cols = h.shape
    n, m = -(-rows // block), -(-cols // block)
    padded = np.full((n * block, m * block), np.inf, np.float32)
    padded[:rows, :cols] = h
    return padded.reshape(n, block, m, block).min(axis=(1, 3))


def tube_hours(h: np.ndarray, coarse: np.ndarray, cell_km: float, reference: Box,
               source_rc: tuple[int, int], target_rc: tuple[int, int]) -> float:
    """Hours of a route from the source to the target inside `reference` (inf if none is
    found this way): the best route through the tube of blocks (`TUBE_RADIUS_BLOCKS` around
    each) along the route a search on the coarse layer (`coarse_hours`, blocks of
    `TUBE_BLOCK` cells) finds, searched at full resolution (`corridor_graph`). A route's
    hours, so the search over `reference` reaches the source within them: the distances a
    search sums along its own route are the least (the sum rounds monotonically), the tube's
    included.
    """
    k = TUBE_BLOCK
    (sr, sc), (tr, tc) = source_rc, target_rc
    # the coarse window, within the reference's blocks
    pad = max(TUBE_MIN_PAD_BLOCKS,
              int(TUBE_MARGIN * max(abs(sr - tr), abs(sc - tc)) / k))
    ref_c = Box(reference.top // k, -(-reference.bottom // k),
                reference.left // k, -(-reference.right // k))
    win = Box(min(sr, tr) // k - pad, max(sr, tr) // k + pad + 1,
              min(sc, tc) // k - pad, max(sc, tc) // k + pad + 1).within(ref_c)
    tl = win.local(tr // k, tc // k)
    # no farther than the straight line between the two blocks (a coarse route, so the
    # source's block is within it), with `LINE_SLACK`
    line_h = line_hours(coarse, k * cell_km, (sr // k, sc // k), (tr // k, tc // k))
    limit_h = min(line_h * (1.0 + LINE_SLACK), NO_LIMIT_H)
    blocks = None
    if gridsearch.settle.compiled:     # scipy's route, unless a tie decided a hop on it
        blocks = Settling(coarse, k * cell_km, win, (tr // k, tc // k), limit_h=limit_h).route(
            (sr // k, sc // k), win.width)
        if blocks is not None:         # as flat cells of the window, as below
            blocks -= win.top * win.width + win.left
    if blocks is None:
        g = window_graph(coarse[win.top:win.bottom, win.left:win.right], k * cell_km)
        _, pred = dijkstra(g, directed=True, indices=tl, return_predecessors=True,
                           limit=limit_h)
        hop = np.where(pred < 0, -1, pred)
        hop[tl] = tl
        blocks = _trace(hop, win.local(sr // k, sc // k), tl)
    if len(blocks) == 0:
        return math.inf
    # the tube: the route's blocks and those around them, as fine cells inside the reference
    mask = np.zeros((win.bottom - win.top, win.width), bool)
    br, bc = np.divmod(blocks, win.width)
    for dr in range(-TUBE_RADIUS_BLOCKS, TUBE_RADIUS_BLOCKS + 1):
        for dc in range(-TUBE_RADIUS_BLOCKS, TUBE_RADIUS_BLOCKS + 1):
            mask[np.clip(br + dr, 0, mask.shape[0] - 1), np.clip(bc + dc, 0, win.width - 1)] = True
    top, left = int(br.min()), int(bc.min())
    bottom, right = int(br.max()) + 1, int(bc.max()) + 1
    top, left = max(0, top - TUBE_RADIUS_BLOCKS), max(0, left - TUBE_RADIUS_BLOCKS)
    bottom = min(mask.shape[0], bottom + TUBE_RADIUS_BLOCKS)
    right = min(win.width, right + TUBE_RADIUS_BLOCKS)
    fine = np.repeat(np.repeat(mask[top:bottom, left:right], k, axis=0), k, axis=1)
    box = Box((win.top + top) * k, (win.top + bottom) * k,
              (win.left + left) * k, (win.left + right) * k)
    inner = box.within(reference)
    fine = fine[inner.top - box.top:inner.bottom - box.top,
                inner.left - box.left:inner.right - box.left]
    if gridsearch.settle.compiled:     # the same distance, by a search stopped there
        return Settling(h, cell_km, inner, target_rc, allowed=fine.ravel()).hours(source_rc)
    cells = np.flatnonzero(fine)
    t = inner.local(*target_rc)
    sub = h[inner.top:inner.bottom, inner.left:inner.right]
    graph = corridor_graph(sub, cells, cell_km)
    kt = int(np.searchsorted(cells, t))
    dist = dijkstra(graph, directed=True, indices=kt, limit=NO_LIMIT_H)
    ks = int(np.searchsorted(cells, inner.local(*source_rc)))
    return float(dist[ks])


#: How many reached cells nearest the start `_upper_hours` tries.
UPPER_CANDIDATES = 16


def _upper_hours(s: Search, h: np.ndarray, cell_km: float, source_rc: tuple[int, int]) -> float:
    """An upper bound on the start's distance from a search that did not reach it: the least,
    over the `UPPER_CANDIDATES` reached cells `y` nearest the start (octile), of the straight
    line's hours from the start to `y` plus `y`'s distance (a route, so at least the shortest;
    with `LINE_SLACK` for the other order of summing). inf if no such line is passable."""
    b = s.box
    reached = np.flatnonzero(np.isfinite(s.dist))
    if len(reached) == 0:
        return math.inf
    rr, cc = np.divmod(reached, b.width)
    near = _octile_array(rr + (b.top - source_rc[0]), cc + (b.left - source_rc[1]))
    if len(reached) > UPPER_CANDIDATES:
        pick = k_smallest(near, UPPER_CANDIDATES)  # ties as on any machine
    else:
        pick = np.arange(len(reached))
    best = math.inf
    for k in pick:
        y = (int(rr[k]) + b.top, int(cc[k]) + b.left)
        best = min(best, line_hours(h, cell_km, source_rc, y) + float(s.dist[reached[k]]))
    return best * (1.0 + LINE_SLACK)


def _octile_array(dr: np.ndarray, dc: np.ndarray) -> np.ndarray:
    a, b = np.abs(dr), np.abs(dc)
    return np.maximum(a, b) + (math.sqrt(2.0) - 1.0) * np.minimum(a, b)


def trace_route(s: Search, h: np.ndarray, cell_km: float, source_rc: tuple[int, int],
                cols: int) -> np.ndarray | None:
    """Flat grid cells from `source_rc` to the search's target following its next hops, or None
    where the answer cannot be read from this search: the source was not reached (and may be
    reachable beyond it), or a tie decided a hop on the way (`tied_on_route`). An empty array
    where the source provably cannot reach the target."""
    if not s.reaches(*source_rc):
        return np.zeros(0, np.int64) if s.exhausted else None
    local = _trace(s.hop, s.box.local(*source_rc), s.target)
    if not s.exact and tied_on_route(s, h, cell_km, local):
        return None
    rr, cc = np.divmod(local, s.box.width)
    return (rr + s.box.top) * cols + (cc + s.box.left)


def tied_on_route(s: Search, h: np.ndarray, cell_km: float, route: np.ndarray) -> bool:
    """True if a next hop on `route` (local cells, ending at the target) was decided by a tie.

    Dijkstra scans cells in order of distance `d` and gives cell `y` the first scanned neighbour
    `x` that attains `d[y] = fl(d[x] + w(x, y))` (a later equal offer does not replace it).
    Cells of different `d` are scanned in a fixed order, so the hop can depend on how the search
    was run (a distance limit, a smaller box, the heap's inner shape) only where two or more
    attaining neighbours share the hop's distance:

        tied(y)  <=>  #{x in N(y): fl(d[x] + w(x, y)) == d[y] and d[x] == d[hop[y]]} > 1

    The distances a limited search finds are the unlimited search's to the bit (each is the
    minimum over the same nearer neighbours), so a route with no tied cell is the unlimited
    search's route. `w` is recomputed from `h` exactly as `grid_graph` computes it.
    """
    b = s.box
    height = b.bottom - b.top
    y = route[:-1]
    if len(y) == 0:
        return False
    yr, yc = np.divmod(y, b.width)
    d = s.dist
    dy, dhop = d[y], d[s.hop[y]]
    hy = h[yr + b.top, yc + b.left].astype(np.float64)
    count = np.zeros(len(y), np.int64)
    for dr, dc in _OFFSETS:
        xr, xc = yr + dr, yc + dc
        inside = (xr >= 0) & (xr < height) & (xc >= 0) & (xc < b.width)
        xr, xc = np.where(inside, xr, yr), np.where(inside, xc, yc)
        dx = d[xr * b.width + xc]
        step_km = cell_km * (math.sqrt(2.0) if dr and dc else 1.0)
        w = _edge_hours(step_km, h[xr + b.top, xc + b.left].astype(np.float64), hy)
        count += inside & (dx + w == dy) & (dx == dhop)
    return bool((count > 1).any())


def _trace(hop: np.ndarray, source: int, target: int) -> np.ndarray:
    """Follow next hops from `source` to `target` (empty if they do not lead there)."""
    out = [source]
    cur = source
    limit = len(hop)
    while cur != target:
        cur = int(hop[cur])
        if cur < 0 or len(out) > limit:
            return np.zeros(0, np.int64)
        out.append(cur)
    return np.asarray(out, dtype=np.int64)


class Router:
    """Road routes and cached off-road searches over one terrain.

    Searches are kept in one least-recently-used cache of at most `field_cache_bytes` bytes
    (`FIELD_CACHE_BYTES`): whole-grid fields (`field`: a float32 cost and an int32 next hop, 8
    bytes per cell, about 1.4 MB on a 1 km theatre) and the searches routes to often visited
    targets use: bounded ones (12 bytes per cell of their box) or, with compiled kernels,
    whole-grid ones resumed as far as each start needs (`Settling`, 20 bytes per cell, 3.6 MB
    on a 1 km theatre).
    """

    def __init__(self, terrain: Terrain, *, field_cache_bytes: int = FIELD_CACHE_BYTES) -> None:
        self.terrain = terrain
        self.field_cache_bytes = field_cache_bytes
        self._graphs: dict[tuple[str, frozenset[int]], csr_matrix] = {}
        self._fields: OrderedDict[tuple, Any] = OrderedDict()
        self._field_bytes = 0
        # recent routes: patrols, guards and returns to base repeat the same trips
        self._paths: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._hours_per_km: dict[tuple[str, frozenset[int]], np.ndarray] = {}
        self._min_hours_per_km: dict[tuple[str, frozenset[int]], float] = {}
        self._bounds: dict[str, CostBound] = {}
        self._coarse: dict[tuple, np.ndarray] = {}
        # the road node nearest a cell: convoys and traffic start from the same few cells
        self._nearest_nodes: dict[tuple[int, int], str] = {}
        # road routes by (from, to) node: convoys and traffic drive the same few legs
        self._road_routes: dict[tuple[str, str], Route] = {}
        self._lock = threading.Lock()
        self.dijkstra_runs = 0          # how many searches ran (not served from cache)
        g = terrain.road_graph
        self._node_keys = list(g.nodes)
        self._node_cells = (np.array([g.nodes[k]["cell"] for k in self._node_keys], np.int64)
                            .reshape(-1, 2))

    def kept(self, key: tuple, make: Callable[[], np.ndarray]) -> np.ndarray:
        """The array ``make()`` returns, made read-only and kept under ``key`` in the router's
        cache (with its fields and searches, least recently used out first, by bytes): the
        same array for every caller (in every run on the terrain) while it is kept. The key must
        hold everything ``make`` depends on besides the terrain (the start, the waypoints, the
        mobility, the barred zones): the router's answers depend on nothing else."""
        key = ("kept", *key)
        if (hit := self._cached(key)) is not None:
            return hit[1]
        known = read_only(make())
        self._keep(key, known, known.nbytes)
        return known

    # ------------------------------------------------------------------ road network
    def nearest_node(self, cell: Any) -> str:
        """The road-graph node nearest to a cell (grid distance)."""
        if len(self._node_keys) == 0:
            raise NoRouteError("the map has no roads")
        r, c = (int(v) for v in cell)
        with self._lock:
            known = self._nearest_nodes.get((r, c))
        if known is not None:
            return known
        d2 = (self._node_cells[:, 0] - r) ** 2 + (self._node_cells[:, 1] - c) ** 2
        node = self._node_keys[int(np.argmin(d2))]
        with self._lock:
            if len(self._nearest_nodes) >= NEAREST_NODE_CACHE_SIZE:
                self._nearest_nodes.pop(next(iter(self._nearest_nodes)))
            self._nearest_nodes[(r, c)] = node
        return node

    def _node(self, ref: Any) -> str:
        g = self.terrain.road_graph
        if isinstance(ref, str):
            if ref not in g:
                raise NoRouteError(f"{ref!r} is not on the road network")
            return ref
        return self.nearest_node(self.terrain.locate(ref))

    def road_route(self, a: Any, b: Any) -> Route:
        """Shortest route on roads (by great-circle length) between two places.

        `a`, `b` are place names / road-graph node keys, or `(lat, lon)` points (snapped to the
        nearest road node). Raises `NoRouteError` if the road network does not join them.
        """
        src, dst = self._node(a), self._node(b)
        with self._lock:
            known = self._road_routes.get((src, dst))
        if known is None:
            known = self._road_route(src, dst)
            with self._lock:
                self._road_routes[(src, dst)] = known
        # a fresh Route (its lists are the caller's to keep), sharing the read-only cells
        return Route(known.cells, known.length_km, list(known.roads), list(known.nodes))

    def _road_route(self, src: str, dst: str) -> Route:
        """The shortest road route between two road-graph nodes (`road_route`, uncached)."""
        g = self.terrain.road_graph
        try:
            nodes = nx.shortest_path(g, src, dst, weight="length_km")
        except nx.NetworkXNoPath:
            raise NoRouteError(f"no road route from {src!r} to {dst!r}") from None
        if len(nodes) == 1:
            cell = np.array([g.nodes[src]["cell"]], np.int32)
            return Route(read_only(cell), 0.0, [], nodes)
        parts: list[np.ndarray] = []
        roads: list[str] = []
        length = 0.0
        for u, v in itertools.pairwise(nodes):
            e = g.edges[u, v]
            cells = e["cells"]
            # edge cells run in the direction the edge was drawn; orient them u -> v
            if tuple(cells[0]) != tuple(g.nodes[u]["cell"]):
                cells = cells[::-1]
            parts.append(cells if not parts else cells[1:])
            length += e["length_km"]
            if not roads or roads[-1] != e["road"]:
                roads.append(e["road"])
        route_cells = np.concatenate(parts).astype(np.int32)
        return Route(read_only(route_cells), float(length), roads, nodes)

    # ------------------------------------------------------------------ off-road searches
    def _check(self, mobility: str) -> None:
        if mobility not in MOBILITIES:
            raise ValueError(f"unknown mobility {mobility!r}; expected one of {MOBILITIES}")

    def hours_per_km(self, mobility: str, barred_zones: Iterable[int] = ()) -> np.ndarray:
        """Reference unit's hours per km in each cell (inf where impassable or barred)."""
        self._check(mobility)
        key = (mobility, frozenset(barred_zones))
        cache = self._hours_per_km
        if key not in cache:
            cache[key] = read_only(self._compute_hours_per_km(mobility, key[1]))
        return cache[key]

    def _compute_hours_per_km(self, mobility: str, barred_zones: frozenset[int]) -> np.ndarray:
        t = self.terrain
        v_road, v_off = t.config.reference_speed_kmh[mobility]
        h = hours_per_cell(t, mobility, v_road, v_off) / np.float32(t.cell_km)
        barred = frozenset(barred_zones)
        if barred:
            h = np.where(np.isin(t.zone, sorted(barred)), np.float32(np.inf), h)
        return h

    def min_hours_per_km(self, mobility: str, barred_zones: Iterable[int] = ()) -> float:
        """The fastest cell's hours per km (inf if no cell is passable): no route beats it."""
        key = (mobility, frozenset(barred_zones))
        if key not in self._min_hours_per_km:
            h = self.hours_per_km(mobility, key[1])
            finite = h[np.isfinite(h)]
            self._min_hours_per_km[key] = float(finite.min()) if finite.size else math.inf
        return self._min_hours_per_km[key]

    def graph(self, mobility: str, barred_zones: Iterable[int] = ()) -> csr_matrix:
        """The whole-grid graph for a mobility and barred zones (kept if at most
        `GRAPH_CACHE_BYTES`; a finer grid's is rebuilt when a whole-grid search needs it)."""
        key = (mobility, frozenset(barred_zones))
        with self._lock:
            g = self._graphs.get(key)
        if g is None:
            g = grid_graph(self.hours_per_km(mobility, key[1]), self.terrain.cell_km)
            if g.data.nbytes + g.indices.nbytes + g.indptr.nbytes <= GRAPH_CACHE_BYTES:
                with self._lock:
                    self._graphs[key] = g
        return g

    def _keeps_whole_searches(self) -> bool:
        """Whether routes to often visited targets keep a whole-grid search per target: where
        the whole-grid graph is kept (at most `GRAPH_CACHE_BYTES`, 8 edges of 12 bytes per
        cell), the grid is small enough for a few dozen such searches to fit the cache."""
        return 8 * 12 * self.terrain.grid.size <= GRAPH_CACHE_BYTES

    def _flat_target(self, target_cell: Any) -> int:
        grid = self.terrain.grid
        if isinstance(target_cell, (int, np.integer)):
            flat = int(target_cell)
            if not 0 <= flat < grid.size:
                raise ValueError(f"target cell index {flat} outside the grid")
            return flat
        r, c = (int(v) for v in target_cell)
        if not grid.in_bounds(r, c):
            raise ValueError(f"target cell ({r}, {c}) outside the {grid.rows}x{grid.cols} grid")
        return grid.flat(r, c)

    def _cached(self, key: tuple) -> Any:
        with self._lock:
            hit = self._fields.get(key)
            if hit is not None:
                self._fields.move_to_end(key)
            return hit

    def _keep(self, key: tuple, value: Any, nbytes: int) -> None:
        """Cache `value` under `key` (replacing what was there); evict the least recently used
        entries until the cache holds at most `field_cache_bytes` (the newest always stays)."""
        with self._lock:
            old = self._fields.pop(key, None)
            if old is not None:
                self._field_bytes -= old[0]
            self._fields[key] = (nbytes, value)
            self._field_bytes += nbytes
            while self._field_bytes > self.field_cache_bytes and len(self._fields) > 1:
                _, (size, _) = self._fields.popitem(last=False)
                self._field_bytes -= size

    def field(
        self, target_cell: Any, mobility: str, barred_zones: Iterable[int] = frozenset()
    ) -> tuple[np.ndarray, np.ndarray]:
        """`(cost, next_hop)` toward the target over the whole grid: float32 hours (flat, inf =
        unreachable) and int32 flat next cells (-1 unreachable, the target maps to itself).
        Cached (LRU, by bytes)."""
        self._check(mobility)
        target = self._flat_target(target_cell)
        key = ("field", target, mobility, frozenset(barred_zones))
        hit = self._cached(key)
        if hit is not None:
            return hit[1]
        dist, pred = dijkstra(self.graph(mobility, key[3]), directed=True, indices=target,
                              return_predecessors=True)
        cost = dist.astype(np.float32)
        hop = np.where(pred < 0, -1, pred).astype(np.int32)
        hop[target] = target
        result = (read_only(cost), read_only(hop))
        with self._lock:
            self.dijkstra_runs += 1
        self._keep(key, result, cost.nbytes + hop.nbytes)
        return result

    def cost_field(
        self, target_cell: Any, mobility: str, barred_zones: Iterable[int] = frozenset()
    ) -> np.ndarray:
        """Hours (reference unit) from every cell to the target, shape (rows, cols) float32."""
        return self.field(target_cell, mobility, barred_zones)[0].reshape(self.terrain.shape)

    def next_hop(
        self, target_cell: Any, mobility: str, barred_zones: Iterable[int] = frozenset()
    ) -> np.ndarray:
        """Flat int32 array: the next cell (flat index) toward the target from every cell."""
        return self.field(target_cell, mobility, barred_zones)[1]

    def local_path(
        self, from_cell: int, target_cell: int, mobility: str,
        barred_zones: Iterable[int] = frozenset(), *, margin: float = 0.5, cache: bool = False,
    ) -> np.ndarray:
        """Flat cells from `from_cell` to `target_cell` (both included; empty if unreachable).

        The model's everyday route query. `cache=True` targets (bases, patrol points) follow
        the target's whole-grid field. Otherwise the route is the one a search on a window of the
        grid around the two cells finds, `margin` times their distance (at least 8 cells) wider
        on each side, which costs a few thousand cells rather than the whole theatre; where the
        window holds no route (a zone or a river in the way) it is doubled, and finally the whole
        grid's field is used.

        Both answers are found by searches bounded in distance (`scipy...dijkstra(limit=...)`)
        over a box just large enough for that distance, growing the bound until the start is
        reached; the result is the unbounded search's route to the cell (`tied_on_route`: where
        a tie could make them differ, the unbounded search is run instead). With compiled
        kernels, windows and kept searches are searched without a bound, stopping once the
        start is settled (`Settling`), with the same check.
        """
        if type(barred_zones) is frozenset:
            # the everyday query asked again (a model's units re-ordered along known routes,
            # about 12,000 times in a theatre year): looked up under the key the arguments
            # normalise to before they are checked and normalised, which costs more than the
            # lookup (ints and numpy ints hash and compare alike; other forms miss and go on)
            known = self._known_path((from_cell, target_cell, mobility, barred_zones, cache))
            if known is not None:
                return known
        self._check(mobility)
        source, target = int(from_cell), self._flat_target(target_cell)
        if source == target:
            return np.array([source], dtype=np.int64)
        barred = frozenset(barred_zones)
        key = (source, target, mobility, barred, cache)
        known = self._known_path(key)
        if known is not None:
            return known
        path = self._local_path(source, target, mobility, barred, margin, cache)
        read_only(path)
        with self._lock:
            self._paths[key] = path
            while len(self._paths) > PATH_CACHE_SIZE:
                self._paths.popitem(last=False)
        return path

    def _known_path(self, key: tuple) -> np.ndarray | None:
        """The finished route kept under ``key`` (now the most recently used), or None."""
        with self._lock:
            known = self._paths.get(key)
            if known is not None:
                self._paths.move_to_end(key)
            return known

    def _local_path(self, source, target, mobility, barred, margin, cache) -> np.ndarray:
        # The answer depends only on the arguments, never on what happens to be cached, so
        # runs sharing a router (a batch worker) stay reproducible: `cache=True` queries always
        # follow the whole-grid field, the others always search their window.
        grid = self.terrain.grid
        if cache:
            return self._field_route(source, target, mobility, barred)
        (r0, c0), (r1, c1) = self.terrain.rc(source), self.terrain.rc(target)
        pad = max(8, int(margin * max(abs(r0 - r1), abs(c0 - c1))))
        while True:
            window = Box(max(0, min(r0, r1) - pad), min(grid.rows, max(r0, r1) + pad + 1),
                         max(0, min(c0, c1) - pad), min(grid.cols, max(c0, c1) + pad + 1))
            if window == Box(0, grid.rows, 0, grid.cols):
                return self._field_route(source, target, mobility, barred)
            path = self._bounded_route(source, target, mobility, barred, window, cached=False)
            if len(path):
                return path
            pad *= 2

    def _field_route(self, source: int, target: int, mobility: str,
                     barred: frozenset[int]) -> np.ndarray:
        """The route the whole grid's field gives, from a search kept per target: with
        compiled kernels on a grid whose searches are kept (`_keeps_whole_searches`), a
        compiled one run as far as the starts so far need (`Settling`), else a bounded one
        (`_bounded_route`)."""
        whole = self._cached(("field", target, mobility, barred))
        if whole is not None:       # the whole field itself is at hand
            return _trace(whole[1][1], source, target)
        grid = self.terrain.grid
        whole = Box(0, grid.rows, 0, grid.cols)
        if not (gridsearch.settle.compiled and self._keeps_whole_searches()):
            return self._bounded_route(source, target, mobility, barred, whole, cached=True)
        # the compiled search kept per target, resumed as far as each start needs
        key = ("settling", target, mobility, barred)
        if (hit := self._cached(key)) is not None:
            settling: Settling = hit[1]
        else:
            t = self.terrain
            settling = Settling(self.hours_per_km(mobility, barred), t.cell_km, whole,
                                t.rc(target))
            self._keep(key, settling, settling.nbytes)
            with self._lock:
                self.dijkstra_runs += 1
        route = settling.route(self.terrain.rc(source), grid.cols)
        if route is None:       # a tie decided a hop on the way: the reference search's
            return self._reference_route(source, target, mobility, barred, whole)
        return route

    def _bounded_route(self, source: int, target: int, mobility: str, barred: frozenset[int],
                       reference: Box, *, cached: bool) -> np.ndarray:
        """The route an unlimited search from `target` over the box `reference` gives from
        `source` (empty if none), found by searches limited in hours: on the kept whole-grid
        graph where the grid is small (`cached=True` keeps the latest search per target, as
        routes to bases and patrol points start from many cells), else over the corridor the
        limit allows (`_corridor_route`). The first limit is the cost of the straight line
        between the two cells (a route, so the start is within it) or `REACH_FACTOR` times the
        least the trip can cost, whichever is lower; it doubles (up to the line's cost) while
        the start is out of reach.

        With compiled kernels, a box of up to `SETTLED_CELLS` cells is searched by the
        compiled search toward the start, stopped there (`route_toward`), and `cached=True` searches
        go to `_field_route`'s kept compiled searches instead."""
        t = self.terrain
        h = self.hours_per_km(mobility, barred)
        src, dst = t.rc(source), t.rc(target)
        compiled = gridsearch.settle.compiled
        if reference.size <= (SETTLED_CELLS if compiled else UNBOUNDED_CELLS):
            # a small window: one unlimited search costs less than working out a bound (the
            # compiled one stops at the start; on a tie, scipy's settles the route)
            with self._lock:
                self.dijkstra_runs += 1
            if compiled:
                route = route_toward(h, t.cell_km, reference, dst, src, t.cols)
                if route is not None:
                    return route
            s = search(h, t.cell_km, reference, dst)
            return trace_route(s, h, t.cell_km, src, t.cols)
        # the line's cost, summed in another order than the search's, plus rounding slack
        line_h = line_hours(h, t.cell_km, src, dst) * (1.0 + LINE_SLACK)
        whole = Box(0, t.rows, 0, t.cols)
        if not (reference == whole and self._keeps_whole_searches()):
            return self._corridor_route(source, target, mobility, barred, reference, line_h)
        min_h = self.min_hours_per_km(mobility, barred)
        key = ("bounded", target, mobility, barred)
        lowest_h = _octile_steps(src, dst) * t.cell_km * min_h
        limit_h = REACH_FACTOR * lowest_h if 0.0 < lowest_h < math.inf else math.inf
        if cached and (hit := self._cached(key)) is not None:
            known: Search = hit[1]
            route = trace_route(known, h, t.cell_km, src, t.cols)
            if route is not None:
                return route
            if known.reaches(*src):     # a tie on the way: see below
                return self._reference_route(source, target, mobility, barred, reference)
            limit_h = max(limit_h, 2.0 * known.limit_h)
        limit_h = min(limit_h, line_h)
        bound = self.cost_bound(mobility)
        if limit_h > KEPT_TUBE_FACTOR * bound.steps(src, dst) * t.cell_km * bound.fast_h:
            # a loose limit (the straight line crosses slow ground, the roads wind): a route
            # along the coarse sketch costs about the best one's hours, and the search kept
            # for later starts reaches somewhat beyond them
            tube_h = self._tube_hours(h, mobility, barred, reference, src, dst)
            line_h = min(line_h, tube_h)
            limit_h = min(limit_h, KEPT_TUBE_FACTOR * tube_h)
        while True:
            # the kept whole-grid graph (a small grid): the limit alone bounds the search, and
            # the search serves later starts too
            s = search(h, t.cell_km, whole, dst, limit_h, graph=self.graph(mobility, barred))
            with self._lock:
                self.dijkstra_runs += 1
            if cached:
                self._keep(key, s, s.nbytes)
            route = trace_route(s, h, t.cell_km, src, t.cols)
            if route is not None:
                return route
            if s.reaches(*src) or s.exact:
                # a tie decided a hop on the way: only the unlimited search settles it
                return self._reference_route(source, target, mobility, barred, reference)
            # out of reach: double the limit; past the line's cost only rounding can explain it
            limit_h = math.inf if limit_h >= line_h else min(2.0 * limit_h, line_h)

    def _corridor_route(self, source: int, target: int, mobility: str, barred: frozenset[int],
                        reference: Box, line_h: float) -> np.ndarray:
        """The reference search's route from `source`, from searches over the corridor a route
        of the limit's hours can use (`corridor_search`). The first limit is `CORRIDOR_FACTOR`
        times the least the trip can cost (`CostBound`) or the straight line's cost (a route,
        so the start is within it), whichever is lower; it grows `CORRIDOR_GROWTH` times (up to
        the line's cost) while the start is out of reach, or until the corridor spans
        `reference`; then, or on a tie, the reference search."""
        t = self.terrain
        h = self.hours_per_km(mobility, barred)
        bound = self.cost_bound(mobility)
        src, dst = t.rc(source), t.rc(target)
        lowest_h = bound.steps(src, dst) * t.cell_km * bound.fast_h
        limit_h = CORRIDOR_FACTOR * lowest_h if 0.0 < lowest_h < math.inf else math.inf
        limit_h = min(limit_h, line_h)
        if reference.size > TUBE_CELLS:
            # a route found along a coarse sketch: a limit the start is within, about the best
            tube_h = self._tube_hours(h, mobility, barred, reference, src, dst)
            if tube_h < line_h:
                line_h = tube_h
                limit_h = tube_h
        while math.isfinite(limit_h):
            s = corridor_search(h, t.cell_km, reference, src, dst, limit_h, bound)
            with self._lock:
                self.dijkstra_runs += 1
            if s.reaches(*src):
                route = trace_route(s, h, t.cell_km, src, t.cols)
                if route is None:       # a tie decided a hop on the way
                    break
                return route
            if s.box == reference and not math.isfinite(line_h):
                break       # the corridor spans the reference box and no cost bounds the route
            if limit_h >= line_h:
                break       # past the line's cost only rounding can explain it
            # out of reach: a higher limit, or a route's cost found from the cells reached
            # where that is not much higher (a limit the start is certainly within)
            grown = min(CORRIDOR_GROWTH * limit_h, line_h)
            upper = min(line_h, _upper_hours(s, h, t.cell_km, src))
            limit_h = upper if limit_h < upper <= CORRIDOR_GROWTH * grown else grown
        return self._reference_route(source, target, mobility, barred, reference)

    def _tube_hours(self, h: np.ndarray, mobility: str, barred: frozenset[int],
                    reference: Box, src: tuple[int, int], dst: tuple[int, int]) -> float:
        """`tube_hours` of the trip on the layer's coarse sketch, with `LINE_SLACK` (two
        searches: the coarse one and the tube's)."""
        tube_h = tube_hours(h, self.coarse_hours(mobility, barred), self.terrain.cell_km,
                            reference, src, dst) * (1.0 + LINE_SLACK)
        with self._lock:
            self.dijkstra_runs += 2
        return tube_h

    def coarse_hours(self, mobility: str, barred: frozenset[int]) -> np.ndarray:
        """The layer's coarse sketch (`coarse_hours`, blocks of `TUBE_BLOCK`), computed once."""
        key = ("coarse", mobility, barred)
        with self._lock:
            layer = self._coarse.get(key)
        if layer is None:
            layer = read_only(coarse_hours(self.hours_per_km(mobility, barred), TUBE_BLOCK))
            with self._lock:
                self._coarse[key] = layer
        return layer

    def cost_bound(self, mobility: str) -> CostBound:
        """The lower bound on route hours (`CostBound`) for a mobility, from its layer without
        barred zones (so it holds with any), computed once."""
        with self._lock:
            bound = self._bounds.get(mobility)
        if bound is None:
            bound = CostBound.of(self.hours_per_km(mobility))
            with self._lock:
                self._bounds[mobility] = bound
        return bound

    def _reference_route(self, source: int, target: int, mobility: str, barred: frozenset[int],
                         reference: Box) -> np.ndarray:
        t = self.terrain
        if reference == Box(0, t.rows, 0, t.cols):
            return _trace(self.field(target, mobility, barred)[1], source, target)
        s = search(self.hours_per_km(mobility, barred), t.cell_km, reference, t.rc(target))
        with self._lock:
            self.dijkstra_runs += 1
        route = trace_route(s, self.hours_per_km(mobility, barred), t.cell_km, t.rc(source),
                            t.cols)
        return np.zeros(0, np.int64) if route is None else route

    def path_cells(
        self, from_cell: Any, target_cell: Any, mobility: str,
        barred_zones: Iterable[int] = frozenset(),
    ) -> np.ndarray:
        """Cells `(n, 2)` from `from_cell` to the target following next hops (both included);
        an empty `(0, 2)` array if the target cannot be reached."""
        grid = self.terrain.grid
        hop = self.next_hop(target_cell, mobility, barred_zones)
        route = _trace(hop, self._flat_target(from_cell), self._flat_target(target_cell))
        if len(route) == 0:
            return np.zeros((0, 2), np.int32)
        r, c = grid.unflat(route)
        return np.stack([r, c], axis=1).astype(np.int32)


def line_hours(h: np.ndarray, cell_km: float, a: tuple[int, int], b: tuple[int, int]) -> float:
    """Hours of the straight 8-connected line of cells from `a` to `b` (`line_cells`), edge by
    edge as `grid_graph` weighs them; inf if it crosses an impassable cell. A route, so no
    search's distance between the two cells exceeds it (up to rounding)."""
    cells = line_cells(a, b)
    hc = h[cells[:, 0], cells[:, 1]].astype(np.float64)
    diagonal = (np.diff(cells[:, 0]) != 0) & (np.diff(cells[:, 1]) != 0)
    step_km = np.where(diagonal, cell_km * math.sqrt(2.0), cell_km)
    return float(np.sum(step_km * 0.5 * (hc[:-1] + hc[1:])))


def _octile_steps(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Octile distance in cells: the least a route between the two cells can be long."""
    dr, dc = abs(a[0] - b[0]), abs(a[1] - b[1])
    return max(dr, dc) + (math.sqrt(2.0) - 1.0) * min(dr, dc)


def router_for(terrain: Terrain) -> Router:
    """The terrain's router: one per terrain, kept with it (`Terrain.derived`) and shared by
    every model on it in this process, so their route fields are computed once."""
    return terrain.derived("router", Router)
