"""Terrain: the map compiled into numpy layers, a road graph and derived movement/cover layers.

`build_terrain(map_spec)` turns either kind of map (an ASCII grid with a legend, or a geographic
box with places, roads, rivers, borders, areas and zones) into one `Terrain`. Layers are plain
numpy arrays of shape `(rows, cols)`, not Mesa cell objects: a 1 km theatre has ~180,000 cells
and a batch reuses one terrain across thousands of runs (see DESIGN.md, "Decisions").

Movement cost (the one number the router and the movement rule share)
-------------------------------------------------------------------
`move_cost[mobility][r, c]` is the hours needed to travel 1 km through the cell for a unit whose
*reference speed* is 1 km/h. The reference speed is the unit's road speed (`speed_kmh`) on road
cells and its off-road speed (`offroad_speed_kmh`) elsewhere, for every mobility. So a unit with
speeds `v_road`, `v_off` needs::

    hours to cross a cell = cell_km * step_factor * move_cost[m][cell] / speed
    speed = v_road on a road cell, else v_off

with `step_factor` 1 for an orthogonal step and sqrt(2) for a diagonal one; `hours_per_cell`
computes this array. `inf` marks impassable cells: rivers for vehicles except where a road
crosses (a bridge), and every off-road cell for road-bound vehicles. On a road cell the road's
factor replaces the ground's (a road crossing a river is a bridge). All factors live in
`TerrainConfig`.

Caching
-------
Terrains are cached in-process (by a SHA-256 of the map spec's JSON, the config and the cache
format version) and on disk as `<repo>/.badia-cache/terrain-<hash>.npz` (arrays plus a JSON
document; no pickle). `BADIA_CACHE_DIR` overrides the directory. A cache file that cannot be
read, or was written for another hash or format version, is ignored and rewritten. Cached
terrains are shared: their arrays are read-only.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import tempfile
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sim.errors import OutsideGridError, TerrainError
from sim.scenario.map import MapSpec
from sim.world.geo import Grid, haversine_km

CACHE_FORMAT_VERSION = 1
"""Bump when the layout of cached terrains or the build rules change."""

MOBILITIES: tuple[str, ...] = ("foot", "offroad", "road")
SETTLEMENT_KINDS = frozenset({"city", "town", "village", "camp"})
"""Place kinds whose footprint (a disc of `radius_km`) forms the `town` layer."""


class Ground(IntEnum):
    """Ground class of a cell (`Terrain.ground`)."""

    FLAT = 0
    SAND = 1
    RUGGED = 2
    WADI = 3
    RIVER = 4
    IRRIGATED = 5


class Road(IntEnum):
    """Road class of a cell (`Terrain.road`); a higher class wins where roads overlap."""

    NONE = 0
    TRACK = 1
    HIGHWAY = 2


class Water(IntEnum):
    """Water source in a cell (`Terrain.water`). Precedence: oasis > well > town > river."""

    NONE = 0
    WELL = 1
    OASIS = 2
    RIVER = 3
    TOWN = 4


GROUND_NAMES = tuple(g.name.lower() for g in Ground)
ROAD_NAMES = {"track": Road.TRACK, "highway": Road.HIGHWAY}


_INF = math.inf


class TerrainConfig(BaseModel):
    """Every number the terrain rules use; change them here, never inline.

    Movement factors are hours per km at a reference speed of 1 km/h (see the module docstring):
    1.0 means the unit moves at its full reference speed, 2.0 at half of it, `inf` not at all.
    `*_ground_factor` applies off roads (with the off-road speed), `*_road_factor` on road
    cells (with the road speed). Concealment is the fraction by which a cell lowers the chance
    of being seen (0 open ground .. 0.9 a cave); a cell takes the highest of its ground, town and
    cave values, except that an open road cell takes `road_concealment`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    foot_ground_factor: dict[str, float] = Field(default_factory=lambda: {
        "flat": 1.0, "sand": 1.5, "rugged": 2.0, "wadi": 1.2, "river": 5.0, "irrigated": 1.3})
    foot_road_factor: dict[str, float] = Field(default_factory=lambda: {
        "highway": 1.0, "track": 1.0})
    vehicle_ground_factor: dict[str, float] = Field(default_factory=lambda: {
        "flat": 1.0, "sand": 2.0, "rugged": 4.0, "wadi": 1.5, "river": _INF, "irrigated": 2.0})
    vehicle_road_factor: dict[str, float] = Field(default_factory=lambda: {
        "highway": 1.0, "track": 1.6})
    ground_concealment: dict[str, float] = Field(default_factory=lambda: {
        "flat": 0.05, "sand": 0.1, "rugged": 0.5, "wadi": 0.4, "river": 0.3, "irrigated": 0.5})
    town_concealment: float = Field(default=0.6, ge=0, le=1)
    cave_concealment: float = Field(default=0.9, ge=0, le=1)
    road_concealment: float = Field(default=0.0, ge=0, le=1)
    oasis_radius_km: float = Field(default=1.0, ge=0)
    """Radius of the irrigated gardens and water around an oasis place."""
    crossing_gate_cells: int = Field(default=1, ge=0)
    """A crossing flags the border cell nearest its place and border cells this close to it."""
    reference_speed_kmh: dict[str, tuple[float, float]] = Field(default_factory=lambda: {
        "foot": (5.0, 4.0), "offroad": (60.0, 30.0), "road": (60.0, 60.0)})
    """(road, off-road) speeds of the reference unit whose hours the router's cost fields give."""

    def key(self) -> str:
        """Canonical JSON of the config (part of the cache key)."""
        return json.dumps(self.model_dump(mode="python"), sort_keys=True, default=list)


