"""Routes: road routing on the graph, cost-distance fields, next hops and barred zones."""

from __future__ import annotations

import csv
import gc
import math
import weakref
from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.errors import NoRouteError
from sim.scenario.loading import load_scenario
from sim.scenario.map import MapSpec
from sim.world import cache as T
from sim.world.cache import build_terrain
from sim.world.geo import haversine_km
from sim.world.raster import DEFAULT_CONFIG, Ground
from sim.world.routes import Router, grid_graph, router_for

DATA = Path(__file__).parent / "data" / "geo"
REPO = Path(__file__).resolve().parents[1]
REF = yaml.safe_load((DATA / "reference_distances.yaml").read_text())


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BADIA_CACHE_DIR", str(tmp_path / "cache"))
    T.clear_memory_cache()


def ascii_map(rows: list[str], cell_km: float = 0.5, **extra) -> MapSpec:
    legend = {".": {"ground": "flat"}}
    doc = {"cell_km": cell_km, "centre": {"lat": 34.5, "lon": 38.5}, "ascii": "\n".join(rows),
           "legend": legend}
    if any("Z" in r for r in rows):
        legend["Z"] = {"ground": "flat", "zone": "Box zone"}
        doc["zones"] = [{"name": "Box zone", "barred": ["government"]}]
    doc.update(extra)
    return MapSpec.model_validate(doc)


def octile_km(dr: np.ndarray, dc: np.ndarray, cell_km: float) -> np.ndarray:
    a, b = np.abs(dr), np.abs(dc)
    return cell_km * (np.maximum(a, b) + (math.sqrt(2) - 1) * np.minimum(a, b))


# =============================================================================================
# Cost fields and next hops
# =============================================================================================


@pytest.fixture(scope="module")
def flat():
    return build_terrain(ascii_map(["." * 31] * 21), "flat", cache=False)


def test_cost_field_on_uniform_flat_ground_is_octile_distance(flat):
    router = Router(flat)
    target = (7, 20)
    cost = router.cost_field(target, "foot")
    assert cost.shape == flat.shape and cost.dtype == np.float32
    rr, cc = np.indices(flat.shape)
    v_off = DEFAULT_CONFIG.reference_speed_kmh["foot"][1]
    hours_per_km = DEFAULT_CONFIG.foot_ground_factor["flat"] / v_off
    expected = octile_km(rr - target[0], cc - target[1], 0.5) * hours_per_km
    np.testing.assert_allclose(cost, expected, rtol=1e-6, atol=1e-7)
    assert cost[target] == 0


def test_next_hop_descends_the_cost_field_to_the_target(flat):
    router = Router(flat)
    target = flat.grid.flat(3, 4)
    hop = router.next_hop((3, 4), "offroad")
    cost = router.cost_field((3, 4), "offroad").ravel()
    assert hop.dtype == np.int32 and hop.shape == (flat.grid.size,)
    assert hop[target] == target
    others = np.arange(flat.grid.size) != target
    # every step goes to an 8-neighbour and strictly lowers the remaining cost
    r, c = np.divmod(np.arange(flat.grid.size), flat.cols)
    hr, hc = np.divmod(hop, flat.cols)
    assert (np.maximum(np.abs(hr - r), np.abs(hc - c))[others] == 1).all()
    assert (cost[hop[others]] < cost[others]).all()
    path = router.path_cells((20, 30), (3, 4), "offroad")
    assert tuple(path[0]) == (20, 30) and tuple(path[-1]) == (3, 4)
    # octile path: max(17, 26) steps
    assert len(path) == 27


def test_grid_graph_has_every_8_neighbour_edge_and_is_symmetric():
    h = np.ones((5, 7), np.float32)
    g = grid_graph(h, 2.0)
    rows, cols = h.shape
    assert g.nnz == 2 * (rows * (cols - 1) + cols * (rows - 1)) + 4 * (rows - 1) * (cols - 1)
    assert abs(g - g.T).max() == 0
    assert g[0, 1] == pytest.approx(2.0) and g[0, cols + 1] == pytest.approx(2.0 * math.sqrt(2))
    h[2, 3] = np.inf   # an impassable cell has no edges at all
    g = grid_graph(h, 2.0)
    k = 2 * cols + 3
    assert g[k].nnz == 0 and g[:, k].nnz == 0
    assert (grid_graph(h, 2.0, reverse=True) != g.T).nnz == 0


ZONE_ROWS = (["." * 25] * 8 + ["........" + "Z" * 9 + "........"] * 9 + ["." * 25] * 8)


