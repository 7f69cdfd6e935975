"""``route_cells`` (legs joined as arrays) against the rule as first written (cell lists)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.engine.model import DesertModel
from sim.scenario.vocab import MOBILITIES
from sim.tactics.base import route_cells

SCEN = Path(__file__).resolve().parent.parent / "scenarios"


def route_cells_reference(model, unit, waypoints, closed=False) -> np.ndarray:
    t = model.terrain
    cells = [unit.cell]
    points = list(waypoints) + ([waypoints[0]] if closed else [])
    mob = MOBILITIES[int(model.force.mobility[unit.idx])]
    barred = model.barred_zones[model.force.faction[unit.idx]]
    for wp in points:
        r, c = t.locate(wp)
        target = r * t.cols + c
        if mob != "foot" and isinstance(wp, str) and wp in t.road_graph:
            try:
                here = divmod(cells[-1], t.cols)
                leg = model.router.road_route(model.router.nearest_node(here), wp).cells
                flat = leg[:, 0].astype(np.int64) * t.cols + leg[:, 1]
                if barred and np.isin(t.zone.ravel()[flat], sorted(barred)).any():
                    raise ValueError("the road runs through a zone this unit may not enter")
                if len(flat) and flat[0] != cells[-1]:
                    link = model.router.local_path(cells[-1], int(flat[0]), mob, barred)
                    flat = np.concatenate([link, flat[1:]]) if len(link) else flat
                cells.extend(flat[1:].tolist())
                continue
            except ValueError:
                pass
        flat = model.router.local_path(cells[-1], target, mob, barred)
        if len(flat):
            cells.extend(flat[1:].tolist())
    return np.asarray(cells, dtype=np.int64)


@pytest.mark.parametrize("scenario", ["highway_interdiction.yaml", "tanf_refuge.yaml"])
def test_route_cells_is_the_cell_list_rule(scenario):
    model = DesertModel(SCEN / scenario, rng=1)
    t = model.terrain
    places = list(t.places)
    rng = np.random.default_rng(0)
    units = [u for u in model.units if u.alive]
    for k in range(40):
        unit = units[k % len(units)]
        n = int(rng.integers(1, 4))
        waypoints = [places[i] for i in rng.integers(0, len(places), n)]
        if k % 3 == 0:  # a point given by its coordinates
            lat, lon = t.grid.latlon_of(int(rng.integers(0, t.rows)), int(rng.integers(0, t.cols)))
            waypoints.append([float(lat), float(lon)])
        closed = bool(k % 2)
        got = route_cells(model, unit, waypoints, closed=closed)
        want = route_cells_reference(model, unit, waypoints, closed=closed)
        assert got.dtype == want.dtype and got.flags.writeable
        np.testing.assert_array_equal(got, want)
