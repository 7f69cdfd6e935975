"""Garrison coverage counted by the compiled kernel (``Metrics._covered_counts``) against its
numpy reference (``Metrics._covered_counts_numpy``, ``BADIA_KERNELS=numpy``): the same road
and area fractions to the bit, sample after sample, on random forces that move, die, come
back, stop (posts) and start again, change sensors and grow, by day and by night."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from test_mines import build, scenario

from sim import compiled
from sim.engine import metrics as metrics_module
from sim.engine.metrics import Metrics
from sim.rules.force import ForceTable

#: Sensor ranges drawn (km, on the 12 x 6 km map's 250 m cells): none, a cell (exactly: the
#: neighbours on the range), a few cells, a quarter of the map.
RANGES = (0.0, 0.25, 0.6, 1.0, 3.0)
CAPACITY = 70


def _random_force(rng, model) -> ForceTable:
    """40 units, six in ten of the garrison faction (the first), a few dead."""
    f = ForceTable(CAPACITY)
    rows, cols = model.terrain.rows, model.terrain.cols
    for _ in range(40):
        # posts do not move at all; some others move on roads only (and are not posts)
        post = rng.random() < 0.3
        f.add(row=int(rng.integers(rows)), col=int(rng.integers(cols)),
              faction=0 if rng.random() < 0.6 else int(rng.integers(1, len(model.faction_names))),
              alive=bool(rng.random() < 0.9), speed_kmh=0.0 if post else 30.0,
              offroad_speed_kmh=0.0 if post or rng.random() < 0.2 else 10.0,
              sensor_day_km=float(rng.choice(RANGES)),
              sensor_night_km=float(rng.choice(RANGES)))  # fmt: skip
    return f


def _change(rng, f: ForceTable, rows: int, cols: int) -> None:
    """An hour or three of a run: a few units move (two of them to join a third), posts too
    (the posts' union is kept until a post is lost, stops, starts or changes its sensors, or
    units are added, whatever the cells), and now and then one dies or comes back, stops or
    starts again, a post changes its sensors, or new units join; often none of those."""
    n = f.n
    k = rng.integers(n, size=4)
    f.row[k], f.col[k] = rng.integers(rows, size=4), rng.integers(cols, size=4)
    # two join the third, with its sensors: three units with one key, new to the store
    for name in ("row", "col", "sensor_day_km", "sensor_night_km"):
        column = getattr(f, name)
        column[k[0]] = column[k[1]] = column[k[2]]
    if rng.random() < 0.25:
        k = int(rng.integers(n))
        f.alive[k] = not f.alive[k]
    if rng.random() < 0.25:
        k = int(rng.integers(n))
        f.speed_kmh[k] = f.offroad_speed_kmh[k] = 0.0 if f.speed_kmh[k] else 20.0
    posts = np.flatnonzero((f.speed_kmh[:n] <= 0) & (f.offroad_speed_kmh[:n] <= 0))
    if rng.random() < 0.25 and len(posts):
        k = int(rng.choice(posts))
        f.sensor_day_km[k], f.sensor_night_km[k] = rng.choice(RANGES, size=2)
    if rng.random() < 0.1 and n < CAPACITY - 3:
        for _ in range(3):
            f.add(row=int(rng.integers(rows)), col=int(rng.integers(cols)), faction=0,
                  alive=True, speed_kmh=30.0, sensor_day_km=3.0, sensor_night_km=1.5)


@pytest.mark.parametrize("small_store", [False, True])
def test_the_kernel_counts_the_numpy_coverage_to_the_bit(monkeypatch, small_store):
    """With a small store (a few keys kept, a small first table) the kernel's table grows,
    its keys are moved, and it starts afresh many times along the way."""
    if small_store:
        monkeypatch.setattr(metrics_module, "POINTS_KEPT", 40)
        monkeypatch.setattr(metrics_module, "_SLOTS_START", 8)
    model = build(scenario([]), seed=1)
    rows, cols = model.terrain.rows, model.terrain.cols
    rng = np.random.default_rng(5)
    for _ in range(6):
        fast, slow = Metrics(model), Metrics(model)
        assert fast._n_road > 0  # the map's road is sampled
        f = _random_force(rng, model)
        state = SimpleNamespace(force=f)
        for _sample in range(40):
            night = bool(rng.random() < 0.5)
            monkeypatch.setenv(compiled.ENV_KERNELS, "numba")
            got = fast.coverage(state, night)
            monkeypatch.setenv(compiled.ENV_KERNELS, "numpy")
            want = slow.coverage(state, night)
            assert np.array(got).tobytes() == np.array(want).tobytes()
            assert fast._coverage == got
            _change(rng, f, rows, cols)
        assert fast._compiled and not slow._compiled


def test_a_grown_table_finds_the_keys_kept_without_looking_them_up(monkeypatch):
    """The table grows (twice as many units as it had room for) by moving its keys: units
    where units were before, with the same sensors, are counted without a tree query."""
    monkeypatch.setattr(metrics_module, "_SLOTS_START", 8)
    monkeypatch.setenv(compiled.ENV_KERNELS, "numba")
    model = build(scenario([]), seed=1)
    metrics = Metrics(model)
    f = _random_force(np.random.default_rng(3), model)
    state = SimpleNamespace(force=f)
    first = metrics.coverage(state, False)
    size = len(metrics._table)
    columns = ForceTable.FLOAT_COLUMNS + ForceTable.INT_COLUMNS + ForceTable.BOOL_COLUMNS
    for i in range(CAPACITY - f.n):  # copies of the units there are
        f.add(**{name: getattr(f, name)[i] for name in columns})
    metrics._within = lambda *_: pytest.fail("a key kept was looked up again")
    assert metrics.coverage(state, False) == first
    assert len(metrics._table) > size


def test_coverage_is_the_same_whatever_other_runs_on_the_terrain_have_stored(monkeypatch):
    """The points seen from a (cell, range) are kept on the terrain for every model on it (a
    batch worker's runs): a run's coverage, day by day, is the same on a terrain whose store
    is empty, filled by another seed's run, or cut short by its bound."""
    from sim.engine.model import DesertModel

    theatre = "scenarios/badia_theatre.yaml"
    columns = ["coverage_road_day", "coverage_road_night", "coverage_area_day",
               "coverage_area_night"]

    def coverage(seed: int) -> tuple[bytes, dict]:
        model = DesertModel(theatre, rng=seed, overrides=["days=4"])
        model.run_for_hours(model.spec.hours)
        daily = model.result().daily
        assert set(columns) <= set(daily.columns)
        return daily[columns].to_numpy().tobytes(), model.metrics._points_seen

    store = DesertModel(theatre, rng=1).metrics._points_seen
    store.clear()
    alone, _ = coverage(1)
    assert len(store) > 50
    coverage(2)  # another seed's units fill the store further
    assert coverage(1)[0] == alone
    monkeypatch.setattr(metrics_module, "POINTS_KEPT", 40)  # cleared again and again
    store.clear()
    assert coverage(1)[0] == alone
