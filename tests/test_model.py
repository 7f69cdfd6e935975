"""DesertModel: determinism, rules that must always hold, detection by light and concealment,
the event log, and `badia run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import golden_outputs
import numpy as np
import pandas as pd
import pytest

from sim import compiled
from sim.engine.model import DesertModel
from sim.engine.run import run_scenario
from sim.experiments.single import write_run
from sim.rules.state import Posture
from sim.scenario.loading import parse_scenario
from sim.scenario.vocab import MOBILITIES
from sim.world.clock import LightLevel

REPO = Path(__file__).resolve().parent.parent
OUTPOST = REPO / "scenarios" / "outpost_night_raid.yaml"


def open_map(rows: int = 40, cols: int = 40, zone_rows: range | None = None) -> dict:
    """An open, flat ASCII map (250 m cells) with an optional band of zone cells."""
    lines = []
    for r in range(rows):
        ch = "Z" if zone_rows is not None and r in zone_rows else "."
        lines.append(ch * cols)
    legend = {".": {"ground": "flat"}, "Z": {"ground": "flat", "zone": "Refuge"}}
    if zone_rows is None:
        legend.pop("Z")
    return {"cell_km": 0.25, "centre": {"lat": 34.5, "lon": 38.5}, "ascii": "\n".join(lines),
            "legend": legend}  # fmt: skip


def scenario(units: list[dict], *, days: float = 2, map_: dict | None = None, zones=None,
             start: str = "2018-06-01T12:00") -> dict:  # fmt: skip
    m = map_ or open_map()
    if zones:
        m["zones"] = zones
    return {
        "name": "test", "seed": 1, "start": start, "days": days, "map": m,
        "factions": {
            "government": {"role": "garrison", "hostile": ["insurgents"]},
            "insurgents": {"role": "insurgent", "hostile": ["government"]},
        },
        "units": units,
    }  # fmt: skip


# --------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_outputs_and_another_seed_does_not(tmp_path):
    runs = {}
    for label, seed in (("a", 5), ("b", 5), ("c", 6)):
        res = run_scenario(OUTPOST, seed=seed, days=6)
        model_out = tmp_path / label
        write_run(res, model_out)
        runs[label] = model_out
    for name in ("daily.parquet", "events.jsonl", "scenario.yaml"):
        assert (runs["a"] / name).read_bytes() == (runs["b"] / name).read_bytes(), name
    assert (runs["a"] / "events.jsonl").read_bytes() != (runs["c"] / "events.jsonl").read_bytes()
    daily = pd.read_parquet(runs["a"] / "daily.parquet")
    assert list(daily["day"]) == [1, 2, 3, 4, 5, 6]


def test_resolved_scenario_replays_the_run(tmp_path):
    res = run_scenario(OUTPOST, seed=9, days=3)
    path = tmp_path / "scenario.yaml"
    path.write_text(res.scenario.to_yaml())
    again = run_scenario(path, days=3)  # seed comes from the file
    pd.testing.assert_frame_equal(res.daily, again.daily)
    assert res.events == again.events


# --------------------------------------------------------------------------- rules
def test_barred_faction_never_stands_in_its_zone_over_a_long_run():
    """A QRF chases raiders who flee into a zone barred to it; hour by hour, no government unit
    is ever in the zone, and the chase is recorded as broken off at the zone."""
    zones = [{"name": "Refuge", "barred": ["government"]}]
    units = [
        {"faction": "government", "kind": "strongpoint", "at": [34.5, 38.5], "strength": 30,
         "night_sensor_range_km": 4},
        {"faction": "government", "kind": "qrf", "at": [34.47, 38.47], "strength": 20,
         "tactic": {"kind": "pursue", "max_range_km": 30}},
        {"faction": "insurgents", "kind": "cell", "count": 4, "at": [34.53, 38.52],
         "strength": 6, "tactic": {"kind": "night_raid", "targets": ["Post"]}},
    ]  # fmt: skip
    m = open_map(48, 48, zone_rows=range(0, 6))
    m["places"] = [{"name": "Post", "kind": "outpost", "lat": 34.5, "lon": 38.5}]
    data = scenario(units, days=20, map_=m, zones=zones)
    data["units"][0]["at"] = "Post"
    model = DesertModel(parse_scenario(data, source="test"), rng=3)
    t = model.terrain
    gov = model.faction_index["government"]
    assert (t.zone >= 0).sum() > 0
    for _ in range(model.spec.hours):
        model.step()
        f = model.force
        n = f.n
        in_zone = t.zone[f.row[:n], f.col[:n]] >= 0
        assert not (in_zone & f.alive[:n] & (f.faction[:n] == gov)).any(), model.hour
    assert model.metrics.totals.get("zone_entries_barred", 0) == 0


def _detections_per_hour(light_wanted, *, cave: bool, hours: int = 400) -> float:
    """Fraction of hours a stationary insurgent 1.5 km from a strongpoint is detected."""
    rows = ["." * 40 for _ in range(40)]
    if cave:
        rows[20] = rows[20][:26] + "C" + rows[20][27:]
    m = {"cell_km": 0.25, "centre": {"lat": 34.5, "lon": 38.5}, "ascii": "\n".join(rows),
         "legend": {".": {"ground": "flat"}, "C": {"ground": "rugged", "cave": True}}}  # fmt: skip
    units = [
        {"faction": "government", "kind": "strongpoint", "at": [34.5, 38.5], "strength": 20,
         "sensor_range_km": 3, "night_sensor_range_km": 3},
        {"faction": "insurgents", "kind": "cell", "at": [34.5, 38.5], "strength": 6},
    ]  # fmt: skip
    model = DesertModel(parse_scenario(scenario(units, days=30, map_=m), source="t"), rng=7)
    f = model.force
    f.row[0], f.col[0] = 20, 20
    f.row[1], f.col[1] = 20, 26  # 6 cells x 250 m = 1.5 km east
    model._prev_rc[:2] = [[20, 20], [20, 26]]
    f.posture[1] = int(Posture.RESTING)
    hits = trials = 0
    for h in range(24 * 30):
        model.hour = h
        if model.light_by_hour[h] != light_wanted:
            continue
        det = model._detect()
        hits += int((det.target == 1).any())
        trials += 1
        if trials >= hours:
            break
    return hits / trials


def test_detection_is_rarer_at_night_and_rarer_in_a_cave():
    day_open = _detections_per_hour(LightLevel.DAY, cave=False)
    night_open = _detections_per_hour(LightLevel.NIGHT, cave=False)
    day_cave = _detections_per_hour(LightLevel.DAY, cave=True)
    # 400 hours each: a binomial standard error of at most 0.025; demand 4 of them
    assert day_open - night_open > 0.1, (day_open, night_open)
    assert day_open - day_cave > 0.1, (day_open, day_cave)
    assert 0 < night_open < 1 and 0 < day_cave < 1


def test_every_engagement_is_logged_with_time_place_sides_and_losses():
    res = run_scenario(OUTPOST, seed=2, days=10)
    engagements = [e for e in res.events if e["type"] == "engagement"]
    assert engagements, "the outpost scenario should see fighting in 10 days"
    for e in engagements:
        assert {"hour", "day", "row", "col", "lat", "lon", "faction", "defender_faction",
                "attacker", "defender", "losses"} <= set(e)  # fmt: skip
        assert e["faction"] != e["defender_faction"]
        assert all(v >= 0 for v in e["losses"].values())
    total = res.daily.filter(like="losses__").to_numpy().sum()
    assert total == sum(sum(e["losses"].values()) for e in engagements)


def test_the_hour_counts_mesas_time_and_steps_as_mesas_own_step_does():
    """The model steps itself, not through Mesa's event list: Mesa's ``time`` and ``steps``
    still count as a Mesa model's do, ``run_for`` and ``run_until`` step whole hours, and the
    event list refuses events it would never run."""
    import mesa

    class Plain(mesa.Model):
        def step(self):
            pass

    plain, model = Plain(rng=1), DesertModel(OUTPOST, rng=1)
    for _ in range(5):
        plain.step()
        model.step()
    assert (model.time, model.steps, model.hour) == (plain.time, plain.steps, 5)
    plain.run_for(3)
    model.run_for(3)
    assert (model.time, model.steps, model.hour) == (plain.time, plain.steps, 8)
    model.run_until(10.5)
    model.run_for_hours(2)
    assert (model.time, model.steps, model.hour) == (12, 12, 12)
    stepped = run_scenario(OUTPOST, seed=1, days=2)
    assert model.events == [e for e in stepped.events if e["hour"] < 12] and model.events
    with pytest.raises(NotImplementedError, match="agenda"):
        model.schedule_event(print, after=1)


def test_a_mesa_without_its_step_schedule_steps_the_model_its_own_way(monkeypatch):
    """Where Mesa has no step schedule to stop (another version), Mesa's step stays and the
    model's does not count Mesa's time and steps a second time."""
    import mesa

    init = mesa.Model.__init__

    def without_schedule(self, *args, **kwargs):
        init(self, *args, **kwargs)
        del self._default_schedule

    monkeypatch.setattr(mesa.Model, "__init__", without_schedule)
    model = DesertModel(OUTPOST, rng=1)
    assert "step" in vars(model)  # Mesa's wrapper kept
    for _ in range(3):
        model.step()
    assert (model.time, model.steps, model.hour) == (3, 3, 3)


def test_distances_kept_by_offset_are_numpys_for_every_sign_and_cell(monkeypatch):
    """`distance_km` between two cells, kept by the sizes of their row and column offsets,
    is numpy's hypot of the signed offsets times the cell's km, whichever cell comes first,
    also when the store starts afresh; and the array form gives the same numbers."""
    import sim.engine.model as model_module

    model = DesertModel(OUTPOST, rng=1)
    rows, cols, km = model.terrain.rows, model.terrain.cols, model.terrain.grid.cell_km
    rng = np.random.default_rng(4)
    a = rng.integers(rows * cols, size=3000)
    b = np.where(rng.random(3000) < 0.5, rng.integers(rows * cols, size=3000),
                 np.clip(a + rng.integers(-3, 4, 3000) * cols + rng.integers(-3, 4, 3000),
                         0, rows * cols - 1))
    monkeypatch.setattr(model_module, "OFFSETS_KEPT", 500)
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        (rx, cx), (ry, cy) = divmod(x, cols), divmod(y, cols)
        want = float(np.hypot(rx - ry, cx - cy) * km)
        assert model.distance_km(x, y) == want == model.distance_km(y, x)
        assert model.distance_km(x, np.array([y]))[0] == want
    assert 0 < len(model._offset_km) <= 500
    for k in range(40):  # arrays of every length, across the cell-by-cell path's limit
        x, ys = int(a[k]), b[k : k + k % 13]
        got = model.distance_km(x, ys)
        ry, cy = np.divmod(ys, cols)
        rx, cx = divmod(x, cols)
        assert got.dtype == np.float64 and got.shape == ys.shape
        assert got.tobytes() == (np.hypot(rx - ry, cx - cy) * km).tobytes()
        assert model.distance_km(x, ys.tolist()).tobytes() == got.tobytes()


def test_events_carry_their_cells_latlon_whatever_the_shared_store_holds(monkeypatch):
    """Every event's (lat, lon) is its cell's centre (`Grid.latlon_of`, rounded to 5 decimals),
    from the store every model on the terrain shares, also when the store is started afresh
    every few cells."""
    import sim.engine.model as model_module

    first = DesertModel(OUTPOST, rng=2)
    assert DesertModel(OUTPOST, rng=3)._latlon is first._latlon  # one store per terrain
    res = run_scenario(OUTPOST, seed=2, days=10)
    g = first.terrain.grid
    assert len({(e["row"], e["col"]) for e in res.events}) > 5
    for e in res.events:
        lat, lon = g.latlon_of(e["row"], e["col"])
        assert (e["lat"], e["lon"]) == (round(lat, 5), round(lon, 5))
    monkeypatch.setattr(model_module, "LATLON_KEPT", 3)
    first._latlon.clear()
    assert run_scenario(OUTPOST, seed=2, days=10).events == res.events
    assert len(first._latlon) <= 3


def test_units_move_no_faster_than_their_speed():
    model = DesertModel(OUTPOST, rng=4)
    f = model.force
    cell_km = model.terrain.grid.cell_km
    top = f.speed_kmh[: f.n].copy()
    for _ in range(72):
        before = np.column_stack([f.row[: f.n], f.col[: f.n]]).astype(float)
        model.step()
        after = np.column_stack([f.row[: f.n], f.col[: f.n]]).astype(float)
        moved_km = np.hypot(*(after - before).T) * cell_km
        assert (moved_km <= top * 1.0 + cell_km * 1.5).all()


# --------------------------------------------------------------------------- the command
def badia(*args: str) -> subprocess.CompletedProcess:
    """``badia ARGS`` in a fresh process from the checkout, as a user types it."""
    return subprocess.run([sys.executable, "-m", "sim.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=300)  # fmt: skip


def test_badia_run_writes_its_outputs(tmp_path):
    out = tmp_path / "run"
    proc = badia("run", str(OUTPOST), "--days", "2", "--seed", "3", "--out", str(out),
                 "--set", "units[0].strength=40")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "attacks_attempted_total" in proc.stdout
    for name in ("daily.parquet", "events.jsonl", "scenario.yaml", "map.png"):
        assert (out / name).stat().st_size > 0, name
    assert len(pd.read_parquet(out / "daily.parquet")) == 2
    for line in (out / "events.jsonl").read_text().splitlines():
        json.loads(line)
    assert "strength: 40" in (out / "scenario.yaml").read_text()


def test_badia_run_no_map_writes_the_data_without_the_map(tmp_path):
    out = tmp_path / "run"
    proc = badia("run", str(OUTPOST), "--days", "1", "--seed", "3", "--out", str(out),
                 "--quiet", "--no-map")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for name in ("daily.parquet", "events.jsonl", "scenario.yaml"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "map.png").exists()
    assert "map.png" not in proc.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["run", "no/such.yaml"], "no/such.yaml"),
        (["run", str(OUTPOST), "--set", "units[0].strenght=4"], "strenght"),
    ],
)
def test_badia_run_bad_input_is_one_line(args, needle):
    proc = badia(*args)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- golden outputs
@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("name", [p.stem for p in golden_outputs.scenario_paths()])
def test_bundled_scenarios_reproduce_their_golden_outputs(name, kernels, monkeypatch):
    """Every bundled scenario, seed 11, 10 days: the event log and the daily table hash to the
    stored values, with the compiled kernels and with their numpy reference
    (`sim.compiled`). A change that alters behaviour on purpose rewrites
    tests/golden/hashes.json (`python tests/golden_outputs.py --write`) in a commit of its own
    and says why."""
    monkeypatch.setenv(compiled.ENV_KERNELS, kernels)
    stored = json.loads(golden_outputs.HASHES.read_text())[name]
    assert golden_outputs.hashes_of(golden_outputs.ROOT / "scenarios" / f"{name}.yaml") == stored


@pytest.mark.slow
@pytest.mark.parametrize("name", ["badia_theatre", "badia_2020_calibrated"])
def test_outputs_do_not_depend_on_the_cpus_vector_instructions(name):
    """numpy picks its code by the CPU: with AVX2 or AVX-512 its sorts and partitions break
    ties another way than without. A rule ranked by them (the nearest hides) once gave the
    theatre's golden run other outputs on another machine. The golden run, with this machine's
    vector extensions and with all of them turned off (``NPY_DISABLE_CPU_FEATURES``, in a
    process of its own): the same hashes. So a batch gives the same outputs whichever machine
    of a Dask cluster runs a replicate."""
    found = golden_outputs.vector_extensions()
    if not found:
        pytest.skip("this CPU has no vector extension above numpy's baseline to turn off")
    # the hashes and the extensions the run had, as one JSON line
    code = ("import json, sys; sys.path.insert(0, 'tests'); import golden_outputs as g; "
            f"print(json.dumps([g.hashes_of(g.ROOT / 'scenarios' / '{name}.yaml'), "
            "g.vector_extensions()]))")
    runs = {}
    for off in ([], found):
        env = {**os.environ, "PYTHONPATH": str(golden_outputs.ROOT),
               "NPY_DISABLE_CPU_FEATURES": " ".join(off)}
        proc = subprocess.run([sys.executable, "-c", code], cwd=golden_outputs.ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        hashes, features = json.loads(proc.stdout)
        assert features == ([] if off else found)  # each run had what it was meant to
        runs[bool(off)] = hashes
    assert runs[True] == runs[False]


# --------------------------------------------------------------------------- orders
def _as_read(model: DesertModel, unit) -> tuple:
    """What the model and the tactics read of a unit's orders: moving or not, a mover for the
    path book or not, its cell and destination, the path still ahead, the hour a sleep until
    arrival wakes it, its posture."""
    f = model.force
    i = unit.idx
    return (unit.is_moving, bool(f.path_pos[i] < f.path_last[i]), unit.cell, unit.destination,
            unit.path[unit.path_pos:].tolist(), unit.behaviour.arrival_hour(), unit.posture)


def test_a_unit_staying_at_the_end_of_its_path_reads_as_halted_there():
    """``Orders.stay`` (a decision for a unit that has arrived) keeps the path it came by
    instead of writing a one-cell path: everything read of the unit is what a halt gives, and
    it does not move. A unit still on its way is halted."""
    model = DesertModel(OUTPOST, rng=3)
    unit = next(u for u in model.units if u.kind == "patrol")
    start = unit.cell
    assert unit.go_to(model.cell_of_place("T3 oasis"), Posture.MOVING)
    assert len(unit.path) > 2
    for _ in range(48):
        model._move()
        if not unit.is_moving:
            break
    assert not unit.is_moving and unit.cell == int(unit.path[-1]) != start
    arrived_path = unit.path
    unit.stay(Posture.RESTING)
    assert unit.path is arrived_path  # no new path
    stayed = _as_read(model, unit)
    unit.halt(Posture.RESTING)
    assert len(unit.path) == 1
    assert stayed == _as_read(model, unit)
    here = unit.cell
    model._move()
    assert unit.cell == here

    # on its way (not at its path's end): stay is a halt
    assert unit.go_to(start, Posture.MOVING)
    assert unit.is_moving
    unit.stay(Posture.HIDDEN)
    assert unit.path.tolist() == [unit.cell] and unit.posture == Posture.HIDDEN
    assert not unit.is_moving


def test_orders_move_hands_back_the_routers_route():
    """Routes asked again come from the orders' memo: the same cells the router gives; a unit
    routed to its own cell gets a path of its own each time (not a shared array)."""
    model = DesertModel(OUTPOST, rng=3)
    unit = next(u for u in model.units if u.kind == "patrol")
    target = model.cell_of_place("T3 oasis")
    f = model.force
    mob = MOBILITIES[f.mobility[unit.idx]]
    barred = model.barred_zones[f.faction[unit.idx]]
    want = model.router.local_path(unit.cell, target, mob, barred).tolist()
    for _ in range(2):
        assert unit.go_to(target, Posture.MOVING)
        assert unit.path.tolist() == want
        unit.halt()
    assert unit.go_to(unit.cell, Posture.MOVING)
    first = unit.path
    assert unit.go_to(unit.cell, Posture.MOVING)
    assert unit.path is not first and unit.path.tolist() == first.tolist() == [unit.cell]


def test_row_col_tables_equal_divmod_of_every_cell():
    """The model's row and column tables of flat cells (read where movers land) equal
    ``divmod(cell, cols)`` for every cell of grids of several shapes; int32, read-only."""
    from types import SimpleNamespace

    from sim.engine.model import row_col_of_cell

    for rows, cols in ((1, 1), (3, 7), (40, 13), (384, 470)):
        r, c = row_col_of_cell(SimpleNamespace(rows=rows, cols=cols))
        want_r, want_c = np.divmod(np.arange(rows * cols, dtype=np.int64), cols)
        np.testing.assert_array_equal(r, want_r)
        np.testing.assert_array_equal(c, want_c)
        assert r.dtype == c.dtype == np.int32
        assert not r.flags.writeable and not c.flags.writeable
