"""Run metrics counted the way analysts read them: zone entries on every cell a unit passes."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.model import DesertModel
from sim.scenario.loading import parse_scenario

ROWS, COLS = 80, 12
STRIP = range(36, 42)      # six 250 m rows: a 1.5 km zone strip across the map
MID = 39                   # the strip's middle line: rows above it are north of it


def _strip_scenario(days: float) -> dict:
    lines = ["Z" * COLS if r in STRIP else "." * COLS for r in range(ROWS)]
    return {
        "name": "zone strip", "seed": 1, "start": "2018-06-01T00:00", "days": days,
        "map": {"cell_km": 0.25, "centre": {"lat": 34.5, "lon": 38.5},
                "ascii": "\n".join(lines),
                "legend": {".": {"ground": "flat"}, "Z": {"ground": "flat", "zone": "Strip"}},
                "zones": [{"name": "Strip", "barred": []}],
                "places": [{"name": "South", "kind": "base", "cell": [75, 6]},
                           {"name": "North", "kind": "outpost", "cell": [5, 6]}]},
        "factions": {"government": {"role": "garrison", "hostile": []}},
        # 17.5 km each way at 10 km/h: a leg takes longer than an hour, so the hour-end
        # positions show every crossing of the strip, which takes a few minutes
        "units": [{"kind": "patrol", "faction": "government", "count": 1,
                   "at": "South", "offroad_speed_kmh": 10, "speed_kmh": 10,
                   "tactic": {"kind": "patrol", "schedule": "always", "period_hours": 4,
                              "route": ["South", "North"]}}],
    }  # fmt: skip


def test_a_patrol_crossing_a_zone_strip_is_counted_at_every_crossing():
    """Each time the patrol's side of the strip changes between two hour ends it drove through
    the strip once; zone_entries counts exactly those, though it rarely ends an hour inside."""
    model = DesertModel(parse_scenario(_strip_scenario(2), "<strip>"), rng=3)
    zone = model.terrain.zone
    sides, ended_inside = [], 0
    for _ in range(48):
        model.step()
        r, c = int(model.force.row[0]), int(model.force.col[0])
        sides.append(r >= MID)
        ended_inside += zone[r, c] >= 0
    crossings = int(np.sum(np.diff(np.array(sides, dtype=int)) != 0))
    entries = model.metrics.totals["zone_entries"]
    assert crossings >= 20, crossings           # about 12 rounds out and back in two days
    assert entries == crossings
    # counting only where each hour ends (the old rule) would have missed most of them
    assert ended_inside < crossings / 2
    assert model.metrics.totals.get("zone_entries_barred", 0) == 0


def _stem(name: str) -> str:
    """A summary name with the suffix and plurals a near-duplicate would differ by removed."""
    for suffix in ("_total", "_end", "_mean"):
        name = name.removesuffix(suffix)
    return "_".join(w.removesuffix("es") if w.endswith("shes") else w.removesuffix("s")
                    for w in name.split("_"))


def test_the_run_summary_has_one_name_per_metric_and_each_counts_what_it_says():
    """No two summary names that differ only by a plural or a suffix (such as the dead
    `attack_attempted_total` beside `attacks_attempted_total`); the raid counts are the two
    documented ones: raiding cells that set out, and raid attacks (one per fight opened on a
    target, however many cells joined it)."""
    from pathlib import Path

    from sim.engine.run import run_scenario

    theatre = Path(__file__).resolve().parent.parent / "scenarios" / "badia_theatre.yaml"
    result = run_scenario(theatre, seed=11, days=20)
    names = list(result.summary)
    stems: dict[str, str] = {}
    for name in names:
        assert _stem(name) not in stems, (name, stems.get(_stem(name)))
        stems[_stem(name)] = name
    kinds = [e["type"] for e in result.events]
    assert result.summary["raids_set_out"] == kinds.count("raid_start")
    assert result.summary["raid_attempted_total"] == kinds.count("raid")
    # cells raiding one post together are what separates the two in the theatre
    assert kinds.count("raid_start") > kinds.count("raid") > 0
    assert result.summary["attacks_attempted_total"] == sum(
        result.summary[f"{k}_attempted_total"] for k in ("raid", "ambush", "seizure"))


def test_validate_and_the_app_count_the_same_units(capsys) -> None:
    """`badia validate` prints the units a run starts with (escorts included), the number the
    app's status line adds up from the live force, for every bundled scenario."""
    import re
    from pathlib import Path

    from sim.app.model import VizModel
    from sim.app.status import status_text
    from sim.scenario.loading import main_validate

    files = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml"))
    assert main_validate(files) == 0
    printed = dict(re.findall(r"/(\w+)\.yaml: ok \(.*?, (\d+) units,", capsys.readouterr().out))
    assert set(printed) == {f.stem for f in files}
    for f in files:
        model = VizModel(scenario_file=f.stem, rng=1)
        alive = status_text(model).splitlines()[0].split("units alive: ")[1]
        shown = sum(int(n) for n in re.findall(r"\d+", alive))
        assert shown == int(printed[f.stem]) == model.force.n, f.stem
    assert printed["badia_theatre"] == "325"   # 295 unit entries' counts and 30 escorts


