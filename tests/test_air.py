"""Air strikes (``campaign.air_strikes``, :mod:`sim.rules.air`): a strike lands exactly
``delay_hours`` after it was asked for, never hits a target that moved away, hits with
``hit_probability``, and no more than ``sorties_per_day`` fly in a day."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import stats
from test_recruitment import campaign_scenario, cells_at, model_of

from sim.rules.air import choose, outcome

POST = {"faction": "government", "kind": "strongpoint", "at": "Post", "strength": 10}


def _air(**kw) -> dict:
    spec = {"faction": "government", "sorties_per_day": 24, "delay_hours": 3,
            "hit_probability": 0.4, "killed_fraction": 0.0, "max_age_hours": 6,
            "min_cell_strength": 1, **kw}  # fmt: skip
    return {"air_strikes": [spec]}


def _report(model, targets) -> None:
    """After an hour's step: the post saw every target where it stands, in that hour (as the
    detection phase records it; the faction knows from the next hour on)."""
    gi = model.faction_index["government"]
    post = model.units[0]
    idx = np.array([t.idx for t in targets if t.alive], dtype=np.int64)
    model.knowledge.record(model.hour - 1, np.full(len(idx), gi), np.full(len(idx), post.idx),
                           idx, model.force.cells(idx, model.terrain.cols))  # fmt: skip


def _run_reporting(model, targets, hours: int) -> list[dict]:
    for _ in range(hours):
        model.step()
        _report(model, targets)
    return [e for e in model.events if e["type"] == "air_strike"]


# --------------------------------------------------------------------------- the pure laws
def test_requests_fly_freshest_first_then_strongest():
    ages = np.array([2, 0, 0, 1])
    strength = np.array([9.0, 3.0, 7.0, 9.0])
    assert choose(ages, strength, np.arange(4), 3).tolist() == [2, 1, 3]


def test_a_hit_kills_a_binomial_share_and_a_miss_kills_nobody():
    rng = np.random.default_rng(3)
    draws = [outcome(rng, 50, 0.5, 0.2) for _ in range(4000)]
    killed = np.array([k for hit, k in draws if hit])
    assert all(k == 0 for hit, k in draws if not hit)
    se = np.sqrt(50 * 0.2 * 0.8 / len(killed))
    assert abs(killed.mean() - 10.0) < 3 * se


# --------------------------------------------------------------------------- in a run
def test_strikes_land_exactly_delay_hours_after_the_request():
    model = model_of(campaign_scenario([POST, cells_at("Lone cave", 1, 50)],
                                       _air(delay_hours=5), days=4))  # fmt: skip
    strikes = _run_reporting(model, [model.units[1]], 80)
    assert len(strikes) >= 10
    assert all(e["hour"] - e["requested_hour"] == 5 for e in strikes)
    # the first sighting (hour 0) reaches the faction an hour later (comms delay): asked at 1
    assert strikes[0]["requested_hour"] == 1 and strikes[0]["hour"] == 6
    assert all(e["seen_hour"] < e["requested_hour"] for e in strikes)


def test_a_target_that_moved_away_is_never_hit():
    model = model_of(campaign_scenario([POST, cells_at("Lone cave", 1, 50)],
                                       _air(delay_hours=1, hit_probability=1.0), days=2))
    target = model.units[1]
    f = model.force
    model.step()
    _report(model, [target])  # seen in hour 0
    model.step()  # hour 1: asked for, lands at hour 2
    f.row[target.idx] -= 2  # gone two cells north before the aircraft arrives
    model.step()
    (strike,) = [e for e in model.events if e["type"] == "air_strike"]
    assert strike["distance_cells"] == 2
    assert not strike["on_target"] and not strike["hit"] and strike["killed"] == 0


def test_hits_never_land_beyond_one_cell_of_the_target_in_a_moving_war():
    units = [POST, cells_at("West caves", 3, 8, tactic={
        "kind": "night_raid", "targets": ["Post", "Far post"], "hides": ["West caves"]})]
    model = model_of(campaign_scenario(units, _air(delay_hours=2, hit_probability=1.0,
                                                   killed_fraction=0.2), days=6))
    strikes = _run_reporting(model, model.units[1:], 6 * 24)
    assert {e["on_target"] for e in strikes} == {True, False}
    for e in strikes:
        assert e["hit"] == e["on_target"] == (e["distance_cells"] <= 1), e


def test_hit_rate_over_many_strikes_matches_hit_probability():
    p = 0.35
    model = model_of(campaign_scenario([POST, cells_at("Lone cave", 1, 10_000)],
                                       _air(delay_hours=1, hit_probability=p,
                                            killed_fraction=0.0001), days=40))  # fmt: skip
    strikes = _run_reporting(model, [model.units[1]], 40 * 24)
    n = len(strikes)
    hits = sum(e["hit"] for e in strikes)
    assert n >= 300 and all(e["on_target"] for e in strikes)
    lo, hi = stats.binom.interval(0.99, n, p)
    assert lo <= hits <= hi, (hits, n, lo, hi)
    # the kills are losses like an engagement's, and come off the target's strength
    killed = sum(e["killed"] for e in strikes)
    res = model.result()
    assert killed > 0 and res.daily["losses__insurgents"].sum() == killed
    assert model.force.strength[1] == 10_000 - killed
    assert res.daily["air_strikes"].sum() == n and res.daily["air_strike_hits"].sum() == hits


def test_at_most_sorties_per_day_a_day():
    sorties = 5
    model = model_of(campaign_scenario([POST, cells_at("Lone cave", 8, 20)],
                                       _air(sorties_per_day=sorties, delay_hours=2), days=6))
    strikes = _run_reporting(model, model.units[1:], 6 * 24 - 1)
    hours = np.array([e["hour"] for e in strikes])
    for h in range(int(hours.max()) + 1):  # any 24 consecutive hours
        assert ((hours >= h) & (hours < h + 24)).sum() <= sorties
    per_day = Counter(e["day"] for e in strikes)
    assert max(per_day.values()) == sorties  # the limit binds with eight targets in sight
    assert model.result().daily["air_strikes"].max() <= sorties


def test_no_sortie_without_a_fresh_sighting_or_below_min_strength():
    model = model_of(campaign_scenario([POST, cells_at("Lone cave", 1, 3)],
                                       _air(min_cell_strength=4, max_age_hours=2), days=2))
    assert _run_reporting(model, [model.units[1]], 10) == []
    far = {**POST, "at": "Far post"}  # 16 km off: it never sees the cell itself
    model = model_of(campaign_scenario([far, cells_at("Lone cave", 1, 3)],
                                       _air(max_age_hours=2, delay_hours=1), days=2))
    model.step()
    _report(model, [model.units[1]])
    for _ in range(20):  # one sighting, then none: one strike
        model.step()
    assert len([e for e in model.events if e["type"] == "air_strike"]) == 1


@pytest.mark.parametrize("faction, needle", [
    ("insurgents", "faction 'insurgents' is insurgent; air_strikes needs a garrison faction"),
    ("airforce", "campaign.air_strikes[0].faction: unknown faction 'airforce'"),
])
def test_bad_air_strikes_name_the_field(faction, needle):
    from sim.errors import ScenarioError
    from sim.scenario.loading import parse_scenario

    with pytest.raises(ScenarioError) as err:
        parse_scenario(campaign_scenario([POST], _air(faction=faction)), "test.yaml")
    assert needle in str(err.value)
