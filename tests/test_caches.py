"""Caches (``campaign.caches``, :mod:`sim.rules.caches`): a cache gives what it holds and no
more, an empty one gives nothing, stocks grow back at the stated rate, and a scenario without
the section runs exactly as before."""

from __future__ import annotations

import json
from pathlib import Path

import golden_outputs
import numpy as np
import pytest
from test_recruitment import WEST, campaign_scenario, cells_at, flat, model_of

from sim.rules.caches import HOURS_PER_MONTH, Caches, draw
from sim.rules.force import ForceTable
from sim.scenario.campaign import CachesSpec

REPO = Path(__file__).resolve().parent.parent


def _spec(**kw) -> CachesSpec:
    return CachesSpec(faction="insurgents", hides=["West caves"], **kw)


def _force(units: list[tuple[int, int, float, float]]) -> ForceTable:
    """Units (faction, flat cell on a 10-column map, days of each supply, capacity)."""
    f = ForceTable(len(units))
    for fac, cell, days, cap in units:
        r, c = divmod(cell, 10)
        f.add(row=r, col=c, faction=fac, alive=True, strength=5, water_days=days, fuel_days=days,
              ammo_days=days, water_cap=cap, fuel_cap=cap, ammo_cap=cap)  # fmt: skip
    return f


# --------------------------------------------------------------------------- the pure law
def test_takers_get_in_turn_what_is_left_and_the_stock_falls_by_what_is_given():
    stock = np.array([5.0, 0.0, 10.0])
    slot = np.array([0, 0, 0, 1, 2])
    want = np.array([2.0, 2.5, 3.0, 4.0, 1.0])
    give = draw(stock, slot, want)
    assert give.tolist() == [2.0, 2.5, 0.5, 0.0, 1.0]  # the third taker gets what is left
    assert stock.tolist() == [0.0, 0.0, 9.0]
    assert draw(stock, np.array([0, 1]), np.array([1.0, 1.0])).tolist() == [0.0, 0.0]  # empty


def test_cells_resting_on_a_cache_draw_it_down_and_an_empty_cache_gives_nothing():
    caches = Caches([(1, np.array([3, 7]), _spec(stock_days_per_cache=4.0, ammo=False))], 2, 100)
    f = _force([(1, 3, 1.0, 3.0), (1, 3, 0.0, 3.0), (1, 7, 2.0, 3.0), (0, 7, 0.0, 3.0),
                (1, 5, 0.0, 3.0)])  # fmt: skip
    resting = np.array([True, True, True, True, True])
    before = caches.stock.copy()
    caches.supply(f, f.n, 10, resting)
    # cache at 3: 4 days; the first cell wants 2, the second 3 -> gets the 2 left
    assert f.water_days[:5].tolist() == [3.0, 2.0, 3.0, 0.0, 0.0]
    assert f.fuel_days[:5].tolist() == [3.0, 2.0, 3.0, 0.0, 0.0]
    assert f.ammo_days[:5].tolist() == [1.0, 0.0, 2.0, 0.0, 0.0]  # no ammunition stocked
    given = np.array([[4.0, 4.0, 0.0], [1.0, 1.0, 0.0]])
    np.testing.assert_allclose(before - caches.stock, given)
    # the empty cache gives nothing, the other what it has left; a moving unit draws nothing
    f.water_days[:3] = 0.0
    caches.supply(f, f.n, 10, np.array([True, True, False, True, True]))
    assert f.water_days[:3].tolist() == [0.0, 0.0, 0.0]
    caches.supply(f, f.n, 10, resting)
    assert f.water_days[:3].tolist() == [0.0, 0.0, 3.0]
    np.testing.assert_allclose(caches.stock[:, 0], [0.0, 0.0])


def test_ammunition_is_drawn_only_from_caches_that_stock_it():
    caches = Caches([(0, np.array([1]), _spec(stock_days_per_cache=2.0, ammo=True))], 1, 100)
    f = _force([(0, 1, 0.0, 5.0)])
    caches.supply(f, 1, 10, np.array([True]))
    assert f.ammo_days[0] == 2.0 and caches.stock[0].tolist() == [0.0, 0.0, 0.0]