# --------------------------------------------------------------------------- border transits
def _line_terrain(rows: int = 20, cols: int = 20, line_col: int = 10, line_rows: int = 15):
    """A border line down column ``line_col`` over the first ``line_rows`` rows; its side layer
    (+1 west, -1 east) extends over every row, as a real line's does beyond its ends."""
    from types import SimpleNamespace

    border = np.full((rows, cols), -1, dtype=np.int16)
    border[:line_rows, line_col] = 0
    side = np.where(np.arange(cols)[None, :] < line_col, 1, -1).astype(np.int8)
    side = np.broadcast_to(side, (rows, cols)).copy()[None]
    return SimpleNamespace(border=border, border_side=side), cols


def _old_hourly_test(lines, r0: int, c0: int, r1: int, c1: int, traversed) -> bool:
    """The rule before every crossing counted: the hour's first and last cells on different
    sides of a line, and the path through the line."""
    return bool((lines.side[:, r0, c0] != lines.side[:, r1, c1]).any()
                and lines.near_line[np.asarray(traversed, dtype=np.int64)].any())


def test_border_crossings_are_counted_at_every_crossing_in_the_hour():
    """A walk across the line and back within the hour crosses twice; one across, once (as the
    old start-and-end test said); a walk along the line, whose own cells flicker from side to
    side, and a change of side beyond the line's end, never."""
    from sim.rules.borders import BorderLines

    terrain, cols = _line_terrain()
    lines = BorderLines(terrain)

    def cells(row, cols_walked):
        return [row * cols + c for c in cols_walked]

    across = cells(5, range(6, 16))
    got = lines.crossings(5 * cols + 5, across)
    assert len(got) == 1 and across[got[0]] == 5 * cols + 12  # first cell clear of the line
    assert _old_hourly_test(lines, 5, 5, 5, 15, across)
    there_and_back = cells(5, [*range(6, 16), *range(14, 4, -1)])
    assert len(lines.crossings(5 * cols + 5, there_and_back)) == 2
    assert not _old_hourly_test(lines, 5, 5, 5, 5, there_and_back)  # the old test saw nothing
    # driving along the line: its cells' sides alternate, yet no crossing within the hour (the
    # hour's first and last cells are read as they stand, as the old test read them)
    terrain.border_side[0, :15, 10] = np.where(np.arange(15) % 2 == 0, 1, -1)
    lines = BorderLines(terrain)
    along = [r * cols + 10 for r in range(1, 13)]
    assert len(lines.crossings(0 * cols + 10, along)) == 0
    # beyond the line's end (rows 17+): a change of side is no crossing
    assert len(lines.crossings(18 * cols + 5, cells(18, range(6, 16)))) == 0


def _crossings_reference(lines, start: int, traversed) -> np.ndarray:
    """The crossing rule as first written (every line's side read at the key cells of the
    walk, start prepended), kept to check the packed-side form against."""
    cells = np.asarray(traversed, dtype=np.int64)
    if not lines.side.shape[0] or len(cells) == 0:
        return np.empty(0, dtype=np.int64)
    near = lines.near_line[cells]
    if not near.any():
        return np.empty(0, dtype=np.int64)
    walk = np.concatenate(([int(start)], cells))
    near_walk = np.concatenate(([False], near))
    key = ~near_walk
    key[0] = key[-1] = True
    at = np.flatnonzero(key)
    side = lines.side.reshape(len(lines.side), -1)[:, walk[at]]
    changed = (side[:, 1:] != side[:, :-1]).any(axis=0)
    touched = np.cumsum(near_walk)
    via_line = touched[at[1:]] - touched[at[:-1]] > 0
    return at[1:][changed & via_line] - 1


