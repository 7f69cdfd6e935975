"""The supply hour's compiled kernel (``sim.rules.supplies.supply_hour``) against its numpy
reference (``consume`` then ``resupply``, ``BADIA_KERNELS=numpy``): the same water, fuel and
ammunition to the bit, hour after hour, on random forces, maps and supply points."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from sim import compiled
from sim.rules.force import ForceTable
from sim.rules.supplies import SupplyConfig, SupplyPoints, supply_hour

ROWS, COLS, FACTIONS = 6, 7, 3
CFG = SupplyConfig()
#: Supplies on the edges of the rules: empty (both zeros), exactly one hour's use (the
#: difference is an exact zero), a hair above it, unknown (NaN must stay NaN), below zero.
EDGES = (0.0, -0.0, CFG.water_days_per_hour_moving, CFG.water_days_per_hour_resting,
         1.0 / CFG.driving_hours_per_fuel_day, np.nextafter(CFG.water_days_per_hour_moving, 1.0),
         np.nan, -0.25)  # fmt: skip


def _random_force(rng, capacity: int, n: int) -> ForceTable:
    f = ForceTable(capacity)
    for _ in range(n):
        cap = rng.uniform(0.5, 5.0, 3)
        days = rng.uniform(0.0, 1.2, 3) * cap
        edge = rng.random(3) < 0.3
        days[edge] = rng.choice(EDGES, size=int(edge.sum()))
        f.add(row=int(rng.integers(ROWS)), col=int(rng.integers(COLS)),
              faction=int(rng.integers(FACTIONS)), alive=bool(rng.random() < 0.85),
              vehicles=float(rng.integers(0, 3)), water_days=days[0], fuel_days=days[1],
              ammo_days=days[2], water_cap=cap[0], fuel_cap=cap[1], ammo_cap=cap[2])  # fmt: skip
    return f


def _copy(f: ForceTable) -> ForceTable:
    g = ForceTable(len(f.alive))
    for name in ForceTable.FLOAT_COLUMNS + ForceTable.INT_COLUMNS + ForceTable.BOOL_COLUMNS:
        getattr(g, name)[:] = getattr(f, name)
    g.n = f.n
    return g


def test_the_kernel_gives_the_numpy_rules_supplies_to_the_bit(monkeypatch):
    rng = np.random.default_rng(13)
    for _ in range(80):
        n = int(rng.integers(1, 40))
        terrain = SimpleNamespace(rows=ROWS, cols=COLS, cave=rng.random((ROWS, COLS)) < 0.3,
                                  water_available=rng.random((ROWS, COLS)) < 0.3)
        refill = rng.random(FACTIONS) < 0.5
        ours = _random_force(rng, n + 3, n)
        theirs = _copy(ours)
        idx = rng.choice(n, size=min(n, 5), replace=False)
        # each takes the path $BADIA_KERNELS says at its first hour
        fast, slow = (SupplyPoints(idx, FACTIONS, (ROWS, COLS)) for _ in range(2))
        for _hour in range(6):
            moving = rng.random(n) < 0.5
            monkeypatch.setenv(compiled.ENV_KERNELS, "numba")
            supply_hour(ours, n, moving, CFG, terrain, refill, fast)
            monkeypatch.setenv(compiled.ENV_KERNELS, "numpy")
            supply_hour(theirs, n, moving, CFG, terrain, refill, slow)
            for name in ("water_days", "fuel_days", "ammo_days"):
                assert getattr(ours, name).tobytes() == getattr(theirs, name).tobytes(), name
            if rng.random() < 0.3:  # the factions refilled at any cave change (a campaign's)
                refill = rng.random(FACTIONS) < 0.5
            k = int(rng.integers(n))  # a unit (perhaps a supply point) dies or comes back
            ours.alive[k] = theirs.alive[k] = not ours.alive[k]
            k = int(rng.integers(n))  # and one moves
            ours.row[k] = theirs.row[k] = int(rng.integers(ROWS))
        assert fast._compiled and not slow._compiled


def test_a_new_terrain_gets_its_own_land_codes(monkeypatch):
    """The kernel's land codes are kept per terrain: supplies on another map (all water there,
    none here) follow that map's cells."""
    f = _random_force(np.random.default_rng(2), 8, 8)
    f.alive[:] = True
    monkeypatch.setenv(compiled.ENV_KERNELS, "numba")
    points = SupplyPoints(np.zeros(0, dtype=np.int64), FACTIONS, (ROWS, COLS))
    moving = np.zeros(8, dtype=bool)
    refill = np.zeros(FACTIONS, dtype=bool)
    dry = SimpleNamespace(rows=ROWS, cols=COLS, cave=np.zeros((ROWS, COLS), dtype=bool),
                          water_available=np.zeros((ROWS, COLS), dtype=bool))
    wet = SimpleNamespace(rows=ROWS, cols=COLS, cave=dry.cave, water_available=~dry.water_available)
    f.water_days[:8] = 1.0
    supply_hour(f, 8, moving, CFG, dry, refill, points)
    assert (f.water_days[:8] < 1.0).all()
    supply_hour(f, 8, moving, CFG, wet, refill, points)
    assert f.water_days[:8].tobytes() == f.water_cap[:8].tobytes()
