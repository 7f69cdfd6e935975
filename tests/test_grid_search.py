"""The compiled grid search (sim.world.gridsearch, the router's `Settling`) gives scipy's.

Its distances are scipy's Dijkstra's on the same graph to the bit, its next hops scipy's
wherever no tie decided them, and the routes it answers (stopped at the start, resumed for
later starts, on a corridor's cells) the reference search's, or it says a tie decided one. On
random layers with the real terrain's few speeds, uniform ground (ties everywhere) and walls.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra
from test_bounded_routes import random_hours  # the same random layers

from sim import compiled
from sim.world import gridsearch
from sim.world.routes import (
    _OFFSETS,
    NO_LIMIT_H,
    Box,
    CostBound,
    Settling,
    corridor_graph,
    corridor_search,
    route_toward,
    search,
    tied_on_route,
    trace_route,
    window_graph,
)

CELL_KM = 0.25


@pytest.fixture(autouse=True)
def _kernels_on(monkeypatch):
    monkeypatch.delenv(compiled.ENV_KERNELS, raising=False)
    assert gridsearch.settle.compiled


def scipy_search(h: np.ndarray, box: Box, t: tuple[int, int],
                 limit: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
    """scipy's distances and predecessors (-1 unset) from `t` over `box` of `h`."""
    g = window_graph(h[box.top:box.bottom, box.left:box.right], CELL_KM)
    dist, pred = dijkstra(g, directed=True, indices=box.local(*t), return_predecessors=True,
                          limit=min(limit, NO_LIMIT_H))
    return dist, np.where(pred < 0, -1, pred).astype(np.int32)


def tied_cells(h: np.ndarray, box: Box, dist: np.ndarray, hop: np.ndarray) -> np.ndarray:
    """Per local cell of `box`, whether a tie decided its hop (`tied_on_route`'s rule)."""
    rows, cols = box.bottom - box.top, box.width
    pad = np.full((rows + 2, cols + 2), np.inf)
    pad[1:-1, 1:-1] = dist.reshape(rows, cols)
    hp = np.full((rows + 2, cols + 2), np.inf)
    hp[1:-1, 1:-1] = h[box.top:box.bottom, box.left:box.right]
    d, hy = pad[1:-1, 1:-1], hp[1:-1, 1:-1]
    d_hop = np.where(hop >= 0, dist[np.maximum(hop, 0)], np.nan).reshape(rows, cols)
    count = np.zeros((rows, cols), int)
    for dr, dc in _OFFSETS:
        step_km = CELL_KM * (math.sqrt(2.0) if dr and dc else 1.0)
        dx = pad[1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols]
        w = step_km * 0.5 * (hp[1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols] + hy)
        count += (dx + w == d) & (dx == d_hop)
    return (count > 1).ravel()


def test_a_run_to_its_end_gives_scipys_distances_and_untied_hops_bit_for_bit():
    rng = np.random.default_rng(5)
    untied = tied = 0
    for trial in range(60):
        rows, cols = (int(v) for v in rng.integers(1, 30, 2))
        h = random_hours(rng, rows, cols, trial % 3)
        # a box inside a larger layer: the kernel reads the layer where the box lies
        layer = random_hours(rng, rows + 5, cols + 7, 1)
        layer[2:2 + rows, 3:3 + cols] = h
        box = Box(2, 2 + rows, 3, 3 + cols)
        t = (2 + int(rng.integers(rows)), 3 + int(rng.integers(cols)))
        for limit in (math.inf, float(rng.uniform(0.0, 1.0))):
            want_d, want_hop = scipy_search(layer, box, t, limit)
            run = Settling(layer, CELL_KM, box, t, limit_h=limit)
            run.run_to_end()
            assert run.dist.tobytes() == want_d.tobytes()
            want_hop[box.local(*t)] = box.local(*t)
            ties = tied_cells(layer, box, want_d, want_hop)
            np.testing.assert_array_equal(run.hop[~ties], want_hop[~ties])
            np.testing.assert_array_equal(run.hop >= 0, want_hop >= 0)
            untied += int((~ties & (want_hop >= 0)).sum())
            tied += int(ties.sum())
    assert untied > 10_000 and tied > 100