def test_border_crossings_equal_the_rule_read_line_by_line_on_random_walks():
    """The crossings found on the packed side code are those the line-by-line rule finds,
    for one to three lines with random sides (zero included), random line cells and random
    walks that wander across them, jump, stand still or are a single cell."""
    from types import SimpleNamespace

    from sim.rules.borders import BorderLines

    rng = np.random.default_rng(11)
    rows, cols = 16, 16
    for trial in range(400):
        n_lines = int(rng.integers(0, 4))
        side = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(n_lines, rows, cols),
                          p=[0.45, 0.1, 0.45])
        border = np.where(rng.random((rows, cols)) < rng.uniform(0.0, 0.3), 0, -1)
        lines = BorderLines(SimpleNamespace(border=border.astype(np.int16), border_side=side))
        start = int(rng.integers(rows * cols))
        steps = rng.integers(-1, 2, size=(int(rng.integers(0, 30)), 2))
        if trial % 5 == 0 and len(steps):  # a jump now and then (paths may have one)
            steps[int(rng.integers(len(steps)))] = rng.integers(-5, 6, size=2)
        rc = np.divmod(start, cols) + np.cumsum(steps, axis=0)
        walk = np.clip(rc[:, 0], 0, rows - 1) * cols + np.clip(rc[:, 1], 0, cols - 1)
        got = lines.crossings(start, walk)
        np.testing.assert_array_equal(got, _crossings_reference(lines, start, walk))


def test_side_code_tells_cells_apart_exactly_when_some_line_does():
    """Two cells get the same packed side code exactly when every line puts them on the same
    side; with more lines than the packing holds, or sides that are not int8, the code is the
    rank of the cell's column of sides, with the same property."""
    from sim.rules.borders import side_code

    rng = np.random.default_rng(3)
    for n_lines, dtype in ((1, np.int8), (2, np.int8), (3, np.int8), (8, np.int8),
                           (9, np.int8), (2, np.int16)):  # fmt: skip
        side = rng.integers(-2, 3, size=(n_lines, 6, 7)).astype(dtype)
        code = side_code(side)
        flat = side.reshape(n_lines, -1)
        same_sides = (flat[:, :, None] == flat[:, None, :]).all(axis=0)
        np.testing.assert_array_equal(code[:, None] == code[None, :], same_sides)
    assert len(side_code(np.zeros((0, 4, 5), dtype=np.int8))) == 20


def _zone_entries_reference(metrics, paths, movers, old, new, start, faction, moved, barred):
    """Zone entries as first counted: each mover near a zone walked again from its start."""
    from sim.engine.metrics import _DIAGONAL

    steps = new - old
    near = np.flatnonzero(moved & (steps > 0)
                          & (metrics._zone_dist[start] <= _DIAGONAL * steps))
    if not len(near):
        return 0, 0
    cells, owner = paths.passed(movers[near], old[near], new[near])
    z = metrics._zone_flat[cells]
    before = np.empty_like(z)
    before[1:] = z[:-1]
    first = np.ones(len(owner), dtype=bool)
    first[1:] = owner[1:] != owner[:-1]
    before[first] = metrics._zone_flat[start[near][owner[first]]]
    entered = np.flatnonzero((z >= 0) & (z != before))
    fac = faction[near]
    return len(entered), sum(int(z[k]) in barred[fac[owner[k]]] for k in entered.tolist())


