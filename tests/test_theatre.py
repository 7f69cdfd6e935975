"""The bundled theatre's known faults stay fixed (issue: campaign validity).

- Border runners cross the line again and again (they used to come back to a hide on the far
  side and shuttle there, next to a government post, never crossing again).
- Insurgent cells do not start inside a hostile post's sight (see tests/test_placement.py).
"""

from __future__ import annotations

import collections

import pytest

from sim.engine.run import run_scenario

THEATRE = "scenarios/badia_theatre.yaml"


@pytest.fixture(scope="module")
def runs():
    return [run_scenario(THEATRE, seed=seed, days=45) for seed in (1, 2, 3)]


def test_border_runners_cross_the_line_repeatedly(runs):
    for res in runs:
        crossings = collections.Counter(
            e["unit"] for e in res.events
            if e["type"] in ("crossing", "crossing_intercepted")
            and e["unit"].startswith("Border runners")
        )
        # nights_between 3 over 45 days: many trips each; the old loop gave one crossing each
        assert sum(crossings.values()) >= 6, crossings
        assert max(crossings.values()) >= 3, crossings


def test_rukban_cells_stay_in_the_zone_and_never_cross_a_border():
    from sim.engine.model import DesertModel

    m = DesertModel(THEATRE, rng=4)
    zone = m.terrain.zone_index("Al-Tanf zone")
    cells = [u for u in m.units if u.name.startswith("Rukban cell")]
    for _ in range(24 * 30):
        m.step()
        for u in cells:
            if u.alive:
                assert m.terrain.zone.ravel()[u.cell] == zone, (u.name, m.hour)
    crossed = [e for e in m.events if e["type"].startswith("crossing")
               and e.get("unit", "").startswith("Rukban cell")]
    assert crossed == []


@pytest.mark.parametrize("muster", [0, 4])
def test_a_qrf_drives_out_only_after_mustering(muster):
    """``muster_hours``: from the hour news wakes a ready QRF it stays at its base that many
    hours; with 0 it drives out at once (the old behaviour)."""
    from sim.engine.model import DesertModel

    m = DesertModel("scenarios/tanf_refuge.yaml", rng=3,
                    overrides=[f"units[kind=qrf].tactic.muster_hours={muster}"])
    qrfs = [u for u in m.units if u.kind == "qrf"]
    woke: dict[str, int] = {}
    departures = []
    for _ in range(24 * 8):
        before = {u.name: (u.behaviour.state, u.cell) for u in qrfs}
        m.step()
        for u in qrfs:
            state, cell = before[u.name]
            if state == "ready" and u.behaviour.state in ("mustering", "pursuing"):
                woke[u.name] = m.hour - 1
            if cell != u.cell and state in ("ready", "mustering") and u.name in woke:
                departures.append(m.hour - 1 - woke.pop(u.name))
    assert departures, "no QRF drove out: the scenario gives them nothing to chase"
    assert min(departures) >= muster
    if muster:
        assert all(d <= muster + 1 for d in departures), departures


@pytest.mark.parametrize("regarrison", [None, 1.5])
def test_a_lost_post_is_manned_again_only_when_the_campaign_says_so(regarrison):
    """``campaign.regarrison_days``: a strongpoint the insurgents destroyed is back at full
    strength that many days later; without it (the default) it is lost for good."""
    from sim.engine.model import DesertModel

    sets = [] if regarrison is None else [f"campaign.regarrison_days={regarrison}"]
    m = DesertModel("scenarios/outpost_night_raid.yaml", rng=1, overrides=sets)
    post = next(u for u in m.units if u.kind == "strongpoint")
    full = float(m.force.strength0[post.idx])
    m.step()
    m.force.strength[post.idx] = 0.0
    m.unit_destroyed(post)
    lost_at = m.hour
    for _ in range(24 * 2):
        m.step()
        if regarrison is not None and m.hour - lost_at < regarrison * 24:
            assert not post.alive, m.hour
    if regarrison is None:
        assert not post.alive
    else:
        assert post.alive and post.strength == full
        assert any(e["type"] == "replaced" and e["unit"] == post.name for e in m.events)
