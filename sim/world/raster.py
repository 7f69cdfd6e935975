"""The raster: one map as numpy layers (`Terrain`), its movement and cover layers.

Layers are plain numpy arrays of shape `(rows, cols)`, not Mesa cell objects: a 1 km theatre has
~180,000 cells and a batch reuses one terrain across thousands of runs (see DESIGN.md,
"Decisions"). `sim.world.build` compiles a map spec into these layers and `sim.world.cache`
(`build_terrain`) caches the result; this module only defines them and what is derived from
them.

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

Derived objects
---------------
What is computed from a terrain's layers alone and shared by every model on it (the router,
`sim.world.routes.router_for`; the metrics' zone distances) is kept by the terrain itself
(`Terrain.derived`) and lives as long as it does.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import networkx as nx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sim.compiled import kernel
from sim.scenario.vocab import MOBILITIES
from sim.world.geo import Grid


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

BASE_LAYERS = ("ground", "road", "town", "water", "cave", "border", "crossing", "border_side",
               "zone")
"""The layers a map compiles to (and the disk cache stores); the others derive from them."""


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
    _derived: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

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

    def flat(self, row: Any, col: Any) -> Any:
        """Flat index `row * cols + col` of a cell (its index in `layer.ravel()`): an int for
        ints, an int64 array for arrays (the same as `grid.flat`, faster for single cells)."""
        if isinstance(row, np.ndarray) or isinstance(col, np.ndarray):
            return np.asarray(row, np.int64) * self.grid.cols + np.asarray(col, np.int64)
        return int(row) * self.grid.cols + int(col)

    def rc(self, cell: Any) -> tuple[Any, Any]:
        """`(row, col)` of a flat cell index: ints for an int, int64 arrays for an array (the
        same as `grid.unflat`, faster for single cells)."""
        if isinstance(cell, np.ndarray):
            return np.divmod(cell.astype(np.int64, copy=False), self.grid.cols)
        return divmod(int(cell), self.grid.cols)

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

    # ------------------------------------------------------------------ derived objects
    def derived[T](self, key: str, make: Callable[[Terrain], T]) -> T:
        """`make(self)`, computed on the first call for `key` and kept with this terrain.

        For what depends on the layers alone and every model on the terrain shares (the region
        layer, the router): it lives as long as the terrain does. One value per key, also when
        threads ask at once.
        """
        with _DERIVED_LOCK:
            if key not in self._derived:
                self._derived[key] = make(self)
            return self._derived[key]

    def make_read_only(self) -> None:
        """Lock every layer array (shared terrains must not change under their users)."""
        arrays = [getattr(self, n) for n in BASE_LAYERS]
        arrays += [self.concealment, self.water_available]
        arrays += list(self.move_cost.values()) + list(self.areas.values())
        for a in arrays:
            a.flags.writeable = False


_DERIVED_LOCK = threading.RLock()


def read_only(a: np.ndarray) -> np.ndarray:
    """`a`, made read-only in place."""
    a.flags.writeable = False
    return a


# =============================================================================================
# Derived layers
# =============================================================================================


def _factor_table(by_name: dict[str, float], names: tuple[str, ...]) -> np.ndarray:
    return np.array([by_name[n] for n in names], dtype=np.float32)


def derive_layers(t: Terrain) -> None:
    """Fill `move_cost`, `concealment` and `water_available` from the base layers.

    Each derived value depends on a handful of small codes per cell (road class and ground for
    movement; road, town, cave and ground for concealment), so the rules run once over every
    combination of codes (`_movement_table`, `_concealment_table`) and the layers are looked up
    in those tables: the same float32 values as the rules applied cell by cell, at the cost of
    one gather per layer (a 0.25 km theatre has 2.9 million cells).
    """
    # keys in uint8 (at most 47): a quarter of the memory traffic of default integers
    n_ground = np.uint8(len(GROUND_NAMES))
    road = t.road.astype(np.uint8, copy=False)
    move_key = road * n_ground + t.ground.astype(np.uint8, copy=False)
    t.move_cost = {mob: _movement_table(t.config, mob)[move_key] for mob in MOBILITIES}
    cover_key = (road > 0).view(np.uint8) * np.uint8(2) + (t.town >= 0).view(np.uint8)
    cover_key = (cover_key * np.uint8(2) + t.cave.view(np.uint8)) * n_ground + t.ground
    t.concealment = _concealment_table(t.config)[cover_key]
    t.water_available = t.water > 0


def _movement_table(cfg: TerrainConfig, mobility: str) -> np.ndarray:
    """`move_cost[mobility]` of a cell by `road * len(Ground) + ground` (float32)."""
    if mobility == "foot":
        ground_f, road_f = cfg.foot_ground_factor, cfg.foot_road_factor
    else:
        ground_f, road_f = cfg.vehicle_ground_factor, cfg.vehicle_road_factor
    ground_tab = _factor_table(ground_f, GROUND_NAMES)
    if mobility == "road":
        ground_tab = np.full_like(ground_tab, np.inf)
    road_tab = np.array([np.inf, road_f["track"], road_f["highway"]], dtype=np.float32)
    # a road cell takes its road's factor, any other its ground's
    road, ground = np.divmod(np.arange(len(Road) * len(Ground)), len(Ground))
    return np.where(road > 0, road_tab[road], ground_tab[ground]).astype(np.float32)


def _concealment_table(cfg: TerrainConfig) -> np.ndarray:
    """Concealment of a cell by `((on_road * 2 + in_town) * 2 + cave) * len(Ground) + ground`."""
    combo = np.arange(2 * 2 * 2 * len(Ground))
    ground = combo % len(Ground)
    cave = (combo // len(Ground)) % 2 == 1
    in_town = (combo // (2 * len(Ground))) % 2 == 1
    on_road = combo // (4 * len(Ground)) == 1
    conc = _factor_table(cfg.ground_concealment, GROUND_NAMES)[ground]
    conc = np.where(on_road, np.float32(cfg.road_concealment), conc)
    conc = np.where(in_town, np.maximum(conc, np.float32(cfg.town_concealment)), conc)
    conc = np.where(cave, np.float32(cfg.cave_concealment), conc)
    return conc.astype(np.float32)


def hours_per_cell(
    terrain: Terrain, mobility: str, v_road_kmh: float, v_off_kmh: float
) -> np.ndarray:
    """Hours for a unit with these speeds to cross each cell orthogonally (float32, inf = no).

    `cell_km * move_cost[mobility] / (v_road_kmh on road cells, v_off_kmh elsewhere)`; multiply by
    sqrt(2) for a diagonal step. A zero speed makes the matching cells impassable.
    """
    if mobility not in terrain.move_cost:
        raise ValueError(f"unknown mobility {mobility!r}; expected one of {MOBILITIES}")
    cost = terrain.move_cost[mobility]
    road = terrain.road
    if (cost.size >= COMPILED_LAYER_CELLS and cost.dtype == np.float32
            and cost.shape == road.shape and cost.flags.c_contiguous
            and road.flags.c_contiguous and _hours_per_cell.compiled):
        # one pass over the layers instead of seven numpy passes (a 0.25 km theatre's 2.9
        # million cells: about 25 ms a speed class, against 4)
        out = np.empty(cost.shape, np.float32)
        _hours_per_cell(road.reshape(-1), cost.reshape(-1), np.float32(terrain.cell_km),
                        np.float32(v_road_kmh), np.float32(v_off_kmh), out.reshape(-1))
        return out
    speed = np.where(terrain.road > 0, np.float32(v_road_kmh), np.float32(v_off_kmh))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.float32(terrain.cell_km) * terrain.move_cost[mobility] / speed
    h = np.where((speed > 0) & np.isfinite(h), h, np.inf)
    return h.astype(np.float32)


#: `hours_per_cell` takes its compiled pass on layers of this many cells or more: on smaller
#: ones numpy's passes take a few ms, less than importing Numba where nothing else needs it
#: (`benchmarks/terrain.py`'s first cost field).
COMPILED_LAYER_CELLS = 1 << 20


@kernel
def _hours_per_cell(road, cost, cell_km, v_road, v_off, out):
    """`hours_per_cell`'s numpy path cell by cell, in float32 (each product and quotient
    rounded to float32 as numpy's float32 arithmetic is: a double holds the exact product, and
    rounding a double's quotient to float32 is the float32 quotient, 53 >= 2 * 24 + 2 bits)."""
    for i in range(len(out)):
        speed = v_road if road[i] > 0 else v_off
        h = np.float32(np.inf)
        if speed > 0:  # (a zero speed: impassable, and no division by it)
            q = np.float32(np.float32(cell_km * cost[i]) / speed)
            if np.isfinite(q):
                h = q
        out[i] = h


def shared_hours_per_cell(
    terrain: Terrain, mobility: str, v_road_kmh: float, v_off_kmh: float
) -> np.ndarray:
    """`hours_per_cell(...)`, flat and read-only, computed once per terrain and speeds and kept
    with the terrain (`Terrain.derived`): every model on it times its units' paths with the same
    few layers (a 0.25 km theatre's takes tens of ms to compute)."""
    key = f"hours_per_cell/{mobility}/{float(v_road_kmh)!r}/{float(v_off_kmh)!r}"
    return terrain.derived(key, lambda t: read_only(
        hours_per_cell(t, mobility, v_road_kmh, v_off_kmh).ravel()))