def test_zone_entries_read_from_the_path_book_equal_each_walk_counted_alone():
    """Zone entries counted on the cells passed in the path book (each cell's zone against
    the zone of the cell before it in the book) equal those of each mover's walk from its
    start, with barred entries, movers turned back at a border, halts and jumps, on random
    paths over the strip map."""
    from sim.engine.movement import PathBook

    model = DesertModel(parse_scenario(_strip_scenario(1), "<strip>"), rng=1)
    metrics = model.metrics
    rng = np.random.default_rng(4)
    units = 25
    # a book that keeps the zone entries (read by on_zone_moves)
    book = PathBook(units, initial_cells=64, zone=metrics._zone_flat)
    for trial in range(300):
        for u in (range(units) if trial == 0 else rng.choice(units, size=8).tolist()):
            k = int(rng.integers(1, 60))
            steps = rng.integers(-1, 2, size=(k, 2))
            steps[:, 0] = rng.choice([-1, 0, 1, 1], size=k)  # drift north to south and back
            if rng.random() < 0.2:
                steps[int(rng.integers(k))] = rng.integers(-6, 7, size=2)  # a jump
            rc = np.array([rng.integers(ROWS), rng.integers(COLS)]) + np.cumsum(steps, axis=0)
            rc[:, 0] = np.clip(rc[:, 0], 0, ROWS - 1)
            rc[:, 1] = np.clip(rc[:, 1], 0, COLS - 1)
            cells = (rc[:, 0] * COLS + rc[:, 1]).astype(np.int64)
            book.write(u, cells, np.arange(k, dtype=float))
        movers = np.sort(rng.choice(units, size=int(rng.integers(1, units)), replace=False))
        last = book.length[movers] - 1
        old = (rng.random(len(movers)) * (last + 1)).astype(np.int64)
        new = np.minimum(old + rng.integers(0, 30, len(movers)), last)
        start = book.cells_at(movers, old)
        faction = rng.integers(0, 3, size=units)
        moved = rng.random(len(movers)) < 0.9
        barred = [frozenset({0}) if rng.random() < 0.5 else frozenset() for _ in range(3)]
        at, ends = book.passed_at(movers, old, new)
        metrics.day.clear()
        metrics.on_zone_moves(movers, book.cells[at], book.entry, at, ends, new - old, start,
                              None if trial % 3 == 0 else moved, faction, barred)
        want = _zone_entries_reference(metrics, book, movers, old, new, start, faction[movers],
                                       np.ones(len(movers), bool) if trial % 3 == 0 else moved,
                                       barred)
        assert (metrics.day.get("zone_entries", 0), metrics.day.get("zone_entries_barred", 0)) \
            == want


def _covered_reference(metrics, f, which, ranges, known) -> np.ndarray:
    """The points covered as first looked up: one (cell, range) tuple per unit."""
    n = f.n
    covered = np.zeros(metrics._n_area + metrics._n_road, dtype=bool)
    if not which.any():
        return covered
    cells = (f.row[:n][which].astype(np.int64) << 32) | f.col[:n][which]
    keys = list(zip(cells.tolist(), ranges[which].tolist(), strict=True))
    missing = sorted({k for k in keys if k not in known})
    if missing:
        rc = np.array([divmod(k, 1 << 32) for k, _ in missing], dtype=float)
        radius = np.array([r for _, r in missing])
        hits = metrics._tree.query_ball_point(rc * metrics.cell_km, radius,
                                              return_sorted=False)
        for key, h in zip(missing, hits, strict=True):
            known[key] = np.asarray(h, dtype=np.int64)
    covered[np.concatenate([known[k] for k in set(keys)])] = True
    return covered


def test_coverage_keyed_by_one_number_per_unit_equals_the_tuple_keyed_lookup():
    """The points within range of random units (many sharing a cell and a range, some
    ranges zero) are those the (cell, range) tuple lookup finds, sample after sample with
    the lookups kept; the fractions are the means of the covered points."""
    from sim.rules.force import ForceTable

    model = DesertModel(parse_scenario(_strip_scenario(1), "<strip>"), rng=1)
    metrics = model.metrics
    rng = np.random.default_rng(9)
    f = ForceTable(60)
    for _ in range(60):
        f.add(row=int(rng.integers(ROWS)), col=int(rng.integers(COLS)), alive=True)
    known: dict = {}
    for _ in range(40):
        k = rng.integers(60, size=10)
        f.row[k] = rng.integers(ROWS, size=10)
        f.col[k] = rng.integers(COLS, size=10)
        which = rng.random(60) < 0.6
        ranges = rng.choice([0.0, 0.4, 1.5, 3.0], size=60)
        got = metrics._covered(f, which, ranges)
        want = _covered_reference(metrics, f, which, ranges, known)
        np.testing.assert_array_equal(got, want)
        # on top of a base: the base's points and the units', the base left as it was
        base = rng.random(len(want)) < 0.1
        kept = base.copy()
        np.testing.assert_array_equal(metrics._covered(f, which, ranges, base), want | base)
        np.testing.assert_array_equal(base, kept)
        if rng.random() < 0.2:  # lookups lost (the store cleared when full): the same points
            metrics._points_seen.clear()
        na = metrics._n_area
        assert int(np.count_nonzero(got[:na])) / na == float(got[:na].mean())


