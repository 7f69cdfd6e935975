"""Civilians and the cells that prey on them: truffle hunters out only in their season and only
by day, traffic on its timetable and only in its hours, prey attacks on foragers away from the
garrison, civilians who never fire, and what happens when a civilian unit is destroyed.

Every scenario is a small ASCII map written here (0.5 km cells, 30 x 40): a town in the west
(Sukhnah), a highway east to an oil field, two truffle grounds (West and East), caves between
them and a garrison post beside the East grounds."""

from __future__ import annotations

import math
from collections import Counter
from itertools import pairwise

import numpy as np
import pytest

from sim.engine.model import DesertModel
from sim.errors import ScenarioError
from sim.scenario.loading import parse_scenario
from sim.scenario.vocab import CIVILIAN_KINDS, KINDS
from sim.tactics.base import YEAR_HOURS
from sim.tactics.prey import GARRISON_MEMORY_HOURS
from sim.world.clock import LightLevel
from sim.world.geo import Grid

ROWS, COLS, CELL_KM = 30, 40, 0.5
GRID = Grid(34.9, 38.9, CELL_KM, ROWS, COLS)
TOWN, FIELD, POST = (15, 1), (15, 38), (9, 37)
CAVES = [(8, 20), (10, 21), (12, 20), (20, 20), (22, 21)]
WEST, EAST = (5, 12, 6, 12), (5, 12, 29, 34)  # grounds: rows r0..r1, cols c0..c1


def _latlon(r: float, c: float) -> list[float]:
    x, y = GRID.cell_xy_km(r, c)
    lat, lon = GRID.latlon_of_xy(x, y)
    return [round(float(lat), 6), round(float(lon), 6)]


def _box(r0: int, r1: int, c0: int, c1: int) -> dict:
    """A box around cells r0..r1 x c0..c1 (a little inside their outer edges)."""
    north, west = _latlon(r0 - 0.4, c0 - 0.4)
    south, east = _latlon(r1 + 0.4, c1 + 0.4)
    return {"south": south, "west": west, "north": north, "east": east}


def _scenario(units: list[dict], *, start: str, days: float, post: bool = False) -> dict:
    rows = [["."] * COLS for _ in range(ROWS)]
    for r, c in CAVES:
        rows[r][c] = "C"
    places = [{"name": "Sukhnah", "kind": "town", "cell": list(TOWN), "radius_km": 0.5},
              {"name": "Field", "kind": "station", "cell": list(FIELD)},
              {"name": "Post", "kind": "outpost", "cell": list(POST)}]  # fmt: skip
    m = {"cell_km": CELL_KM, "centre": {"lat": 34.9, "lon": 38.9},
         "ascii": "\n".join("".join(r) for r in rows),
         "legend": {".": {"ground": "flat"}, "C": {"ground": "rugged", "cave": True}},
         "places": places, "roads": [{"name": "M20", "via": ["Sukhnah", "Field"]}],
         "areas": [{"name": "West", "kind": "region", "box": _box(*WEST)},
                   {"name": "East", "kind": "region", "box": _box(*EAST)},
                   {"name": "Caves", "kind": "caves",
                    "points": [_latlon(*rc) for rc in CAVES]}]}  # fmt: skip
    if post:
        units = [{"name": "Post", "faction": "government", "kind": "strongpoint", "at": "Post"},
                 *units]  # fmt: skip
    return {
        "name": "civilians", "seed": 1, "start": start, "days": days, "map": m, "campaign": {},
        "factions": {
            "government": {"role": "garrison", "hostile": ["insurgents"]},
            "civilians": {"role": "civilian"},
            "insurgents": {"role": "insurgent", "hostile": ["civilians", "government"]},
        },
        "units": units,
    }  # fmt: skip


def _model(data: dict, seed: int) -> DesertModel:
    return DesertModel(parse_scenario(data, source="test"), rng=seed)


def _km(a: tuple[int, int] | int, b: tuple[int, int] | int) -> float:
    a = divmod(a, COLS) if isinstance(a, int) else a
    b = divmod(b, COLS) if isinstance(b, int) else b
    return math.hypot(a[0] - b[0], a[1] - b[1]) * CELL_KM


# --------------------------------------------------------------------------- a season, hour by hour
FORAGE = {"kind": "forage", "areas": ["West", "East"], "home": "Sukhnah"}
BUS = {"kind": "traffic", "route": ["Sukhnah", "Field"], "departures_per_day": 3,
       "hours": [7, 17]}  # fmt: skip
WORKERS = {"kind": "traffic", "route": ["Sukhnah", "Field"], "departures_per_day": 1,
           "hours": [6, 14], "at_end": "return"}  # fmt: skip


