"""Recruitment (``campaign.recruitment``, :mod:`sim.rules.recruitment`): recruits arrive as a
Poisson stream, join the weakest cells of their areas up to ``max_cell_strength``, and form new
cells at the areas' hides, at most ``max_new_cells``.

``campaign_scenario`` builds the small open map the campaign tests share (cave areas West, East
and Lone, and two outposts between them)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim.engine.model import DesertModel
from sim.errors import ScenarioError
from sim.rules.recruitment import (
    DAYS_PER_MONTH,
    allocate,
    arrivals,
    first_arrival_hour,
    new_cell_tactic,
    reserved_units,
)
from sim.scenario.loading import parse_scenario
from sim.world.geo import Grid

ROWS, COLS = 20, 30
CENTRE = (34.5, 38.5)
WEST = [(5, 3), (8, 4), (12, 2), (15, 5)]
EAST = [(5, 25), (10, 26), (14, 24)]
LONE = [(18, 15)]  # one cave: a cell hiding there never relocates


def cell_points(cells) -> list[list[float]]:
    """[lat, lon] of the centres of (row, col) cells of the test map."""
    grid = Grid(CENTRE[0], CENTRE[1], 1.0, ROWS, COLS)
    return [[float(v) for v in grid.latlon_of(r, c)] for r, c in cells]


def campaign_scenario(units: list[dict], campaign: dict | None, *, days: float = 10,
                      start: str = "2020-03-01T00:00") -> dict:  # fmt: skip
    """A 30 x 20 km open map with cave areas West, East and Lone (one cave) and two posts."""
    data = {
        "name": "campaign-test", "seed": 1, "start": start, "days": days,
        "map": {
            "cell_km": 1.0, "centre": {"lat": CENTRE[0], "lon": CENTRE[1]},
            "ascii": "\n".join("." * COLS for _ in range(ROWS)),
            "legend": {".": {"ground": "flat"}},
            "places": [{"name": "Post", "kind": "outpost", "cell": [10, 15]},
                       {"name": "Far post", "kind": "outpost", "cell": [2, 15]}],
            "areas": [{"name": "West caves", "kind": "caves", "points": cell_points(WEST)},
                      {"name": "East caves", "kind": "caves", "points": cell_points(EAST)},
                      {"name": "Lone cave", "kind": "caves", "points": cell_points(LONE)}],
        },
        "factions": {
            "government": {"role": "garrison", "hostile": ["insurgents"]},
            "insurgents": {"role": "insurgent", "hostile": ["government"]},
        },
        "units": units,
    }  # fmt: skip
    if campaign is not None:
        data["campaign"] = campaign
    return data


def model_of(data: dict, seed: int = 1) -> DesertModel:
    return DesertModel(parse_scenario(data, "test"), rng=seed)


def flat(cells) -> set[int]:
    return {r * COLS + c for r, c in cells}


def cells_at(area: str, count: int, strength: int, **extra) -> dict:
    return {"faction": "insurgents", "kind": "cell", "count": count, "at": area,
            "strength": strength, "tactic": {"kind": "hide", "hides": [area]}, **extra}


# --------------------------------------------------------------------------- the pure laws
def test_daily_arrivals_are_poisson_with_the_monthly_rate_over_thirty():
    rng = np.random.default_rng(7)
    per_month, days = 45.0, 3000
    total = sum(arrivals(rng, per_month) for _ in range(days))
    lo, hi = stats.poisson.interval(0.99, per_month / DAYS_PER_MONTH * days)
    assert lo <= total <= hi, (total, lo, hi)


def test_recruits_join_the_weakest_cell_with_room_one_at_a_time():
    joins = allocate(np.array([5.0, 3.0, 8.0, 3.0]), max_strength=6, recruits=5)
    # 3,3 -> 4,4 -> 5,5,5 (ties to the lowest index) -> 6: then only cell 1 and 3 may go on
    assert joins.tolist() == [1, 2, 0, 2]
    assert (np.array([5.0, 3.0, 8.0, 3.0]) + joins <= np.array([6, 6, 8, 6])).all()
    assert allocate(np.array([6.0, 9.0]), 6, 4).sum() == 0  # no room: nobody joins
    assert allocate(np.zeros(0), 6, 3).sum() == 0


def test_first_draw_is_at_midday_local_time():
    from datetime import datetime

    assert first_arrival_hour(datetime(2020, 1, 1, 0, 0)) == 12
    assert first_arrival_hour(datetime(2018, 6, 1, 18, 0)) == 18
    assert first_arrival_hour(datetime(2018, 6, 1, 12, 0)) == 0


# --------------------------------------------------------------------------- in a run
def test_recruits_over_many_days_match_the_poisson_mean_within_its_99_percent_interval():
    per_month, days = 60.0, 120
    data = campaign_scenario(
        [cells_at("West caves", 3, 4)],
        {"recruitment": [{"faction": "insurgents", "fighters_per_month": per_month,
                          "hides": ["West caves"], "max_cell_strength": 100_000}]},
        days=days)  # fmt: skip
    model = model_of(data)
    model.run_for_hours(model.spec.hours)
    res = model.result()
    draws = len(range(first_arrival_hour(model.spec.start), model.spec.hours, 24))
    lo, hi = stats.poisson.interval(0.99, per_month / DAYS_PER_MONTH * draws)
    total = res.daily["recruits"].sum()
    assert lo <= total <= hi, (total, lo, hi)
    joined = sum(e["fighters"] for e in res.events if e["type"] == "recruits_joined")
    assert joined == total == model.recruitment[0].arrived
    f = model.force
    assert f.strength[: f.n].sum() == 3 * 4 + total  # nobody fought: every recruit is there


def test_strength_never_exceeds_max_cell_strength_through_recruitment_and_depleted_cells_rebuild():
    data = campaign_scenario(
        [cells_at("West caves", 3, 8)],
        {"recruitment": [{"faction": "insurgents", "fighters_per_month": 90,
                          "hides": ["West caves"], "max_cell_strength": 10,
                          "new_cell_strength": 5, "max_new_cells": 0}]},
        days=20)  # fmt: skip
    model = model_of(data)
    f = model.force
    f.strength[0] = 2.0  # a cell bled white in some fight
    for _ in range(model.spec.hours):
        model.step()
        assert (f.strength[: f.n] <= 10).all()
    assert f.strength[: f.n].tolist() == [10.0, 10.0, 10.0]  # all rebuilt, none beyond
    assert f.strength0[: f.n].tolist() == [10.0, 10.0, 10.0]
    rec = model.recruitment[0]
    assert rec.formed == 0 and rec.turned_away > 0 and rec.waiting == 0
    assert rec.joined == 8 + 2 + 2 and rec.joined + rec.turned_away == rec.arrived


def test_new_cells_form_only_in_the_listed_areas_and_at_most_max_new_cells():
    data = campaign_scenario(
        [cells_at("West caves", 2, 6), cells_at("East caves", 2, 6)],
        {"recruitment": [{"faction": "insurgents", "fighters_per_month": 300,
                          "hides": ["West caves"], "max_cell_strength": 8,
                          "new_cell_strength": 5, "max_new_cells": 3,
                          "tactic": {"kind": "hide"}}]},
        days=15)  # fmt: skip
    model = model_of(data)
    f = model.force
    assert len(f.alive) == 4 + 3  # room reserved for the new cells
    model.run_for_hours(model.spec.hours)
    res = model.result()
    formed = [e for e in res.events if e["type"] == "cell_formed"]
    assert len(formed) == 3 == model.recruitment[0].formed
    assert {e["row"] * COLS + e["col"] for e in formed} <= flat(WEST)
    new = model.units[4:]
    assert all(u.kind == "cell" and u.faction == "insurgents" for u in new)
    assert all(u.home in flat(WEST) for u in new)
    assert all(list(u.behaviour.params.hides) == ["West caves"] for u in new)
    # the East cells got nobody, the West ones filled up, the new cells joined in
    assert f.strength[2:4].tolist() == [6.0, 6.0]
    assert (f.strength[[0, 1, 4, 5, 6]] == 8).all()
    joined_units = {e["unit"] for e in res.events if e["type"] == "recruits_joined"}
    assert not joined_units & {model.units[2].name, model.units[3].name}
    assert res.daily["recruits"].sum() == 2 * 2 + 3 * 8


def test_new_cells_follow_their_tactic_and_are_known_to_the_run():
    data = campaign_scenario(
        [cells_at("West caves", 1, 10),
         {"faction": "government", "kind": "strongpoint", "at": "Post", "strength": 5}],
        {"recruitment": [{"faction": "insurgents", "fighters_per_month": 120,
                          "hides": ["West caves"], "max_cell_strength": 10,
                          "new_cell_strength": 4, "max_new_cells": 2,
                          "tactic": {"kind": "night_raid", "targets": ["Post"]}}]},
        days=6)  # fmt: skip
    model = model_of(data)
    model.run_for_hours(model.spec.hours)
    new = [u for u in model.units if u.name.startswith("insurgents new cell")]
    assert len(new) == 2
    assert all(u.behaviour.kind == "night_raid" for u in new)
    assert all(list(u.behaviour.params.hides) == ["West caves"] for u in new)
    res = model.result()
    raiders = {e["unit"] for e in res.events if e["type"] == "raid_start"}
    assert raiders & {u.name for u in new}, "the new cells never raided"
    assert res.daily["units_alive__insurgents"].iloc[-1] <= 3


def test_reserved_units_counts_new_cells_and_splits():
    data = campaign_scenario(
        [cells_at("West caves", 2, 9, **{"tactic": {"kind": "hide", "split_when_pursued": True,
                                                    "split_min_strength": 3}})],
        {"recruitment": [{"faction": "insurgents", "fighters_per_month": 1,
                          "hides": ["West caves"], "max_cell_strength": 12,
                          "new_cell_strength": 6, "max_new_cells": 2}]})  # fmt: skip
    s = parse_scenario(data, "test")
    # each starting cell: 12 // 3 - 1 = 3 splits; new cells (hide, no splits): 2
    assert reserved_units(s) == 2 * 3 + 2
    data.pop("campaign")
    assert reserved_units(parse_scenario(data, "test")) == 2 * (9 // 3 - 1)


def test_new_cell_tactic_defaults_to_hiding_in_the_recruitment_areas():
    data = campaign_scenario([], {"recruitment": [
        {"faction": "insurgents", "fighters_per_month": 5, "hides": ["East caves"]},
        {"faction": "insurgents", "fighters_per_month": 5, "hides": ["East caves"],
         "tactic": {"kind": "night_raid", "targets": ["Post"], "hides": ["West caves"]}}]})
    s = parse_scenario(data, "test")
    a, b = (new_cell_tactic(r) for r in s.campaign.recruitment)
    assert a.kind == "hide" and a.hides == ["East caves"]
    assert b.kind == "night_raid" and b.hides == ["West caves"] and b.targets == ["Post"]


@pytest.mark.parametrize("campaign, needle", [
    ({"recruitment": [{"faction": "rebels", "fighters_per_month": 5, "hides": ["West caves"]}]},
     "campaign.recruitment[0].faction: unknown faction 'rebels'"),
    ({"recruitment": [{"faction": "government", "fighters_per_month": 5,
                       "hides": ["West caves"]}]},
     "faction 'government' is garrison; recruitment needs an insurgent faction"),
    ({"recruitment": [{"faction": "insurgents", "fighters_per_month": 5,
                       "hides": ["West cave"]}]},
     "campaign.recruitment[0].hides[0]: unknown area 'West cave'"),
    ({"recruitment": [{"faction": "insurgents", "fighters_per_month": 5, "hides": ["West caves"],
                       "tactic": {"kind": "night_raid", "targets": ["Nowhere"]}}]},
     "campaign.recruitment[0].tactic.targets[0]: unknown place 'Nowhere'"),
    ({"recruitment": [{"faction": "insurgents", "fighters_per_month": 5, "hides": ["West caves"],
                       "tactic": {"kind": "patrol", "route": ["Post", "Far post"]}}]},
     "'patrol' is not an insurgent tactic"),
    ({"recruitment": [{"faction": "insurgents", "fighters_per_month": 5, "hides": ["West caves"],
                       "new_cell_strength": 20}]},
     "new_cell_strength (20) must not exceed max_cell_strength (12)"),
])
def test_bad_recruitment_is_one_line_naming_the_field(campaign, needle):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(campaign_scenario([], campaign), "test.yaml")
    assert needle in str(err.value), str(err.value)


def test_campaign_runs_repeat_exactly_and_only_campaigns_have_a_recruits_column():
    campaign = {"recruitment": [{"faction": "insurgents", "fighters_per_month": 90,
                                 "hides": ["West caves"], "max_cell_strength": 9,
                                 "max_new_cells": 2}]}  # fmt: skip
    runs = []
    for _ in range(2):
        model = model_of(campaign_scenario([cells_at("West caves", 2, 8)], campaign, days=5), 4)
        model.run_for_hours(model.spec.hours)
        runs.append(model.result())
    assert runs[0].events == runs[1].events and runs[0].daily.equals(runs[1].daily)
    assert "recruits" in runs[0].daily and runs[0].daily["recruits"].sum() > 0
    plain = model_of(campaign_scenario([cells_at("West caves", 2, 8)], None, days=2))
    plain.run_for_hours(plain.spec.hours)
    assert "recruits" not in plain.result().daily
