"""Terrain layers: ASCII legend cell by cell, geographic features, derived layers, caching."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from sim.errors import ScenarioError, TerrainError
from sim.scenario.map import MapSpec
from sim.scenario.vocab import MOBILITIES
from sim.world import cache as T
from sim.world.cache import build_terrain
from sim.world.geo import haversine_km
from sim.world.geometry import line_cells, supercover
from sim.world.raster import (
    DEFAULT_CONFIG,
    GROUND_NAMES,
    Ground,
    Road,
    TerrainConfig,
    Water,
    derive_layers,
    hours_per_cell,
    shared_hours_per_cell,
)

DATA = Path(__file__).parent / "data" / "geo"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets its own disk cache folder and an empty in-process cache."""
    monkeypatch.setenv("BADIA_CACHE_DIR", str(tmp_path / "cache"))
    T.clear_memory_cache()
    yield
    T.clear_memory_cache()


def load_map(name: str, **changes) -> MapSpec:
    doc = yaml.safe_load((DATA / f"{name}.yaml").read_text())
    doc.update(changes)
    return MapSpec.model_validate(doc)


ASCII = yaml.safe_load((DATA / "ascii_layers.yaml").read_text())
CHARS = np.array([list(r) for r in ASCII["ascii"].strip("\n").split("\n")])


def chars_in(s: str) -> np.ndarray:
    return np.isin(CHARS, list(s))


# =============================================================================================
# ASCII map, every layer cell by cell
# =============================================================================================


@pytest.fixture(scope="module")
def ascii_terrain():
    T.clear_memory_cache()
    return build_terrain(load_map("ascii_layers"), "ascii_layers.yaml", cache=False)


def test_ascii_grid_shape_and_centre(ascii_terrain):
    t = ascii_terrain
    assert t.shape == (7, 10) and t.rows == 7 and t.cols == 10 and t.cell_km == 0.5
    assert t.grid.centre_lat == 34.52 and t.grid.centre_lon == 38.70


def test_ascii_ground_layer(ascii_terrain):
    expected = np.full(CHARS.shape, Ground.FLAT)
    expected[chars_in("^C")] = Ground.RUGGED
    expected[chars_in("~")] = Ground.RIVER
    expected[chars_in("O")] = Ground.IRRIGATED
    np.testing.assert_array_equal(ascii_terrain.ground, expected)
    assert ascii_terrain.ground.dtype == np.uint8


def test_ascii_road_layer(ascii_terrain):
    expected = np.zeros(CHARS.shape, int)
    expected[chars_in("=")] = Road.HIGHWAY
    expected[chars_in("-")] = Road.TRACK
    np.testing.assert_array_equal(ascii_terrain.road, expected)


def test_ascii_town_water_cave_layers(ascii_terrain):
    t = ascii_terrain
    arak = t.place_names.index("Arak")
    np.testing.assert_array_equal(t.town, np.where(chars_in("T"), arak, -1))
    water = np.zeros(CHARS.shape, int)
    water[chars_in("~")] = Water.RIVER
    water[chars_in("T")] = Water.TOWN
    water[chars_in("O")] = Water.OASIS
    water[chars_in("w")] = Water.WELL
    np.testing.assert_array_equal(t.water, water)
    np.testing.assert_array_equal(t.water_available, water > 0)
    np.testing.assert_array_equal(t.cave, chars_in("C"))


def test_ascii_border_crossing_zone_layers(ascii_terrain):
    t = ascii_terrain
    np.testing.assert_array_equal(t.border, np.where(chars_in("BX"), 0, -1))
    np.testing.assert_array_equal(t.crossing, chars_in("X"))
    np.testing.assert_array_equal(t.zone, np.where(chars_in("Z"), 0, -1))
    assert t.zones[0].name == "Z1"
    assert t.zones[0].barred == frozenset({"government"})
    assert t.zones[0].guarded_by == "coalition"
    assert t.barred_zones("government") == frozenset({0})
    assert t.barred_zones("insurgents") == frozenset()