DEFAULT_CONFIG = TerrainConfig()


@dataclass(frozen=True)
class PlaceInfo:
    """A named place on the map."""

    name: str
    kind: str
    row: int
    col: int
    water: int          # Water code of the place itself (NONE, WELL or OASIS)
    lat: float
    lon: float
    radius_km: float

    @property
    def cell(self) -> tuple[int, int]:
        return (self.row, self.col)


@dataclass(frozen=True)
class ZoneInfo:
    """An exclusion zone: `barred` factions may not enter; `guarded_by` faction guards it."""

    name: str
    barred: frozenset[str]
    guarded_by: str | None


@dataclass(frozen=True)
class BorderInfo:
    """An international border: `sides[0]` lies left of the polyline (border_side +1)."""

    name: str
    sides: tuple[str, str]
    points: tuple[tuple[float, float], ...]     # (lat, lon) polyline
    crossings: tuple[str, ...]


@dataclass(eq=False)
class Terrain:
    """All layers of one map; every array has shape `grid.shape` unless noted."""

    grid: Grid
    ground: np.ndarray          # uint8 Ground
    road: np.ndarray            # uint8 Road
    town: np.ndarray            # int16, -1 or index into place_names
    water: np.ndarray           # uint8 Water
    cave: np.ndarray            # bool
    border: np.ndarray          # int16, -1 or index into borders
    crossing: np.ndarray        # bool
    border_side: np.ndarray     # int8 (n_borders, rows, cols), +1 left of the line, -1 right
    zone: np.ndarray            # int16, -1 or index into zones
    zones: list[ZoneInfo]
    borders: list[BorderInfo]
    places: dict[str, PlaceInfo]
    areas: dict[str, np.ndarray]
    area_kinds: dict[str, str]
    road_graph: nx.Graph
    config: TerrainConfig
    spec_hash: str
    is_ascii: bool
    move_cost: dict[str, np.ndarray] = field(default_factory=dict)
    concealment: np.ndarray = field(default=None)       # type: ignore[assignment]
    water_available: np.ndarray = field(default=None)   # type: ignore[assignment]

    # ------------------------------------------------------------------ shape
    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    @property
    def rows(self) -> int:
        return self.grid.rows

    @property
    def cols(self) -> int:
        return self.grid.cols

    @property
    def cell_km(self) -> float:
        return self.grid.cell_km

    @property
    def place_names(self) -> list[str]:
        """Place names in index order (the `town` layer indexes this list)."""
        return list(self.places)

    # ------------------------------------------------------------------ lookups
    def place_cell(self, name: str) -> tuple[int, int]:
        """`(row, col)` of a named place."""
        try:
            return self.places[name].cell
        except KeyError:
            raise KeyError(f"unknown place {name!r}") from None

    def locate(self, ref: Any) -> tuple[int, int]:
        """`(row, col)` of a place name or a `(lat, lon)` pair (raises if off the map)."""
        if isinstance(ref, str):
            return self.place_cell(ref)
        lat, lon = ref
        return self.grid.cell_of(float(lat), float(lon))

    def zone_index(self, name: str) -> int:
        """Index of the zone called `name` in `zones` (the `zone` layer's value)."""
        for i, z in enumerate(self.zones):
            if z.name == name:
                return i
        raise KeyError(f"unknown zone {name!r}")

    def border_index(self, name: str) -> int:
        """Index of the border called `name` in `borders`."""
        for i, b in enumerate(self.borders):
            if b.name == name:
                return i
        raise KeyError(f"unknown border {name!r}")

    def barred_zones(self, faction: str) -> frozenset[int]:
        """Indices of the zones `faction` may not enter (the router's `barred_zones`)."""
        return frozenset(i for i, z in enumerate(self.zones) if faction in z.barred)

    def town_mask(self, name: str) -> np.ndarray:
        """Bool mask of the named place's town footprint."""
        return self.town == self.place_names.index(name)


# =============================================================================================
# Derived layers
# =============================================================================================


def _factor_table(by_name: dict[str, float], names: tuple[str, ...]) -> np.ndarray:
    return np.array([by_name[n] for n in names], dtype=np.float32)


def derive_layers(t: Terrain) -> None:
    """Fill `move_cost`, `concealment` and `water_available` from the base layers."""
    cfg = t.config
    on_road = t.road > 0
    road_names = ("none", "track", "highway")
    move: dict[str, np.ndarray] = {}
    for mob in MOBILITIES:
        if mob == "foot":
            ground_f, road_f = cfg.foot_ground_factor, cfg.foot_road_factor
        else:
            ground_f, road_f = cfg.vehicle_ground_factor, cfg.vehicle_road_factor
        ground_tab = _factor_table(ground_f, GROUND_NAMES)
        if mob == "road":
            ground_tab = np.full_like(ground_tab, np.inf)
        road_tab = np.array([np.inf] + [road_f[n] for n in road_names[1:]], dtype=np.float32)
        move[mob] = np.where(on_road, road_tab[t.road], ground_tab[t.ground]).astype(np.float32)
    t.move_cost = move
    conc = _factor_table(cfg.ground_concealment, GROUND_NAMES)[t.ground]
    conc = np.where(on_road, np.float32(cfg.road_concealment), conc)
    conc = np.where(t.town >= 0, np.maximum(conc, np.float32(cfg.town_concealment)), conc)
    conc = np.where(t.cave, np.float32(cfg.cave_concealment), conc)
    t.concealment = conc.astype(np.float32)
    t.water_available = t.water > 0


