"""Run metrics counted the way analysts read them: zone entries on every cell a unit passes."""

from __future__ import annotations

import numpy as np

from sim.engine.model import DesertModel
from sim.scenario.loading import parse_scenario

ROWS, COLS = 80, 12
STRIP = range(36, 42)      # six 250 m rows: a 1.5 km zone strip across the map
MID = 39                   # the strip's middle line: rows above it are north of it


def _strip_scenario(days: float) -> dict:
    lines = ["Z" * COLS if r in STRIP else "." * COLS for r in range(ROWS)]
    return {
        "name": "zone strip", "seed": 1, "start": "2018-06-01T00:00", "days": days,
        "map": {"cell_km": 0.25, "centre": {"lat": 34.5, "lon": 38.5},
                "ascii": "\n".join(lines),
                "legend": {".": {"ground": "flat"}, "Z": {"ground": "flat", "zone": "Strip"}},
                "zones": [{"name": "Strip", "barred": []}],
                "places": [{"name": "South", "kind": "base", "cell": [75, 6]},
                           {"name": "North", "kind": "outpost", "cell": [5, 6]}]},
        "factions": {"government": {"role": "garrison", "hostile": []}},
        # 17.5 km each way at 10 km/h: a leg takes longer than an hour, so the hour-end
        # positions show every crossing of the strip, which takes a few minutes
        "units": [{"kind": "patrol", "faction": "government", "count": 1,
                   "at": "South", "offroad_speed_kmh": 10, "speed_kmh": 10,
                   "tactic": {"kind": "patrol", "schedule": "always", "period_hours": 4,
                              "route": ["South", "North"]}}],
    }  # fmt: skip


def test_a_patrol_crossing_a_zone_strip_is_counted_at_every_crossing():
    """Each time the patrol's side of the strip changes between two hour ends it drove through
    the strip once; zone_entries counts exactly those, though it rarely ends an hour inside."""
    model = DesertModel(parse_scenario(_strip_scenario(2), "<strip>"), rng=3)
    zone = model.terrain.zone
    sides, ended_inside = [], 0
    for _ in range(48):
        model.step()
        r, c = int(model.force.row[0]), int(model.force.col[0])
        sides.append(r >= MID)
        ended_inside += zone[r, c] >= 0
    crossings = int(np.sum(np.diff(np.array(sides, dtype=int)) != 0))
    entries = model.metrics.totals["zone_entries"]
    assert crossings >= 20, crossings           # about 12 rounds out and back in two days
    assert entries == crossings
    # counting only where each hour ends (the old rule) would have missed most of them
    assert ended_inside < crossings / 2
    assert model.metrics.totals.get("zone_entries_barred", 0) == 0
