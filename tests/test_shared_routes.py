"""Routes through waypoints shared by a group of units (``sim.tactics.base.shared_route``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.engine.model import DesertModel
from sim.tactics.base import route_cells, shared_route
from sim.tactics.garrison import Escort, Patrol

SCEN = Path(__file__).resolve().parent.parent / "scenarios"


@pytest.fixture(scope="module")
def theatre() -> DesertModel:
    return DesertModel(SCEN / "badia_theatre.yaml", rng=1, overrides=["days=1"])


def test_forms_are_route_cells(theatre):
    """Each form holds route_cells' cells (reversed, or out and back), read-only."""
    m = theatre
    u = next(u for u in m.units if isinstance(u.behaviour, Patrol) and u.behaviour.waypoints)
    wps = u.behaviour.waypoints
    out = route_cells(m, u, wps)
    shared = {form: shared_route(m, u, wps, form) for form in ("out", "back", "round")}
    np.testing.assert_array_equal(shared["out"], out)
    np.testing.assert_array_equal(shared["back"], out[::-1])
    np.testing.assert_array_equal(shared["round"], np.concatenate([out, out[::-1][1:]]))
    for a in shared.values():
        assert a.dtype == np.int64 and not a.flags.writeable
    with pytest.raises(ValueError):
        shared_route(m, u, wps, "loop")


def test_a_group_shares_one_array(theatre):
    """Units from one cell through the same waypoints get the same array (in a second run on
    the terrain too); a unit starting elsewhere gets its own."""
    m = theatre
    groups: dict[tuple, list] = {}
    for u in m.units:
        if isinstance(u.behaviour, (Patrol, Escort)) and u.behaviour.waypoints:
            key = (u.cell, repr(u.behaviour.waypoints), int(m.force.mobility[u.idx]))
            groups.setdefault(key, []).append(u)
    key, group = max(groups.items(), key=lambda kv: len(kv[1]))
    assert len(group) > 1
    arrays = [shared_route(m, u, u.behaviour.waypoints, "round") for u in group]
    assert all(a is arrays[0] for a in arrays)
    other = DesertModel(SCEN / "badia_theatre.yaml", rng=2, overrides=["days=1"])
    twin = next(u for u in other.units if u.name == group[0].name)
    assert shared_route(other, twin, twin.behaviour.waypoints, "round") is arrays[0]
    elsewhere = next(units[0] for k, units in groups.items() if k[0] != key[0])
    assert shared_route(m, elsewhere, elsewhere.behaviour.waypoints, "round") is not arrays[0]