def test_stocks_grow_back_at_the_refill_rate_up_to_full():
    caches = Caches([(0, np.array([1, 2]), _spec(stock_days_per_cache=10.0,
                                                 refill_days_per_month=6.0))], 1, 100)
    caches.stock[:] = 0.0
    caches.refill(hours=HOURS_PER_MONTH / 2)  # half a month: 3 days
    np.testing.assert_allclose(caches.stock, 3.0)
    for _ in range(HOURS_PER_MONTH):
        caches.refill()
    np.testing.assert_allclose(caches.stock, 9.0)
    caches.refill(hours=10 * HOURS_PER_MONTH)
    np.testing.assert_allclose(caches.stock, 10.0)


def test_a_cell_in_a_cache_cave_refills_from_the_stock_and_only_there():
    units = [cells_at("West caves", 1, 6), cells_at("East caves", 1, 6)]
    campaign = {"caches": [{"faction": "insurgents", "hides": ["West caves"],
                            "stock_days_per_cache": 1.0, "refill_days_per_month": 0.0}]}
    model = model_of(campaign_scenario(units, campaign, days=4))
    f = model.force
    west, _ = model.units
    f.water_days[:2] = 1.0  # not dry enough to go for water
    f.ammo_days[:2] = 0.0
    model.step()
    cache = model.caches.cache_of(model.faction_index["insurgents"], west.cell)
    assert west.cell in flat(WEST) and cache >= 0
    water_per_hour = model.config.supplies.water_days_per_hour_resting
    # the west cell drew from its cache (ammunition too); the east one is at a plain cave
    assert f.ammo_days[0] == pytest.approx(1.0) and f.ammo_days[1] == 0.0
    assert f.water_days[0] == pytest.approx(2.0 - water_per_hour)
    assert f.water_days[1] < 1.0  # no cache, no free refill either
    np.testing.assert_allclose(model.caches.stock[cache], [0.0, 1.0, 0.0])  # fuel: full already
    for _ in range(10):
        model.step()
    assert f.water_days[0] == pytest.approx(2.0 - 11 * water_per_hour)  # an empty cache: none


def test_without_caches_insurgents_refill_water_and_fuel_at_any_cave_and_never_ammunition():
    model = model_of(campaign_scenario([cells_at("West caves", 1, 6)], None, days=2))
    f = model.force
    f.water_days[0], f.fuel_days[0], f.ammo_days[0] = 0.1, 0.1, 0.1
    model.step()
    assert (f.water_days[0], f.fuel_days[0], f.ammo_days[0]) == (3.0, 3.0, 0.1)
    assert model.caches is None


def test_without_the_section_outputs_are_byte_identical():
    golden = json.loads((REPO / "tests" / "golden" / "hashes.json").read_text())
    path = REPO / "scenarios" / "cave_sweep.yaml"
    assert golden_outputs.hashes_of(path) == golden["cave_sweep"]


# ---------------------------------------------------------------- the hourly supply rules
def _consume_reference(force, n, moving, cfg) -> None:
    """``consume`` as first written: every unit's water and fuel through ``np.where``."""
    water = np.where(moving, cfg.water_days_per_hour_moving, cfg.water_days_per_hour_resting)
    force.water_days[:n] = np.maximum(force.water_days[:n] - water, 0.0)
    fuel = np.where(moving & (force.vehicles[:n] > 0), 1.0 / cfg.driving_hours_per_fuel_day, 0.0)
    force.fuel_days[:n] = np.maximum(force.fuel_days[:n] - fuel, 0.0)


