"""Bounded route searches give exactly the routes of the unbounded ones they stand for.

The reference is what the router did before searches were bounded: scipy's Dijkstra, without a
limit, on the graph built from COO triplets (`csr_matrix((w, (src, dst)))`), over the whole grid
(`cache=True` routes) or over the route's window (the others).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from sim import compiled
from sim.scenario.map import MapSpec
from sim.world import cache as T
from sim.world import routes
from sim.world.cache import build_terrain
from sim.world.routes import (
    _OFFSETS,
    FIELD_CACHE_BYTES,
    Box,
    CostBound,
    Router,
    corridor_graph,
    corridor_search,
    grid_graph,
    reach_box,
    search,
    trace_route,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BADIA_CACHE_DIR", str(tmp_path / "cache"))
    T.clear_memory_cache()


def coo_grid_graph(h: np.ndarray, cell_km: float) -> csr_matrix:
    """The grid graph as the router built it before: COO triplets, reversed, sorted by scipy."""
    rows, cols = h.shape
    idx = np.arange(rows * cols).reshape(rows, cols)
    h = h.astype(np.float64)
    src, dst, w = [], [], []
    for dr, dc in _OFFSETS:
        rs = slice(max(0, -dr), rows - max(0, dr))
        cs = slice(max(0, -dc), cols - max(0, dc))
        rd = slice(max(0, dr), rows - max(0, -dr))
        cd = slice(max(0, dc), cols - max(0, -dc))
        step_km = cell_km * (math.sqrt(2.0) if dr and dc else 1.0)
        weight = step_km * 0.5 * (h[rs, cs] + h[rd, cd])
        ok = np.isfinite(weight)
        src.append(idx[rs, cs][ok])
        dst.append(idx[rd, cd][ok])
        w.append(weight[ok])
    n = rows * cols
    return csr_matrix((np.concatenate(w), (np.concatenate(dst), np.concatenate(src))),
                      shape=(n, n))


def reference_route(h: np.ndarray, cell_km: float, box: Box, s: tuple, t: tuple) -> np.ndarray:
    """Flat grid cells from s to t of an unlimited search from t over `box` (old router)."""
    cols = h.shape[1]
    g = coo_grid_graph(h[box.top:box.bottom, box.left:box.right], cell_km)
    _, pred = dijkstra(g, directed=True, indices=box.local(*t), return_predecessors=True)
    cur, out = box.local(*s), []
    out.append(cur)
    while cur != box.local(*t):
        cur = int(pred[cur])
        if cur < 0:
            return np.zeros(0, np.int64)
        out.append(cur)
    rr, cc = np.divmod(np.asarray(out), box.width)
    return (rr + box.top) * cols + (cc + box.left)


def random_hours(rng: np.random.Generator, rows: int, cols: int, kind: int) -> np.ndarray:
    """Hours per km: uniform (ties everywhere), a few speeds (the real terrain's), walls."""
    if kind == 0:
        return np.full((rows, cols), np.float32(1 / 30))
    values = np.float32([1 / 60, 1 / 30, 1.5 / 30, 2 / 30, 4 / 30, np.inf])
    p = [0.1, 0.5, 0.15, 0.1, 0.1, 0.05] if kind == 1 else [0.0, 0.7, 0.0, 0.0, 0.0, 0.3]
    return rng.choice(values, size=(rows, cols), p=p).astype(np.float32)


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (2, 2), (3, 3), (17, 29)])
def test_grid_graph_is_the_sorted_coo_graph_bit_for_bit(shape):
    rng = np.random.default_rng(sum(shape))
    for kind in range(3):
        h = random_hours(rng, *shape, kind)
        new, old = grid_graph(h, 0.25), coo_grid_graph(h, 0.25)
        np.testing.assert_array_equal(new.indptr, old.indptr)
        np.testing.assert_array_equal(new.indices, old.indices)
        np.testing.assert_array_equal(new.data, old.data)    # exact: same float64 weights
        assert new.indices.dtype == np.int32 and new.has_sorted_indices