def test_ascii_border_side_from_the_polyline(ascii_terrain):
    # the line runs west -> east between rows 5 and 6: rows 0-5 lie left (north) of it, +1,
    # including cells beyond the line's ends (it stops short of both map edges)
    side = ascii_terrain.border_side
    assert side.shape == (1, 7, 10) and side.dtype == np.int8
    expected = np.ones((7, 10), int)
    expected[6] = -1
    np.testing.assert_array_equal(side[0], expected)
    assert ascii_terrain.borders[0].sides == ("North", "South")


def test_ascii_places_and_road_graph(ascii_terrain):
    t = ascii_terrain
    assert t.place_cell("Arak") == (2, 4) and t.place_cell("Post") == (1, 6)
    g = t.road_graph
    # one node per road cell, plus Arak beside the road (Post sits on a road cell)
    assert g.number_of_nodes() == int((CHARS == "=").sum() + (CHARS == "-").sum()) + 1
    assert g.nodes["Post"]["cell"] == (1, 6)
    assert {tuple(g.nodes[n]["cell"]) for n in g.neighbors("Arak")} == {(1, 3), (1, 4), (1, 5)}
    # the L-turn at (1,2)-(2,2) is joined orthogonally, without a diagonal shortcut
    key = {tuple(d["cell"]): n for n, d in g.nodes(data=True)}
    assert not g.has_edge(key[(1, 3)], key[(2, 2)])
    assert g.has_edge(key[(1, 2)], key[(2, 2)])
    # highway and track meet diagonally at (1,6)-(2,7): a track-class edge
    assert g.edges[key[(1, 6)], key[(2, 7)]]["cls"] == "track"
    for a, b, d in g.edges(data=True):
        na, nb = g.nodes[a], g.nodes[b]
        assert d["length_km"] == pytest.approx(haversine_km(na["lat"], na["lon"], nb["lat"],
                                                            nb["lon"]))


def _expected_factor(by_ground: dict, by_road: dict | None) -> np.ndarray:
    ground_of = {".": "flat", "^": "rugged", "C": "rugged", "~": "river", "O": "irrigated",
                 "w": "flat", "T": "flat", "B": "flat", "X": "flat", "Z": "flat"}
    road_of = {"=": "highway", "-": "track"}
    out = np.zeros(CHARS.shape)
    for (r, c), ch in np.ndenumerate(CHARS):
        if ch in road_of:
            out[r, c] = by_road[road_of[ch]] if by_road is not None else math.inf
        else:
            out[r, c] = by_ground[ground_of[ch]] if by_ground is not None else math.inf
    return out.astype(np.float32)


def test_ascii_move_cost_per_mobility(ascii_terrain):
    cfg = DEFAULT_CONFIG
    mc = ascii_terrain.move_cost
    np.testing.assert_array_equal(
        mc["foot"], _expected_factor(cfg.foot_ground_factor, cfg.foot_road_factor))
    np.testing.assert_array_equal(
        mc["offroad"], _expected_factor(cfg.vehicle_ground_factor, cfg.vehicle_road_factor))
    np.testing.assert_array_equal(mc["road"], _expected_factor(None, cfg.vehicle_road_factor))
    # rivers: impassable to vehicles except the bridge (3, 2); fordable on foot, slowly
    assert np.isinf(mc["offroad"][3, 0]) and np.isfinite(mc["offroad"][3, 2])
    assert mc["foot"][3, 0] > 2 * mc["foot"][4, 0]
    assert all(m.dtype == np.float32 for m in mc.values())


def test_ascii_concealment(ascii_terrain):
    cfg = DEFAULT_CONFIG
    gc = cfg.ground_concealment
    expected = _expected_factor(gc, {"highway": cfg.road_concealment,
                                     "track": cfg.road_concealment})
    expected[chars_in("T")] = max(gc["flat"], cfg.town_concealment)
    expected[chars_in("C")] = cfg.cave_concealment
    np.testing.assert_allclose(ascii_terrain.concealment, expected, rtol=1e-6)
    assert ascii_terrain.concealment.max() <= 0.9


