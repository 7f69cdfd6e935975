"""The path book: every mover advanced in one numpy call must land where its own path says."""

from __future__ import annotations

import numpy as np

from sim.engine.movement import KEY_SHIFT, PathBook


def _random_path(rng, start_cell: int) -> tuple[np.ndarray, np.ndarray]:
    k = int(rng.integers(1, 40))
    cells = start_cell + np.cumsum(rng.integers(-1, 2, k))
    cells[0] = start_cell
    hours = np.concatenate(([0.0], np.cumsum(rng.uniform(0.05, 3.0, k - 1))))
    return cells.astype(np.int64), hours


def test_advance_and_passed_match_each_units_own_path_through_many_compactions():
    """40 units get 2,000 new orders in a buffer that starts at 64 cells (so it is compacted
    and grown many times); after each batch of orders, every unit's position for a range of
    clocks equals a per-unit ``searchsorted`` on its own hours, and the cells passed equal the
    slice of its own path."""
    rng = np.random.default_rng(5)
    units = 40
    book = PathBook(units, initial_cells=64)
    paths = {}
    for u in range(units):
        paths[u] = _random_path(rng, 1000 * u)
        book.write(u, *paths[u])
    for _ in range(50):
        for u in rng.choice(units, size=40).tolist():
            paths[u] = _random_path(rng, 1000 * u + int(rng.integers(0, 50)))
            book.write(u, *paths[u])
        who = np.arange(units)
        for clock in (0.5, 1.0, 2.0, 7.3, 200.0):
            new = book.advance(who, np.full(units, clock))
            want = [int(np.searchsorted(paths[u][1], clock, "right")) - 1 for u in range(units)]
            assert new.tolist() == want
            np.testing.assert_array_equal(book.cells_at(who, new),
                                          [paths[u][0][want[u]] for u in range(units)])
            for back in (3, 1 << 20):  # a few cells each, or whole paths (over 1,024 in all)
                old = np.maximum(new - back, 0)
                cells, owner = book.passed(who, old, new)
                for u in range(units):
                    np.testing.assert_array_equal(cells[owner == u],
                                                  paths[u][0][old[u] + 1 : new[u] + 1])
        # each unit's key offset follows its start through writes and compactions
        np.testing.assert_array_equal(book.key_start, book.start << KEY_SHIFT)
    assert book.serial.sum() == units + 50 * 40
    assert len(book.cells) > 64  # it grew


def test_shared_routes_are_stored_once_and_followed_like_copies():
    """Units given the same read-only timed route (a patrol's round) follow one copy of it in
    the buffer, through compactions, and land exactly where a copy would have put them."""
    rng = np.random.default_rng(8)
    units = 30
    rounds = [_random_path(rng, 50_000 + 1000 * k) for k in range(3)]
    book = PathBook(units, initial_cells=64)
    paths = {}
    for _ in range(60):
        for u in rng.choice(units, size=10).tolist():
            if rng.random() < 0.5:
                paths[u] = rounds[int(rng.integers(len(rounds)))]
                book.write(u, *paths[u], shared=True)
            else:
                paths[u] = _random_path(rng, 1000 * u)
                book.write(u, *paths[u])
        who = np.array(sorted(paths))
        for clock in (0.0, 1.5, 9.0, 500.0):
            new = book.advance(who, np.full(len(who), clock))
            want = [int(np.searchsorted(paths[u][1], clock, "right")) - 1 for u in who.tolist()]
            assert new.tolist() == want
            np.testing.assert_array_equal(book.cells_at(who, new),
                                          [paths[u][0][w] for u, w in
                                           zip(who.tolist(), want, strict=True)])
        # each round in use is in the buffer once, whoever follows it
        followers = {}
        for u in who.tolist():
            for k, r in enumerate(rounds):
                if paths[u] is r:
                    followers.setdefault(k, set()).add(int(book.start[u]))
        assert all(len(starts) == 1 for starts in followers.values())
        np.testing.assert_array_equal(book.key_start, book.start << KEY_SHIFT)


