"""The builder: compile one map spec (an ASCII grid with a legend, or a geographic box with
places, roads, rivers, borders, areas and zones) into a `Terrain`.

`compile_terrain` runs the stages in order (places, ASCII legend, texture, areas, rivers,
settlements, roads, borders, zones, caves) and fills the derived layers; errors name the
scenario file and the field (`TerrainError`). It neither caches nor freezes the result: callers
use `sim.world.cache.build_terrain`, which does both.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from typing import Any

import networkx as nx
import numpy as np

from sim.errors import OutsideGridError, TerrainError
from sim.scenario.map import MapSpec
from sim.world.geo import Grid, haversine_km
from sim.world.geometry import grid_uv, line_cells, points_in_polygon, polyline_distance, supercover
from sim.world.raster import (
    GROUND_NAMES,
    ROAD_NAMES,
    BorderInfo,
    Ground,
    PlaceInfo,
    Road,
    Terrain,
    TerrainConfig,
    Water,
    ZoneInfo,
    derive_layers,
    read_only,
)

SETTLEMENT_KINDS = frozenset({"city", "town", "village", "camp"})
"""Place kinds whose footprint (a disc of `radius_km`) forms the `town` layer."""


def compile_terrain(
    spec: MapSpec, source: str, config: TerrainConfig, spec_hash: str
) -> Terrain:
    """The terrain of `spec` with its derived layers (writable, uncached); `source` names the
    scenario file in errors, `spec_hash` is stored on the terrain."""
    return _Builder(spec, source, config, spec_hash).build()


#: Maps of at least this many cells have their texture smoothed on two threads
#: (`smooth_noise`); below it a thread costs more than it saves.
SPLIT_SMOOTHING_MIN_CELLS = 1 << 20


def smooth_noise(noise: np.ndarray, sigma: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(noise, sigma, mode="reflect")`` of a 2-d array, to the
    bit, with each pass cut between two threads on a large map.

    The filter is separable: a 1-d correlation down the columns, then one along the rows of
    that result, each line on its own (scipy's ``gaussian_filter`` runs exactly these two
    ``gaussian_filter1d`` passes). Cutting a pass's lines into two blocks, columns for the
    first and rows for the second, computes every line as the whole pass does, and scipy's
    filter releases the GIL, so two blocks run at once (on one CPU, in turn: the same bits). On
    a 0.25 km theatre (2.9 million cells) the two textures' filters were most of a cold
    terrain build."""
    from scipy.ndimage import gaussian_filter, gaussian_filter1d  # heavy: maps with a texture

    if noise.ndim != 2 or noise.size < SPLIT_SMOOTHING_MIN_CELLS:
        return gaussian_filter(noise, sigma, mode="reflect")
    from concurrent.futures import ThreadPoolExecutor  # (12 ms of imports: large maps only)

    rows, cols = noise.shape
    out = np.empty_like(noise)
    down = [np.s_[:, :cols // 2], np.s_[:, cols // 2:]]
    across = [np.s_[:rows // 2], np.s_[rows // 2:]]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda b: gaussian_filter1d(noise[b], sigma, 0, output=out[b],
                                                  mode="reflect"), down))
        list(pool.map(lambda b: gaussian_filter1d(out[b], sigma, 1, output=out[b],
                                                  mode="reflect"), across))
    return out


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
        u, v = grid_uv(g, lat, lon)
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
        tex = self.spec.texture
        sigma = max(tex.scale_km / (2.0 * self.grid.cell_km), 0.5)
        for k, (fraction, ground) in enumerate(
                ((tex.rugged_fraction, Ground.RUGGED), (tex.sand_fraction, Ground.SAND))):
            if fraction <= 0:
                continue
            rng = np.random.default_rng([tex.seed, _stable_int("texture", k) % 2**32])
            noise = smooth_noise(rng.standard_normal(self.grid.shape), sigma)
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
        return grid_uv(self.grid, ll[:, 0], ll[:, 1])

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
                # only cells in the river's bounding box, widened by its half width, can be
                # that close: the rest of the map is never measured
                half = river.width_km / 2.0
                near = ((self.cx >= xs.min() - half) & (self.cx <= xs.max() + half)
                        & (self.cy >= ys.min() - half) & (self.cy <= ys.max() + half))
                dist, _ = polyline_distance(self.cx[near], self.cy[near], xs, ys)
                mask[near] |= dist <= half
            self.ground[mask] = Ground.RIVER
            self.areas[river.name] = read_only(mask)
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
                           cells=read_only(cells.astype(np.int32)))

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
                            cells=read_only(cells))

    def apply_borders(self) -> tuple[list[BorderInfo], np.ndarray]:
        infos: list[BorderInfo] = []
        sides = np.ones((len(self.spec.borders), *self.grid.shape), np.int8)
        for i, b in enumerate(self.spec.borders):
            path = f"borders[{i}]"
            u, v = self.polyline_uv(b.points, f"{path}.points")
            k = self.grid.cell_km
            xs, ys = u * k - self.grid.width_km / 2.0, self.grid.height_km / 2.0 - v * k
            _, side = polyline_distance(self.cx, self.cy, xs, ys)
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

