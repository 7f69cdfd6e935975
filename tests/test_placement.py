"""Insurgent cells placed in an area start out of sight of hostile posts (sim.rules.placement)."""

from __future__ import annotations

import numpy as np

from sim.engine.model import DesertModel
from sim.rules.placement import STANDOFF_MARGIN_KM, out_of_sight

THEATRE = "scenarios/badia_theatre.yaml"


def test_out_of_sight_keeps_only_cells_beyond_each_posts_range_and_falls_back_to_all():
    cols, km = 100, 1.0
    cand = np.array([0 * cols + 0, 0 * cols + 10, 0 * cols + 50], dtype=np.int64)
    post = np.array([0 * cols + 5])
    kept = out_of_sight(cand, post, np.array([50.0]), cols, km)  # every candidate in sight
    assert list(kept) == list(cand)  # nothing out of sight: the scenario's area stands
    kept = out_of_sight(cand, post, np.array([2.0]), cols, km)  # reach 2 + 2 = 4 km
    assert list(kept) == [0, 10, 50]
    kept = out_of_sight(cand, np.array([0 * cols + 9]), np.array([2.0]), cols, km)
    assert list(kept) == [0, 50]  # 10 is 1 km from the post


def test_theatre_cells_start_beyond_every_hostile_posts_day_range():
    for seed in (1, 2, 3):
        m = DesertModel(THEATRE, rng=seed)
        f = m.force
        posts = [(u.cell, float(f.sensor_day_km[u.idx])) for u in m.units
                 if u.kind in ("strongpoint", "border_post") and u.faction != "insurgents"]
        cols, km = m.terrain.cols, m.terrain.grid.cell_km
        for u in m.units:
            if u.faction != "insurgents" or m.spec.units[u.spec_index].at not in m.terrain.areas:
                continue
            r, c = divmod(u.cell, cols)
            for cell, reach in posts:
                pr, pc = divmod(cell, cols)
                assert np.hypot(r - pr, c - pc) * km >= reach + STANDOFF_MARGIN_KM, (u.name, seed)
