"""Contact avoidance and dispersal of insurgent cells (``sim/tactics/raids.py``,
``sim/tactics/cells.py``): raids skip targets near a QRF's base (``avoid_qrf_km``) and fights
they would lose (``max_odds``); a pursued cell splits in two that run to different hides
(``split_when_pursued``). With the parameters left out, the bundled scenarios run as before
(the golden outputs, ``tests/test_model.py``)."""

from __future__ import annotations

import numpy as np
from test_recruitment import WEST, campaign_scenario, cells_at, flat, model_of

from sim.rules.state import Posture

RAID = {"kind": "night_raid", "targets": ["Post", "Far post"], "hides": ["West caves"]}


def _garrison(post_strength: int = 20, far_strength: int = 20, qrf: bool = True) -> list[dict]:
    units = [
        {"faction": "government", "kind": "strongpoint", "at": "Post", "strength": post_strength},
        {"faction": "government", "kind": "strongpoint", "at": "Far post",
         "strength": far_strength},
    ]  # fmt: skip
    if qrf:
        units.append({"faction": "government", "kind": "qrf", "at": "Post",
                      "tactic": {"kind": "pursue", "base": "Post", "max_range_km": 40}})
    return units


def _raider_model(qrf: bool = True, post_strength: int = 20, far_strength: int = 20,
                  seed: int = 1, **raid):
    units = [*_garrison(post_strength, far_strength, qrf),
             cells_at("West caves", 1, 8, tactic={**RAID, **raid})]
    return model_of(campaign_scenario(units, None, days=6), seed=seed)


def _raider(model):
    return next(u for u in model.units if u.kind == "cell")


# --------------------------------------------------------------------------- raids
def test_raids_skip_targets_near_a_qrf_base_only_when_asked():
    post, far = (model_of(campaign_scenario(_garrison(), None)).cell_of_place(p)
                 for p in ("Post", "Far post"))  # fmt: skip
    for seed in range(1, 6):  # the raiders start in different caves
        plain = _raider_model(seed=seed)
        cell = _raider(plain)
        nearer = min((post, far), key=lambda c: plain.distance_km(cell.cell, c))
        assert cell.behaviour._pick_target()[0] == nearer
        wary = _raider_model(seed=seed, avoid_qrf_km=5.0)
        assert _raider(wary).behaviour._pick_target()[0] == far
    assert plain.distance_km(post, far) > 5.0
    # no QRF, nothing to avoid
    assert _raider(_raider_model(qrf=False, avoid_qrf_km=5.0)).behaviour._pick_target()


def test_wary_raiders_never_strike_the_post_with_a_qrf():
    struck = {"Post": 0, "Far post": 0}
    for seed in range(1, 5):
        model = model_of(campaign_scenario(
            [*_garrison(), cells_at("West caves", 2, 8, tactic={**RAID, "avoid_qrf_km": 5.0})],
            None, days=6), seed=seed)
        model.run_for_hours(model.spec.hours)
        names = {u.name: u for u in model.units}
        for e in model.events:
            if e["type"] == "raid":
                target = names[e["target"]]
                struck["Post" if target.home == model.cell_of_place("Post") else "Far post"] += 1
    assert struck["Post"] == 0 and struck["Far post"] > 0, struck


def test_raids_skip_fights_beyond_max_odds():
    post, far = (model_of(campaign_scenario(_garrison(), None)).cell_of_place(p)
                 for p in ("Post", "Far post"))  # fmt: skip
    # 8 raiders: a 40-strong post is beyond 2:1, a 12-strong one is not
    model = _raider_model(qrf=False, post_strength=40, far_strength=12, max_odds=2.0)
    assert _raider(model).behaviour._pick_target()[0] == far
    model = _raider_model(qrf=False, post_strength=40, far_strength=40, max_odds=2.0)
    assert _raider(model).behaviour._pick_target() is None
    # defenders are every hostile unit in the target's cell: the QRF counts at the Post
    model = _raider_model(qrf=True, post_strength=10, far_strength=40, max_odds=2.0)
    assert _raider(model).behaviour._pick_target() is None
    model = _raider_model(qrf=False, post_strength=40, far_strength=40)  # no limit: as before
    cell = _raider(model)
    nearer = min((post, far), key=lambda c: model.distance_km(cell.cell, c))
    assert cell.behaviour._pick_target()[0] == nearer