def hours_per_cell(
    terrain: Terrain, mobility: str, v_road_kmh: float, v_off_kmh: float
) -> np.ndarray:
    """Hours for a unit with these speeds to cross each cell orthogonally (float32, inf = no).

    `cell_km * move_cost[mobility] / (v_road_kmh on road cells, v_off_kmh elsewhere)`; multiply by
    sqrt(2) for a diagonal step. A zero speed makes the matching cells impassable.
    """
    if mobility not in terrain.move_cost:
        raise ValueError(f"unknown mobility {mobility!r}; expected one of {MOBILITIES}")
    speed = np.where(terrain.road > 0, np.float32(v_road_kmh), np.float32(v_off_kmh))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.float32(terrain.cell_km) * terrain.move_cost[mobility] / speed
    h = np.where((speed > 0) & np.isfinite(h), h, np.inf)
    return h.astype(np.float32)


# =============================================================================================
# Rasterisation helpers (cells in continuous grid coordinates: u = col + 0.5 at a centre)
# =============================================================================================


def _uv(grid: Grid, lat: Any, lon: Any) -> tuple[np.ndarray, np.ndarray]:
    """Continuous (u=col, v=row) coordinates: cell (r, c) covers [c, c+1) x [r, r+1)."""
    x, y = grid.xy_km(lat, lon)
    u = (np.asarray(x) + grid.width_km / 2.0) / grid.cell_km
    v = (grid.height_km / 2.0 - np.asarray(y)) / grid.cell_km
    return u, v


def supercover(u0: float, v0: float, u1: float, v1: float, shape: tuple[int, int]) -> np.ndarray:
    """Every cell a straight segment passes through (a 4-connected chain), clipped to the grid.

    Amanatides-Woo traversal; returns an (n, 2) int array of (row, col) in travel order.
    """
    col, row = math.floor(u0), math.floor(v0)
    end_col, end_row = math.floor(u1), math.floor(v1)
    du, dv = u1 - u0, v1 - v0
    step_c = 1 if du > 0 else -1
    step_r = 1 if dv > 0 else -1
    t_max_c = ((col + (step_c > 0)) - u0) / du if du != 0 else math.inf
    t_max_r = ((row + (step_r > 0)) - v0) / dv if dv != 0 else math.inf
    t_delta_c = abs(1.0 / du) if du != 0 else math.inf
    t_delta_r = abs(1.0 / dv) if dv != 0 else math.inf
    cells = [(row, col)]
    n_max = abs(end_col - col) + abs(end_row - row)
    for _ in range(n_max):
        if t_max_c < t_max_r:
            col += step_c
            t_max_c += t_delta_c
        else:
            row += step_r
            t_max_r += t_delta_r
        cells.append((row, col))
    out = np.array(cells, dtype=np.int64).reshape(-1, 2)
    keep = (out[:, 0] >= 0) & (out[:, 0] < shape[0]) & (out[:, 1] >= 0) & (out[:, 1] < shape[1])
    return out[keep]


def line_cells(a: tuple[int, int], b: tuple[int, int]) -> np.ndarray:
    """An 8-connected chain of cells from `a` to `b` inclusive (DDA), (n, 2) int64."""
    (r0, c0), (r1, c1) = a, b
    n = max(abs(r1 - r0), abs(c1 - c0))
    if n == 0:
        return np.array([[r0, c0]], dtype=np.int64)
    t = np.arange(n + 1) / n
    rows = np.rint(r0 + t * (r1 - r0)).astype(np.int64)
    cols = np.rint(c0 + t * (c1 - c0)).astype(np.int64)
    return np.stack([rows, cols], axis=1)


def points_in_polygon(
    px: np.ndarray, py: np.ndarray, xs: np.ndarray, ys: np.ndarray
) -> np.ndarray:
    """Even-odd rule: True where (px, py) lies inside the polygon with vertices (xs, ys)."""
    inside = np.zeros(np.shape(px), bool)
    n = len(xs)
    for i in range(n):
        x1, y1, x2, y2 = xs[i], ys[i], xs[(i + 1) % n], ys[(i + 1) % n]
        if y1 == y2:
            continue        # a horizontal edge never crosses the ray
        crosses = (y1 > py) != (y2 > py)
        x_at = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (px < x_at)
    return inside