@pytest.fixture(scope="module")
def season():
    """20 January to 9 May 2020 (110 days), 4 forager groups, 2 buses and a workers' convoy;
    for every hour and unit: local time, light, cell after the hour, whether it was on the road
    (it changed cell, or is still on its way), whether it is alive."""
    units = [
        {"name": "hunters", "faction": "civilians", "kind": "forager", "count": 4,
         "at": "Sukhnah", "tactic": FORAGE},
        {"name": "bus", "faction": "civilians", "kind": "civilian_vehicle", "count": 2,
         "at": "Sukhnah", "speed_kmh": 12, "tactic": BUS},  # stopping on the way: 2 h a trip
        {"name": "workers", "faction": "civilians", "kind": "civilian_vehicle", "at": "Sukhnah",
         "speed_kmh": 12, "tactic": WORKERS},
    ]  # fmt: skip
    model = _model(_scenario(units, start="2020-01-20T00:00", days=110), seed=4)
    f = model.force
    records = []
    for _ in range(model.spec.hours):
        before = [u.cell for u in model.units]
        model.step()
        tick = model.clock.at(model.hour - 1)
        for u, cell0 in zip(model.units, before, strict=True):
            records.append((u.name, u.kind, tick.local, tick.light, u.cell,
                            u.cell != cell0 or u.is_moving, bool(f.alive[u.idx])))  # fmt: skip
    return model, records


def test_foragers_are_in_the_desert_only_by_day_in_february_to_april(season):
    model, records = season
    home = model.cell_of_place("Sukhnah")
    out_days: dict[str, set] = {}
    for name, kind, local, light, cell, _, _ in records:
        if kind != "forager" or cell == home:
            continue
        # out: only in the season, within the day's hours, in daylight
        assert local.month in (2, 3, 4), (name, local)
        assert 8 <= local.hour < 16, (name, local)
        assert light == LightLevel.DAY, (name, local)
        out_days.setdefault(name, set()).add(local.date())
    assert sorted(out_days) == [f"hunters-{k}" for k in range(1, 5)]
    season_days = 29 + 31 + 30  # February 2020 had 29 days
    for name, days in out_days.items():
        # seasonal density: out every morning of the season (every cell of the grounds is
        # within a day's reach, so no morning is given up)
        assert len(days) == season_days, (name, len(days))
        assert Counter(d.month for d in days) == {2: 29, 3: 31, 4: 30}
    # and they search the grounds, not the road or the town
    w = model.terrain.areas["West"] | model.terrain.areas["East"]
    foraging = [u for u in model.units if u.kind == "forager"]
    assert all(u.behaviour.search_cells.size and w.ravel()[u.behaviour.search_cells].all()
               for u in foraging)  # fmt: skip


def test_traffic_keeps_its_timetable_and_drives_only_in_its_hours(season):
    model, records = season
    hours = {"bus": (7, 17), "workers": (6, 14)}
    moved: dict[str, Counter] = {}
    for name, kind, local, _, _, did_move, _ in records:
        if kind != "civilian_vehicle" or not did_move:
            continue
        first, last = hours[name.split("-")[0]]
        assert first <= local.hour < last, (name, local)  # never on the road outside its hours
        moved.setdefault(name, Counter())[local.hour] += 1
    arrivals = Counter((e["unit"], e["day"]) for e in model.events
                       if e["type"] == "traffic_arrived")  # fmt: skip
    ends = {model.cell_of_place("Sukhnah"), model.cell_of_place("Field")}
    for u in model.units:
        if u.kind != "civilian_vehicle":
            continue
        b = u.behaviour
        per_day = [arrivals[(u.name, d)] for d in range(1, 111)]
        if u.name.startswith("bus"):
            # three trips a day, every day, turning round at each end
            assert b.trip_hours == 2 and len(b.slots) == 3, (b.trip_hours, b.slots)
            assert per_day == [3] * 110, per_day
            where = [(e["row"], e["col"]) for e in model.events
                     if e["type"] == "traffic_arrived" and e["unit"] == u.name]  # fmt: skip
            flat = [r * COLS + c for r, c in where]
            assert set(flat) == ends and all(a != b for a, b in pairwise(flat))
        else:
            # one round trip a day, home again the same day
            assert per_day == [1] * 110, per_day
            assert {e["col"] for e in model.events if e["type"] == "traffic_arrived"
                    and e["unit"] == u.name} == {TOWN[1]}  # fmt: skip
        # on the road only from a departure hour of its timetable until the trip's end
        driving = set(moved[u.name])
        timetable = {h + k for h in b.slots for k in range(b.trip_hours)}
        assert driving <= timetable, (u.name, driving, b.slots)


def test_nobody_dies_and_nothing_fires_without_insurgents(season):
    model, records = season
    assert not [e for e in model.events if e["type"] in ("engagement", "loss")]
    assert all(alive for *_, alive in records)
    f = model.force
    assert not f.fires[: f.n].any()  # civilian kinds never open fire


