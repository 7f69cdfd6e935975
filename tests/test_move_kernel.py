"""The compiled move phase (sim.engine.movement.move_hour, ride_along) against its numpy
reference: the same positions, clocks, cells passed and checks to the bit, on random path books
(compacted and grown, shared segments, halts) and on whole runs with kernels on and off."""

from __future__ import annotations

import numpy as np
import pytest

from sim import compiled
from sim.engine.model import DesertModel
from sim.engine.movement import (
    ADVANCE,
    ADVANCE_ONLY,
    BORDER,
    DONE,
    FIRST,
    MOVE_ROWS,
    MOVER,
    NEW,
    OLD,
    SERIAL,
    SETTLE,
    START,
    TRIPPED,
    ZONE,
    PathBook,
    move_hour,
    owner_of,
    ride_along,
)
from sim.scenario.loading import SCENARIO_DIR

ROWS, COLS = 120, 150
UNITS = 80
FACTIONS = 3


def _path(rng, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """A random path of ``cells`` flat cells with non-decreasing hours from 0 (some marks
    equal, some a hair apart, as a route's summed hours)."""
    walk = rng.integers(0, ROWS * COLS, size=cells).astype(np.int64)
    step = rng.choice([0.0, 1e-9, 0.05, 0.3, 1.0, 2.5], size=cells - 1)
    return walk, np.concatenate(([0.0], np.cumsum(step)))


def _book(rng, zone: np.ndarray) -> tuple[PathBook, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """A path book after many orders in a small buffer (compacted and grown many times): fresh
    paths, halts and shared rounds followed by several units at once."""
    book = PathBook(UNITS, initial_cells=64, zone=zone)
    rounds = [_path(rng, int(rng.integers(2, 90))) for _ in range(4)]
    for r in rounds:
        for a in r:
            a.flags.writeable = False  # a shared timed route is read-only
    paths = {}
    for _ in range(int(rng.integers(1, 12))):
        for u in rng.choice(UNITS, size=UNITS // 2).tolist():
            kind = rng.random()
            if kind < 0.35:
                paths[u] = rounds[int(rng.integers(len(rounds)))]
                book.write(u, *paths[u], shared=True)
            elif kind < 0.45:  # a halt
                paths[u] = (rng.integers(0, ROWS * COLS, size=1), np.zeros(1))
                book.write(u, *paths[u])
            else:
                paths[u] = _path(rng, int(rng.integers(2, 120)))
                book.write(u, *paths[u])
    return book, paths


class _Hour:
    """Random columns of one hour: the force's, the layers, and the kernel's table."""

    def __init__(self, rng, book: PathBook, paths: dict):
        n = UNITS
        self.n = int(rng.integers(n // 2, n + 1))  # units in the force table: the movers' range
        self.alive = rng.random(n) < 0.85
        self.path_last = np.zeros(n, dtype=np.int32)
        self.path_pos = np.zeros(n, dtype=np.int32)
        self.path_clock = np.zeros(n)
        for u, (_, hours) in paths.items():
            last = len(hours) - 1
            pos = int(rng.integers(0, last + 1))
            self.path_last[u], self.path_pos[u] = last, pos
            # on its mark (new orders, a stop at a tripwire or a mine) or past it, up to
            # beyond the path's end
            self.path_clock[u] = hours[pos] + rng.choice([0.0, 0.5, 3.0, 1e4]) * rng.random()
        self.row = rng.integers(0, ROWS, n).astype(np.int32)
        self.col = rng.integers(0, COLS, n).astype(np.int32)
        self.track = np.zeros((n, 4), dtype=np.int32)
        self.faction = rng.integers(0, FACTIONS, n).astype(np.int32)
        self.hostile = rng.random((FACTIONS, FACTIONS)) < 0.5
        self.tripwires = rng.random(ROWS * COLS) < 0.03
        self.watcher = np.where(self.tripwires, rng.integers(0, n, ROWS * COLS), -1).astype(
            np.int32)
        self.near_line = rng.random(ROWS * COLS) < 0.05
        self.row_of, self.col_of = np.divmod(np.arange(ROWS * COLS, dtype=np.int32),
                                             np.int32(COLS))  # fmt: skip
        self.idx = np.zeros((MOVE_ROWS, n), dtype=np.int64)
        self.clock = np.zeros(n)

    def copy(self) -> _Hour:
        twin = object.__new__(_Hour)
        twin.__dict__ = {name: np.copy(a) if isinstance(a, np.ndarray) else a
                         for name, a in vars(self).items()}
        return twin

    def columns(self) -> bytes:
        return b"".join(a.tobytes() for a in (self.path_pos, self.path_clock, self.row, self.col,
                                              self.track))  # fmt: skip

    def kernel(self, stage: int, book: PathBook, m: int = 0, checks=(True, True, True)):
        return move_hour(stage, self.n, m, self.alive, self.path_pos, self.path_last,
                         self.path_clock, self.row, self.col, self.track, self.faction,
                         self.hostile, book.start, book.key, book.n,
                         book.cells, book.entry, book.serial, self.tripwires, self.watcher,
                         self.near_line, COLS, *checks, self.idx,
                         self.clock)  # fmt: skip


def _owners(ends: np.ndarray, flags: np.ndarray) -> list[int]:
    """The movers (positions) with a flagged cell among those passed, in order: the numpy
    path's ``dict.fromkeys(owner_of(...))``."""
    return list(dict.fromkeys(owner_of(ends, flags.nonzero()[0]).tolist()))


def _numpy_advance(h: _Hour, book: PathBook):
    """The numpy path's advance of the hour's movers (``DesertModel._move``, ``_advance``)."""
    n = h.n
    h.track[:n, 0], h.track[:n, 1] = h.row[:n], h.col[:n]
    movers = (h.alive[:n] & (h.path_pos[:n] < h.path_last[:n])).nonzero()[0]
    first = book.start[movers]
    old = h.path_pos[movers]
    clock = h.path_clock[movers] + 1.0
    new = book.advance(movers, clock, first)
    return movers, first, old, new, clock


def _numpy_checks(h: _Hour, book: PathBook, movers, first, old, new):
    """Cells passed and the movers each check lists (tripwires: only those watched by a live
    unit of a hostile faction, the only ones that may stop a mover)."""
    at, ends = book.passed_at(movers, old, new, first)
    cells = book.cells[at]
    owner = owner_of(ends, np.arange(len(cells)))
    w = h.watcher[cells]
    hostile = h.hostile[h.faction[movers][owner], h.faction[w]]
    trip = h.tripwires[cells] & h.alive[w] & hostile
    return (_owners(ends, trip), _owners(ends, h.near_line[cells]),
            _owners(ends, book.entry[at]), cells)


def _numpy_settle(h: _Hour, book: PathBook, movers, first, old, new, clock):
    h.path_clock[movers] = clock
    new32 = new.astype(np.int32)
    h.path_pos[movers] = new32
    start, end = book.cells[first + old], book.cells[first + new]
    h.row[movers] = h.row_of[end]
    h.col[movers] = h.col_of[end]
    done = movers[(new32 >= h.path_last[movers]).nonzero()[0]]
    return start, done, book.serial[done]


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    zone = rng.choice(np.array([-1, -1, -1, 0, 1], dtype=np.int16), size=ROWS * COLS)
    book, paths = _book(rng, zone)
    return rng, book, paths


def test_the_kernel_moves_every_mover_as_the_numpy_path_to_the_bit():
    """Random books and hours: the kernel's movers, path indices, clocks, cells before the
    hour, arrivals (with their orders' serials), movers passing a hostile tripwire, a border
    line or a zone entry, and every column it writes equal the numpy path's (bytes); also
    after movers stopped at a tripwire (the second call)."""
    seen = {"tripped": 0, "border": 0, "zone": 0, "done": 0, "grown": 0, "shared": 0}
    for seed in range(40):
        rng, book, paths = _random_case(seed)
        ref = _Hour(rng, book, paths)
        ker = ref.copy()
        movers, first, old, new, clock = _numpy_advance(ref, book)
        seen["grown"] += len(book.cells) > 64  # compacted, then grown
        seen["shared"] += len(np.unique(first)) < len(first)  # movers on one shared segment
        tripped, border, zone, cells = _numpy_checks(ref, book, movers, first, old, new)
        m, n_trip, n_done, n_border, n_zone = ker.kernel(ADVANCE, book)
        assert m == len(movers) > 0
        idx = ker.idx
        assert idx[MOVER, :m].tobytes() == movers.tobytes()
        assert idx[FIRST, :m].tobytes() == first.tobytes()
        assert idx[OLD, :m].tobytes() == old.astype(np.int64).tobytes()
        assert idx[NEW, :m].tobytes() == new.tobytes()
        assert ker.clock[:m].tobytes() == clock.tobytes()
        assert idx[TRIPPED, :n_trip].tolist() == tripped
        if tripped:  # nothing written but the start of the hour: the caller stops the movers
            seen["tripped"] += 1
            assert n_done == n_border == n_zone == 0
            assert ker.track.tobytes() == ref.track.tobytes()
            before = ker.columns()
            for k in tripped:  # stopped at a mark short of where the hour takes them
                new[k] = int(rng.integers(old[k], new[k] + 1))
                clock[k] = paths[int(movers[k])][1][new[k]]
                idx[NEW, k], ker.clock[k] = new[k], clock[k]
            _, border, zone, cells = _numpy_checks(ref, book, movers, first, old, new)
            assert ker.columns() == before
            m, n_trip, n_done, n_border, n_zone = ker.kernel(SETTLE, book, m)
            assert n_trip == 0
        start, done, serial = _numpy_settle(ref, book, movers, first, old, new, clock)
        assert ker.columns() == ref.columns()
        assert idx[START, :m].tobytes() == start.tobytes()
        assert idx[DONE, :n_done].tobytes() == done.tobytes()
        assert idx[SERIAL, :n_done].tobytes() == serial.tobytes()
        assert idx[BORDER, :n_border].tolist() == border
        assert idx[ZONE, :n_zone].tolist() == zone
        seen["border"] += bool(border)
        seen["zone"] += bool(zone)
        seen["done"] += bool(len(done))
        # the cells passed are each mover's own slice of its own path
        owner = owner_of(np.cumsum(new - old), np.arange(len(cells)))
        for k, u in enumerate(movers.tolist()):
            np.testing.assert_array_equal(cells[owner == k],
                                          paths[u][0][old[k] + 1 : new[k] + 1])
    assert all(seen.values()), seen  # every branch was taken


@pytest.mark.parametrize("seed", range(10))
def test_advancing_only_writes_nothing_and_checks_off_list_nothing(seed):
    """Stage ADVANCE_ONLY (a minefield to check) leaves every column but the start of the
    hour alone; a check turned off lists no mover; settling after it gives the one-call
    result."""
    rng, book, paths = _random_case(seed)
    one = _Hour(rng, book, paths)
    two = one.copy()
    off = (False, False, False)
    m1 = one.kernel(ADVANCE, book, checks=off)
    before = (two.path_pos.tobytes(), two.path_clock.tobytes(), two.row.tobytes(),
              two.col.tobytes())  # fmt: skip
    m, n_trip, *rest = two.kernel(ADVANCE_ONLY, book, checks=off)
    assert (n_trip, *rest) == (0, 0, 0, 0)
    assert before == (two.path_pos.tobytes(), two.path_clock.tobytes(), two.row.tobytes(),
                      two.col.tobytes())  # fmt: skip
    assert two.kernel(SETTLE, book, m, checks=off) == m1
    assert m1[3:] == (0, 0)
    assert one.columns() == two.columns()
    assert one.idx.tobytes() == two.idx.tobytes()


def test_escorts_ride_along_as_the_numpy_gather_and_scatter():
    """Followers whose leader and themselves are alive take the leader's row, column and
    posture, read before any is written (a follower that leads another passes on its own
    place of before the hour's copy, as numpy's gather does)."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = 40
        alive = rng.random(n) < 0.8
        cols = [rng.integers(0, 100, n).astype(np.int32) for _ in range(3)]
        follower = rng.choice(n, size=12, replace=False).astype(np.int64)
        leader = rng.integers(0, n, 12).astype(np.int64)  # some followers lead others
        ref = [c.copy() for c in cols]
        ok = alive[follower] & alive[leader]
        f, lead = follower[ok], leader[ok]
        ref[0][f], ref[1][f] = ref[0][lead], ref[1][lead]
        ref[2][f] = ref[2][lead]
        ride_along(follower, leader, alive, *cols)
        assert [c.tobytes() for c in cols] == [c.tobytes() for c in ref]


def _run(monkeypatch, scenario: str, hours: int, kernels: str):
    monkeypatch.setenv(compiled.ENV_KERNELS, kernels)
    model = DesertModel(SCENARIO_DIR / scenario, rng=7)
    model.run_for_hours(hours)
    f = model.force
    state = b"".join(getattr(f, c)[: f.n].tobytes() for c in
                     ("row", "col", "posture", "path_pos", "path_clock", "alive", "strength"))
    return model.events, state + model._track_rc.tobytes() + model.paths.serial.tobytes()


@pytest.mark.parametrize(("scenario", "hours", "rare"), [
    ("highway_interdiction.yaml", 480, "ambush"),  # convoys stopped at tripwires
    ("badia_2020_calibrated.yaml", 480, "mine_strike"),  # a minefield (two calls an hour)
    ("badia_theatre.yaml", 240, "crossing_intercepted"),  # border crossings, zone entries
])  # fmt: skip
def test_a_run_is_the_same_with_kernels_and_with_numpy(monkeypatch, scenario, hours, rare):
    """Whole runs through the rare cases of the move phase: the same events and state."""
    events, state = _run(monkeypatch, scenario, hours, "numba")
    assert any(e["type"] == rare for e in events)
    assert (events, state) == _run(monkeypatch, scenario, hours, "numpy")


@pytest.mark.parametrize("zones", [True, False])
def test_paths_appended_by_the_kernel_are_the_numpy_paths_to_the_bit(zones):
    """A path book written with the compiled append (`movement._append`) holds the same cells,
    hours, keys and zone entries as one written by the numpy path, through compactions and
    growth, shared rounds, halts and hours on and a hair beside tick boundaries."""
    rng = np.random.default_rng(12 if zones else 13)
    zone = rng.integers(-1, 3, ROWS * COLS).astype(np.int8) if zones else None
    books = [PathBook(UNITS, initial_cells=64, zone=zone) for _ in range(2)]
    books[0]._compiled_flag, books[1]._compiled_flag = True, False
    tick = 1.0 / (1 << 16)
    rounds = [_path(rng, int(rng.integers(2, 90))) for _ in range(4)]
    for r in rounds:
        for x in r:
            x.flags.writeable = False  # a shared timed route is read-only
    for _ in range(400):
        cells, hours = _path(rng, int(rng.integers(1, 120)))
        if rng.random() < 0.3:  # marks on a tick, and the doubles on either side of it
            k = rng.integers(1, 1 << 22, size=len(hours)) * tick
            hours = np.maximum.accumulate(np.nextafter(k, rng.choice([-1.0, 0.0, 2.0], len(k))))
            hours[0] = 0.0
        shared = rng.random() < 0.3
        if shared:
            cells, hours = rounds[int(rng.integers(len(rounds)))]
        unit = int(rng.integers(UNITS))
        for book in books:
            book.write(unit, cells, hours, shared)
    a, b = books
    assert a.n == b.n and len(a.cells) == len(b.cells) > 64
    for name in ("cells", "hours", "key", "entry", "start", "length", "key_start"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.entry[: a.n].any() == zones
