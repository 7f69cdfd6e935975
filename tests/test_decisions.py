"""The decision phase's shortcuts give what the plain forms give: units' values through
memoryviews (`ForceItems`), a kept route's timing (`Orders.follow`), the timer's clamp
(`Unit.sleep_until`), the hour of arrival and the alert test (`Behaviour`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.engine.model import DesertModel
from sim.engine.orders import ForceItems
from sim.rules.force import ForceTable
from sim.rules.state import NEVER_HOUR, Posture

REPO = Path(__file__).resolve().parent.parent
OUTPOST = REPO / "scenarios" / "outpost_night_raid.yaml"


def _random_table(rng: np.random.Generator, capacity: int = 40) -> ForceTable:
    force = ForceTable(capacity)
    force.n = capacity
    for name in force.FLOAT_COLUMNS:
        getattr(force, name)[:] = rng.normal(0, 50, capacity)
    for name in force.INT_COLUMNS:
        getattr(force, name)[:] = rng.integers(-(2**31), 2**31 - 1, capacity)
    for name in force.BOOL_COLUMNS:
        getattr(force, name)[:] = rng.random(capacity) < 0.5
    return force


def test_force_items_read_what_item_reads_and_write_what_numpy_writes():
    """Every column: an item is ``ndarray.item``'s Python number (type and value); assigning
    an int, a float, a bool or a `Posture` leaves the column as numpy's assignment does."""
    rng = np.random.default_rng(5)
    force, twin = _random_table(rng), _random_table(np.random.default_rng(5))
    items = ForceItems(force)
    columns = force.FLOAT_COLUMNS + force.INT_COLUMNS + force.BOOL_COLUMNS
    for name in columns:
        column, view = getattr(force, name), getattr(items, name)
        for i in range(force.n):
            got, want = view[i], column.item(i)
            assert type(got) is type(want) and got == want, (name, i)
    values = {"float": [0.0, -1.5, 1e300, 7], "int": [0, -3, NEVER_HOUR, Posture.HIDDEN],
              "bool": [True, False]}
    for name in columns:
        kind = ("float" if name in force.FLOAT_COLUMNS
                else "int" if name in force.INT_COLUMNS else "bool")
        for value in values[kind]:
            i = int(rng.integers(force.n))
            getattr(items, name)[i] = value
            getattr(twin, name)[i] = value
        assert getattr(force, name).tobytes() == getattr(twin, name).tobytes(), name


def test_sleep_until_wakes_at_the_hour_asked_at_the_soonest_the_next_capped():
    """``sleep_until(h)`` sets the timer to ``min(max(int(h), hour + 1), NEVER_HOUR)`` for
    ints, numpy ints and floats, before, at and after the hour, and past the cap."""
    model = DesertModel(OUTPOST, rng=3)
    model.hour = 40
    unit = model.units[0]
    for hour in (-5, 0, 39, 40, 41, 42, 1000, NEVER_HOUR - 1, NEVER_HOUR, NEVER_HOUR + 1, 2**40,
                 np.int64(45), np.int32(12), 44.9, 40.5, True):
        unit.sleep_until(hour)
        assert unit.wake_hour == min(max(int(hour), model.hour + 1), NEVER_HOUR), hour
        assert type(unit.wake_hour) is int


def test_arrival_hour_is_the_hour_after_the_path_s_remaining_hours():
    """``arrival_hour`` is ``hour + max(1, int(remaining) + 1)`` for the remaining hours of
    the path (its last mark less the unit's clock), whatever their sign and fraction."""
    model = DesertModel(OUTPOST, rng=3)
    model.hour = 100
    unit = next(u for u in model.units if u.behaviour is not None)
    rng = np.random.default_rng(2)
    marks = np.concatenate([rng.uniform(-3, 60, 200), [0.0, 1.0, 2.0, 0.999999, 12.0]])
    for last in marks:
        for clock in (0.0, 1.0, 11.5, float(last), float(last) + 0.5):
            unit.path_hours = np.array([0.0, last])
            model.force.path_clock[unit.idx] = clock
            want = model.hour + max(1, int(last - clock) + 1)
            assert unit.behaviour.arrival_hour() == want, (last, clock)


@pytest.mark.parametrize("alerts, reasons, want", [
    ([], ("engaged",), False),
    (["detected"], ("engaged", "broke_off"), False),
    (["arrived", "engaged"], ("engaged", "broke_off"), True),
    (["broke_off"], ("engaged", "broke_off"), True),
    (["engaged"], (), False),
])
def test_alerted_is_whether_any_reason_is_among_the_alerts(alerts, reasons, want):
    model = DesertModel(OUTPOST, rng=3)
    unit = next(u for u in model.units if u.behaviour is not None)
    unit.alerts[:] = alerts
    assert unit.behaviour.alerted(*reasons) is want


def _read_only(cells) -> np.ndarray:
    cells = np.array(cells, dtype=np.int64)
    cells.flags.writeable = False
    return cells


