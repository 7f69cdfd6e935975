"""Routes: shortest road routes (networkx) and off-road cost-distance fields (scipy csgraph).

A cost field answers "how long from every cell to this target?" for one mobility; its companion
next-hop array tells every unit, whatever cell it is in, which neighbouring cell to step to next.
Both come from one `scipy.sparse.csgraph.dijkstra` run from the target over the 8-connected grid
graph (edges reversed, so the predecessors point toward the target), and are cached per
(target, mobility, barred zones): every unit heading to the same place shares one field.

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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from sim.errors import NoRouteError
from sim.scenario.vocab import MOBILITIES
from sim.world.raster import Terrain, hours_per_cell, read_only

#: How many recent (from, to, mobility, barred) routes a router keeps.
PATH_CACHE_SIZE = 4096

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
    """The 8-connected grid graph as a CSR matrix (built without a loop over cells).

    The edge i -> j weighs `step_km * (h[i] + h[j]) / 2`, `step_km` being `cell_km` orthogonally
    and `cell_km * sqrt(2)` diagonally; edges touching an infinite (impassable or barred) cell
    are left out, so a unit standing in one has no next hop (route it without the barred zones
    to get it out). With `reverse=True` the matrix holds j -> i instead (the transposed graph).
    """
    rows, cols = hours_per_km.shape
    n = rows * cols
    idx = np.arange(n, dtype=np.int32).reshape(rows, cols)
    h = hours_per_km.astype(np.float64)
    src_parts, dst_parts, w_parts = [], [], []
    for dr, dc in _OFFSETS:
        # source block and its neighbour block, both clipped to the grid
        rs = slice(max(0, -dr), rows - max(0, dr))
        cs = slice(max(0, -dc), cols - max(0, dc))
        rd = slice(max(0, dr), rows - max(0, -dr))
        cd = slice(max(0, dc), cols - max(0, -dc))
        step_km = cell_km * (math.sqrt(2.0) if dr and dc else 1.0)
        w = step_km * 0.5 * (h[rs, cs] + h[rd, cd])
        ok = np.isfinite(w)
        src_parts.append(idx[rs, cs][ok])
        dst_parts.append(idx[rd, cd][ok])
        w_parts.append(w[ok])
    src = np.concatenate(src_parts)
    dst = np.concatenate(dst_parts)
    w = np.concatenate(w_parts)
    if reverse:
        src, dst = dst, src
    return csr_matrix((w, (src, dst)), shape=(n, n))


class Router:
    """Road routes and cached off-road fields over one terrain.

    `field_cache_size` bounds the number of cached (target, mobility, barred) fields; each holds
    a float32 cost and an int32 next-hop array (8 bytes per cell, about 1.5 MB on a 1 km theatre).
    """

    def __init__(self, terrain: Terrain, *, field_cache_size: int = 64) -> None:
        self.terrain = terrain
        self.field_cache_size = field_cache_size
        self._graphs: dict[tuple[str, frozenset[int]], csr_matrix] = {}
        self._fields: OrderedDict[tuple[int, str, frozenset[int]], tuple[np.ndarray, np.ndarray]]
        self._fields = OrderedDict()
        # recent routes: patrols, guards and returns to base repeat the same trips
        self._paths: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._hours_per_km: dict[tuple[str, frozenset[int]], np.ndarray] = {}
        self._lock = threading.Lock()
        self.dijkstra_runs = 0          # how many fields were computed (not served from cache)
        g = terrain.road_graph
        self._node_keys = list(g.nodes)
        self._node_cells = (np.array([g.nodes[k]["cell"] for k in self._node_keys], np.int64)
                            .reshape(-1, 2))

    # ------------------------------------------------------------------ road network
    def nearest_node(self, cell: Any) -> str:
        """The road-graph node nearest to a cell (grid distance)."""
        if len(self._node_keys) == 0:
            raise NoRouteError("the map has no roads")
        r, c = cell
        d2 = (self._node_cells[:, 0] - r) ** 2 + (self._node_cells[:, 1] - c) ** 2
        return self._node_keys[int(np.argmin(d2))]

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
        g = self.terrain.road_graph
        src, dst = self._node(a), self._node(b)
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

    # ------------------------------------------------------------------ off-road fields
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

    def graph(self, mobility: str, barred_zones: Iterable[int] = ()) -> csr_matrix:
        """The reversed grid graph for a mobility and barred zones (cached)."""
        key = (mobility, frozenset(barred_zones))
        with self._lock:
            g = self._graphs.get(key)
        if g is None:
            g = grid_graph(self.hours_per_km(mobility, key[1]), self.terrain.cell_km,
                           reverse=True)
            with self._lock:
                self._graphs[key] = g
        return g

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

    def field(
        self, target_cell: Any, mobility: str, barred_zones: Iterable[int] = frozenset()
    ) -> tuple[np.ndarray, np.ndarray]:
        """`(cost, next_hop)` toward the target: float32 hours (flat, inf = unreachable) and
        int32 flat next cells (-1 unreachable, the target maps to itself). Cached (LRU)."""
        self._check(mobility)
        target = self._flat_target(target_cell)
        key = (target, mobility, frozenset(barred_zones))
        with self._lock:
            hit = self._fields.get(key)
            if hit is not None:
                self._fields.move_to_end(key)
                return hit
        dist, pred = dijkstra(self.graph(mobility, key[2]), directed=True, indices=target,
                              return_predecessors=True)
        cost = dist.astype(np.float32)
        hop = np.where(pred < 0, -1, pred).astype(np.int32)
        hop[target] = target
        result = (read_only(cost), read_only(hop))
        with self._lock:
            self.dijkstra_runs += 1
            self._fields[key] = result
            while len(self._fields) > self.field_cache_size:
                self._fields.popitem(last=False)
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
        the target's whole-grid field, computed once and kept. Otherwise the search runs on a
        window of the grid around the two cells, `margin` times their
        distance (at least 8 cells) wider on each side, which costs a few thousand cells
        rather than the whole theatre; where the window holds no route (a zone or a river in
        the way) it is doubled, and finally the whole grid's field is used.
        """
        self._check(mobility)
        source, target = int(from_cell), self._flat_target(target_cell)
        if source == target:
            return np.array([source], dtype=np.int64)
        barred = frozenset(barred_zones)
        key = (source, target, mobility, barred, cache)
        with self._lock:
            known = self._paths.get(key)
            if known is not None:
                self._paths.move_to_end(key)
                return known
        path = self._local_path(source, target, mobility, barred, margin, cache)
        read_only(path)
        with self._lock:
            self._paths[key] = path
            while len(self._paths) > PATH_CACHE_SIZE:
                self._paths.popitem(last=False)
        return path

    def _local_path(self, source, target, mobility, barred, margin, cache) -> np.ndarray:
        # The answer depends only on the arguments, never on what happens to be cached, so
        # runs sharing a router (a batch worker) stay reproducible: `cache=True` queries always
        # follow the whole-grid field, the others always search their window.
        grid = self.terrain.grid
        if cache:
            return self._trace(self.field(target, mobility, barred)[1], source, target)
        (r0, c0), (r1, c1) = self.terrain.rc(source), self.terrain.rc(target)
        pad = max(8, int(margin * max(abs(r0 - r1), abs(c0 - c1))))
        h = self.hours_per_km(mobility, barred)
        while True:
            top, bottom = max(0, min(r0, r1) - pad), min(grid.rows, max(r0, r1) + pad + 1)
            left, right = max(0, min(c0, c1) - pad), min(grid.cols, max(c0, c1) + pad + 1)
            whole = top == 0 and left == 0 and bottom == grid.rows and right == grid.cols
            if whole:
                return self._trace(self.field(target, mobility, barred)[1], source, target)
            width = right - left
            window = grid_graph(h[top:bottom, left:right], grid.cell_km, reverse=True)
            local_t = (r1 - top) * width + (c1 - left)
            local_s = (r0 - top) * width + (c0 - left)
            _, pred = dijkstra(window, directed=True, indices=local_t,
                               return_predecessors=True)
            path = self._trace(pred, local_s, local_t)
            if len(path):
                rr, cc = np.divmod(path, width)
                return self.terrain.flat(rr + top, cc + left)
            pad *= 2

    @staticmethod
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

    def path_cells(
        self, from_cell: Any, target_cell: Any, mobility: str,
        barred_zones: Iterable[int] = frozenset(),
    ) -> np.ndarray:
        """Cells `(n, 2)` from `from_cell` to the target following next hops (both included);
        an empty `(0, 2)` array if the target cannot be reached."""
        grid = self.terrain.grid
        hop = self.next_hop(target_cell, mobility, barred_zones)
        target = self._flat_target(target_cell)
        cur = self._flat_target(from_cell)
        out = [cur]
        while cur != target:
            cur = int(hop[cur])
            if cur < 0 or len(out) > grid.size:
                return np.zeros((0, 2), np.int32)
            out.append(cur)
        r, c = grid.unflat(np.array(out))
        return np.stack([r, c], axis=1).astype(np.int32)


def router_for(terrain: Terrain) -> Router:
    """The terrain's router: one per terrain, kept with it (`Terrain.derived`) and shared by
    every model on it in this process, so their route fields are computed once."""
    return terrain.derived("router", Router)
