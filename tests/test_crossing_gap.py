"""A border crossing's route by way of a gap, against the rule as first written (which also
asked for a route from the unit to the target, only to learn whether there was one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.engine.model import DesertModel
from sim.rules.state import Posture
from sim.scenario.vocab import MOBILITIES
from sim.tactics.crossing import BorderCrossing

SCEN = Path(__file__).resolve().parent.parent / "scenarios"


def travel_via_gap_reference(b: BorderCrossing, target: int) -> bool:
    u = b.unit
    gap = b.gap(u.cell, target)
    if not u.go_to(gap, Posture.MOVING):
        return u.go_to(target, Posture.MOVING)
    first = u.path
    if not u.go_to(target, Posture.MOVING):
        return False
    second = b.model.router.local_path(
        gap, target, MOBILITIES[int(b.model.force.mobility[u.idx])],
        b.model.barred_zones[b.model.force.faction[u.idx]],
    )
    u.follow(np.concatenate([first, second[1:]]), Posture.MOVING)
    return True


def test_travel_via_gap_is_the_rule_with_the_extra_route():
    model = DesertModel(SCEN / "border_crossing.yaml", rng=1)
    t = model.terrain
    f = model.force
    crossers = [u.behaviour for u in model.units if isinstance(u.behaviour, BorderCrossing)]
    assert crossers
    rng = np.random.default_rng(0)
    mob = MOBILITIES[int(f.mobility[crossers[0].unit.idx])]
    impassable = np.flatnonzero(~np.isfinite(t.move_cost[mob]).ravel())
    assert len(impassable)
    outcomes = set()
    for k in range(40):
        b = crossers[k % len(crossers)]
        u = b.unit
        # from and to random cells, some impassable (no route), some the same cell
        start = int(rng.integers(0, t.rows * t.cols))
        choices = [int(rng.integers(0, t.rows * t.cols)), b.rendezvous, b.home_cell, start]
        choices.append(int(impassable[rng.integers(len(impassable))]))
        target = int(choices[k % len(choices)])
        results = []
        for rule in (travel_via_gap_reference, BorderCrossing.travel_via_gap):
            f.row[u.idx], f.col[u.idx] = divmod(start, t.cols)
            u.halt(Posture.HIDDEN)
            ok = rule(b, target)
            results.append((ok, u.path.tolist(), u.path_hours.tolist(), int(f.posture[u.idx])))
        assert results[0] == results[1], (start, target)
        outcomes.add(results[0][0])
    assert outcomes == {True, False}  # both ends of the rule were tried