def _segment_distance(
    px: np.ndarray, py: np.ndarray, ax: float, ay: float, bx: float, by: float
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from points to segment a-b, and the signed cross product (left > 0)."""
    dx, dy = bx - ax, by - ay
    seg2 = dx * dx + dy * dy
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / seg2, 0.0, 1.0) if seg2 > 0 else 0.0
    qx, qy = ax + t * dx, ay + t * dy
    cross = dx * (py - ay) - dy * (px - ax)
    return np.hypot(px - qx, py - qy), cross


def _polyline_distance(
    px: np.ndarray, py: np.ndarray, xs: np.ndarray, ys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distance to a polyline and the side (+1 left / -1 right of the nearest segment's line).

    The end segments' lines extend beyond the ends, so every point gets a side.
    """
    best = np.full(px.shape, np.inf)
    side = np.ones(px.shape, dtype=np.int8)
    for i in range(len(xs) - 1):
        d, cross = _segment_distance(px, py, xs[i], ys[i], xs[i + 1], ys[i + 1])
        closer = d < best
        best = np.where(closer, d, best)
        side = np.where(closer, np.where(cross >= 0, 1, -1), side).astype(np.int8)
    return best, side


# =============================================================================================
# Builder
# =============================================================================================


def _stable_int(*parts: Any) -> int:
    """A hash of `parts` that is the same in every process (unlike the salted `hash()`)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _point_key(lat: float, lon: float) -> str:
    return f"{lat:.4f},{lon:.4f}"


class _Builder:
    """Compiles one MapSpec; `field` paths in errors follow the scenario file."""

    def __init__(self, spec: MapSpec, source: str, cfg: TerrainConfig, spec_hash: str) -> None:
        self.spec, self.source, self.cfg, self.spec_hash = spec, source, cfg, spec_hash
        if spec.ascii is not None:
            rows = spec.ascii_rows
            assert spec.centre is not None
            self.grid = Grid(spec.centre.lat, spec.centre.lon, spec.cell_km, len(rows),
                             len(rows[0]))
            self.ascii_rows = rows
        else:
            assert spec.box is not None
            b = spec.box
            self.grid = Grid.from_box(b.south, b.west, b.north, b.east, spec.cell_km)
            self.ascii_rows = None
        g = self.grid
        shape = g.shape
        self.ground = np.zeros(shape, np.uint8)
        self.road = np.zeros(shape, np.uint8)
        self.town = np.full(shape, -1, np.int16)
        self.water = np.zeros(shape, np.uint8)
        self.cave = np.zeros(shape, bool)
        self.border = np.full(shape, -1, np.int16)
        self.crossing = np.zeros(shape, bool)
        self.zone = np.full(shape, -1, np.int16)
        rr, cc = np.indices(shape)
        self.cx, self.cy = g.cell_xy_km(rr, cc)
        self.clat, self.clon = g.latlon_of(rr, cc)
        self.places: dict[str, PlaceInfo] = {}
        self.areas: dict[str, np.ndarray] = {}
        self.area_kinds: dict[str, str] = {}
        self.graph = nx.Graph()

    # ---------------------------------------------------------------- errors and points
    def fail(self, path: str, message: str) -> TerrainError:
        return TerrainError(f"{self.source}: map.{path}: {message}")

    def latlon(self, ref: Any, path: str) -> tuple[float, float]:
        if isinstance(ref, str):
            if ref not in self.places:
                raise self.fail(path, f"unknown place {ref!r}")
            p = self.places[ref]
            return (p.lat, p.lon)
        return (float(ref[0]), float(ref[1]))

    def cell(self, lat: float, lon: float, path: str) -> tuple[int, int]:
        try:
            return self.grid.cell_of(lat, lon)
        except OutsideGridError as exc:
            raise self.fail(path, str(exc)) from None

    def circle_mask(self, lat: float, lon: float, radius_km: float, path: str) -> np.ndarray:
        """Cells whose centre lies within `radius_km` of the point, plus the point's own cell."""
        g = self.grid
        u, v = _uv(g, lat, lon)
        # only a window of cells around the centre can be inside (2 cells of slack for the
        # projection's tiny scale error)
        reach = radius_km / g.cell_km + 2.0
        r0, r1 = max(0, math.floor(v - reach)), min(g.rows, math.ceil(v + reach) + 1)
        c0, c1 = max(0, math.floor(u - reach)), min(g.cols, math.ceil(u + reach) + 1)
        mask = np.zeros(g.shape, bool)
        if r0 < r1 and c0 < c1:
            win = (slice(r0, r1), slice(c0, c1))
            mask[win] = haversine_km(lat, lon, self.clat[win], self.clon[win]) <= radius_km
        row, col = g.cell_of(lat, lon, strict=False)
        if row >= 0:
            mask[row, col] = True
        elif not mask.any():
            raise self.fail(path, f"circle around ({lat:.4f}, {lon:.4f}) misses the map")
        return mask

    def polygon_mask(self, points: list[Any], path: str) -> np.ndarray:
        ll = np.array([self.latlon(p, f"{path}[{i}]") for i, p in enumerate(points)])
        x, y = self.grid.xy_km(ll[:, 0], ll[:, 1])
        # test only the polygon's bounding box of cells; the rest is outside
        inside = (self.cx >= x.min()) & (self.cx <= x.max()) & (self.cy >= y.min()) & (
            self.cy <= y.max())
        mask = np.zeros(self.grid.shape, bool)
        if inside.any():
            mask[inside] = points_in_polygon(self.cx[inside], self.cy[inside], x, y)
        return mask

    def box_mask(self, box: Any) -> np.ndarray:
        return ((self.clat >= box.south) & (self.clat <= box.north)
                & (self.clon >= box.west) & (self.clon <= box.east))

    def circle_spec_mask(self, circle: Any, path: str) -> np.ndarray:
        if circle.around is not None:
            lat, lon = self.latlon(circle.around, f"{path}.around")
        else:
            lat, lon = circle.lat, circle.lon
        return self.circle_mask(lat, lon, circle.radius_km, path)

    # ---------------------------------------------------------------- stages
    def build(self) -> Terrain:
        spec = self.spec
        self.add_places()
        if self.ascii_rows is not None:
            self.apply_ascii()
        if spec.texture is not None:
            self.apply_texture()
        self.apply_areas(caves=False)
        self.apply_rivers()
        # river ground is a water source wherever it comes from (a river line or ASCII cells)
        self.water[(self.ground == Ground.RIVER) & (self.water == Water.NONE)] = Water.RIVER
        self.apply_settlements()
        self.apply_roads()
        borders, border_side = self.apply_borders()
        zones = self.apply_zones()
        self.apply_areas(caves=True)
        t = Terrain(
            grid=self.grid, ground=self.ground, road=self.road, town=self.town,
            water=self.water, cave=self.cave, border=self.border, crossing=self.crossing,
            border_side=border_side, zone=self.zone, zones=zones, borders=borders,
            places=self.places, areas=self.areas, area_kinds=self.area_kinds,
            road_graph=self.graph, config=self.cfg, spec_hash=self.spec_hash,
            is_ascii=self.ascii_rows is not None)
        derive_layers(t)
        return t

    def add_places(self) -> None:
        for i, p in enumerate(self.spec.places):
            path = f"places[{i}]"
            if p.cell is not None:
                row, col = p.cell
                if not self.grid.in_bounds(row, col):
                    raise self.fail(f"{path}.cell", f"cell [{row}, {col}] outside the "
                                    f"{self.grid.rows}x{self.grid.cols} map")
                lat, lon = self.grid.latlon_of(row, col)
            else:
                lat, lon = float(p.lat), float(p.lon)
                row, col = self.cell(lat, lon, path)
            water = Water.OASIS if p.oasis else (Water.WELL if p.well else Water.NONE)
            self.places[p.name] = PlaceInfo(p.name, p.kind, int(row), int(col), int(water),
                                            float(lat), float(lon), float(p.radius_km or 0.0))

    def apply_ascii(self) -> None:
        chars = np.array([list(r) for r in self.ascii_rows])
        place_index = {n: i for i, n in enumerate(self.places)}
        border_index = {b.name: i for i, b in enumerate(self.spec.borders)}
        zone_index = {z.name: i for i, z in enumerate(self.spec.zones)}
        for ch, cs in self.spec.legend.items():
            m = chars == ch
            if not m.any():
                continue
            path = f"legend[{ch!r}]"
            self.ground[m] = Ground[cs.ground.upper()]
            if cs.road is not None:
                self.road[m] = ROAD_NAMES[cs.road]
            if cs.water is not None:
                self.water[m] = Water.OASIS if cs.water == "oasis" else Water.WELL
            if cs.cave:
                self.cave[m] = True
            if cs.town is not None:
                if cs.town not in place_index:
                    # a town drawn only in the grid becomes a place at its central cell
                    rr, cc = np.nonzero(m)
                    k = int(np.argmin((rr - rr.mean()) ** 2 + (cc - cc.mean()) ** 2))
                    lat, lon = self.grid.latlon_of(int(rr[k]), int(cc[k]))
                    self.places[cs.town] = PlaceInfo(cs.town, "town", int(rr[k]), int(cc[k]),
                                                     int(Water.NONE), lat, lon, 0.0)
                    place_index[cs.town] = len(place_index)
                self.town[m] = place_index[cs.town]
            if cs.border is not None:
                if cs.border not in border_index:
                    raise self.fail(f"{path}.border", f"unknown border {cs.border!r}")
                self.border[m] = border_index[cs.border]
                if cs.crossing:
                    self.crossing[m] = True
            if cs.zone is not None:
                if cs.zone not in zone_index:
                    raise self.fail(f"{path}.zone", f"unknown zone {cs.zone!r}")
                self.zone[m] = zone_index[cs.zone]

    def apply_texture(self) -> None:
        from scipy.ndimage import gaussian_filter  # heavy import, only maps with a texture

        tex = self.spec.texture
        sigma = max(tex.scale_km / (2.0 * self.grid.cell_km), 0.5)
        for k, (fraction, ground) in enumerate(
                ((tex.rugged_fraction, Ground.RUGGED), (tex.sand_fraction, Ground.SAND))):
            if fraction <= 0:
                continue
            rng = np.random.default_rng([tex.seed, _stable_int("texture", k) % 2**32])
            noise = gaussian_filter(rng.standard_normal(self.grid.shape), sigma, mode="reflect")
            free = self.ground == Ground.FLAT
            if not free.any():
                continue
            # the fraction is of the whole map; cells already patched keep their class
            level = np.quantile(noise, 1.0 - fraction)
            self.ground[(noise >= level) & free] = ground

    def apply_areas(self, caves: bool) -> None:
        for i, a in enumerate(self.spec.areas):
            if (a.kind == "caves") != caves:
                continue
            path = f"areas[{i}]"
            if a.within is not None:
                mask = self.scatter_caves(a, path)
            elif a.polygon is not None:
                mask = self.polygon_mask(a.polygon, f"{path}.polygon")
            elif a.circle is not None:
                mask = self.circle_spec_mask(a.circle, f"{path}.circle")
            elif a.box is not None:
                mask = self.box_mask(a.box)
            else:
                mask = np.zeros(self.grid.shape, bool)
                for j, p in enumerate(a.points):
                    lat, lon = self.latlon(p, f"{path}.points[{j}]")
                    mask[self.cell(lat, lon, f"{path}.points[{j}]")] = True
            if a.kind in GROUND_NAMES:
                self.ground[mask] = Ground[a.kind.upper()]
            elif a.kind == "caves":
                self.cave |= mask
            mask.flags.writeable = False
            self.areas[a.name] = mask
            self.area_kinds[a.name] = a.kind

    def scatter_caves(self, a: Any, path: str) -> np.ndarray:
        if a.within not in self.areas:
            raise self.fail(f"{path}.within", f"unknown area {a.within!r}")
        cells = np.flatnonzero(self.areas[a.within])
        if len(cells) < a.count:
            raise self.fail(f"{path}.count", f"{a.count} caves asked but area {a.within!r} "
                            f"has only {len(cells)} cells")
        seed = self.spec.texture.seed if self.spec.texture is not None else 0
        rng = np.random.default_rng([seed, _stable_int("caves", a.name) % 2**32])
        chosen = np.sort(rng.choice(cells, size=a.count, replace=False))
        mask = np.zeros(self.grid.size, bool)
        mask[chosen] = True
        return mask.reshape(self.grid.shape)

    def polyline_uv(self, points: list[Any], path: str) -> tuple[np.ndarray, np.ndarray]:
        ll = np.array([self.latlon(p, f"{path}[{i}]") for i, p in enumerate(points)])
        return _uv(self.grid, ll[:, 0], ll[:, 1])

    def chain_mask(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.grid.shape, bool)
        for i in range(len(u) - 1):
            cells = supercover(u[i], v[i], u[i + 1], v[i + 1], self.grid.shape)
            mask[cells[:, 0], cells[:, 1]] = True
        return mask

    def apply_rivers(self) -> None:
        for i, river in enumerate(self.spec.rivers):
            u, v = self.polyline_uv(river.points, f"rivers[{i}].points")
            mask = self.chain_mask(u, v)     # 4-connected, so no diagonal step jumps it
            if river.width_km / 2.0 > self.grid.cell_km / 2.0:
                k = self.grid.cell_km
                xs, ys = u * k - self.grid.width_km / 2.0, self.grid.height_km / 2.0 - v * k
                dist, _ = _polyline_distance(self.cx, self.cy, xs, ys)
                mask |= dist <= river.width_km / 2.0
            self.ground[mask] = Ground.RIVER
            self.areas[river.name] = _frozen(mask)
            self.area_kinds[river.name] = "river"

    def apply_settlements(self) -> None:
        place_index = {n: i for i, n in enumerate(self.places)}
        for i, p in enumerate(self.spec.places):
            info = self.places[p.name]
            path = f"places[{i}]"
            idx = place_index[p.name]
            # ASCII maps may draw a town's cells in the grid; then the grid is its footprint
            if p.kind in SETTLEMENT_KINDS and not (self.town == idx).any():
                disc = self.circle_mask(info.lat, info.lon, info.radius_km, path)
                self.town[disc & (self.town < 0)] = idx
        self.water[(self.town >= 0) & np.isin(self.water, (Water.NONE, Water.RIVER))] = Water.TOWN
        for i, p in enumerate(self.spec.places):
            info = self.places[p.name]
            path = f"places[{i}]"
            if p.oasis and self.ascii_rows is not None:
                # ASCII maps draw the gardens in the grid; the place adds water at its cell
                self.water[info.row, info.col] = Water.OASIS
            elif p.oasis:
                disc = self.circle_mask(info.lat, info.lon, self.cfg.oasis_radius_km, path)
                self.ground[disc & (self.ground != Ground.RIVER)] = Ground.IRRIGATED
                self.water[disc] = Water.OASIS
            elif p.well and self.water[info.row, info.col] != Water.OASIS:
                self.water[info.row, info.col] = Water.WELL

    def apply_roads(self) -> None:
        g = self.graph
        for name, info in self.places.items():
            g.add_node(name, cell=info.cell, lat=info.lat, lon=info.lon, place=True)
        if self.ascii_rows is not None:
            self.ascii_road_graph()
        for i, road in enumerate(self.spec.roads):
            cls = ROAD_NAMES[road.cls]
            keys = []
            for j, ref in enumerate(road.via):
                lat, lon = self.latlon(ref, f"roads[{i}].via[{j}]")
                cell = self.cell(lat, lon, f"roads[{i}].via[{j}]")
                key = ref if isinstance(ref, str) else _point_key(lat, lon)
                if key not in g:
                    g.add_node(key, cell=cell, lat=lat, lon=lon, place=False)
                keys.append(key)
            for a, b in itertools.pairwise(keys):
                if a == b:
                    continue
                na, nb = g.nodes[a], g.nodes[b]
                length = haversine_km(na["lat"], na["lon"], nb["lat"], nb["lon"])
                if g.has_edge(a, b) and g.edges[a, b]["length_km"] <= length:
                    continue
                cells = line_cells(na["cell"], nb["cell"])
                self.road[cells[:, 0], cells[:, 1]] = np.maximum(
                    self.road[cells[:, 0], cells[:, 1]], cls)
                g.add_edge(a, b, length_km=float(length), road=road.name, cls=road.cls,
                           cells=_frozen(cells.astype(np.int32)))

    def ascii_road_graph(self) -> None:
        """One node per road cell (a place name where a place sits on it, else 'lat,lon'),
        edges between 8-adjacent road cells (no diagonal where the road turns a corner through
        an orthogonal road cell); places beside a road join it."""
        g = self.graph
        rows, cols = np.nonzero(self.road)
        names = {info.cell: n for n, info in self.places.items()}
        key_of: dict[tuple[int, int], str] = {}
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            key = names.get((r, c))
            if key is None:
                lat, lon = self.grid.latlon_of(r, c)
                key = _point_key(lat, lon)
                g.add_node(key, cell=(r, c), lat=lat, lon=lon, place=False)
            key_of[(r, c)] = key
        cls_name = {Road.TRACK: "track", Road.HIGHWAY: "highway"}
        for (r, c), key in key_of.items():
            for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
                other = key_of.get((r + dr, c + dc))
                if other is None:
                    continue
                if dr and dc and ((r + dr, c) in key_of or (r, c + dc) in key_of):
                    continue    # the road turns a corner here: no shortcut edge across it
                cls = cls_name[Road(min(self.road[r, c], self.road[r + dr, c + dc]))]
                self._ascii_edge(key, other, cls)
        for name, info in self.places.items():
            if self.road[info.row, info.col]:
                continue
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    other = key_of.get((info.row + dr, info.col + dc))
                    if other is not None:
                        cls = cls_name[Road(self.road[info.row + dr, info.col + dc])]
                        self._ascii_edge(name, other, cls)

    def _ascii_edge(self, a: str, b: str, cls: str) -> None:
        na, nb = self.graph.nodes[a], self.graph.nodes[b]
        length = haversine_km(na["lat"], na["lon"], nb["lat"], nb["lon"])
        cells = np.array([na["cell"], nb["cell"]], dtype=np.int32)
        self.graph.add_edge(a, b, length_km=float(length), road=cls, cls=cls,
                            cells=_frozen(cells))

    def apply_borders(self) -> tuple[list[BorderInfo], np.ndarray]:
        infos: list[BorderInfo] = []
        sides = np.ones((len(self.spec.borders), *self.grid.shape), np.int8)
        for i, b in enumerate(self.spec.borders):
            path = f"borders[{i}]"
            u, v = self.polyline_uv(b.points, f"{path}.points")
            k = self.grid.cell_km
            xs, ys = u * k - self.grid.width_km / 2.0, self.grid.height_km / 2.0 - v * k
            _, side = _polyline_distance(self.cx, self.cy, xs, ys)
            sides[i] = side
            if not (self.border == i).any():   # ASCII maps may draw the border in the grid
                self.border[self.chain_mask(u, v)] = i
            on_border = np.argwhere(self.border == i)
            for j, name in enumerate(b.crossings):
                if name not in self.places:
                    raise self.fail(f"{path}.crossings[{j}]", f"unknown place {name!r}")
                pr, pc = self.places[name].cell
                self.crossing[pr, pc] = True
                if len(on_border) == 0:
                    continue
                cheb = np.maximum(np.abs(on_border[:, 0] - pr), np.abs(on_border[:, 1] - pc))
                nearest = on_border[np.argmin(cheb)]
                gate = np.maximum(np.abs(on_border[:, 0] - nearest[0]),
                                  np.abs(on_border[:, 1] - nearest[1]))
                gate_cells = on_border[gate <= self.cfg.crossing_gate_cells]
                self.crossing[gate_cells[:, 0], gate_cells[:, 1]] = True
            pts = tuple(self.latlon(p, f"{path}.points[{j}]") for j, p in enumerate(b.points))
            infos.append(BorderInfo(b.name, (b.sides[0], b.sides[1]), pts, tuple(b.crossings)))
        return infos, sides

    def apply_zones(self) -> list[ZoneInfo]:
        infos = []
        for i, z in enumerate(self.spec.zones):
            path = f"zones[{i}]"
            if z.circle is not None:
                self.zone[self.circle_spec_mask(z.circle, f"{path}.circle")] = i
            elif z.polygon is not None:
                self.zone[self.polygon_mask(z.polygon, f"{path}.polygon")] = i
            elif z.box is not None:
                self.zone[self.box_mask(z.box)] = i
            elif not (self.zone == i).any():
                raise self.fail(path, "zone has no shape and no cells in the ASCII grid")
            infos.append(ZoneInfo(z.name, frozenset(z.barred), z.guarded_by))
        return infos


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


# =============================================================================================
# Caching
# =============================================================================================

_MEMORY_CACHE: OrderedDict[str, Terrain] = OrderedDict()
_MEMORY_CACHE_SIZE = 8
_LOCK = threading.Lock()

_BASE_LAYERS = ("ground", "road", "town", "water", "cave", "border", "crossing", "border_side",
                "zone")


def spec_hash(map_spec: MapSpec, config: TerrainConfig = DEFAULT_CONFIG) -> str:
    """SHA-256 of the map spec's canonical JSON, the config and the cache format version."""
    doc = json.dumps({
        "format": CACHE_FORMAT_VERSION,
        "spec": map_spec.model_dump(mode="json", by_alias=True),
        "config": config.key(),
    }, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


def cache_dir() -> Path:
    """Disk cache folder: `$BADIA_CACHE_DIR`, else `<repo>/.badia-cache`."""
    env = os.environ.get("BADIA_CACHE_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".badia-cache"


def cache_path(h: str) -> Path:
    """Where the terrain with spec hash `h` is cached on disk."""
    return cache_dir() / f"terrain-{h[:24]}.npz"


def clear_memory_cache() -> None:
    """Forget the in-process terrains (the disk cache stays)."""
    with _LOCK:
        _MEMORY_CACHE.clear()


def build_terrain(
    map_spec: MapSpec,
    source: str = "<map>",
    *,
    config: TerrainConfig = DEFAULT_CONFIG,
    cache: bool = True,
) -> Terrain:
    """Compile a map spec into a `Terrain` (cached in-process and on disk unless `cache=False`).

    The same spec returns the identical (shared, read-only) object within a process. Seeded parts
    (texture, scattered caves) draw from `map.texture.seed` (0 without a texture) and the area's
    name, so a map is the same in every run and process. Raises `TerrainError` (a
    `ScenarioError`) naming `source` and the field for maps that cannot be compiled.
    """
    h = spec_hash(map_spec, config)
    if cache:
        with _LOCK:
            hit = _MEMORY_CACHE.get(h)
            if hit is not None:
                _MEMORY_CACHE.move_to_end(h)
                return hit
        terrain = load_cached(h, config)
        if terrain is None:
            terrain = _Builder(map_spec, source, config, h).build()
            _freeze(terrain)
            save_cached(terrain)
        with _LOCK:
            _MEMORY_CACHE[h] = terrain
            while len(_MEMORY_CACHE) > _MEMORY_CACHE_SIZE:
                _MEMORY_CACHE.popitem(last=False)
        return terrain
    terrain = _Builder(map_spec, source, config, h).build()
    _freeze(terrain)
    return terrain


def _freeze(t: Terrain) -> None:
    arrays = [getattr(t, n) for n in _BASE_LAYERS] + [t.concealment, t.water_available]
    arrays += list(t.move_cost.values()) + list(t.areas.values())
    for a in arrays:
        a.flags.writeable = False


def save_cached(t: Terrain) -> Path | None:
    """Write `t` to the disk cache atomically; returns the path (None if the folder is unusable)."""
    path = cache_path(t.spec_hash)
    g = t.road_graph
    edges = list(g.edges(data=True))
    cells = [e[2]["cells"] for e in edges]
    offsets = np.cumsum([0] + [len(c) for c in cells]).astype(np.int64)
    meta = {
        "format": CACHE_FORMAT_VERSION,
        "hash": t.spec_hash,
        "grid": t.grid.to_dict(),
        "is_ascii": t.is_ascii,
        "places": [[p.name, p.kind, p.row, p.col, p.water, p.lat, p.lon, p.radius_km]
                   for p in t.places.values()],
        "zones": [[z.name, sorted(z.barred), z.guarded_by] for z in t.zones],
        "borders": [[b.name, list(b.sides), [list(p) for p in b.points], list(b.crossings)]
                    for b in t.borders],
        "areas": [[n, t.area_kinds[n]] for n in t.areas],
        "nodes": [[n, list(d["cell"]), d["lat"], d["lon"], d["place"]]
                  for n, d in g.nodes(data=True)],
        "edges": [[a, b, d["length_km"], d["road"], d["cls"]] for a, b, d in edges],
    }
    arrays = {n: getattr(t, n) for n in _BASE_LAYERS}
    arrays["areas"] = (np.stack(list(t.areas.values())) if t.areas
                       else np.zeros((0, *t.shape), bool))
    arrays["edge_cells"] = (np.concatenate(cells).astype(np.int32) if cells
                            else np.zeros((0, 2), np.int32))
    arrays["edge_offsets"] = offsets
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)     # atomic: readers never see a half-written file
    except OSError:
        # an unwritable cache only costs a rebuild next time
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        return None
    return path


def load_cached(h: str, config: TerrainConfig = DEFAULT_CONFIG) -> Terrain | None:
    """The terrain cached on disk under hash `h`, or None if absent, stale or unreadable."""
    path = cache_path(h)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta["format"] != CACHE_FORMAT_VERSION or meta["hash"] != h:
                return None
            grid = Grid(**meta["grid"])
            layers = {n: z[n] for n in _BASE_LAYERS}
            area_stack = z["areas"]
            edge_cells = z["edge_cells"]
            offsets = z["edge_offsets"]
        for n in _BASE_LAYERS:
            want = grid.shape if n != "border_side" else (len(meta["borders"]), *grid.shape)
            if layers[n].shape != want:
                return None
        g = nx.Graph()
        for name, cell, lat, lon, place in meta["nodes"]:
            g.add_node(name, cell=(cell[0], cell[1]), lat=lat, lon=lon, place=place)
        for k, (a, b, length, road, cls) in enumerate(meta["edges"]):
            g.add_edge(a, b, length_km=length, road=road, cls=cls,
                       cells=_frozen(edge_cells[offsets[k]:offsets[k + 1]]))
        t = Terrain(
            grid=grid, **layers,
            zones=[ZoneInfo(n, frozenset(b), gb) for n, b, gb in meta["zones"]],
            borders=[BorderInfo(n, (s[0], s[1]), tuple((p[0], p[1]) for p in pts), tuple(c))
                     for n, s, pts, c in meta["borders"]],
            places={p[0]: PlaceInfo(*p) for p in meta["places"]},
            areas={n: area_stack[i] for i, (n, _) in enumerate(meta["areas"])},
            area_kinds={n: k for n, k in meta["areas"]},
            road_graph=g, config=config, spec_hash=h, is_ascii=meta["is_ascii"])
        derive_layers(t)
        _freeze(t)
        return t
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError,
            zipfile.BadZipFile):
        # a truncated or foreign file: ignore it, the caller rebuilds and overwrites it
        return None