# --------------------------------------------------------------------------- preying on foragers
def _prey_units(avoid_km: float) -> list[dict]:
    return [
        {"name": "west", "faction": "civilians", "kind": "forager", "count": 3, "at": "Sukhnah",
         "tactic": {"kind": "forage", "areas": ["West"]}},
        {"name": "east", "faction": "civilians", "kind": "forager", "count": 3, "at": "Sukhnah",
         "tactic": {"kind": "forage", "areas": ["East"]}},
        {"name": "cell", "faction": "insurgents", "kind": "cell", "count": 3, "at": "Caves",
         "tactic": {"kind": "prey", "hides": ["Caves"], "search_km": 8,
                    "garrison_avoid_km": avoid_km}},
    ]  # fmt: skip


def _known_armed(model: DesertModel, unit) -> np.ndarray:
    """Cells of the armed enemies ``unit`` knows of (posts for good, others for
    ``GARRISON_MEMORY_HOURS``): what contact avoidance looks at."""
    idx, cells, ages = model.known_enemies(unit, max_age_hours=YEAR_HOURS)
    f = model.force
    civilian = np.isin(f.kind[idx], [KINDS.index(k) for k in CIVILIAN_KINDS])
    keep = ~civilian & ((f.speed_kmh[idx] <= 0) | (ages <= GARRISON_MEMORY_HOURS))
    return cells[keep]


def _prey_run(seed: int, avoid_km: float):
    """30 days of February 2020 with the post known to the insurgents from the start. Returns
    the model and, per prey engagement, (hour, target cell decided on, known armed cells)."""
    model = _model(_scenario(_prey_units(avoid_km), start="2020-02-01T00:00", days=30,
                             post=True), seed)  # fmt: skip
    ins = model.faction_index["insurgents"]
    post = next(u for u in model.units if u.name == "Post")
    spotter = next(u for u in model.units if u.faction == "insurgents")
    # the post has stood there for years: the insurgents know where it is
    model.knowledge.record(0, np.array([ins]), np.array([spotter.idx]), np.array([post.idx]),
                           np.array([post.cell]))  # fmt: skip
    cells = [u for u in model.units if u.faction == "insurgents"]
    decisions = []
    for _ in range(model.spec.hours):
        known = {u.name: _known_armed(model, u) for u in cells if u.alive}
        n = len(model.events)
        model.step()
        for e in model.events[n:]:
            if e["type"] == "engagement" and e["attack"] == "prey":
                for name in e["attacker"]:
                    trip = next(u for u in cells if u.name == name).behaviour.trip
                    decisions.append((e["hour"], trip["cell"] if trip else None, known[name]))
    return model, decisions


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_prey_cells_attack_foragers_by_day_and_civilians_never_fire_back(seed):
    model, _ = _prey_run(seed, avoid_km=6.0)
    events = model.events
    prey = [e for e in events if e["type"] == "engagement" and e["attack"] == "prey"]
    # about one attack per cell every third day (nights_between 2): at least 6 in 30 days
    assert len(prey) >= 6, len(prey)
    for e in prey:
        assert e["faction"] == "insurgents" and e["defender_faction"] == "civilians", e
        assert all(d.startswith(("west", "east")) for d in e["defender"]), e
        local = model.clock.at(e["hour"]).local
        assert 8 <= local.hour < 16 and model.calendar.at(e["hour"]) == LightLevel.DAY, local
    # each fight is logged as a prey attack (one sharp blow: one fight per strike), counted in
    # the daily metrics, and the civilians count their dead
    attacks = {(e["hour"], e["unit"]) for e in events if e["type"] == "prey"}
    assert all(any((e["hour"], a) in attacks for a in e["attacker"]) for e in prey)
    daily = model.result().daily
    assert daily["prey_attempted"].sum() == len(attacks) == len(prey)
    lost = daily["losses__civilians"].sum()
    assert lost > 0
    assert sum(e["losses"]["civilians"] for e in prey) == lost
    # civilians never fire: no insurgent is lost where only civilians defend
    civilian_defence = [e for e in events if e["type"] == "engagement"
                        and e["defender_faction"] == "civilians"]  # fmt: skip
    assert civilian_defence and all(e["losses"]["insurgents"] == 0 for e in civilian_defence)
    assert not [e for e in events if e["type"] == "engagement" and e["faction"] == "civilians"]
    # each trip ends back among the hides
    ends = [e for e in events if e["type"] == "prey_end"]
    assert ends and sum(e["in_hide"] for e in ends) / len(ends) >= 0.9