@pytest.fixture(scope="module")
def zoned():
    return build_terrain(ascii_map(ZONE_ROWS), "zoned", cache=False)


def test_barred_faction_cannot_reach_or_enter_zone_cells(zoned):
    t = zoned
    router = Router(t)
    barred = t.barred_zones("government")
    assert barred == frozenset({0})
    in_zone = (t.zone == 0).ravel()
    for mobility in ("foot", "offroad"):
        cost = router.cost_field((12, 2), mobility, barred).ravel()
        hop = router.next_hop((12, 2), mobility, barred)
        assert np.isinf(cost[in_zone]).all() and (hop[in_zone] == -1).all()
        assert np.isfinite(cost[~in_zone]).all()
        valid = hop >= 0
        assert not in_zone[hop[valid]].any()       # no next hop leads into the zone
        # a target inside the zone is unreachable from everywhere else
        inside = router.cost_field((12, 12), mobility, barred).ravel()
        assert np.isinf(np.delete(inside, t.grid.flat(12, 12))).all()
        # other factions use the zone like any ground
        free = router.cost_field((12, 2), mobility, frozenset()).ravel()
        assert np.isfinite(free).all()


def test_barred_path_between_points_outside_goes_around_the_zone(zoned):
    t = zoned
    router = Router(t)
    barred = t.barred_zones("government")
    around = router.path_cells((12, 2), (12, 22), "foot", barred)
    through = router.path_cells((12, 2), (12, 22), "foot")
    assert len(around) and len(through)
    assert not (t.zone[around[:, 0], around[:, 1]] == 0).any()
    assert (t.zone[through[:, 0], through[:, 1]] == 0).any()
    assert len(through) == 21             # straight along row 12
    c_around = router.cost_field((12, 22), "foot", barred)[12, 2]
    c_through = router.cost_field((12, 22), "foot")[12, 2]
    assert c_around > c_through
    # the detour clears the 9-row zone: it must climb to row 7 or drop to row 17
    assert around[:, 0].min() <= 7 or around[:, 0].max() >= 17


def test_river_crossed_by_vehicles_only_on_a_bridge():
    t = build_terrain(MapSpec.model_validate(yaml.safe_load(
        (DATA / "box_small.yaml").read_text())), "box", cache=False)
    router = Router(t)
    west, east = t.grid.cell_of(34.80, 38.30), t.grid.cell_of(34.80, 38.55)
    path = router.path_cells(west, east, "offroad")
    assert len(path)
    river = t.ground[path[:, 0], path[:, 1]] == Ground.RIVER
    assert river.any() and (t.road[path[:, 0], path[:, 1]][river] > 0).all()
    foot = router.path_cells(west, east, "foot")
    assert len(foot) and (t.ground[foot[:, 0], foot[:, 1]] == Ground.RIVER).any()


def test_road_mobility_stays_on_roads():
    t = build_terrain(MapSpec.model_validate(yaml.safe_load(
        (DATA / "box_small.yaml").read_text())), "box", cache=False)
    router = Router(t)
    cost = router.cost_field(t.place_cell("Al-Sukhnah"), "road")
    np.testing.assert_array_equal(np.isfinite(cost), t.road > 0)
    path = router.path_cells(t.place_cell("Palmyra"), t.place_cell("Al-Sukhnah"), "road")
    assert (t.road[path[:, 0], path[:, 1]] > 0).all()
    assert len(router.path_cells((0, 0), t.place_cell("Palmyra"), "road")) == 0


def test_field_cache_returns_the_identical_arrays_and_is_bounded(flat):
    router = Router(flat, field_cache_bytes=2 * 8 * flat.grid.size)    # two whole fields
    a = router.next_hop((1, 1), "foot")
    assert router.next_hop((1, 1), "foot", frozenset()) is a
    assert router.dijkstra_runs == 1
    router.next_hop((1, 1), "offroad")
    router.next_hop((2, 2), "foot")      # evicts the least recently used, (1, 1) foot
    assert router.dijkstra_runs == 3
    assert router.next_hop((1, 1), "foot") is not a
    assert router.dijkstra_runs == 4
    with pytest.raises(ValueError):
        a[0] = 5           # shared arrays are read-only


def test_router_for_is_one_router_per_terrain_kept_with_the_terrain(flat):
    router = router_for(flat)
    assert isinstance(router, Router) and router.terrain is flat
    assert router_for(flat) is router
    other = build_terrain(ascii_map(["..", ".."]), "other", cache=False)
    assert router_for(other) is not router
    # the terrain keeps its router, not the other way round: both go when the terrain goes
    gone = weakref.ref(other)
    del other
    gc.collect()
    assert gone() is None