def test_crossings_kept_for_shared_routes_equal_those_found_afresh():
    """A move along a read-only (shared) route is looked up by (route, from, to): each lookup,
    first or repeated, gives the crossings found on the cells themselves; routes of a unit's
    own (writeable) are not kept."""
    from types import SimpleNamespace

    from sim.rules.borders import BorderLines

    terrain, cols = _line_terrain()
    lines = BorderLines(terrain)
    model = SimpleNamespace(border_lines=lines, _crossings_seen={})
    rng = np.random.default_rng(2)
    routes = []
    for _ in range(6):
        c = np.clip(5 + np.cumsum(rng.integers(-1, 2, 60)), 0, cols - 1)
        r = np.clip(3 + np.cumsum(rng.integers(-1, 2, 60)), 0, 19)
        path = (r * cols + c).astype(np.int64)
        path.flags.writeable = bool(rng.random() < 0.3)
        routes.append(path)
    found = 0
    for _ in range(500):
        path = routes[int(rng.integers(len(routes)))]
        old = int(rng.integers(0, 59))
        new = int(rng.integers(old, 60))
        got = DesertModel._crossings(model, path, old, new)
        want = lines.crossings(int(path[old]), path[old + 1 : new + 1]).tolist()
        assert got == want
        found += len(want)
    assert found > 20
    assert all(not seen[0].flags.writeable for seen in model._crossings_seen.values())


def test_interception_table_follows_border_security_and_hostility():
    """The model's interception chance of a crosser's faction, kept in a table, equals the
    product over the hostile factions' border security computed afresh, while the security
    and the hostility change in place (as a scenario event changes them)."""
    from sim.rules.borders import interception_probability

    model = DesertModel(parse_scenario(_strip_scenario(1), "<strip>"), rng=1)
    rng = np.random.default_rng(6)
    nf = len(model.faction_names)
    for _ in range(200):
        if rng.random() < 0.3:
            model.border_security[int(rng.integers(nf))] = rng.choice([0.0, 0.25, 0.7, 1.0])
        if rng.random() < 0.3:
            a, b = rng.integers(nf, size=2)
            model.hostile[a, b] = model.hostile[b, a] = a != b and not model.hostile[a, b]
        for fi, name in enumerate(model.faction_names):
            assert model._interception(name) == interception_probability(
                model.border_security, model.hostile[fi])