def test_hours_per_cell_compiled_is_numpys_float32_bit_for_bit(monkeypatch):
    """The one-pass kernel gives numpy's float32 hours in every cell: random costs (with
    impassable and NaN cells), road classes, cell sizes and speeds (zero ones too)."""
    import sim.world.raster as raster
    from sim import compiled

    monkeypatch.setattr(raster, "COMPILED_LAYER_CELLS", 1)  # the test's small layers too
    rng = np.random.default_rng(8)
    for trial in range(12):
        shape = (int(rng.integers(1, 200)), int(rng.integers(1, 300)))
        cost = rng.uniform(0.1, 10.0, shape).astype(np.float32)
        cost[rng.random(shape) < 0.05] = np.inf
        cost[rng.random(shape) < 0.01] = np.nan
        t = SimpleNamespace(road=rng.integers(0, 4, shape).astype(np.uint8),
                            move_cost={"foot": cost},
                            cell_km=float(rng.choice([0.1, 0.25, 0.3, 1.0])))
        speeds = (float(rng.uniform(1, 90)), float(rng.uniform(1, 90)))
        if trial % 4 == 0:
            speeds = (speeds[0], 0.0) if trial % 8 else (0.0, speeds[1])
        monkeypatch.setenv(compiled.ENV_KERNELS, "numpy")
        want = hours_per_cell(t, "foot", *speeds)
        monkeypatch.setenv(compiled.ENV_KERNELS, "numba")
        got = hours_per_cell(t, "foot", *speeds)
        assert got.dtype == want.dtype == np.float32 and got.shape == shape
        assert got.tobytes() == want.tobytes()


def test_hours_per_cell_uses_road_speed_on_roads_only(ascii_terrain):
    t = ascii_terrain
    h = hours_per_cell(t, "offroad", 60.0, 30.0)
    cfg = DEFAULT_CONFIG
    # highway cell: 0.5 km at 60 km/h; rugged cell: 0.5 km * 4 / 30 km/h
    assert h[1, 3] == pytest.approx(0.5 * cfg.vehicle_road_factor["highway"] / 60.0)
    assert h[2, 7] == pytest.approx(0.5 * cfg.vehicle_road_factor["track"] / 60.0)
    assert h[0, 4] == pytest.approx(0.5 * cfg.vehicle_ground_factor["rugged"] / 30.0)
    assert np.isinf(h[3, 0])
    road_only = hours_per_cell(t, "road", 60.0, 30.0)
    assert np.isinf(road_only[0, 0]) and np.isfinite(road_only[1, 3])
    foot = hours_per_cell(t, "foot", 5.0, 4.0)
    assert foot[0, 0] == pytest.approx(0.5 / 4.0) and foot[1, 3] == pytest.approx(0.5 / 5.0)
    assert np.isinf(hours_per_cell(t, "offroad", 60.0, 0.0)[0, 0])
    with pytest.raises(ValueError, match="mobility"):
        hours_per_cell(t, "boat", 1.0, 1.0)


def test_shared_hours_per_cell_is_the_layer_computed_once_per_terrain_and_speeds(ascii_terrain):
    t = ascii_terrain
    shared = shared_hours_per_cell(t, "offroad", 60.0, 30.0)
    np.testing.assert_array_equal(shared, hours_per_cell(t, "offroad", 60.0, 30.0).ravel())
    assert shared_hours_per_cell(t, "offroad", 60.0, 30.0) is shared
    assert shared_hours_per_cell(t, "offroad", 60.0, 25.0) is not shared
    with pytest.raises(ValueError):
        shared[0] = 1.0         # every model on the terrain reads it


def test_move_cost_layers_follow_the_vocabulary_mobilities(ascii_terrain):
    assert tuple(ascii_terrain.move_cost) == MOBILITIES


