"""A sweep's lanes (one array) against the rule as first written (a cell list, lane by lane)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.engine.model import DesertModel
from sim.tactics.garrison import SWEEP_NIGHT_RANGE_FACTOR, SWEEP_WIDTH_SENSOR_RANGES, Sweep

SCEN = Path(__file__).resolve().parent.parent / "scenarios"


def lanes_reference(sweep: Sweep, sq: tuple[int, int]) -> np.ndarray:
    m = sweep.model
    t = m.terrain
    f = m.force
    r0, c0 = sq[0] * sweep.side, sq[1] * sweep.side
    r1, c1 = min(r0 + sweep.side, t.rows), min(c0 + sweep.side, t.cols)
    night_km = f.sensor_night_km[sweep.unit.idx] * SWEEP_NIGHT_RANGE_FACTOR
    sensor = min(f.sensor_day_km[sweep.unit.idx], night_km)
    spacing = max(1, int(SWEEP_WIDTH_SENSOR_RANGES * sensor / t.grid.cell_km))
    cells = []
    lane_rows = list(range(r0 + spacing // 2, r1, spacing)) or [min((r0 + r1) // 2, t.rows - 1)]
    for k, r in enumerate(lane_rows):
        cols = range(c0, c1) if k % 2 == 0 else range(c1 - 1, c0 - 1, -1)
        cells.extend(r * t.cols + c for c in cols)
    return np.asarray(cells, dtype=np.int64)


def test_sweep_lanes_are_the_cell_list_rule():
    model = DesertModel(SCEN / "cave_sweep.yaml", rng=1)
    sweeps = [u.behaviour for u in model.units if isinstance(u.behaviour, Sweep)]
    assert sweeps
    rng = np.random.default_rng(0)
    t = model.terrain
    f = model.force
    for sweep in sweeps:
        i = sweep.unit.idx
        # squares of the sweep and others, some past the grid's edge; sensor ranges and
        # square sizes from none to wider than a square
        squares = list(sweep.squares) + [
            (int(rng.integers(0, t.rows // 2 + 2)), int(rng.integers(0, t.cols // 2 + 2)))
            for _ in range(20)
        ]
        for k, sq in enumerate(squares):
            sweep.side = int(rng.integers(1, 12))
            f.sensor_day_km[i] = rng.choice([0.0, rng.uniform(0, 3), rng.uniform(0, 30)])
            f.sensor_night_km[i] = rng.choice([0.0, rng.uniform(0, 3), rng.uniform(0, 30)])
            got, want = sweep._lanes(sq), lanes_reference(sweep, sq)
            assert got.dtype == want.dtype, k
            np.testing.assert_array_equal(got, want)
