"""The speed-ups of the route searches (issue 13) give the searches they replace, to the bit.

Each new rule is checked against the old one kept here or in the library as the reference, on
random layers with the real terrain's few speeds, uniform ground (ties everywhere) and walls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra
from test_bounded_routes import random_hours  # the same random layers

from sim.world.routes import (
    NO_LIMIT_H,
    ROAD_LEVELS,
    TUBE_BLOCK,
    Box,
    CostBound,
    _distinct,
    coarse_hours,
    grid_graph,
    search,
    tube_hours,
    window_graph,
)


@pytest.mark.parametrize("cell_km", [1.0, 0.5, 0.25, 0.3])
def test_window_graph_searches_as_the_grid_graph(cell_km):
    """Searched with a finite limit, the window graph (every cell's 8 edge slots, inf where
    there is no edge) gives the compact grid graph's distances and predecessors exactly: the
    same edges in the same order with the same weights, the infinite ones never taken."""
    rng = np.random.default_rng(int(cell_km * 100))
    for trial in range(60):
        rows, cols = (int(v) for v in rng.integers(1, 30, 2))
        h = random_hours(rng, rows, cols, trial % 3)
        old, new = grid_graph(h, cell_km), window_graph(h, cell_km)
        # the finite weights are the old graph's, cell by cell and in the same order
        finite = np.isfinite(new.data)
        np.testing.assert_array_equal(new.data[finite], old.data)
        np.testing.assert_array_equal(new.indices[finite], old.indices)
        for _ in range(4):
            t = int(rng.integers(rows * cols))
            for limit in (np.inf, float(rng.uniform(0.0, 2.0))):
                d0, p0 = dijkstra(old, directed=True, indices=t, return_predecessors=True,
                                  limit=limit)
                d1, p1 = dijkstra(new, directed=True, indices=t, return_predecessors=True,
                                  limit=min(limit, NO_LIMIT_H))
                np.testing.assert_array_equal(d1, d0)
                np.testing.assert_array_equal(p1, p0)


def test_tube_hours_are_a_routes_hours():
    """`tube_hours` is the cost of a route inside the reference box: never below the
    unbounded search's distance (to the bit), and equal to it up to the order of summing
    where the tube holds a best route (uniform ground)."""
    rng = np.random.default_rng(7)
    found = 0
    for trial in range(80):
        rows, cols = (int(v) for v in rng.integers(5, 60, 2))
        h = random_hours(rng, rows, cols, trial % 3)
        coarse = coarse_hours(h, TUBE_BLOCK)
        whole = Box(0, rows, 0, cols)
        t = (int(rng.integers(rows)), int(rng.integers(cols)))
        exact = search(h, 0.25, whole, t)
        for _ in range(5):
            s = (int(rng.integers(rows)), int(rng.integers(cols)))
            ref = Box(max(0, min(s[0], t[0]) - 3), min(rows, max(s[0], t[0]) + 4),
                      max(0, min(s[1], t[1]) - 3), min(cols, max(s[1], t[1]) + 4))
            for box in (whole, ref):
                tube_h = tube_hours(h, coarse, 0.25, box, s, t)
                inside = search(h, 0.25, box, t)
                d = inside.dist[box.local(*s)]
                if np.isfinite(tube_h):
                    found += 1
                    assert tube_h >= d
                    if trial % 3 == 0:
                        assert tube_h == pytest.approx(d, rel=1e-12)
                if box == whole:
                    assert d == exact.dist[whole.local(*s)]
    assert found > 200


def test_coarse_hours_is_each_blocks_fastest_cell():
    rng = np.random.default_rng(3)
    h = random_hours(rng, 13, 10, 1)
    c = coarse_hours(h, 4)
    assert c.shape == (4, 3)
    for i in range(4):
        for j in range(3):
            np.testing.assert_equal(c[i, j], h[4 * i:4 * i + 4, 4 * j:4 * j + 4].min())


@pytest.mark.parametrize("spread", [1, 5, 70])
def test_distinct_values_are_numpys_unique(spread):
    rng = np.random.default_rng(spread)
    for _ in range(20):
        a = rng.integers(0, spread, size=int(rng.integers(1, 500))).astype(np.float32) / 7
        values, counts = _distinct(a)
        want_v, want_c = np.unique(a, return_counts=True)
        np.testing.assert_array_equal(values, want_v)
        np.testing.assert_array_equal(counts, want_c)
        assert values.dtype == a.dtype


def test_cost_bound_levels_are_the_sorting_rules():
    """`CostBound.of`'s levels as the sorting rule picked them: the median by
    `np.partition`, the distinct values by `np.unique`."""
    rng = np.random.default_rng(11)
    for trial in range(40):
        h = random_hours(rng, 30, 40, 1 + trial % 2)
        if trial % 4 == 0:
            h[int(rng.integers(30)), :] = np.float32(1.6 / 60)      # a track
        finite = h[np.isfinite(h)]
        fast_h = float(finite.min())
        median = float(np.partition(finite, finite.size // 2)[finite.size // 2])
        above = np.unique(finite[finite >= median])
        below = np.unique(finite[(finite < median) & (finite > fast_h)])
        want = tuple(float(v) for v in below[:ROAD_LEVELS]) + tuple(
            float(v) for v in above[above > fast_h][:3])
        bound = CostBound.of(h)
        assert bound.levels == want and bound.fast_h == fast_h


def test_kept_nearest_nodes_and_road_routes_are_the_computed_ones(tmp_path, monkeypatch):
    """`Router.nearest_node` and `road_route` keep their answers: asked again, or with the
    cache full, they answer as the scan of every node and networkx do."""
    import networkx as nx
    import yaml

    from sim.scenario.map import MapSpec
    from sim.world import cache as T
    from sim.world import routes
    from sim.world.cache import build_terrain
    from sim.world.routes import Router

    monkeypatch.setenv("BADIA_CACHE_DIR", str(tmp_path / "cache"))
    T.clear_memory_cache()
    monkeypatch.setattr(routes, "NEAREST_NODE_CACHE_SIZE", 7)
    data = Path(__file__).parent / "data" / "geo" / "box_small.yaml"
    t = build_terrain(MapSpec.model_validate(yaml.safe_load(data.read_text())), "box",
                      cache=False)
    router = Router(t)
    g = t.road_graph
    keys = list(g.nodes)
    cells = np.array([g.nodes[k]["cell"] for k in keys])
    rng = np.random.default_rng(1)
    for _ in range(3):
        for r, c in rng.integers(0, min(t.rows, t.cols), size=(40, 2)).tolist():
            d2 = (cells[:, 0] - r) ** 2 + (cells[:, 1] - c) ** 2
            assert router.nearest_node((r, c)) == keys[int(np.argmin(d2))]
    fresh = Router(t)
    joined = [k for k in keys if nx.has_path(g, keys[0], k)]
    assert len(joined) > 3
    for a in joined[:6]:
        for b in joined[:6]:
            for _ in range(2):
                got, want = router.road_route(a, b), fresh._road_route(a, b)
                np.testing.assert_array_equal(got.cells, want.cells)
                assert (got.length_km, got.roads, got.nodes) == (
                    want.length_km, want.roads, want.nodes)
                got.roads.append("scribble")        # the caller's own lists