def _resupply_reference(force, n, terrain, insurgent_faction, points) -> None:
    """``resupply`` as first written: each refill in turn over every unit, with a bool layer
    of the factions' living supply points."""
    t = terrain
    p = points.points
    layer = np.zeros((points.n_factions, t.rows * t.cols), dtype=bool)
    live = p[force.alive[p]]
    layer[force.faction[live], force.cells(live, t.cols)] = True
    cells = force.cells(slice(0, n), t.cols)
    fac = force.faction[:n]
    full = layer[fac, cells] & force.alive[:n]
    water_here = t.water_available.ravel()[cells]
    cache = insurgent_faction[fac] & t.cave.ravel()[cells]
    water_here |= cache
    force.water_days[:n] = np.where(water_here & ~full, force.water_cap[:n], force.water_days[:n])
    force.fuel_days[:n] = np.where(cache & ~full, force.fuel_cap[:n], force.fuel_days[:n])
    for name in ("water", "fuel", "ammo"):
        days = getattr(force, f"{name}_days")
        cap = getattr(force, f"{name}_cap")
        days[:n] = np.where(full, cap[:n], days[:n])


def _random_force(rng, capacity: int, n: int, rows: int, cols: int, factions: int) -> ForceTable:
    f = ForceTable(capacity)
    for _ in range(n):
        cap = rng.uniform(0.5, 5.0, 3)
        # supplies at, below and above nothing: exact zeros, a little, the cap
        days = np.where(rng.random(3) < 0.2, 0.0, rng.uniform(0.0, 1.2, 3) * cap)
        f.add(row=int(rng.integers(rows)), col=int(rng.integers(cols)),
              faction=int(rng.integers(factions)), alive=bool(rng.random() < 0.9),
              vehicles=float(rng.integers(0, 3)), water_days=days[0], fuel_days=days[1],
              ammo_days=days[2], water_cap=cap[0], fuel_cap=cap[1], ammo_cap=cap[2])  # fmt: skip
    return f


def test_consume_and_resupply_equal_the_rules_applied_one_after_the_other():
    """Spending only the driving units' fuel, and copying each cap once where any refill
    applies, leave every unit's water, fuel and ammunition bit for bit as the rules written
    refill by refill over all units do, on random forces (dead units, units on foot, empty
    and full supplies), maps and supply points, hour after hour."""
    from types import SimpleNamespace

    from sim.rules.supplies import SupplyConfig, SupplyPoints, consume, resupply

    rng = np.random.default_rng(21)
    cfg = SupplyConfig()
    for _ in range(60):
        rows, cols, factions = 6, 7, 3
        n = int(rng.integers(1, 40))
        terrain = SimpleNamespace(rows=rows, cols=cols, cave=rng.random((rows, cols)) < 0.2,
                                  water_available=rng.random((rows, cols)) < 0.2)
        insurgent = rng.random(factions) < 0.5
        ours = _random_force(rng, n + 3, n, rows, cols, factions)
        theirs = _random_force(np.random.default_rng(0), n + 3, 0, rows, cols, factions)
        for name in ForceTable.FLOAT_COLUMNS + ForceTable.INT_COLUMNS + ForceTable.BOOL_COLUMNS:
            getattr(theirs, name)[:] = getattr(ours, name)
        theirs.n = n
        points = SupplyPoints(rng.choice(n, size=min(n, 4), replace=False), factions,
                              (rows, cols))
        for _hour in range(5):
            moving = rng.random(n) < 0.5
            consume(ours, n, moving, cfg)
            _consume_reference(theirs, n, moving, cfg)
            resupply(ours, n, terrain, insurgent, points)
            _resupply_reference(theirs, n, terrain, insurgent, points)
            for name in ("water_days", "fuel_days", "ammo_days"):
                assert getattr(ours, name).tobytes() == getattr(theirs, name).tobytes(), name
            if rng.random() < 0.3:  # the factions refilled at any cave change (a campaign's)
                insurgent = rng.random(factions) < 0.5
            k = int(rng.integers(n))  # a unit (perhaps a supply point) dies or comes back
            ours.alive[k] = theirs.alive[k] = not ours.alive[k]
            k = int(rng.integers(n))  # and one moves
            ours.row[k] = theirs.row[k] = int(rng.integers(rows))