# --------------------------------------------------------------------------- splitting
def _pursued(strength: int, **tactic):
    units = [*_garrison(), cells_at("West caves", 1, strength,
                                    tactic={"kind": "hide", "hides": ["West caves"], **tactic})]
    model = model_of(campaign_scenario(units, None, days=3))
    cell, qrf = _raider(model), next(u for u in model.units if u.kind == "qrf")
    model.force.posture[qrf.idx] = int(Posture.PURSUING)
    fi = model.faction_index["insurgents"]
    model.knowledge.record(model.hour, np.array([fi]), np.array([cell.idx]),
                           np.array([qrf.idx]), np.array([qrf.cell]))  # fmt: skip
    cell.alert("detected")
    return model, cell


def test_a_pursued_cell_splits_into_two_that_run_to_different_hides():
    model, cell = _pursued(11, split_when_pursued=True, split_min_strength=3)
    f = model.force
    n0 = f.n
    assert len(f.alive) == n0 + 11 // 3 - 1  # room reserved for the splits
    assert cell.behaviour.pursuers()
    cell.behaviour.decide()
    assert f.n == n0 + 1
    child = model.units[-1]
    assert child.kind == "cell" and child.faction == "insurgents" and child.alive
    assert (f.strength[cell.idx], f.strength[child.idx]) == (6.0, 5.0)
    assert (f.strength0[cell.idx], f.strength0[child.idx]) == (6.0, 5.0)
    assert child.behaviour.kind == "hide" and child.behaviour.params is cell.behaviour.params
    assert child.destination != cell.destination
    assert {child.destination, cell.destination} <= flat(WEST)
    (split,) = [e for e in model.events if e["type"] == "cell_split"]
    assert split["unit"] == cell.name and split["new_unit"] == child.name
    # the pursuers know the cell they saw, not the one that slipped away
    gi = model.faction_index["government"]
    assert model.knowledge.seen_hour[gi, child.idx] < 0
    for _ in range(12):
        model.step()
    assert f.alive[[cell.idx, child.idx]].all()


def test_no_split_below_twice_split_min_strength_or_when_not_asked():
    model, cell = _pursued(5, split_when_pursued=True, split_min_strength=3)
    n0 = model.force.n
    cell.behaviour.decide()
    assert model.force.n == n0 and model.force.strength[cell.idx] == 5
    model, cell = _pursued(12)
    n0 = model.force.n
    cell.behaviour.decide()
    assert model.force.n == n0 and model.force.strength[cell.idx] == 12


def test_splits_stop_when_the_reserved_room_is_used_up():
    model, cell = _pursued(6, split_when_pursued=True, split_min_strength=3)
    f = model.force
    assert len(f.alive) == f.n + 1  # 6 fighters: one split
    cell.behaviour.decide()
    assert f.n == len(f.alive)
    f.strength[cell.idx] = 6.0  # rebuilt somehow: no room is left for another split
    cell.alert("detected")
    cell.behaviour.decide()
    assert f.n == len(f.alive) and f.strength[cell.idx] == 6.0


def test_splitting_raiders_in_a_long_run_keep_the_books_straight():
    """Raiders that split when the QRF chases them: every split leaves two live cells, the
    fighters add up, and the run goes on (detection, fights and metrics see the new cells)."""
    splits = 0
    for seed in range(1, 4):
        units = [*_garrison(post_strength=6, far_strength=6),
                 cells_at("West caves", 3, 12, tactic={**RAID, "split_when_pursued": True,
                                                       "split_min_strength": 3})]  # fmt: skip
        model = model_of(campaign_scenario(units, None, days=8), seed=seed)
        model.run_for_hours(model.spec.hours)
        res = model.result()
        events = [e for e in res.events if e["type"] == "cell_split"]
        splits += len(events)
        for e in events:
            assert e["strength"] >= e["new_strength"] >= 3
        cells = [u for u in model.units if u.kind == "cell"]
        assert len(cells) == 3 + len(events)
        lost = res.daily["losses__insurgents"].sum()
        assert model.force.strength[[u.idx for u in cells]].sum() == 3 * 12 - lost
    assert splits > 0