def test_flat_and_rc_convert_cell_indices_like_the_grid(ascii_terrain):
    t = ascii_terrain
    assert t.flat(2, 3) == 23 == t.grid.flat(2, 3) and type(t.flat(np.int32(2), 3)) is int
    assert t.rc(23) == (2, 3) == t.grid.unflat(23) and t.rc(np.int64(23)) == (2, 3)
    rr, cc = np.indices(t.shape)
    flat = t.flat(rr.ravel().astype(np.int32), cc.ravel())
    assert flat.dtype == np.int64
    np.testing.assert_array_equal(flat, np.arange(t.grid.size))
    r, c = t.rc(flat.astype(np.int32))
    assert r.dtype == c.dtype == np.int64
    np.testing.assert_array_equal(r, rr.ravel())
    np.testing.assert_array_equal(c, cc.ravel())


def test_layers_are_read_only(ascii_terrain):
    with pytest.raises(ValueError):
        ascii_terrain.ground[0, 0] = 3
    with pytest.raises(ValueError):
        ascii_terrain.move_cost["foot"][0, 0] = 0.0


# =============================================================================================
# Geographic map
# =============================================================================================


@pytest.fixture(scope="module")
def box_terrain():
    T.clear_memory_cache()
    return build_terrain(load_map("box_small"), "box_small.yaml", cache=False)


def test_box_places_sit_in_their_cells(box_terrain):
    t = box_terrain
    for name, p in t.places.items():
        assert t.grid.cell_of(p.lat, p.lon) == p.cell, name


def test_town_disc_area_matches_radius(box_terrain):
    t = box_terrain
    palmyra = t.town_mask("Palmyra").sum()
    # a 2 km disc on 1 km cells: pi * 4 = 12.6 cells, within the cell-rounding of a disc
    assert abs(palmyra - math.pi * 2.0 ** 2) <= 4
    assert t.town[t.place_cell("Palmyra")] == t.place_names.index("Palmyra")
    assert t.town[t.place_cell("T3")] == -1          # a station is no settlement
    assert (t.water[t.town >= 0] != Water.NONE).all()


def test_oases_and_wells(box_terrain):
    t = box_terrain
    for name in ("Palmyra", "Arak", "Al-Sukhnah"):
        r, c = t.place_cell(name)
        assert t.water[r, c] == Water.OASIS and t.ground[r, c] == Ground.IRRIGATED
        assert t.places[name].water == Water.OASIS
    assert t.water[t.place_cell("Efqa well")] == Water.WELL
    assert t.places["Efqa well"].water == Water.WELL


def _is_8_connected_chain(cells: np.ndarray) -> bool:
    step = np.abs(np.diff(cells, axis=0))
    return bool((step.max(axis=1) == 1).all())


def test_roads_rasterised_between_waypoints(box_terrain):
    t = box_terrain
    g = t.road_graph
    for a, b, d in g.edges(data=True):
        cells = d["cells"]
        assert _is_8_connected_chain(cells), (a, b)
        assert {tuple(cells[0]), tuple(cells[-1])} == {g.nodes[a]["cell"], g.nodes[b]["cell"]}
        assert (t.road[cells[:, 0], cells[:, 1]] >= (2 if d["cls"] == "highway" else 1)).all()
        na, nb = g.nodes[a], g.nodes[b]
        assert d["length_km"] == pytest.approx(
            haversine_km(na["lat"], na["lon"], nb["lat"], nb["lon"]))
    assert g.edges["Palmyra", "Arak"]["road"] == "M20"
    assert g.edges["Palmyra", "Arak"]["cls"] == "highway"
    assert "34.4000,38.8000" in g   # a [lat, lon] waypoint keyed by its coordinates
    # every road cell belongs to some edge
    on_edges = np.zeros(t.shape, bool)
    for *_, d in g.edges(data=True):
        on_edges[d["cells"][:, 0], d["cells"][:, 1]] = True
    np.testing.assert_array_equal(on_edges, t.road > 0)


