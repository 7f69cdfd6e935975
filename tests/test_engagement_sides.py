"""An engagement's sides: the plain-Python sum-up of one or two units against numpy's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.engine.model import DesertModel
from sim.rules import combat, engagements
from sim.rules.engagements import EXPOSED_CONCEALMENT_FACTOR, _side_scalar
from sim.rules.state import Posture

SCEN = Path(__file__).resolve().parent.parent / "scenarios"


def side_reference(model, members, surprised) -> combat.SideState:
    """The side as numpy sums it up (``_side`` for any number of units)."""
    f = model.force
    t = model.terrain
    idx = np.asarray(members)
    strength = f.strength[idx]
    total = int(strength.sum())
    rate = float((f.kill_rate_per_hour[idx] * strength).sum() / total) if total else 0.0
    cells = f.row[idx].astype(np.int64) * t.cols + f.col[idx]
    concealment = float(t.concealment.ravel()[cells].max())
    hidden = (f.posture[idx] == int(Posture.HIDDEN)).any()
    ammo_hours = float(f.ammo_days[idx].min()) * model.config.supplies.fire_hours_per_ammo_day
    return combat.SideState(
        strength=total,
        kill_rate_per_hour=rate,
        fortified=bool(f.fortified[idx].any()),
        concealment=concealment if hidden else concealment * EXPOSED_CONCEALMENT_FACTOR,
        ammo_hours=ammo_hours,
        breakoff_loss_fraction=float(f.breakoff[idx].min()),
        surprised=surprised,
    )


def _same(a: combat.SideState, b: combat.SideState) -> bool:
    """Equal, signed zeros told apart (``0.0 == -0.0`` would hide a difference)."""
    for name in a.__slots__:
        x, y = getattr(a, name), getattr(b, name)
        if x != y or type(x) is not type(y):
            return False
        if isinstance(x, float) and np.copysign(1.0, x) != np.copysign(1.0, y):
            return False
    return True


@pytest.fixture(scope="module")
def model():
    return DesertModel(SCEN / "outpost_night_raid.yaml", rng=1)


@pytest.mark.parametrize("seed", range(20))
def test_side_of_one_or_two_units_is_numpys(model, seed):
    rng = np.random.default_rng(seed)
    f = model.force
    t = model.terrain
    n = f.n
    for _ in range(50):
        members = [int(i) for i in rng.choice(n, size=int(rng.integers(1, 3)), replace=False)]
        for i in members:  # random columns, with ties and signed zeros
            f.strength[i] = float(rng.choice([0.0, 1.0, rng.integers(1, 50)]))
            f.kill_rate_per_hour[i] = float(rng.choice([0.0, -0.0, rng.uniform(0, 2)]))
            f.row[i], f.col[i] = rng.integers(0, t.rows), rng.integers(0, t.cols)
            f.posture[i] = int(rng.choice(list(Posture)))
            f.ammo_days[i] = float(rng.choice([0.0, -0.0, 1.0, rng.uniform(0, 5)]))
            f.fortified[i] = bool(rng.random() < 0.3)
            f.breakoff[i] = float(rng.choice([0.0, -0.0, 0.5, rng.uniform()]))
        surprised = bool(rng.random() < 0.5)
        assert _same(_side_scalar(model, members, surprised),
                     side_reference(model, members, surprised)), members
        assert _same(engagements._side(model, members, surprised),
                     side_reference(model, members, surprised))


def test_larger_sides_are_summed_up_by_numpy(model):
    members = list(range(min(model.force.n, engagements.SCALAR_SIDE_MEMBERS + 3)))
    assert _same(engagements._side(model, members, False), side_reference(model, members, False))