def _cordon_reference(state, sweepers, prev_rc) -> None:
    """``cordon_sightings`` as first written: every unit's inside tests over the force."""
    from sim.rules.cordon import _inside

    f = state.force
    n = f.n
    for sweeper in sweepers:
        square = sweeper.behaviour.square_mask_cells()
        fi = f.faction[sweeper.idx]
        enemy = f.alive[:n] & state.hostile[fi, f.faction[:n]]
        was_in = _inside(prev_rc[:n, 0], prev_rc[:n, 1], square)
        now_in = _inside(f.row[:n], f.col[:n], square)
        leaving = np.flatnonzero(enemy & was_in & ~now_in)
        if len(leaving):
            cells = f.cells(leaving, state.terrain.cols)
            observers = np.full(len(leaving), sweeper.idx)
            state.knowledge.record(state.hour, np.full(len(leaving), fi), observers, leaving,
                                   cells)
            for k, i in enumerate(leaving.tolist()):
                state.log("cordon_sighting", int(cells[k]), sweeper.faction,
                          unit=state.units[i].name)


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_cordon_sightings_equal_every_units_inside_tests(monkeypatch, kernels):
    """The units seen leaving a cordoned square, found among the sweeper's living enemies
    only (by the compiled pass, or numpy), are those the tests over every unit find: the same
    records and log lines in the same order, for random forces, hostilities, squares and moves
    (some units dead, squares at the map's edge or empty)."""
    from types import SimpleNamespace

    from sim import compiled
    from sim.rules.cordon import cordon_sightings
    from sim.rules.force import ForceTable

    monkeypatch.setenv(compiled.ENV_KERNELS, kernels)

    rng = np.random.default_rng(17)
    seen = 0
    for _ in range(300):
        n, nf, rows, cols = int(rng.integers(1, 40)), 3, 12, 15
        f = ForceTable(n + 2)
        for _ in range(n):
            f.add(row=int(rng.integers(rows)), col=int(rng.integers(cols)),
                  faction=int(rng.integers(nf)), alive=bool(rng.random() < 0.85))
        prev = np.column_stack((f.row, f.col)).astype(np.int32)
        moved = rng.random(f.n) < 0.4
        f.row[: f.n][moved] = rng.integers(rows, size=int(moved.sum()))
        f.col[: f.n][moved] = rng.integers(cols, size=int(moved.sum()))
        hostile = rng.random((nf, nf)) < 0.5
        hostile = hostile | hostile.T
        sweepers = []
        for _ in range(int(rng.integers(1, 3))):
            square = (int(rng.integers(-2, rows)), int(rng.integers(-2, cols)),
                      int(rng.integers(0, 6)), int(rng.integers(0, 6)))
            idx = int(rng.integers(f.n))
            sweepers.append(SimpleNamespace(idx=idx, faction=f"f{f.faction[idx]}",
                                            behaviour=SimpleNamespace(
                                                square_mask_cells=lambda s=square: s)))
        out = []
        for rule in (cordon_sightings, _cordon_reference):
            calls = []
            state = SimpleNamespace(
                force=f, hostile=hostile, terrain=SimpleNamespace(cols=cols), hour=5,
                units=[SimpleNamespace(name=f"u{i}") for i in range(f.n)],
                knowledge=SimpleNamespace(record=lambda *a, calls=calls: calls.append(
                    ("record", *(np.asarray(x).tolist() for x in a)))),
                log=lambda *a, calls=calls, **k: calls.append(("log", a, k)))
            rule(state, sweepers, prev)
            out.append(calls)
        assert out[0] == out[1]
        seen += len(out[0])
    assert seen > 50  # units were seen leaving


def test_mean_of_a_list_equals_numpys_bit_for_bit():
    """The daily means (road-open fraction, coverage) taken with one pairwise sum over the
    count equal ``np.mean`` of the same list bit for bit: lengths 1 to 300 (both sides of the
    pairwise blocks), values of very different sizes, signed zeros, NaN."""
    from sim.engine.metrics import _mean

    rng = np.random.default_rng(23)
    for trial in range(2000):
        k = int(rng.integers(1, 300)) if trial % 4 else int(rng.integers(1, 12))
        values = (rng.random(k) * 10.0 ** rng.integers(-8, 8, size=k)).tolist()
        if trial % 97 == 0:
            values[int(rng.integers(k))] = float("nan")
        if trial % 89 == 0:
            values = [-0.0] * k
        want = float(np.mean(values))
        got = _mean(values)
        assert np.array(got).tobytes() == np.array(want).tobytes(), (values, got, want)


def test_roads_keep_the_latest_closure_as_the_scan_finds_it():
    """``RoadState.any_closed_until`` (which tells the metrics a quiet hour without a scan)
    is ``closed_until.max()`` after any closures, in any order, on or off the roads."""
    model = DesertModel("scenarios/highway_interdiction.yaml", rng=1)
    roads = model.roads
    assert len(roads.segments) and roads.any_closed_until == roads.closed_until.max() == -1
    rng = np.random.default_rng(3)
    road_cells = np.flatnonzero(model.terrain.road.ravel() > 0)
    for _ in range(200):
        cell = int(rng.choice(road_cells)) if rng.random() < 0.8 else 0
        roads.close(cell, int(rng.integers(0, 500)))
        assert roads.any_closed_until == max(int(roads.closed_until.max()), -1)