def test_river_is_4_connected_and_bridged_by_the_road(box_terrain):
    t = box_terrain
    river = t.ground == Ground.RIVER
    # no two river cells touch only diagonally without a shared orthogonal river cell
    diag = river[:-1, :-1] & river[1:, 1:] & ~river[:-1, 1:] & ~river[1:, :-1]
    anti = river[:-1, 1:] & river[1:, :-1] & ~river[:-1, :-1] & ~river[1:, 1:]
    assert not diag.any() and not anti.any()
    # the river runs from the box's north edge to its south edge: top row to bottom row
    rows = np.nonzero(river)[0]
    assert rows.min() == 0 and rows.max() == t.rows - 1
    bridge = river & (t.road > 0)
    assert bridge.sum() >= 1
    assert np.isfinite(t.move_cost["offroad"][bridge]).all()
    assert np.isinf(t.move_cost["offroad"][river & (t.road == 0)]).all()
    assert (t.water[river] == Water.RIVER).all()


def test_border_cells_sides_and_crossing(box_terrain):
    t = box_terrain
    b = t.borders[0]
    border = t.border == 0
    assert border.sum() > 60
    lat0, lon0 = b.points[0]
    lat1, lon1 = b.points[1]
    rr, cc = np.indices(t.shape)
    lat, lon = t.grid.latlon_of(rr, cc)
    # an independent side test in a local equirectangular frame: cross product sign
    k = math.cos(math.radians(34.6))
    cross = (lon1 - lon0) * k * (lat - lat0) - (lat1 - lat0) * (lon - lon0) * k
    clear = np.abs(cross) > 0.02      # away from the line, where frames can't disagree
    np.testing.assert_array_equal(t.border_side[0][clear], np.where(cross[clear] > 0, 1, -1))
    # West (sides[0]) is the left of a line heading north-north-east
    assert t.border_side[0][t.place_cell("Palmyra")] == 1
    # the crossing gate: the Gate's own cell plus the border cells nearest it
    gate = t.place_cell("Gate")
    assert t.crossing[gate]
    gate_border = np.argwhere(t.crossing & border)
    # a 3 x 3 block at most (the border is a 4-connected staircase of cells)
    assert 1 <= len(gate_border) <= 5
    assert np.ptp(gate_border, axis=0).max() <= 2
    on_line = np.argwhere(border)
    nearest = np.abs(on_line - np.array(gate)).max(axis=1).min()
    reach = np.abs(gate_border - np.array(gate)).max(axis=1)
    assert reach.min() == nearest and reach.max() <= nearest + 2


def test_areas_polygon_circle_box_region(box_terrain):
    t = box_terrain
    ridge = t.areas["Ridge"]
    assert (t.ground[ridge] == Ground.RUGGED).all()
    # ~ 0.1 x 0.25 deg parallelogram; its cells fill the polygon's area (shoelace, km^2)
    pts = np.array([[34.75, 38.05], [34.85, 38.30], [34.78, 38.33], [34.68, 38.08]])
    x, y = t.grid.xy_km(pts[:, 0], pts[:, 1])
    area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    assert abs(ridge.sum() - area) < 0.1 * area
    dunes = t.areas["Dunes"]
    assert abs(dunes.sum() - math.pi * 25) < 0.1 * math.pi * 25
    assert (t.ground[dunes & (t.road == 0)] == Ground.SAND).all()
    wadi = t.areas["Wadi box"]
    rr, cc = np.nonzero(wadi)
    lat, lon = t.grid.latlon_of(rr, cc)
    assert ((lat >= 34.32) & (lat <= 34.36) & (lon >= 38.50) & (lon <= 38.60)).all()
    assert (t.ground[wadi] == Ground.WADI).all() and wadi.sum() >= 30
    assert t.area_kinds["Sweep area"] == "region" and t.areas["Sweep area"].sum() > 50


def test_caves_scattered_within_their_area_reproducibly(box_terrain):
    t = box_terrain
    caves = t.areas["Ridge caves"]
    assert caves.sum() == 12
    assert (t.areas["Ridge"][caves]).all()
    assert t.cave[caves].all() and t.cave[t.place_cell("Efqa well")] == 0
    assert t.areas["Lone cave"].sum() == 1 and t.cave[t.grid.cell_of(34.40, 38.10)]
    assert t.cave.sum() == 13
    # the scatter depends on the seed and the area's name, not on the process
    again = build_terrain(load_map("box_small"), "x", cache=False)
    np.testing.assert_array_equal(again.areas["Ridge caves"], caves)
    doc = yaml.safe_load((DATA / "box_small.yaml").read_text())
    doc["areas"][3]["name"] = "Other caves"
    other = build_terrain(MapSpec.model_validate(doc), "x", cache=False)
    assert not np.array_equal(other.areas["Other caves"], caves)