def test_prey_cells_never_attack_near_a_garrison_post_they_know_of():
    """Contact avoidance. With ``garrison_avoid_km`` 6 the East grounds (all within 4.5 km of
    the post) are left alone: no prey attack is decided on a target whose last-seen cell has a
    known armed enemy within 6 km, and no fight happens within 4 km of the post (a 2 km
    allowance for foragers that moved after they were last seen). With avoidance off (0 km)
    the East grounds are hit too, over the same seeds."""
    near_post = {0.0: 0, 6.0: 0}
    for avoid in (6.0, 0.0):
        for seed in range(1, 7):
            model, decisions = _prey_run(seed, avoid)
            for hour, cell, known in decisions:
                if avoid > 0:
                    assert cell is not None and len(known), (seed, hour)  # the post is known
                    assert all(_km(cell, int(k)) > avoid for k in known), (seed, hour, cell)
            for e in model.events:
                if e["type"] == "engagement" and e["attack"] == "prey":
                    near_post[avoid] += _km((e["row"], e["col"]), POST) <= 4.0
    assert near_post[6.0] == 0, near_post
    assert near_post[0.0] >= 5, near_post


# --------------------------------------------------------------------------- losses
def test_a_destroyed_bus_is_replaced_by_the_next_departure_and_lost_foragers_stay_lost():
    units = [
        {"name": "bus", "faction": "civilians", "kind": "civilian_vehicle", "at": "Sukhnah",
         "tactic": BUS},
        {"name": "hunters", "faction": "civilians", "kind": "forager", "at": "Sukhnah",
         "tactic": FORAGE},
    ]  # fmt: skip
    model = _model(_scenario(units, start="2020-02-01T00:00", days=4), seed=2)
    bus, hunters = model.units
    model.run_for_hours(34)  # 2 February, 10:00: the bus is on the road or at a terminus
    model.unit_destroyed(bus)
    model.unit_destroyed(hunters)
    killed = model.hour
    model.run_for_hours(model.spec.hours)
    replaced = [e for e in model.events if e["type"] == "replaced"]
    assert [e["unit"] for e in replaced] == ["bus"] and replaced[0]["hour"] == killed + 1
    assert (replaced[0]["row"], replaced[0]["col"]) == TOWN  # back at its home terminus
    after = Counter(e["day"] for e in model.events
                    if e["type"] == "traffic_arrived" and e["hour"] > killed)  # fmt: skip
    assert after[3] == after[4] == 3, after  # the timetable runs on in full the next days
    assert not hunters.alive and hunters.strength == 0
    assert not [e for e in model.events if e["type"] == "replaced" and e["unit"] == "hunters"]


def test_a_bus_held_up_past_its_hours_waits_by_the_road_and_drives_on_next_morning():
    units = [{"name": "bus", "faction": "civilians", "kind": "civilian_vehicle",
              "at": "Sukhnah", "speed_kmh": 12, "tactic": BUS}]  # fmt: skip
    model = _model(_scenario(units, start="2020-02-01T00:00", days=3), seed=3)
    bus = model.units[0]
    held = None
    while model.hour < model.spec.hours:
        local = model.clock.at(model.hour).local
        if held is None and bus.is_moving and local.day == 1 and local.hour >= 12:
            held = bus.cell  # stopped on the road (at a checkpoint, say) until dark
        if held is not None and local.day == 1 and local.hour < 19:
            bus.halt()
        before = bus.cell
        model.step()
        if bus.cell != before:
            assert 7 <= local.hour < 17, local  # never on the road outside its hours
    assert held is not None and held not in (model.cell_of_place("Sukhnah"),
                                             model.cell_of_place("Field"))  # fmt: skip
    arrivals = [e for e in model.events if e["type"] == "traffic_arrived"]
    # it finished the held-up trip on the morning of 2 February, then kept its timetable
    day2 = [e for e in arrivals if e["day"] == 2]
    assert day2 and model.clock.at(day2[0]["hour"]).local.hour < 12
    assert len([e for e in arrivals if e["day"] == 3]) == 3


# --------------------------------------------------------------------------- the file format
@pytest.mark.parametrize("tactic, message", [
    ({"kind": "traffic", "route": ["Sukhnah", "Field"], "hours": [17, 7]}, "first < last"),
    ({"kind": "forage", "areas": ["West"], "months": [13]}, "months are 1"),
    ({"kind": "forage", "areas": ["West"], "start_hour": 16, "end_hour": 8}, "before end_hour"),
    ({"kind": "forage", "areas": ["West"], "home": "Palmyra"}, "unknown place 'Palmyra'"),
    ({"kind": "forage", "areas": ["North"]}, "unknown area 'North'"),
])  # fmt: skip
def test_bad_civilian_tactics_are_one_line_errors(tactic, message):
    units = [{"faction": "civilians", "kind": "forager", "at": "Sukhnah", "tactic": tactic}]
    with pytest.raises(ScenarioError) as err:
        parse_scenario(_scenario(units, start="2020-02-01T00:00", days=1), source="t.yaml")
    assert any(message in m and "units[0].tactic" in m for m in err.value.messages), err.value