def test_hours_per_km_is_cached_on_the_router(flat):
    router = Router(flat)
    h = router.hours_per_km("foot")
    assert router.hours_per_km("foot", frozenset()) is h and not h.flags.writeable
    assert router.hours_per_km("offroad") is not h


def test_bad_targets_and_mobilities_are_rejected(flat):
    router = Router(flat)
    with pytest.raises(ValueError, match="mobility"):
        router.cost_field((1, 1), "camel")
    with pytest.raises(ValueError, match="outside"):
        router.cost_field((99, 1), "foot")


# =============================================================================================
# Road routes
# =============================================================================================


def _is_8_connected_chain(cells: np.ndarray) -> bool:
    return bool((np.abs(np.diff(cells, axis=0)).max(axis=1) == 1).all())


def test_road_route_length_is_the_sum_of_its_edges():
    t = build_terrain(MapSpec.model_validate(yaml.safe_load(
        (DATA / "box_small.yaml").read_text())), "box", cache=False)
    router = Router(t)
    route = router.road_route("Palmyra", "T3")
    assert route.nodes == ["Palmyra", "Arak", "T3"]
    assert route.roads == ["M20", "T3 track"]
    p = {n: (t.places[n].lat, t.places[n].lon) for n in route.nodes}
    expected = haversine_km(*p["Palmyra"], *p["Arak"]) + haversine_km(*p["Arak"], *p["T3"])
    assert route.length_km == pytest.approx(expected, rel=1e-12)
    assert tuple(route.cells[0]) == t.place_cell("Palmyra")
    assert tuple(route.cells[-1]) == t.place_cell("T3")
    assert _is_8_connected_chain(route.cells)
    assert (t.road[route.cells[:, 0], route.cells[:, 1]] > 0).all()
    back = router.road_route("T3", "Palmyra")
    assert back.length_km == pytest.approx(route.length_km)
    np.testing.assert_array_equal(back.cells[::-1], route.cells)
    # a [lat, lon] point snaps to the nearest road node
    assert router.road_route((34.401, 38.799), "T3").nodes[0] == "34.4000,38.8000"
    assert router.road_route("Arak", "Arak").length_km == 0.0


def test_road_route_errors():
    t = build_terrain(MapSpec.model_validate(yaml.safe_load(
        (DATA / "box_small.yaml").read_text())), "box", cache=False)
    router = Router(t)
    with pytest.raises(NoRouteError, match="not on the road network"):
        router.road_route("Palmyra", "Palmira")
    with pytest.raises(NoRouteError, match="no road route"):
        router.road_route("Palmyra", "Gate")      # Gate is a node but no road reaches it


def _places() -> dict[str, tuple[float, float]]:
    with open(DATA / "badia_places.csv", newline="") as f:
        return {r["name"]: (float(r["lat"]), float(r["lon"])) for r in csv.DictReader(f)}


@pytest.mark.parametrize("route_name", sorted(REF["route_lengths_km"]))
def test_published_route_lengths_are_reproduced(route_name):
    ref = REF["route_lengths_km"][route_name]
    coords = _places()
    names = [v for v in ref["via"] if isinstance(v, str)]
    box = REF["theatre_box"]
    doc = {
        "cell_km": 1.0, "box": box,
        "places": [{"name": n, "kind": "landmark", "lat": coords[n][0], "lon": coords[n][1]}
                   for n in names],
        "roads": [{"name": route_name, "class": "highway", "via": ref["via"]}],
    }
    t = build_terrain(MapSpec.model_validate(doc), "ref", cache=False)
    route = Router(t).road_route(names[0], names[-1])
    assert route.length_km == pytest.approx(ref["length_km"], abs=0.1)
    assert route.roads == [route_name]


def test_bundled_theatre_routes_and_zone():
    scenario = load_scenario(REPO / "scenarios" / "badia_theatre.yaml")
    t = build_terrain(scenario.map, "badia_theatre.yaml")
    router = Router(t)
    route = router.road_route("Palmyra", "Deir ez-Zor")
    assert route.length_km == pytest.approx(
        REF["route_lengths_km"]["palmyra_deir_ez_zor"]["length_km"], abs=0.1)
    barred = t.barred_zones("government")
    assert barred
    cost = router.cost_field(t.place_cell("Palmyra"), "offroad", barred)
    zone = np.isin(t.zone, sorted(barred))
    assert np.isinf(cost[zone]).all()
    assert np.isfinite(router.cost_field(t.place_cell("Palmyra"), "offroad")[zone]).mean() > 0.9