def test_cave_scatter_is_the_same_in_a_fresh_process(box_terrain):
    code = (
        "import yaml, numpy as np; from sim.scenario.map import MapSpec;"
        "from sim.world.cache import build_terrain;"
        f"m = MapSpec.model_validate(yaml.safe_load(open({str(DATA / 'box_small.yaml')!r})));"
        "t = build_terrain(m, 'x', cache=False);"
        "print(np.flatnonzero(t.areas['Ridge caves']).tolist())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True, env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert json.loads(out.stdout) == np.flatnonzero(box_terrain.areas["Ridge caves"]).tolist()


def test_texture_fractions_and_seed():
    doc = yaml.safe_load((DATA / "box_small.yaml").read_text())
    doc.update(places=[], roads=[], rivers=[], borders=[], areas=[], zones=[],
               texture={"seed": 5, "sand_fraction": 0.2, "rugged_fraction": 0.1,
                        "scale_km": 8})
    t = build_terrain(MapSpec.model_validate(doc), "x", cache=False)
    n = t.ground.size
    assert (t.ground == Ground.RUGGED).sum() / n == pytest.approx(0.1, abs=0.005)
    # sand is laid after rugged and does not replace it, so it may fall short a little
    assert 0.17 <= (t.ground == Ground.SAND).sum() / n <= 0.2 + 0.005
    # patches, not speckle: most sand cells have sand neighbours
    sand = t.ground == Ground.SAND
    neighbours = sand[1:-1, :-2] & sand[1:-1, 2:] & sand[:-2, 1:-1] & sand[2:, 1:-1]
    assert neighbours.sum() > 0.6 * sand[1:-1, 1:-1].sum()
    doc["texture"]["seed"] = 6
    other = build_terrain(MapSpec.model_validate(doc), "x", cache=False)
    assert not np.array_equal(other.ground, t.ground)


def test_zone_circle(box_terrain):
    t = box_terrain
    zone = t.zone == 0
    assert abs(zone.sum() - math.pi * 64) < 0.05 * math.pi * 64
    rr, cc = np.nonzero(zone)
    lat, lon = t.grid.latlon_of(rr, cc)
    assert haversine_km(34.45, 38.62, lat, lon).max() <= 8.0
    assert t.zone_index("Test zone") == 0


def test_too_many_caves_is_a_one_line_error_naming_file_and_field():
    doc = yaml.safe_load((DATA / "box_small.yaml").read_text())
    doc["areas"][3]["count"] = 10_000
    with pytest.raises(ScenarioError) as info:
        build_terrain(MapSpec.model_validate(doc), "scenarios/x.yaml", cache=False)
    assert isinstance(info.value, TerrainError)
    (msg,) = info.value.messages
    assert msg.startswith("scenarios/x.yaml: map.areas[3].count: ") and "\n" not in msg


# =============================================================================================
# Derived layers
# =============================================================================================


def _derived_cell_by_cell(t, cfg: TerrainConfig) -> dict[str, np.ndarray]:
    """move_cost and concealment as first written: the rules applied to whole layers."""
    on_road = t.road > 0
    out = {}
    for mob in MOBILITIES:
        if mob == "foot":
            ground_f, road_f = cfg.foot_ground_factor, cfg.foot_road_factor
        else:
            ground_f, road_f = cfg.vehicle_ground_factor, cfg.vehicle_road_factor
        ground_tab = np.array([ground_f[n] for n in GROUND_NAMES], np.float32)
        if mob == "road":
            ground_tab = np.full_like(ground_tab, np.inf)
        road_tab = np.array([np.inf, road_f["track"], road_f["highway"]], np.float32)
        out[mob] = np.where(on_road, road_tab[t.road], ground_tab[t.ground]).astype(np.float32)
    conc = np.array([cfg.ground_concealment[n] for n in GROUND_NAMES], np.float32)[t.ground]
    conc = np.where(on_road, np.float32(cfg.road_concealment), conc)
    conc = np.where(t.town >= 0, np.maximum(conc, np.float32(cfg.town_concealment)), conc)
    out["concealment"] = np.where(t.cave, np.float32(cfg.cave_concealment), conc).astype(
        np.float32)
    return out


@pytest.mark.parametrize("cfg", [DEFAULT_CONFIG, TerrainConfig(
    road_concealment=0.3, town_concealment=0.05, cave_concealment=0.2,
    foot_road_factor={"highway": 0.7, "track": 0.9})], ids=["default", "odd"])
def test_derived_layers_equal_the_rules_applied_cell_by_cell(cfg):
    rng = np.random.default_rng(7)
    shape = (23, 31)
    t = SimpleNamespace(
        ground=rng.integers(0, len(GROUND_NAMES), shape).astype(np.uint8),
        road=rng.choice(np.array([0, 0, 1, 2], np.uint8), shape),
        town=rng.choice(np.array([-1, -1, 0, 3], np.int16), shape),
        cave=rng.random(shape) < 0.2, water=rng.integers(0, 5, shape).astype(np.uint8),
        config=cfg)
    derive_layers(t)
    want = _derived_cell_by_cell(t, cfg)
    for mob in MOBILITIES:
        assert t.move_cost[mob].dtype == np.float32
        np.testing.assert_array_equal(t.move_cost[mob], want[mob])
    assert t.concealment.dtype == np.float32
    np.testing.assert_array_equal(t.concealment, want["concealment"])
    np.testing.assert_array_equal(t.water_available, t.water > 0)


# =============================================================================================
# Rasterisation helpers
# =============================================================================================


def test_supercover_is_4_connected_and_covers_the_segment():
    rng = np.random.default_rng(0)
    for _ in range(200):
        u0, v0, u1, v1 = rng.uniform(0, 50, 4)
        cells = supercover(u0, v0, u1, v1, (60, 60))
        step = np.abs(np.diff(cells, axis=0)).sum(axis=1)
        assert (step == 1).all()
        assert tuple(cells[0]) == (math.floor(v0), math.floor(u0))
        assert tuple(cells[-1]) == (math.floor(v1), math.floor(u1))
        # every point sampled along the segment falls in one of the cells
        s = np.linspace(0, 1, 500)
        pts = {(math.floor(v0 + t * (v1 - v0)), math.floor(u0 + t * (u1 - u0))) for t in s}
        assert pts <= {tuple(c) for c in cells}


def test_line_cells_is_8_connected_with_exact_ends():
    cells = line_cells((3, 4), (20, -5))
    assert tuple(cells[0]) == (3, 4) and tuple(cells[-1]) == (20, -5)
    assert len(cells) == 18 and _is_8_connected_chain(cells)


# =============================================================================================
# Caching
# =============================================================================================


def _assert_same_terrain(a, b):
    for name in ("ground", "road", "town", "water", "cave", "border", "crossing", "border_side",
                 "zone", "concealment", "water_available"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), name
    for m in a.move_cost:
        assert a.move_cost[m].tobytes() == b.move_cost[m].tobytes()
    assert a.places == b.places and a.zones == b.zones and a.borders == b.borders
    assert a.area_kinds == b.area_kinds and list(a.areas) == list(b.areas)
    for n in a.areas:
        assert np.array_equal(a.areas[n], b.areas[n])
    assert a.grid == b.grid and a.is_ascii == b.is_ascii
    ga, gb = a.road_graph, b.road_graph
    assert dict(ga.nodes(data=True)) == dict(gb.nodes(data=True))
    assert set(map(frozenset, ga.edges)) == set(map(frozenset, gb.edges))
    for u, v, d in ga.edges(data=True):
        e = gb.edges[u, v]
        assert (d["length_km"], d["road"], d["cls"]) == (e["length_km"], e["road"], e["cls"])
        assert np.array_equal(d["cells"], e["cells"])


def test_memory_cache_returns_the_identical_object():
    m = load_map("box_small")
    a = build_terrain(m, "x")
    assert build_terrain(load_map("box_small"), "y") is a
    assert build_terrain(m, "x", cache=False) is not a


def test_disk_cache_round_trips_bit_for_bit(tmp_path):
    m = load_map("box_small")
    built = build_terrain(m, "x")
    path = T.cache_path(built.spec_hash)
    assert path.is_file() and path.parent == tmp_path / "cache"
    T.clear_memory_cache()
    loaded = build_terrain(m, "x")
    assert loaded is not built
    _assert_same_terrain(built, loaded)
    ascii_built = build_terrain(load_map("ascii_layers"), "x")
    T.clear_memory_cache()
    _assert_same_terrain(ascii_built, build_terrain(load_map("ascii_layers"), "x"))


def test_a_changed_spec_misses_the_cache():
    a = build_terrain(load_map("box_small"), "x")
    b = build_terrain(load_map("box_small", cell_km=2.0), "x")
    assert a.spec_hash != b.spec_hash and b.shape != a.shape


def test_corrupt_or_foreign_cache_file_is_ignored_and_rebuilt():
    m = load_map("ascii_layers")
    built = build_terrain(m, "x")
    path = T.cache_path(built.spec_hash)
    for junk in (b"not a zip file", path.read_bytes()[:200]):
        path.write_bytes(junk)
        T.clear_memory_cache()
        again = build_terrain(m, "x")
        _assert_same_terrain(built, again)
        assert T.load_cached(built.spec_hash) is not None   # rewritten, readable
    # a file written for another hash under this name is not trusted
    other = build_terrain(load_map("box_small"), "x")
    path.write_bytes(T.cache_path(other.spec_hash).read_bytes())
    assert T.load_cached(built.spec_hash) is None


def test_cache_dir_defaults_to_the_user_cache_and_honours_env(monkeypatch, tmp_path):
    monkeypatch.delenv("BADIA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert T.cache_dir() == tmp_path / "xdg" / "badia"   # never the package or the checkout
    monkeypatch.setenv("BADIA_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert T.cache_dir() == tmp_path / "elsewhere"


def test_cache_file_holds_no_pickles():
    built = build_terrain(load_map("box_small"), "x")
    with np.load(T.cache_path(built.spec_hash), allow_pickle=False) as z:
        for name in z.files:
            assert z[name].dtype != object


def test_unwritable_cache_folder_only_costs_a_rebuild(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("BADIA_CACHE_DIR", str(blocker))
    t = build_terrain(load_map("ascii_layers"), "x")
    assert t.shape == (7, 10) and blocker.is_file()


def test_config_is_part_of_the_cache_key():
    m = load_map("ascii_layers")
    slow_flat = TerrainConfig(foot_ground_factor={**DEFAULT_CONFIG.foot_ground_factor,
                                                    "flat": 3.0})
    a = build_terrain(m, "x")
    b = build_terrain(m, "x", config=slow_flat)
    assert a.spec_hash != b.spec_hash
    assert b.move_cost["foot"][0, 0] == 3.0 and a.move_cost["foot"][0, 0] == 1.0


@pytest.mark.parametrize("shape", [(1025, 1025), (2049, 513), (1, 1 << 21)])
def test_texture_smoothing_split_between_threads_is_scipys_filter_to_the_bit(shape):
    """`smooth_noise` cuts each pass of the Gaussian filter between two threads on a large map
    (a 0.25 km theatre): the texture, hence the ground layer and every run, must be what
    `scipy.ndimage.gaussian_filter` gives, on any number of CPUs."""
    from scipy.ndimage import gaussian_filter

    from sim.world import build

    noise = np.random.default_rng(shape[0]).standard_normal(shape)
    assert noise.size >= build.SPLIT_SMOOTHING_MIN_CELLS
    for sigma in (0.5, 3.7, 12.0):
        want = gaussian_filter(noise, sigma, mode="reflect")
        assert build.smooth_noise(noise, sigma).tobytes() == want.tobytes()