def test_following_a_kept_route_gives_what_timing_it_afresh_gives():
    """`Orders.follow` keeps a read-only route's timing with its first cell: whether the unit
    stands at the route's start or not, the route is new or kept, the unit's speeds or fuel
    changed, its path, hours, path-book columns and posture are those of a path timed afresh
    (the route with the unit's cell put first if it is not there, cut where impassable)."""
    model = DesertModel(OUTPOST, rng=3)
    orders, f = model.orders, model.force
    units = [u for u in model.units if u.behaviour is not None][:4]
    rng = np.random.default_rng(9)
    cols = model.terrain.cols
    routes = []
    for u in units:
        target = int(rng.choice(np.flatnonzero(np.isfinite(model.terrain.move_cost["foot"]))))
        routes.append(model.router.local_path(u.cell, target, "foot", frozenset()))
    routes.append(_read_only([units[0].cell, units[0].cell + 1, units[0].cell + 1 + cols]))
    for step in range(300):
        u = units[int(rng.integers(len(units)))]
        i = u.idx
        if step % 7 == 0:  # speeds and fuel change (an event, the supply phase)
            f.speed_kmh[i] = float(rng.choice([5.0, 30.0, 60.0]))
            f.fuel_days[i] = float(rng.choice([0.0, 2.0]))
        route = routes[int(rng.integers(len(routes)))]
        if rng.random() < 0.5:  # stand at the route's start, or somewhere else
            f.row[i], f.col[i] = divmod(int(route[0]), cols)
        else:
            f.row[i], f.col[i] = divmod(int(route[int(rng.integers(len(route)))]), cols)
        cells = route if route.item(0) == u.cell else np.concatenate(([u.cell], route))
        want_cells, want_hours = orders._timed(u, cells)
        serial = model.paths.serial[i]
        posture = Posture(int(rng.choice([Posture.MOVING, Posture.PURSUING])))
        f.path_clock[i] = 3.0
        orders.follow(u, route, posture)
        assert u.path.tolist() == want_cells.tolist()
        assert u.path_hours.tobytes() == want_hours.tobytes()
        assert model.paths.serial[i] == serial + 1
        start, length = model.paths.start[i], model.paths.length[i]
        assert model.paths.cells[start:start + length].tolist() == want_cells.tolist()
        assert (f.path_pos[i], f.path_last[i], f.path_clock[i], f.posture[i]) == (
            0, len(want_cells) - 1, 0.0, posture)


def test_compiled_path_timing_gives_the_numpy_hours_to_the_bit(monkeypatch):
    """`Orders.hours_along` by the compiled kernel and by numpy: the same bytes, on random
    paths of side, diagonal and standing steps over random layers (with impassable, NaN and
    tiny costs), and on the bundled map's routes at the units' speeds."""
    from sim import compiled
    from sim.engine.orders import _STEP_LENGTH, _cumulative_hours

    rng = np.random.default_rng(13)
    for _ in range(300):
        cols = int(rng.integers(2, 60))
        size = cols * int(rng.integers(2, 60))
        hpc = rng.exponential(rng.choice([1e-6, 0.1, 3.0]), size)
        hpc[rng.random(size) < 0.02] = np.inf
        hpc[rng.random(size) < 0.01] = np.nan
        steps = rng.choice([0, 1, -1, cols, -cols, cols + 1, cols - 1, -cols - 1, 1 - cols],
                           int(rng.integers(2, 400)))
        cells = np.clip(int(rng.integers(size)) + np.cumsum(steps), 0, size - 1).astype(np.int64)
        numpy_path = np.empty(len(cells))
        numpy_path[0] = 0.0
        hop = np.abs(np.diff(cells))
        diag = (hop > 1) & (hop != cols)
        np.cumsum(hpc[cells[1:]] * _STEP_LENGTH[diag.view(np.int8)], out=numpy_path[1:])
        got, as_python = np.empty(len(cells)), np.empty(len(cells))
        _cumulative_hours(cells, hpc, cols, _STEP_LENGTH, got)
        _cumulative_hours.py(cells, hpc, cols, _STEP_LENGTH, as_python)
        assert got.tobytes() == numpy_path.tobytes() == as_python.tobytes()
    hours = {}
    for kernels in ("numba", "numpy"):
        monkeypatch.setenv(compiled.ENV_KERNELS, kernels)
        model = DesertModel(OUTPOST, rng=3)
        hours[kernels] = [model.orders.hours_along(u, model.router.local_path(
            u.cell, int(model.units[-1 - k].cell), "foot", frozenset())).tobytes()
            for k, u in enumerate(model.units[:6])]
    assert hours["numba"] == hours["numpy"]


def test_a_dead_unit_decides_nothing_until_replaced():
    """A destroyed unit awaiting replacement is not asked to decide, whether its timer is due
    or the light changes (its timer is set to never when the hour's scan meets it); replaced,
    it decides again from that hour."""
    model = DesertModel(OUTPOST, rng=3)
    unit = next(u for u in model.units if u.behaviour is not None)
    asked = []
    unit.behaviour.decide = lambda: asked.append(model.hour)
    model.hour = 30
    unit.wake_hour = 30
    model.force.alive[unit.idx] = False
    for hour in range(30, 60):  # a day and more: the light changes, the timer stays due
        model.hour = hour
        model._decide()
    assert asked == [] and unit.wake_hour == NEVER_HOUR
    model._replace(unit)
    model._decide()
    assert asked == [model.hour]


