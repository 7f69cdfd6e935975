"""`NearestCells` (an index of a set of cells by buckets) answers as `nearest` (a scan of the
whole set) does, to the cell and the order, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from sim.tactics.sites import NearestCells, nearest


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