def test_bounded_search_gives_the_unbounded_route_or_says_it_cannot():
    rng = np.random.default_rng(13)
    answered = undecided = 0
    for trial in range(120):
        rows, cols = (int(v) for v in rng.integers(6, 40, 2))
        h = random_hours(rng, rows, cols, trial % 3)
        whole = Box(0, rows, 0, cols)
        min_h = float(h[np.isfinite(h)].min()) if np.isfinite(h).any() else math.inf
        t = (int(rng.integers(rows)), int(rng.integers(cols)))
        exact = search(h, 0.5, whole, t)
        for _ in range(6):
            s = (int(rng.integers(rows)), int(rng.integers(cols)))
            want = reference_route(h, 0.5, whole, s, t)
            assert np.array_equal(trace_route(exact, h, 0.5, s, cols), want)
            if s == t or not exact.reaches(*s):
                continue
            cost_h = exact.dist[whole.local(*s)]
            for limit_h in (cost_h, cost_h * 1.5, cost_h * 3):
                box = reach_box(t, limit_h, 0.5, min_h).within(whole)
                bounded = search(h, 0.5, box, t, limit_h, reference=whole)
                assert bounded.reaches(*s)
                # distances within the limit are the unbounded search's, to the bit
                inside = np.isfinite(bounded.dist)
                rr, cc = np.divmod(np.flatnonzero(inside), box.width)
                np.testing.assert_array_equal(
                    bounded.dist[inside], exact.dist[(rr + box.top) * cols + cc + box.left])
                route = trace_route(bounded, h, 0.5, s, cols)
                if route is None:
                    undecided += 1      # a tie on the way: the router runs the unbounded one
                else:
                    answered += 1
                    np.testing.assert_array_equal(route, want)
    assert answered > 10 * max(undecided, 1)


def test_corridor_search_gives_the_unbounded_route_or_says_it_cannot():
    rng = np.random.default_rng(29)
    answered = undecided = 0
    for trial in range(120):
        rows, cols = (int(v) for v in rng.integers(6, 40, 2))
        h = random_hours(rng, rows, cols, trial % 3)
        if not np.isfinite(h).any():
            continue
        whole = Box(0, rows, 0, cols)
        bound = CostBound.of(h)
        t = (int(rng.integers(rows)), int(rng.integers(cols)))
        exact = search(h, 0.5, whole, t)
        for _ in range(6):
            s = (int(rng.integers(rows)), int(rng.integers(cols)))
            if s == t or not exact.reaches(*s):
                continue
            want = reference_route(h, 0.5, whole, s, t)
            cost_h = exact.dist[whole.local(*s)]
            for limit_h in (cost_h, cost_h * 1.2, cost_h * 2):
                corridor = corridor_search(h, 0.5, whole, s, t, limit_h, bound)
                assert corridor.reaches(*s)
                route = trace_route(corridor, h, 0.5, s, cols)
                if route is None:
                    undecided += 1      # a tie on the way: the router runs the unbounded one
                else:
                    answered += 1
                    np.testing.assert_array_equal(route, want)
            # below the source's distance the corridor search does not reach it
            below = corridor_search(h, 0.5, whole, s, t, cost_h * 0.99, bound)
            assert not below.reaches(*s)
    assert answered > 10 * max(undecided, 1)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (17, 29), (40, 33)])
def test_corridor_graph_is_the_grid_graph_of_the_corridor_bit_for_bit(shape):
    rng = np.random.default_rng(sum(shape) + 1)
    for kind in range(3):
        h = random_hours(rng, *shape, kind)
        inside = rng.random(shape) < 0.7
        cells = np.flatnonzero(inside)
        new = corridor_graph(h, cells, 0.25)
        old = grid_graph(np.where(inside, h, np.float32(np.inf)), 0.25)[cells][:, cells]
        np.testing.assert_array_equal(new.indptr, old.indptr)
        np.testing.assert_array_equal(new.indices, old.indices)
        np.testing.assert_array_equal(new.data, old.data)