def test_routes_stopped_at_the_start_and_resumed_are_the_reference_routes():
    """One search per target answers starts in any order (resumed as far as each needs): the
    reference route (scipy's search over the box), empty where the start cannot reach the
    target, or None only where a tie decided a hop on the reference route."""
    rng = np.random.default_rng(17)
    answered = undecided = unreachable = 0
    for trial in range(90):
        rows, cols = (int(v) for v in rng.integers(1, 35, 2))
        h = random_hours(rng, rows, cols, trial % 3)
        box = Box(0, rows, 0, cols)
        t = (int(rng.integers(rows)), int(rng.integers(cols)))
        exact = search(h, CELL_KM, box, t)
        kept = Settling(h, CELL_KM, box, t)
        for _ in range(8):
            s = (int(rng.integers(rows)), int(rng.integers(cols)))
            want = trace_route(exact, h, CELL_KM, s, cols)
            for run in (kept, Settling(h, CELL_KM, box, t)):
                got = run.route(s, cols)
                if got is None:     # (the box is the whole layer: its cells are local)
                    assert tied_on_route(exact, h, CELL_KM, want)
                    undecided += 1
                else:
                    assert got.dtype is np.dtype(np.int64)     # numpy's own, as scipy's
                    np.testing.assert_array_equal(got, want)
                    answered += 1
                    unreachable += len(got) == 0
                assert run.hours(s) == exact.dist[box.local(*s)]
    assert answered > 10 * max(undecided, 1) and undecided > 0 and unreachable > 20


def test_routes_searched_toward_the_start_are_the_reference_routes(monkeypatch):
    """The A* search toward one start (`route_toward`) answers as the search from the target
    stopped at the start does: the reference route (scipy's search over the box), empty where
    none, None exactly where a tie decided a hop on it. On boxes inside a larger layer, with
    the terrain's few speeds, uniform ground, walls, and hours of every value (no ties); then
    with its margin check failing everywhere (the plain search answers)."""
    rng = np.random.default_rng(41)
    answered = undecided = unreachable = 0
    for trial in range(160):
        rows, cols = (int(v) for v in rng.integers(1, 40, 2))
        kind = trial % 4
        h = (rng.uniform(1 / 60, 4 / 30, (rows, cols)).astype(np.float32) if kind == 3
             else random_hours(rng, rows, cols, kind))
        layer = random_hours(rng, rows + 4, cols + 6, 1)
        layer[3:3 + rows, 1:1 + cols] = h
        box = Box(3, 3 + rows, 1, 1 + cols)
        t = (3 + int(rng.integers(rows)), 1 + int(rng.integers(cols)))
        exact = search(layer, CELL_KM, box, t)
        for _ in range(6):
            s = (3 + int(rng.integers(rows)), 1 + int(rng.integers(cols)))
            want = trace_route(exact, layer, CELL_KM, s, cols + 6)
            got = route_toward(layer, CELL_KM, box, t, s, cols + 6)
            plain = Settling(layer, CELL_KM, box, t).route(s, cols + 6)
            assert (got is None) == (plain is None)
            if got is None:     # (the reference route itself, as local cells of the box)
                rr, cc = np.divmod(want, cols + 6)
                assert tied_on_route(exact, layer, CELL_KM, box.local(rr, cc))
                undecided += 1
            else:
                assert got.dtype is np.dtype(np.int64)
                np.testing.assert_array_equal(got, want)
                answered += 1
                unreachable += len(got) == 0
    assert answered > 800 and undecided > 10 and unreachable > 20, (answered, undecided,
                                                                     unreachable)
    # the margin check refuses every answer: the plain search's stand
    monkeypatch.setattr(gridsearch, "TOWARD_MAX_STEPS", 0.0)
    h = rng.uniform(1 / 60, 4 / 30, (30, 30)).astype(np.float32)
    box = Box(0, 30, 0, 30)
    for _ in range(20):
        t, s = ((int(v) for v in rng.integers(30, size=2)) for _ in range(2))
        t, s = tuple(t), tuple(s)
        want = Settling(h, CELL_KM, box, t).route(s, 30)
        np.testing.assert_array_equal(route_toward(h, CELL_KM, box, t, s, 30), want)