def test_zone_entries_kept_in_the_book_equal_the_paths_read_cell_by_cell():
    """The book's zone-entry flags (a cell in a zone other than the previous cell's; never a
    path's first cell) equal each unit's own path read cell by cell, for halts, shared routes
    and fresh paths, through compactions and growth."""
    rng = np.random.default_rng(12)
    units = 30
    zone = rng.choice(np.array([-1, -1, 0, 1, 2], dtype=np.int16), size=60_000)
    rounds = [_random_path(rng, 50_000 + 1000 * k) for k in range(3)]
    book = PathBook(units, initial_cells=64, zone=zone)
    paths = {}
    for _ in range(80):
        for u in rng.choice(units, size=10).tolist():
            r = rng.random()
            if r < 0.3:
                paths[u] = rounds[int(rng.integers(len(rounds)))]
                book.write(u, *paths[u], shared=True)
            elif r < 0.5:  # a halt
                paths[u] = (np.array([1000 * u + int(rng.integers(50))], dtype=np.int64),
                            np.zeros(1))
                book.write(u, *paths[u])
            else:
                paths[u] = _random_path(rng, 1000 * u + int(rng.integers(0, 50)))
                book.write(u, *paths[u])
        for u, (cells, _) in paths.items():
            z = zone[cells]
            want = [False] + [bool(z[j] >= 0 and z[j] != z[j - 1]) for j in range(1, len(z))]
            s = int(book.start[u])
            assert book.entry[s : s + len(cells)].tolist() == want
    assert len(book.cells) > 64  # it grew


def test_passed_cells_of_many_movers_beyond_the_kept_range():
    """Cells passed by many movers at once (more than the kept ``arange`` holds, so it grows)
    equal each mover's own slice of its path."""
    rng = np.random.default_rng(14)
    units = 300
    book = PathBook(units, initial_cells=64)
    paths = [_random_path(rng, 1000 * u) for u in range(units)]
    for u, (cells, hours) in enumerate(paths):
        book.write(u, cells, hours)
    who = np.arange(units)
    for clock in (3.0, 1e6, 20.0):
        new = book.advance(who, np.full(units, clock))
        old = np.zeros(units, dtype=np.int64)
        cells, owner = book.passed(who, old, new)
        assert len(cells) > 1024 or clock < 1e6
        for u in range(units):
            np.testing.assert_array_equal(cells[owner == u], paths[u][0][1 : new[u] + 1])


def test_a_mark_on_the_hour_is_reached_on_the_hour_wherever_the_path_sits_in_the_buffer():
    """Where a unit is after ``clock`` hours depends on its path and the clock alone, not on
    where the path was written in the buffer: the same paths advanced from buffer offset 0 and
    from offset 2**16 (where a float key ``start x 2**20 + hours`` keeps only 1/65536 h of
    resolution) land on the same cells. The marks are hourly steps with the float error of a
    sum, a hair either side of the hour, as a route's cumulative hours have."""
    rng = np.random.default_rng(11)
    hours = np.concatenate(([0.0], np.cumsum(np.full(30, 1.0 / 3.0))))  # marks on 1, 2, ... h
    hours[1:] += rng.choice([-1e-12, 0.0, 1e-12], size=30) * hours[1:]
    cells = np.arange(len(hours), dtype=np.int64)
    clocks = np.arange(1.0, 11.0)
    landed = []
    for offset in (0, 1 << 16):
        book = PathBook(2, initial_cells=1 << 18)
        if offset:
            book.write(1, np.zeros(offset, dtype=np.int64), np.arange(offset, dtype=float) / offset)
        book.write(0, cells, hours)
        landed.append([int(book.advance(np.array([0]), np.array([c]))[0]) for c in clocks])
    assert landed[0] == landed[1]
    # on every whole hour the unit has reached the mark of that hour (3 marks per hour)
    assert landed[0] == [3 * int(c) for c in clocks]