def roads_hours(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """Hours per km as on the theatre: flat ground, sand, rugged, impassable, and a few roads
    (fast lines) across."""
    values = np.float32([1 / 30, 2 / 30, 4 / 30, np.inf])
    h = rng.choice(values, size=(rows, cols), p=[0.75, 0.1, 0.1, 0.05]).astype(np.float32)
    for _ in range(int(rng.integers(0, 4))):
        if rng.random() < 0.5:
            h[int(rng.integers(rows)), :] = np.float32(1 / 60)
        else:
            h[:, int(rng.integers(cols))] = np.float32(1.5 / 60)
    return h


def test_cost_bound_never_exceeds_a_routes_hours_and_gives_the_corridor():
    rng = np.random.default_rng(41)
    checked = sharper = 0
    for trial in range(60):
        rows, cols = (int(v) for v in rng.integers(4, 40, 2))
        h = roads_hours(rng, rows, cols) if trial % 2 else random_hours(rng, rows, cols, 1)
        if not np.isfinite(h).any():
            continue
        bound = CostBound.of(h)
        whole = Box(0, rows, 0, cols)
        t = (int(rng.integers(rows)), int(rng.integers(cols)))
        exact = search(h, 0.5, whole, t)
        reached = np.flatnonzero(np.isfinite(exact.dist))
        unit_h = 0.5 * bound.fast_h
        for y in rng.choice(reached, size=min(20, len(reached)), replace=False):
            yrc = (int(y) // cols, int(y) % cols)
            steps = bound.steps(yrc, t)
            assert steps * unit_h <= exact.dist[y] * (1 + 1e-12)
            assert steps == pytest.approx(bound.steps(t, yrc))
            sharper += steps > routes._octile_steps(yrc, t) + 1e-9
            checked += 1
        # the corridor is the cells whose bounds through them add up to at most the limit
        s = (int(rng.integers(rows)), int(rng.integers(cols)))
        within = float(rng.uniform(0.5, 2.0)) * bound.steps(s, t) + 1.0
        want = np.array([[bound.steps(s, (r, c)) + bound.steps((r, c), t) <= within
                          for c in range(cols)] for r in range(rows)])
        np.testing.assert_array_equal(bound.corridor(whole, s, t, within), np.flatnonzero(want))
    assert checked > 500 and sharper > 100


def test_the_compiled_corridor_keeps_the_numpy_corridors_cells(monkeypatch):
    """The corridor's cells are the same with the compiled sums as with numpy's, in boxes of
    larger layers with roads (several levels), also with whole limits (which cells in line
    with the ends and whole reaches sum to exactly: the test's boundary)."""
    rng = np.random.default_rng(43)
    kept = 0
    for trial in range(60):
        rows, cols = (int(v) for v in rng.integers(6, 60, 2))
        h = roads_hours(rng, rows, cols) if trial % 2 else random_hours(rng, rows, cols, 1)
        if not np.isfinite(h).any():
            continue
        bound = CostBound.of(h)
        if not bound.levels:
            continue
        top, left = int(rng.integers(rows // 2)), int(rng.integers(cols // 2))
        box = Box(top, rows, left, cols)
        s = (int(rng.integers(top, rows)), int(rng.integers(left, cols)))
        t = (int(rng.integers(top, rows)), int(rng.integers(left, cols)))
        within = float(rng.uniform(0.5, 2.5)) * bound.steps(s, t) + 1.0
        if trial % 3 == 0:  # a whole limit: cells in line with the ends sum to it exactly
            within = float(round(within))
        monkeypatch.setenv(compiled.ENV_KERNELS, "numpy")
        want = bound.corridor(box, s, t, within)
        monkeypatch.setenv(compiled.ENV_KERNELS, "numba")
        got = bound.corridor(box, s, t, within)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
        kept += len(want)
    assert kept > 5000
    # the boundary itself: along a road of the fastest cells the bound is the octile distance
    # alone (no level adds), so the road's cells between two of its cells sum to exactly
    # their distance, and a limit of that keeps them (and no cell off the road)
    h = random_hours(rng, 30, 40, 1)
    h[12, :] = np.float32(1 / 60)
    bound = CostBound.of(h)
    box = Box(2, 30, 3, 40)
    for kernels in ("numpy", "numba"):
        monkeypatch.setenv(compiled.ENV_KERNELS, kernels)
        got = bound.corridor(box, (12, 8), (12, 31), 23.0)
        np.testing.assert_array_equal(got, [box.local(12, c) for c in range(8, 32)])


def test_a_source_beyond_the_limit_is_not_answered_unless_the_search_ran_out():
    h = np.full((20, 20), np.float32(1.0))
    h[:, 10] = np.inf                                  # a wall: the east half is cut off
    whole = Box(0, 20, 0, 20)
    near = search(h, 1.0, reach_box((5, 2), 3.0, 1.0, 1.0).within(whole), (5, 2), 3.0,
                  reference=whole)
    assert trace_route(near, h, 1.0, (5, 8), 20) is None        # may be reachable: unknown
    far = search(h, 1.0, whole, (5, 2), 100.0)
    assert far.exhausted
    assert len(trace_route(far, h, 1.0, (5, 15), 20)) == 0      # provably unreachable


def ascii_map(rows: list[str], cell_km: float = 0.5) -> MapSpec:
    legend = {".": {"ground": "flat"}, "s": {"ground": "sand"}, "r": {"ground": "rugged"},
              "=": {"ground": "flat", "road": "highway"}, "~": {"ground": "river"}}
    doc = {"cell_km": cell_km, "centre": {"lat": 34.5, "lon": 38.5}, "ascii": "\n".join(rows),
           "legend": legend}
    if any("Z" in r for r in rows):
        legend["Z"] = {"ground": "flat", "zone": "Box zone"}
        doc["zones"] = [{"name": "Box zone", "barred": ["government"]}]
    return MapSpec.model_validate(doc)


def random_ascii(rng: np.random.Generator, rows: int, cols: int) -> list[str]:
    chars = rng.choice(list(".....sr=~Z"), size=(rows, cols))
    chars[rows // 2, :] = "="                           # a highway across
    return ["".join(r) for r in chars]


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("grid", ["small", "fine", "tube", "kept"])
def test_router_routes_are_the_unbounded_searches_routes_on_random_maps(grid, kernels,
                                                                         monkeypatch):
    monkeypatch.setenv(compiled.ENV_KERNELS, kernels)
    if grid in ("fine", "tube"):
        # as on a 0.25 km theatre: no whole-grid graph kept, every window searched bounded
        monkeypatch.setattr(routes, "GRAPH_CACHE_BYTES", 0)
    if grid != "small":
        monkeypatch.setattr(routes, "UNBOUNDED_CELLS", 0)
        monkeypatch.setattr(routes, "SETTLED_CELLS", 0)
    # "tube": every corridor search starts from a coarse sketch's route (`tube_hours`);
    # "kept": as on the 1 km theatre, the kept whole-grid searches start from one as well
    monkeypatch.setattr(routes, "TUBE_CELLS", 0 if grid in ("tube", "kept") else 2**62)
    monkeypatch.setattr(routes, "KEPT_TUBE_FACTOR", 1.0 if grid == "kept" else math.inf)
    rng = np.random.default_rng(2026)
    for trial in range(6):
        t = build_terrain(ascii_map(random_ascii(rng, 30 + 7 * trial, 45)), f"m{trial}",
                          cache=False)
        router = Router(t)
        whole = Box(0, t.rows, 0, t.cols)
        for _ in range(25):
            mobility = ("foot", "offroad")[int(rng.integers(2))]
            barred = frozenset({0}) if rng.random() < 0.5 else frozenset()
            h = router.hours_per_km(mobility, barred)
            s, g = (int(v) for v in rng.integers(t.grid.size, size=2))
            if not (np.isfinite(h.ravel()[s]) and np.isfinite(h.ravel()[g])) or s == g:
                continue
            src, dst = t.rc(s), t.rc(g)
            # cache=True: the whole grid's route
            want = reference_route(h, t.cell_km, whole, src, dst)
            got = router.local_path(s, g, mobility, barred, cache=True)
            np.testing.assert_array_equal(got, want)
            # numpy's own int64 dtype: the engine compares dtypes by identity
            assert got.dtype is np.dtype(np.int64)
            # the others: the route of the first window (doubled while empty) that has one
            pad = max(8, int(0.5 * max(abs(src[0] - dst[0]), abs(src[1] - dst[1]))))
            while True:
                box = Box(max(0, min(src[0], dst[0]) - pad),
                          min(t.rows, max(src[0], dst[0]) + pad + 1),
                          max(0, min(src[1], dst[1]) - pad),
                          min(t.cols, max(src[1], dst[1]) + pad + 1))
                want = reference_route(h, t.cell_km, box, src, dst)
                if len(want) or box == whole:
                    break
                pad *= 2
            got = router.local_path(s, g, mobility, barred)
            np.testing.assert_array_equal(got, want)
            assert got.dtype is np.dtype(np.int64)


def test_route_cache_default_is_sized_in_bytes():
    t = build_terrain(ascii_map(["." * 5] * 4), "tiny", cache=False)
    assert Router(t).field_cache_bytes == FIELD_CACHE_BYTES


def test_a_route_asked_again_in_any_form_is_the_same_answer_and_bad_queries_still_fail():
    """The router answers a repeated query from its cache before checking the arguments: the
    answer is the same whichever form the cells come in (ints, numpy ints, a (row, col)
    target) and whether the first or a repeated query, and a query it cannot answer still
    raises after valid ones were cached."""
    rng = np.random.default_rng(7)
    t = build_terrain(ascii_map(random_ascii(rng, 30, 40)), "again", cache=False)
    router = Router(t)
    h = router.hours_per_km("offroad", frozenset())
    ok = np.flatnonzero(np.isfinite(h.ravel()))
    asked = 0
    for s, g in rng.choice(ok, size=(20, 2)).tolist():
        if s == g:
            continue
        first = router.local_path(s, g, "offroad", frozenset())
        for form in ((s, g), (np.int64(s), np.int32(g)), (s, t.rc(g))):
            again = router.local_path(*form, "offroad", frozenset())
            np.testing.assert_array_equal(again, first)
        np.testing.assert_array_equal(router.local_path(s, g, "offroad", [], cache=False), first)
        with pytest.raises(ValueError, match="unknown mobility"):
            router.local_path(s, g, "hover", frozenset())
        with pytest.raises(ValueError, match="outside"):
            router.local_path(s, t.grid.size + 5, "offroad", frozenset())
        asked += 1
    assert asked >= 15