def _ready_qrf(max_range_km: float = 5.0):
    """A tanf_refuge model and its QRF, at readiness at its base after its first decision
    (decisions are called by hand below, so no sighting but the test's reaches it)."""
    model = DesertModel(REPO / "scenarios" / "tanf_refuge.yaml", rng=3,
                        overrides=[f"units[kind=qrf].tactic.max_range_km={max_range_km}"])
    qrf = next(u for u in model.units if u.kind == "qrf")
    qrf.behaviour.decide()
    assert qrf.behaviour.state == "ready" and qrf.cell == qrf.behaviour.base
    return model, qrf


def _sighted(model, qrf, target, cell: int) -> None:
    """A unit of the QRF's faction (not the QRF) sights ``target`` at ``cell`` this hour."""
    fi = model.faction_index[qrf.faction]
    post = next(u for u in model.units if u.faction == qrf.faction and u is not qrf)
    model.knowledge.record(model.hour, np.array([fi]), np.array([post.idx]),
                           np.array([target.idx]), np.array([cell]))


def _decide_at(model, unit, hour: int) -> str:
    model.hour = hour
    unit.behaviour.decide()
    return unit.behaviour.state


def test_a_ready_qrf_that_found_nothing_near_chases_the_next_sighting_near_its_base():
    """A QRF at readiness that found no enemy near its base does not look again while its
    faction's knowledge and hostility stay the same (nothing near can appear then); a new
    sighting near the base starts the chase in the hour it reaches the faction."""
    model, qrf = _ready_qrf()
    base_r, base_c = divmod(qrf.behaviour.base, model.terrain.cols)
    far = base_r * model.terrain.cols + (base_c + 20 if base_c + 20 < model.terrain.cols
                                         else base_c - 20)  # 20 km off, the range is 5
    raiders = [u for u in model.units if u.faction == "insurgents"]
    delay = int(model.knowledge.delay[model.faction_index[qrf.faction]])
    _sighted(model, qrf, raiders[0], far)
    for hour in range(delay, delay + 3):  # the far sighting is news: looked at, not chased
        assert _decide_at(model, qrf, hour) == "ready"
    hour = delay + 3
    model.hour = hour
    _sighted(model, qrf, raiders[1], qrf.behaviour.base)
    assert _decide_at(model, qrf, hour + delay - 1) == "ready"  # not yet reached the faction
    assert _decide_at(model, qrf, hour + delay) == "pursuing"
    assert qrf.behaviour.quarry == raiders[1].idx


def test_a_ready_qrf_that_found_nothing_near_chases_a_unit_near_it_that_turns_hostile():
    """A unit sighted near the base but not hostile is not chased; made hostile (a scenario
    event: no new sighting) it is, at the QRF's next decision while the sighting is fresh."""
    model, qrf = _ready_qrf()
    fi = model.faction_index[qrf.faction]
    other = next(u for u in model.units if u.faction == "coalition")
    fo = model.faction_index[other.faction]
    assert model.hostile[fi, fo]
    model.hostile[fi, fo] = model.hostile[fo, fi] = False
    delay = int(model.knowledge.delay[fi])
    _sighted(model, qrf, other, qrf.behaviour.base)
    assert _decide_at(model, qrf, delay) == "ready"
    assert _decide_at(model, qrf, delay + 1) == "ready"
    model.hostile[fi, fo] = model.hostile[fo, fi] = True
    assert _decide_at(model, qrf, delay + 2) == "pursuing"
    assert qrf.behaviour.quarry == other.idx


def test_known_enemies_kept_per_faction_answers_as_the_plain_filter():
    """`known_enemies` filters the faction's shared answer once per hour and keeps it: at every
    hour of a busy run, after deaths and after changes of hostility within the hour, each unit
    gets what filtering the knowledge's answer for it gives (and read-only arrays)."""
    model = DesertModel(REPO / "scenarios" / "tanf_refuge.yaml", rng=5)
    asked = flips = 0
    for _ in range(24 * 6):
        for again in (False, True):  # twice: the second answers come from what was kept
            if again and asked and model.hour % 5 == 0:  # a scenario event's change of
                # hostility, within the hour and with no new sighting: every pair flipped
                model.hostile[:] = ~model.hostile & ~np.eye(len(model.hostile), dtype=bool)
                flips += 1
            for u in model.units:
                fi = model.faction_index[u.faction]
                idx, cells, ages = model.knowledge.known_to(fi, model.hour, u.idx, 6)
                keep = model.force.alive[idx] & model.hostile[fi, model.force.faction[idx]]
                got = model.known_enemies(u, max_age_hours=6)
                for a, b in zip(got, (idx[keep], cells[keep], ages[keep]), strict=True):
                    np.testing.assert_array_equal(a, b)
                    assert not a.flags.writeable
                asked += len(got[0]) > 0
        model.step()
    assert asked > 100 and flips > 5
