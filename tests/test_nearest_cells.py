"""`NearestCells` (an index of a set of cells by buckets) answers as `nearest` (a scan of the
whole set) does, to the cell and the order, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from sim.tactics.sites import NearestCells, nearest
from sim.world.geometry import k_smallest


@pytest.mark.parametrize("bucket", [1, 3, 16])
def test_nearest_cells_answers_as_nearest(bucket):
    rng = np.random.default_rng(bucket)
    answered = 0
    for trial in range(60):
        rows, cols = (int(v) for v in rng.integers(1, 120, 2))
        n = int(rng.integers(0, rows * cols + 1))
        if trial % 3 == 0:      # clustered, as refuges and hides are
            r0, c0 = int(rng.integers(rows)), int(rng.integers(cols))
            rr = np.clip(r0 + rng.integers(-8, 9, n), 0, rows - 1)
            cc = np.clip(c0 + rng.integers(-8, 9, n), 0, cols - 1)
            cells = np.unique(rr * cols + cc)
        else:
            cells = np.sort(rng.choice(rows * cols, size=n, replace=False))
        cells = cells.astype(np.int64)
        index = NearestCells(cells, cols, bucket)
        for _ in range(10):
            cell = int(rng.integers(rows * cols))
            for k in (1, 2, 3, 5, len(cells), len(cells) + 1):
                want = nearest(cells, cell, cols, k)
                got = index.query(cell, k)
                np.testing.assert_array_equal(got, want)
                assert got.dtype == want.dtype
                answered += 1
    assert answered > 1000


def _random_sets(seed: int, trials: int):
    """``(cells, rows, cols, rng)``: random int64 sets of cells on random grids, a third of them
    clustered (as refuges and hides are: ties at equal distances abound)."""
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        rows, cols = (int(v) for v in rng.integers(1, 90, 2))
        n = int(rng.integers(0, rows * cols + 1))
        if trial % 3 == 0:
            r0, c0 = int(rng.integers(rows)), int(rng.integers(cols))
            rr = np.clip(r0 + rng.integers(-6, 7, n), 0, rows - 1)
            cc = np.clip(c0 + rng.integers(-6, 7, n), 0, cols - 1)
            cells = np.unique(rr * cols + cc)
        else:
            cells = np.sort(rng.choice(rows * cols, size=n, replace=False))
        yield cells.astype(np.int64), rows, cols, rng


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_the_scan_and_the_kept_sets_answer_as_nearest(monkeypatch, kernels):
    """`nearest_in` (the compiled scan, or numpy), `NearestCells.scan` and `Sites.nearest`
    give `nearest`'s numpy answer, ties included."""
    from sim import compiled
    from sim.tactics.sites import Sites

    class Grid:  # what Sites.nearest reads of a terrain
        def __init__(self, cols):
            self.cols = cols

    compared = 0
    for cells, rows, cols, rng in _random_sets(7, 90):
        monkeypatch.setenv(compiled.ENV_KERNELS, "numpy")
        queries = [int(rng.integers(rows * cols)) for _ in range(8)]
        ks = (0, 1, 2, 3, 4, len(cells), len(cells) + 1)
        want = [[nearest(cells, q, cols, k) for k in ks] for q in queries]
        monkeypatch.setenv(compiled.ENV_KERNELS, kernels)
        kept, sites = NearestCells(cells, cols), Sites(Grid(cols))
        for q, answers in zip(queries, want, strict=True):
            for k, expected in zip(ks, answers, strict=True):
                for got in (nearest(cells, q, cols, k), kept.scan(q, k),
                            sites.nearest(cells, q, k)):
                    np.testing.assert_array_equal(got, expected)
                    assert got.dtype == expected.dtype
                    compared += 1
    assert compared > 5000


def test_the_compiled_scan_ranks_as_k_smallest_ties_included():
    """`_nearest_scan` compiled by Numba and run as Python: the same squared distances (to the
    bit, and numpy's) and, of them, the positions `k_smallest` ranks first (the earlier of
    equals first), on sets where ties at the k-th distance are common."""
    from sim.tactics.sites import _nearest_scan

    tied_at_k = 0
    for cells, grid_rows, cols, rng in _random_sets(11, 120):
        if len(cells) < 2:
            continue
        rows, columns = np.divmod(cells, cols)
        r, c = int(rng.integers(grid_rows)), int(rng.integers(cols))
        want_d2 = (rows - r) ** 2 + (columns - c) ** 2
        for k in {1, int(rng.integers(1, len(cells))), len(cells) - 1}:
            want = k_smallest(want_d2, k)
            for fn in (_nearest_scan, _nearest_scan.py):
                d2, first = np.empty(len(cells), np.int64), np.empty(k, np.int64)
                fn(rows, columns, r, c, d2, first)
                assert d2.tobytes() == want_d2.tobytes()
                np.testing.assert_array_equal(first, want)
            ranked = np.sort(want_d2)
            tied_at_k += bool(k < len(cells) and ranked[k - 1] == ranked[k])
    assert tied_at_k > 20  # the rule for ties was exercised


@pytest.mark.parametrize("seed", range(4))
def test_k_smallest_breaks_ties_by_index_whatever_the_sort(seed):
    """k_smallest (the rule that ranks nearest cells) is the first k of a stable sort: equal
    values in index order, NaN last; so it never depends on how numpy's partition or its
    vector sorts fall on this machine (tests/test_model.py runs the scenarios both ways)."""
    rng = np.random.default_rng(seed)
    for _ in range(300):
        n = int(rng.integers(0, 400))
        values = rng.integers(0, rng.integers(1, 30), n)  # ties abound, as squared distances
        if seed % 2:
            values = values.astype(float)
            values[rng.random(n) < 0.1] = np.nan
        for k in (0, 1, 5, n // 2, n - 1, n, n + 3):
            got = k_smallest(values, k)
            want = np.argsort(values, kind="stable")[: max(k, 0)]
            assert got.dtype == np.intp
            np.testing.assert_array_equal(got, want)


def test_nearest_takes_the_earlier_of_tied_cells():
    """Four cells at the same distance: the k nearest are the first k as listed."""
    cols = 10
    centre = 5 * cols + 5
    ring = np.array([4 * cols + 5, 5 * cols + 4, 5 * cols + 6, 6 * cols + 5])
    for order in (ring, ring[::-1], ring[[2, 0, 3, 1]]):
        cells = np.concatenate(([0], order))  # a far cell first
        np.testing.assert_array_equal(nearest(cells, centre, cols, 2), order[:2])