def test_a_search_toward_the_start_settles_fewer_cells_than_one_from_the_target():
    """What the A* search is for: on open ground with a road, a route to a start settles a
    fraction of the cells the search stopped at the start does (the same route)."""
    h = np.full((60, 60), np.float32(1 / 30))
    h[30, :] = np.float32(1 / 60)  # a road across
    box = Box(0, 60, 0, 60)
    t, s = (30, 2), (30, 57)
    n = box.size
    dist, hop = np.empty(n), np.empty(n, np.int32)
    slot, heap = np.empty(n, np.int32), np.empty(n, np.int32)
    from sim.world.routes import _kernel_box

    assert gridsearch.settle_toward(h, *_kernel_box(box, CELL_KM), box.local(*t),
                                    box.local(*s), float(h.min()) * CELL_KM * (1 - 1e-6),
                                    dist, hop, slot, heap)
    toward = int((slot == gridsearch.SETTLED).sum())
    plain = Settling(h, CELL_KM, box, t)
    np.testing.assert_array_equal(route_toward(h, CELL_KM, box, t, s, 60), plain.route(s, 60))
    settled = int((plain.slot == gridsearch.SETTLED).sum())
    assert toward < 0.1 * settled, (toward, settled)


def test_a_search_on_allowed_cells_is_scipys_on_their_corridor_graph():
    rng = np.random.default_rng(23)
    for trial in range(60):
        rows, cols = (int(v) for v in rng.integers(1, 30, 2))
        h = random_hours(rng, rows, cols, trial % 3)
        box = Box(0, rows, 0, cols)
        allowed = rng.random(box.size) < 0.7
        t = int(rng.integers(box.size))
        allowed[t] = True
        cells = np.flatnonzero(allowed)
        k = int(np.searchsorted(cells, t))
        limit = float(rng.uniform(0.0, 1.5)) if trial % 2 else math.inf
        want = np.full(box.size, np.inf)
        want[cells] = dijkstra(corridor_graph(h, cells, CELL_KM), directed=True, indices=k,
                               limit=min(limit, NO_LIMIT_H))
        run = Settling(h, CELL_KM, box, divmod(t, cols), limit_h=limit, allowed=allowed)
        run.run_to_end()
        assert run.dist.tobytes() == want.tobytes()
        s = int(rng.integers(box.size))
        fresh = Settling(h, CELL_KM, box, divmod(t, cols), limit_h=limit, allowed=allowed)
        assert fresh.hours(divmod(s, cols)) == want[s]


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_searches_and_corridor_searches_are_the_same_both_ways(kernels, monkeypatch):
    """`search` (limited) and `corridor_search` give the same distances, reach and routes
    (`trace_route`, ties checked) with the compiled search as with scipy's."""
    rng = np.random.default_rng(31)
    for trial in range(40):
        rows, cols = (int(v) for v in rng.integers(4, 35, 2))
        h = random_hours(rng, rows, cols, trial % 3)
        if not np.isfinite(h).any():
            continue
        whole = Box(0, rows, 0, cols)
        bound = CostBound.of(h)
        t = (int(rng.integers(rows)), int(rng.integers(cols)))
        s = (int(rng.integers(rows)), int(rng.integers(cols)))
        limit = float(rng.uniform(0.1, 3.0))
        monkeypatch.setenv(compiled.ENV_KERNELS, "numpy")
        want = (search(h, CELL_KM, whole, t, limit),
                corridor_search(h, CELL_KM, whole, s, t, limit, bound))
        monkeypatch.setenv(compiled.ENV_KERNELS, kernels)
        got = (search(h, CELL_KM, whole, t, limit),
               corridor_search(h, CELL_KM, whole, s, t, limit, bound))
        for a, b in zip(got, want, strict=True):
            assert (a.box, a.target, a.limit_h, a.exact, a.exhausted) == (
                b.box, b.target, b.limit_h, b.exact, b.exhausted)
            assert a.dist.tobytes() == b.dist.tobytes()
            np.testing.assert_array_equal(a.hop >= 0, b.hop >= 0)
            route_a = trace_route(a, h, CELL_KM, s, cols)
            route_b = trace_route(b, h, CELL_KM, s, cols)
            assert (route_a is None) == (route_b is None)
            if route_a is not None:
                np.testing.assert_array_equal(route_a, route_b)


def test_a_search_refuses_cells_its_kernels_would_read_out_of_bounds():
    h = random_hours(np.random.default_rng(1), 6, 8, 1)
    with pytest.raises(ValueError, match="does not fit"):
        Settling(h, CELL_KM, Box(0, 7, 0, 8), (0, 0))
    with pytest.raises(ValueError, match="does not fit"):
        Settling(h, CELL_KM, Box(0, 6, 0, 8), (0, 0), allowed=np.ones(47, bool))
    with pytest.raises(ValueError, match="outside"):
        Settling(h, CELL_KM, Box(1, 6, 0, 8), (0, 0))
    run = Settling(h, CELL_KM, Box(1, 6, 2, 8), (3, 3))
    with pytest.raises(ValueError, match="outside"):
        run.route((3, 1), 8)
