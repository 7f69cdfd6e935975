"""Mines and IEDs (the ``mine_laying`` tactic and the strike rule of :mod:`sim.rules.mines`) and
fake checkpoints (``fake_checkpoint``), on small ASCII maps written here: a straight highway
across open ground with a cave a couple of km north of it.

Statistical tests use fixed seeds and 99 % binomial intervals (``scipy.stats.binom.interval``);
with fixed seeds they are deterministic, the interval says how far the frequency may stray from
the stated probability by chance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from sim.engine.model import DesertModel
from sim.rules.mines import Minefield
from sim.rules.state import NEVER_HOUR
from sim.scenario.loading import load_scenario, parse_scenario
from sim.scenario.vocab import MOBILITIES
from sim.tactics.mines import FakeCheckpoint, MineLaying
from sim.world.clock import LightLevel
from sim.world.geo import Grid

SCEN = Path(__file__).resolve().parent.parent / "scenarios"
ROWS, COLS, CELL_KM = 24, 48, 0.25
CENTRE = (34.5, 38.5)
ROAD_ROW = 12
CAVES = ((4, 30), (5, 31))
GRID = Grid(CENTRE[0], CENTRE[1], CELL_KM, ROWS, COLS)
#: Two-sided confidence of the binomial intervals.
CONFIDENCE = 0.99


def latlon(r: int, c: int) -> list[float]:
    lat, lon = GRID.latlon_of(r, c)
    return [round(float(lat), 6), round(float(lon), 6)]


def road_map() -> dict:
    """A 12 km x 6 km open map, 250 m cells: the highway West - Mid - East along row 12, and two
    caves 2 km north of it."""
    rows = [["."] * COLS for _ in range(ROWS)]
    for r, c in CAVES:
        rows[r][c] = "C"
    return {
        "cell_km": CELL_KM, "centre": {"lat": CENTRE[0], "lon": CENTRE[1]},
        "ascii": "\n".join("".join(r) for r in rows),
        "legend": {".": {"ground": "flat"}, "C": {"ground": "rugged", "cave": True}},
        "places": [{"name": "West", "kind": "junction", "cell": [ROAD_ROW, 0]},
                   {"name": "Mid", "kind": "junction", "cell": [ROAD_ROW, COLS // 2]},
                   {"name": "East", "kind": "junction", "cell": [ROAD_ROW, COLS - 1]}],
        "roads": [{"name": "Highway", "via": ["West", "Mid", "East"]}],
    }  # fmt: skip


def scenario(units: list[dict], *, days: float = 3, mines: dict | None = None,
             civilians_hostile: bool = False) -> dict:  # fmt: skip
    insurgent_foes = ["government"] + (["civilians"] if civilians_hostile else [])
    data = {
        "name": "mines-test", "seed": 1, "start": "2018-06-01T12:00", "days": days,
        "map": road_map(),
        "factions": {
            "government": {"role": "garrison", "hostile": ["insurgents"]},
            "insurgents": {"role": "insurgent", "hostile": insurgent_foes},
            "civilians": {"role": "civilian"},
        },
        "units": units,
    }  # fmt: skip
    if mines is not None:
        data["campaign"] = {"mines": mines}
    return data


def build(data: dict, seed: int) -> DesertModel:
    return DesertModel(parse_scenario(data, source="test"), rng=seed)


def unit_named(model: DesertModel, name: str):
    return next(u for u in model.units if u.name == name)


def drive_manually(unit) -> None:
    """Take a unit off its tactic: the test drives it."""
    unit.behaviour = None
    unit.wake_hour = NEVER_HOUR


def drive_along_road(model: DesertModel, unit) -> None:
    """Send a halted unit from where it stands on the highway to its farther end."""
    road = model.roads.cells_of("Highway")
    here = int(np.flatnonzero(road == unit.cell)[0])
    unit.follow(road[here:] if here < len(road) // 2 else road[here::-1])


def new_events(model: DesertModel, since: int) -> list[dict]:
    return model.events[since:]


# --------------------------------------------------------------------------- laying and striking
LAYERS = {"faction": "insurgents", "kind": "cell", "count": 2, "at": latlon(*CAVES[0]),
          "tactic": {"kind": "mine_laying", "road": "Highway", "segment": ["Mid", "East"],
                     "nights_between": 0, "mines_per_trip": 2}}  # fmt: skip


def traffic_units() -> list[dict]:
    return [
        LAYERS,
        {"name": "Patrol", "faction": "government", "kind": "patrol", "at": "West",
         "tactic": {"kind": "patrol", "route": ["West", "East"], "period_hours": 3}},
        {"name": "Foot patrol", "faction": "government", "kind": "patrol", "at": "East",
         "mobility": "foot", "vehicles": 0, "sensor_range_km": 0.1,
         "night_sensor_range_km": 0.1, "weapon_range_km": 0.1,
         "tactic": {"kind": "patrol", "route": ["East", "Mid"], "period_hours": 2}},
        {"name": "Own truck", "faction": "insurgents", "kind": "cell", "at": "East",
         "sensor_range_km": 0.1, "night_sensor_range_km": 0.1},
        {"name": "Bus", "faction": "civilians", "kind": "civilian_vehicle", "at": "West"},
    ]  # fmt: skip


def test_mines_are_laid_at_night_on_their_road_and_struck_only_by_hostile_vehicles_passing():
    """Hour by hour over 3 seeds x 6 days: every mine is laid at night on a cell of the
    tactic's segment, and at least 90 % of trips end in a hide before first light; every strike
    is on a cell where a mine of that hour was laid before, by a vehicle of a victim faction
    (hostile, or civilian) that entered the cell this hour and now stands there; foot units and
    the layers' own vehicles never strike one, though they walk and drive over live mines; the
    daily losses count the mine strikes' killed with the engagements'."""
    strikes = {"Patrol": 0, "Bus": 0}
    over_live = {"Foot patrol": 0, "Own truck": 0}  # hours they entered a cell with a live mine
    laid_total = 0
    trips = []  # mine_trip_end events
    for seed in (1, 2, 3):
        model = build(scenario(traffic_units(), days=6), seed)
        assert isinstance(model.minefield, Minefield)
        segment = set(model.roads.cells_of("Highway", ("Mid", "East")).tolist())
        cols = model.terrain.cols
        ins = model.faction_index["insurgents"]
        lifetime = model.minefield.lifetime_hours
        own, bus = unit_named(model, "Own truck"), unit_named(model, "Bus")
        walkers = unit_named(model, "Foot patrol")
        drive_manually(own)
        drive_manually(bus)
        laid: dict[tuple[int, int], int] = {}  # (cell, hour laid) -> mines
        for _ in range(model.spec.hours):
            for u in (own, bus):
                if u.alive and not u.is_moving:
                    drive_along_road(model, u)
            live = set(model.minefield.cells.tolist())
            before = {u.name: (u.path, u.path_pos) for u in (own, walkers)}
            seen = len(model.events)
            model.step()
            for u in (own, walkers):
                path, pos = before[u.name]
                if u.alive and u.path is path:  # the same orders all hour
                    over_live[u.name] += bool(live & set(path[pos + 1 : u.path_pos + 1].tolist()))
            f = model.force
            hour = model.hour - 1
            for e in new_events(model, seen):
                cell = e["row"] * cols + e["col"]
                if e["type"] == "mine_laid":
                    assert model.light_by_hour[hour] == LightLevel.NIGHT, e
                    assert cell in segment, e
                    laid[(cell, e["laid_hour"])] = laid.get((cell, e["laid_hour"]), 0) + 1
                    laid_total += 1
                elif e["type"] == "mine_strike":
                    assert e["faction"] == "insurgents"
                    assert laid.get((cell, e["laid_hour"]), 0) > 0, e  # laid there, before
                    laid[(cell, e["laid_hour"])] -= 1
                    assert e["laid_hour"] <= hour < e["laid_hour"] + lifetime
                    unit = unit_named(model, e["unit"])
                    fi = model.faction_index[unit.faction]
                    assert model.hostile[ins, fi] or unit.faction == "civilians", e
                    assert f.vehicles[unit.idx] > 0
                    assert MOBILITIES[f.mobility[unit.idx]] != "foot"
                    # it drove into the mine's cell this hour and halted there
                    assert tuple(model._prev_rc[unit.idx]) != (e["row"], e["col"]), e
                    if unit.alive:
                        assert unit.rc == (e["row"], e["col"]), e
                    strikes[unit.name] = strikes.get(unit.name, 0) + 1
        daily = model.result().daily
        engaged = sum(e["losses"].get("government", 0) for e in model.events
                      if e["type"] == "engagement")  # fmt: skip
        mined = sum(e["killed"] for e in model.events
                    if e["type"] == "mine_strike" and e["victim_faction"] == "government")
        assert daily["losses__government"].sum() == engaged + mined
        assert daily["mines_laid"].sum() == sum(e["type"] == "mine_laid" for e in model.events)
        trips += [e for e in model.events if e["type"] == "mine_trip_end"]
    assert laid_total >= 20, laid_total
    # back in a hide before first light (a cell caught and fought on the way counts against)
    safe = sum(e["before_first_light"] and e["in_hide"] for e in trips)
    assert len(trips) >= 10 and safe >= 0.9 * len(trips), (safe, len(trips))
    assert strikes["Patrol"] >= 10 and strikes["Bus"] >= 3, strikes
    assert min(over_live.values()) >= 5, over_live  # never struck, but not for want of trying
    assert set(strikes) == {"Patrol", "Bus"}, strikes  # never the foot patrol or the own truck


def test_a_cell_short_of_ammunition_lays_only_what_its_stock_allows():
    """0.3 days of ammunition at 0.25 a mine: one mine, then nothing; with none, no trip."""
    units = [
        {**LAYERS, "name": "Short", "count": 1, "ammo_days": 0.3},
        {**LAYERS, "name": "Empty", "count": 1, "ammo_days": 0.0},
    ]
    model = build(scenario(units, days=5), seed=1)
    model.run_for_hours(model.spec.hours)
    laid = [e for e in model.events if e["type"] == "mine_laid"]
    assert [e["unit"] for e in laid] == ["Short"]
    assert unit_named(model, "Short").supply("ammo") == pytest.approx(0.05)
    assert not any(e.get("unit") == "Empty" for e in model.events
                   if e["type"].startswith("mine_"))  # fmt: skip


# --------------------------------------------------------------------------- the strike law
def passages(model: DesertModel, unit, mine_col: int, trials: int, *, age_hours: int = 0,
             layer_faction: str = "insurgents") -> list[dict]:  # fmt: skip
    """Drive ``unit`` from West to East ``trials`` times over one fresh mine at ``mine_col``
    (laid ``age_hours`` ago), back at full strength each time; the outcome of each trial:
    ``{"struck", "cleared", "killed", "hit"}``."""
    f = model.force
    cols = model.terrain.cols
    road = model.roads.cells_of("Highway")
    west = int(road[0])
    mine_cell = ROAD_ROW * cols + mine_col
    fi = model.faction_index[layer_faction]
    out = []
    for _ in range(trials):
        model.minefield.mines.clear()
        model.minefield.lay(mine_cell, fi, model.hour - age_hours, "layer")
        for x in [unit, *model.escorts_of(unit)]:
            f.strength[x.idx] = f.strength0[x.idx]
            f.fuel_days[x.idx] = f.fuel_cap[x.idx]
        f.row[unit.idx], f.col[unit.idx] = divmod(west, cols)
        unit.halt()
        unit.follow(road)
        seen = len(model.events)
        while unit.is_moving:
            assert unit.alive and model.hour < model.spec.hours
            model.step()
            struck = [e for e in new_events(model, seen) if e["type"] == "mine_strike"]
            if struck:
                break
        ev = new_events(model, seen)
        strike = [e for e in ev if e["type"] == "mine_strike"]
        out.append({
            "struck": len(strike), "cleared": sum(e["type"] == "mine_cleared" for e in ev),
            "killed": strike[0]["killed"] if strike else 0,
            "hit": strike[0]["unit"] if strike else None,
        })  # fmt: skip
    return out


def within(count: int, n: int, p: float) -> bool:
    lo, hi = stats.binom.interval(CONFIDENCE, n, p)
    return lo <= count <= hi


def harness(units: list[dict], mines: dict, seed: int = 5) -> DesertModel:
    """A model whose units are all driven by the test (nobody decides), with a long clock."""
    model = build(scenario(units, days=400, mines=mines), seed)
    for u in model.units:
        if u.behaviour is not None:
            drive_manually(u)
    return model


def test_strike_frequency_and_losses_follow_the_stated_law():
    """A civilian bus (20 aboard one vehicle, its faction not hostile to the layers) over a
    fresh mine 600 times: strikes ~ Binomial(600, p) inside its 99 % interval; killed per strike
    has mean 20 f within 2.576 standard errors. Foot units and the layers' own vehicles never
    strike."""
    p, frac, n = 0.3, 0.4, 600
    mines = {"strike_probability": p, "killed_fraction": frac}
    bus = {"name": "Bus", "faction": "civilians", "kind": "civilian_vehicle", "at": "West"}
    model = harness([bus], mines)
    trials = passages(model, unit_named(model, "Bus"), COLS // 2, n)
    struck = sum(t["struck"] for t in trials)
    assert within(struck, n, p), (struck, n, p)
    killed = np.array([t["killed"] for t in trials if t["struck"]], dtype=float)
    se = np.sqrt(20 * frac * (1 - frac) / len(killed))
    assert abs(killed.mean() - 20 * frac) <= 2.576 * se, (killed.mean(), se)
    others = [  # each alone on the map: a government and an insurgent unit would fight
        {"name": "Walkers", "faction": "government", "kind": "patrol", "at": "West",
         "mobility": "foot", "vehicles": 0},
        {"name": "Own truck", "faction": "insurgents", "kind": "cell", "at": "West"},
    ]  # fmt: skip
    for spec in others:
        model = harness([spec], mines)
        runs = passages(model, unit_named(model, spec["name"]), COLS // 2, 100)
        assert sum(t["struck"] for t in runs) == 0, spec["name"]


def test_a_patrol_clears_or_strikes_a_mine_with_the_stated_probabilities():
    """A garrison patrol over a fresh mine 600 times, q = 0.5, p = 0.4: cleared q, struck
    (1 - q) p, passed (1 - q)(1 - p), each inside its 99 % binomial interval."""
    q, p, n = 0.5, 0.4, 600
    units = [{"name": "Patrol", "faction": "government", "kind": "patrol", "at": "West"}]
    model = harness(units, {"strike_probability": p, "clearance_probability": q})
    trials = passages(model, unit_named(model, "Patrol"), COLS // 2, n)
    cleared = sum(t["cleared"] for t in trials)
    struck = sum(t["struck"] for t in trials)
    assert within(cleared, n, q), cleared
    assert within(struck, n, (1 - q) * p), struck
    assert within(n - cleared - struck, n, (1 - q) * (1 - p)), (cleared, struck)


def test_a_strike_hits_the_convoy_or_its_escort_in_proportion_to_their_vehicles():
    """Convoy (6 vehicles) with its escort (3): the escort is hit in 3/9 of 450 strikes."""
    n = 450
    units = [{"name": "Convoy", "faction": "government", "kind": "convoy", "at": "West",
              "tactic": {"kind": "escort", "route": ["West", "East"], "escort_strength": 8}}]
    model = harness(units, {"strike_probability": 1.0, "killed_fraction": 0.0})
    trials = passages(model, unit_named(model, "Convoy"), COLS // 2, n)
    assert all(t["struck"] == 1 for t in trials)
    escort_hits = sum(t["hit"] == "Convoy-escort" for t in trials)
    assert within(escort_hits, n, 3 / 9), escort_hits


def test_expired_mines_are_never_struck():
    """With p = 1, a mine as old as its lifetime is inert (never struck, and dropped); one an
    hour younger is struck on the first passage."""
    units = [{"name": "Bus", "faction": "civilians", "kind": "civilian_vehicle", "at": "West"}]
    model = harness(units, {"strike_probability": 1.0, "lifetime_days": 2})
    bus = unit_named(model, "Bus")
    old = passages(model, bus, COLS // 2, 50, age_hours=48)
    assert sum(t["struck"] for t in old) == 0
    assert len(model.minefield) == 0  # expired mines leave the field
    young = passages(model, bus, COLS // 2, 50, age_hours=47)
    assert all(t["struck"] == 1 for t in young)


# --------------------------------------------------------------------------- fake checkpoints
CHECKPOINT = {"name": "Gang", "faction": "insurgents", "kind": "cell", "at": latlon(*CAVES[0]),
              # out on the first night (no rest to start at a random point of)
              "tactic": {"kind": "fake_checkpoint", "road": "Highway", "nights_between": 0}}


def test_a_fake_checkpoint_stops_a_civilian_vehicle_and_the_engagement_logs_it():
    """A bus shuttles along the highway; the checkpoint is set at night, stops the bus in its
    stretch, the engagement carries ``attack: fake_checkpoint`` (and the attack is counted), and
    the gang leaves the road at night, before first light."""
    for seed in (1, 2, 3):
        units = [CHECKPOINT, {"name": "Bus", "faction": "civilians",
                              "kind": "civilian_vehicle", "at": "West"}]  # fmt: skip
        model = build(scenario(units, days=2, civilians_hostile=True), seed)
        gang, bus = unit_named(model, "Gang"), unit_named(model, "Bus")
        assert isinstance(gang.behaviour, FakeCheckpoint) and model.minefield is None
        drive_manually(bus)
        stopped_at = []
        for _ in range(model.spec.hours):
            if bus.alive and not bus.is_moving:
                drive_along_road(model, bus)
            seen = len(model.events)
            model.step()
            for e in new_events(model, seen):
                if e["type"] == "fake_checkpoint":
                    stopped_at.append(bus.cell)
                    assert bus.cell in gang.behaviour.watching
        ev = model.events
        sets = [e for e in ev if e["type"] == "checkpoint_set"]
        ends = [e for e in ev if e["type"] == "checkpoint_end"]
        assert sets and ends, seed
        assert all(model.light_by_hour[e["hour"]] == LightLevel.NIGHT for e in sets + ends)
        fights = [e for e in ev if e["type"] == "engagement" and e["attack"] == "fake_checkpoint"]
        assert fights and all(e["defender"] == ["Bus"] for e in fights), seed
        assert stopped_at, seed
        assert any(e["type"] == "attack_result" and e["attack"] == "fake_checkpoint" for e in ev)
        assert model.metrics.totals["fake_checkpoint_attempted"] >= 1
        assert sum(e["losses"]["civilians"] for e in fights) > 0


def test_a_fake_checkpoint_stops_only_garrison_vehicles_it_outnumbers():
    """Odds: a convoy of 4 is stopped by a gang of 8 (max_odds 1); a QRF of 20 is let by."""
    units = [
        CHECKPOINT,
        {"name": "Weak", "faction": "government", "kind": "convoy", "at": "West"},
        {"name": "Strong", "faction": "government", "kind": "qrf", "at": "West"},
    ]
    model = build(scenario(units, days=2), seed=1)
    gang = unit_named(model, "Gang")
    for name in ("Weak", "Strong"):
        drive_manually(unit_named(model, name))
    while gang.behaviour.state != "checkpoint":
        model.step()
    assert not gang.behaviour.spring(unit_named(model, "Strong"))
    assert gang.behaviour.spring(unit_named(model, "Weak"))
    assert gang.attack_target == unit_named(model, "Weak").idx


# --------------------------------------------------------------------------- nothing otherwise
@pytest.mark.parametrize("path", sorted(SCEN.glob("*.yaml")), ids=lambda p: p.stem)
def test_scenarios_without_mines_or_checkpoints_have_neither(path):
    """A bundled scenario with no ``campaign.mines`` and no unit laying mines has no minefield
    (the move's mines check is skipped), and one with no such tactic has no such behaviour:
    the mechanisms cost nothing there (their byte-identical outputs are the golden-hash test of
    ``tests/test_model.py``)."""
    spec = load_scenario(path)
    kinds = {getattr(u.tactic, "kind", None) for u in spec.units}
    model = DesertModel(spec, rng=11)
    mines = spec.campaign is not None and spec.campaign.mines is not None
    assert (model.minefield is None) == (not mines and "mine_laying" not in kinds)
    for cls in (MineLaying, FakeCheckpoint):
        if cls.kind not in kinds:
            assert not any(isinstance(u.behaviour, cls) for u in model.units)


# --------------------------------------------------------------------------- the first nights
def test_first_night_is_uniform_over_the_rest_and_rested_exactly_from_it():
    """``first_night_hour`` draws night ``k ~ U{0..n}`` (chi-square, 6,000 draws, p > 0.001),
    and ``last_trip_for`` makes a cell rested from that hour and not an hour before."""
    from scipy.stats import chisquare

    from sim.tactics.base import first_night_hour, last_trip_for, rest_hours

    rng = np.random.default_rng(7)
    n = 5
    hours = np.array([first_night_hour(rng, n) for _ in range(6000)])
    assert set(np.unique(hours)) == {24 * k for k in range(n + 1)}
    counts = np.bincount(hours // 24, minlength=n + 1)
    assert chisquare(counts).pvalue > 1e-3, counts
    assert first_night_hour(rng, 0) == 0
    for first in (24, 48, 120):
        last = last_trip_for(first, n, NEVER_HOUR)
        assert first - last >= rest_hours(n) > first - 1 - last
    assert last_trip_for(0, n, NEVER_HOUR) == -NEVER_HOUR


def test_first_trips_are_spread_over_the_rest():
    """Forty mine-laying cells resting four nights between trips do not all go out on the first
    night: their first trips fall on the nights 0-4 in about equal numbers (each night's count
    within its binomial 99.9% interval, Bin(40, 1/5): 2 to 16) and on all five nights."""
    units = [{**LAYERS, "count": 40, "at": latlon(*CAVES[0]),
              "tactic": {**LAYERS["tactic"], "nights_between": 4}}]
    model = build(scenario(units, days=7), seed=3)
    model.run_for_hours(model.spec.hours)
    first: dict[str, int] = {}
    for e in model.events:
        if e["type"] == "mine_trip_start":
            first.setdefault(e["unit"], e["hour"])
    assert len(first) == 40
    # the run starts at noon: night k begins in the evening of day k
    nights = np.bincount([(h + 12) // 24 for h in first.values()], minlength=5)
    assert len(nights) == 5, nights
    assert (nights > 0).all() and nights.max() <= 16, nights
