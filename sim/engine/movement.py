"""Movement: every unit's current path in one flat buffer, advanced for all movers at once.

An order gives a unit a path (flat cells) and the cumulative hours to reach each of its cells at
the unit's speeds. :class:`PathBook` appends each new path to shared arrays, so one hour of
travel for every moving unit is a single ``searchsorted``: the sort key of a path's cell is the
integer ``(segment start << KEY_SHIFT) + floor(hours x TICKS_PER_HOUR)``, which keeps segments
in buffer order and each segment's hours in path order. The key is an integer so that whether a
mark is reached depends only on the mark and the clock, never on where the path sits in the
buffer (a float key ``start x 2**20 + hours`` rounds the hours more coarsely the further along
the buffer a path is, so a mark on the hour was reached an hour late at some offsets). Marks and
clocks are compared at a resolution of 1/65536 h (55 ms): finer than any order's timing, and
coarser than the float error of a route's summed hours. Paths that are no longer followed are
dropped when the buffer is compacted.

The hour's move is numpy over all movers (:meth:`PathBook.advance`, :meth:`PathBook.passed_at`,
the reference) or one compiled call (:func:`move_hour`, the same search and cells passed mover
by mover, see :mod:`sim.compiled`).
"""

from __future__ import annotations

import math

import numpy as np

from sim.compiled import kernel
from sim.world.raster import read_only

#: Resolution of path marks and clocks in the sort key (ticks per hour: 1/65536 h is 55 ms).
TICKS_PER_HOUR = 1 << 16
#: Bits of the key below the segment start: 2**36 ticks is 2**20 hours, longer than any path
#: takes, so one path's keys never reach the next path's; the starts keep 27 bits (a buffer of
#: 134 million cells).
KEY_SHIFT = 36


def _ticks(hours) -> np.ndarray:
    """Hours as whole ticks (floored), int64."""
    return np.floor(np.multiply(hours, TICKS_PER_HOUR)).astype(np.int64)


#: Initial buffer length (cells); it grows by doubling when compaction cannot make room.
INITIAL_CELLS = 1 << 14


class PathBook:
    """The paths units follow: ``start[i]`` is where unit ``i``'s path begins in the buffer."""

    def __init__(self, capacity: int, initial_cells: int = INITIAL_CELLS,
                 zone: np.ndarray | None = None):
        self.cells = np.zeros(initial_cells, dtype=np.int64)
        self.hours = np.zeros(initial_cells)
        self.key = np.zeros(initial_cells, dtype=np.int64)
        # ``zone``: the flat zone layer (-1 outside), if the map has zones. ``entry[i]``: the
        # path's cell at ``i`` is in a zone and not in the zone of the cell before it (a path's
        # first cell: False). A path's entries never change, so they are found once when it is
        # written and the hour's zone entries are one gather of the cells passed
        # (``Metrics.on_zone_moves``) instead of two zone lookups and a comparison each hour.
        self.zone = zone
        self.entry = np.zeros(initial_cells, dtype=bool)
        self.n = 0
        self.start = np.zeros(capacity, dtype=np.int64)
        self.length = np.zeros(capacity, dtype=np.int64)
        self.serial = np.zeros(capacity, dtype=np.int64)  # orders given to each unit so far
        # start << KEY_SHIFT, each unit's key offset, kept with ``start`` so that advance
        # adds the clock's ticks to a gather instead of shifting the starts
        self.key_start = np.zeros(capacity, dtype=np.int64)
        self._arange = read_only(np.arange(1024, dtype=np.int64))  # see _iota
        # shared timed routes whose one copy is in the buffer: id(hours) -> (hours, start)
        self._shared: dict[int, tuple[np.ndarray, int]] = {}
        # whether a path is appended by the compiled kernel (`_append`): asked at the first
        # write (asking imports Numba, which building a model must not)
        self._compiled_flag: bool | None = None

    @property
    def _compiled(self) -> bool:
        if self._compiled_flag is None:
            self._compiled_flag = _append.compiled
        return self._compiled_flag

    def write(self, unit: int, cells: np.ndarray, hours: np.ndarray, shared: bool = False) -> None:
        """Give ``unit`` a new path (``hours[0] == 0`` at its current cell).

        ``shared``: the arrays are a read-only timed route that units follow again and again
        (a patrol's round, a convoy's run): while its segment is in the buffer, every unit given
        the same ``hours`` array follows that one copy instead of appending another each time.
        """
        if shared:
            seg = self._shared.get(id(hours))
            if seg is not None and seg[0] is hours:
                self.start[unit], self.length[unit] = seg[1], len(hours)
                self.key_start[unit] = seg[1] << KEY_SHIFT
                self.serial[unit] += 1
                return
        k = len(cells)
        if self.n + k > len(self.cells):
            self._compact(k)
        s = self.n
        if k == 1:  # a halt: scalar stores cost a fraction of three slice copies
            self.cells[s] = cells[0]
            self.hours[s] = hours[0]
            self.key[s] = (s << KEY_SHIFT) + int(hours[0] * TICKS_PER_HOUR // 1)
            # entry[s] is False: the buffer beyond n is never written before (a compaction
            # makes new zeroed arrays), and a path's first cell enters nothing
        elif self._compiled and type(hours) is np.ndarray and hours.dtype == _F64:
            # one call instead of a dozen numpy calls (a few µs each); float64 hours only,
            # whose products the kernel rounds as numpy does
            _append(cells, hours, s, self.cells, self.hours, self.key, self.entry,
                    _NO_ZONES if self.zone is None else self.zone)
        else:
            self.cells[s : s + k] = cells
            self.hours[s : s + k] = hours
            self.key[s : s + k] = _ticks(hours) + (s << KEY_SHIFT)
            if self.zone is not None:
                self.entry[s : s + k] = zone_entries(self.zone, cells)
        self.start[unit], self.length[unit] = s, k
        self.key_start[unit] = s << KEY_SHIFT
        self.serial[unit] += 1
        self.n = s + k
        if shared:
            self._shared[id(hours)] = (hours, s)

    def _compact(self, extra: int) -> None:
        """Keep only the paths units follow now (one copy of each shared segment, in buffer
        order), growing if still short."""
        live = np.flatnonzero(self.length > 0)
        old_start, first = np.unique(self.start[live], return_index=True)
        seg_len = self.length[live][first]
        need = int(seg_len.sum()) + extra
        size = len(self.cells)
        while size < 2 * need:
            size *= 2
        new_start = np.zeros(len(old_start), dtype=np.int64)
        np.cumsum(seg_len[:-1], out=new_start[1:])
        s = int(seg_len.sum())
        # one gather moves every kept segment: source index of each destination cell
        src = np.repeat(old_start - new_start, seg_len) + np.arange(s)
        cells, hours, entry = np.zeros(size, dtype=np.int64), np.zeros(size), np.zeros(size, bool)
        cells[:s] = self.cells[src]
        hours[:s] = self.hours[src]
        entry[:s] = self.entry[src]
        self.start[live] = new_start[np.searchsorted(old_start, self.start[live])]
        self.key_start[live] = self.start[live] << KEY_SHIFT
        moved = dict(zip(old_start.tolist(), new_start.tolist(), strict=True))
        self._shared = {
            h: (arr, moved[at]) for h, (arr, at) in self._shared.items() if at in moved
        }
        key = np.zeros(size, dtype=np.int64)
        key[:s] = (np.repeat(new_start, seg_len) << KEY_SHIFT) + _ticks(hours[:s])
        self.cells, self.hours, self.key, self.entry, self.n = cells, hours, key, entry, s

    def advance(self, units: np.ndarray, clock_hours: np.ndarray,
                start: np.ndarray | None = None) -> np.ndarray:
        """Index along each unit's path of the last cell reached by ``clock_hours`` after its
        order (the path's end once the clock passes its last mark); ``start``: the units'
        ``self.start``, if the caller has it.

        No search runs past a path's end: every key after a path's cells in the buffer belongs
        to a segment starting at ``s' >= s + 1`` (segments never overlap), so it is at least
        ``(s + 1) << KEY_SHIFT``, more than ``s << KEY_SHIFT`` plus any clock's ticks."""
        s = self.start[units] if start is None else start
        at = self.key[: self.n].searchsorted(self.key_start[units] + _ticks(clock_hours), "right")
        at -= s + 1
        return at

    def cells_at(self, units: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Flat cell at ``index`` along each unit's path."""
        return self.cells[self.start[units] + index]

    def passed(self, units: np.ndarray, old: np.ndarray, new: np.ndarray):
        """Cells entered between path positions ``old`` (excluded) and ``new`` (included), all
        units together: ``(cells, owner)`` with ``owner`` the position in ``units``."""
        at, ends = self.passed_at(units, old, new)
        return self.cells[at], owner_of(ends, np.arange(len(at)))

    def passed_at(self, units: np.ndarray, old: np.ndarray, new: np.ndarray,
                  start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`passed`, but where the cells are in the buffer (``self.cells[at]`` is the
        cell, ``self.cells[at - 1]`` the one it was entered from: a path's cells are
        contiguous), and ``ends``, the running sum of the units' steps: unit ``k``'s cells are
        ``at[ends[k] - steps[k] : ends[k]]`` (:func:`owner_of` finds the unit of a few);
        ``start``: the units' ``self.start``, if the caller has it.

        With ``s`` each unit's ``steps = new - old`` and ``S`` their running sum, unit ``u``'s
        cells are at ``start[u] + new[u] + 1 - S[u] + j`` for the ``j``-th cell of all
        (``S[u] - s[u] <= j < S[u]``): one ``repeat`` and one ``arange``."""
        steps = new - old
        ends = steps.cumsum()
        s = self.start[units] if start is None else start
        at = (s + new + 1 - ends).repeat(steps)
        at += self._iota(len(at))
        return at, ends

    def _iota(self, k: int) -> np.ndarray:
        """``np.arange(k)`` as a read-only slice of one kept array (grown by doubling): the
        hour's cells passed need one, and a slice costs less than a new ``arange``."""
        if k > len(self._arange):
            self._arange = read_only(np.arange(max(k, 2 * len(self._arange)), dtype=np.int64))
        return self._arange[:k]


_F64 = np.dtype(np.float64)
#: `_append`'s zone layer for a map without zones.
_NO_ZONES = np.zeros(0, dtype=np.int64)


@kernel
def _append(cells, hours, s, buf_cells, buf_hours, buf_key, buf_entry, zone):
    """`PathBook.write`'s numpy path for a path of two cells or more, written at `s`: the
    cells and hours, each mark's key `floor(hours * TICKS_PER_HOUR) + (s << KEY_SHIFT)`
    (`_ticks`: the product, floored, then made an integer) and, where `zone` is the flat
    zone layer (empty: no zones), `zone_entries`' flags."""
    base = s << KEY_SHIFT
    for j in range(len(cells)):
        buf_cells[s + j] = cells[j]
        h = hours[j]
        buf_hours[s + j] = h
        buf_key[s + j] = np.int64(np.floor(h * TICKS_PER_HOUR)) + base
    if len(zone):
        prev = zone[cells[0]]
        buf_entry[s] = False
        for j in range(1, len(cells)):
            z = zone[cells[j]]
            buf_entry[s + j] = z != prev and z >= 0
            prev = z


def zone_entries(zone: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Per cell of a path (flat ``cells``): whether it is in a zone (``zone``: the flat zone
    layer, -1 outside) other than the previous cell's; False for the first cell."""
    z = zone[cells]
    out = np.zeros(len(z), dtype=bool)
    np.not_equal(z[1:], z[:-1], out=out[1:])
    out[1:] &= z[1:] >= 0
    return out


def owner_of(ends: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The unit (position in the ``units`` given to :meth:`PathBook.passed_at`) that entered
    each of the cells at ``positions`` of the cells passed, from the running sum ``ends`` of
    the units' steps: the first ``k`` with ``ends[k] > position``; non-decreasing where
    ``positions`` are."""
    return ends.searchsorted(positions, "right")


#: Stages of :func:`move_hour`: advance the movers and, unless a tripwire is hit, settle them;
#: advance only (a minefield is checked in between); settle movers advanced by an earlier call.
ADVANCE, ADVANCE_ONLY, SETTLE = 0, 1, 2
#: Rows of :func:`move_hour`'s index table ``idx``: per mover ``k`` (its position among the
#: movers) its unit, path start in the book, path index before and after the hour, cell before
#: the hour; then lists of positions ``k`` (or units) found by the checks, each from column 0.
MOVER, FIRST, OLD, NEW, START, TRIPPED, DONE, SERIAL, BORDER, ZONE = range(10)
MOVE_ROWS = ZONE + 1


@kernel
def move_hour(stage, n, m, alive, path_pos, path_last, path_clock, row, col, track,
              faction, hostile, book_start, key, n_keys, cells, entry, serial,
              tripwires, watcher, near_line, cols, check_trips, check_border,
              check_zones, idx, clock):
    """The move phase's common hour in one call: what :meth:`PathBook.advance`,
    :meth:`PathBook.passed_at`, :func:`owner_of` and the model's numpy move give, mover by
    mover. Integer work and copies only (the clock's one addition is the numpy path's, and its
    ticks a product by a power of two, floored: exact), so the results are the numpy path's to
    the bit.

    Advancing (stages ``ADVANCE``, ``ADVANCE_ONLY``): each of the first ``n`` units' ``row,
    col`` is copied to ``track[:, 0:2]``; the movers (alive, ``path_pos < path_last``) are
    listed in ``idx[MOVER]``, in increasing order, each with ``FIRST`` (``book_start``),
    ``OLD`` (``path_pos``), ``clock = path_clock + 1`` and ``NEW``, the index of the last mark
    of its path whose key is at most ``(FIRST << KEY_SHIFT) + floor(clock x TICKS_PER_HOUR)``:
    the ``searchsorted`` of :meth:`PathBook.advance`, begun at ``OLD`` (``key[:n_keys]`` is
    sorted and the key at ``OLD`` is at most the target: a unit's clock never runs behind the
    mark it is at, and the numpy path's cells passed, ``NEW - OLD`` of them, need as much). With
    ``check_trips``, the movers that pass a cell (cells ``OLD + 1 .. NEW`` of the path) of the
    ``tripwires`` layer whose ``watcher`` is alive and of a faction ``hostile`` to theirs (the
    only ones that may stop them) are listed in ``TRIPPED``. If one is, or the stage is
    ``ADVANCE_ONLY``, the call returns ``(m, tripped, 0, 0, 0)`` having written nothing else:
    the caller may change ``NEW`` and ``clock``, then settle with stage ``SETTLE`` and ``m``.

    Settling (at once, else stage ``SETTLE`` on the ``m`` movers in ``idx`` and ``clock``):
    each mover's ``path_clock``, ``path_pos`` (int32) and ``row, col`` (``divmod`` of its cell
    at ``NEW`` by ``cols``: the numpy path's tables, without their cache misses) are written;
    ``START`` is its cell at ``OLD``; the units now at their path's last index are listed in
    ``DONE``, with their order's ``serial`` in ``SERIAL``; with ``check_border`` /
    ``check_zones``, the movers that pass a cell of ``near_line`` / enter a zone (``entry`` at
    a passed cell's place in the book) are listed in ``BORDER`` / ``ZONE``.
    Returns ``(m, 0, done, border, zone)``, the lengths of the lists."""
    settle = stage == SETTLE
    trips = check_trips and not settle  # a settling stage is past the tripwires
    if not settle:
        m = 0
        for i in range(n):
            track[i, 0] = row[i]
            track[i, 1] = col[i]
            if alive[i] and path_pos[i] < path_last[i]:
                idx[MOVER, m] = i
                m += 1
    tripped = border = zone = 0
    for k in range(m):
        u = idx[MOVER, k]
        if settle:
            s, old, new = idx[FIRST, k], idx[OLD, k], idx[NEW, k]
        else:
            s = book_start[u]
            old = path_pos[u]
            hours = path_clock[u] + 1.0
            target = (s << KEY_SHIFT) + math.floor(hours * TICKS_PER_HOUR)
            # searchsorted "right" (the first key above the target) from the mover's mark:
            # steps of 1, 2, 4 ... marks ahead bracket it, then halving finds it (a few cache
            # lines of the book; a search over all of it reads a line a step)
            lo = s + old
            step = 1
            hi = lo + 1
            while hi < n_keys and key[hi] <= target:
                lo = hi
                step <<= 1
                hi = lo + step
            hi = min(hi, n_keys)
            lo += 1
            while lo < hi:
                mid = (lo + hi) >> 1
                if key[mid] <= target:
                    lo = mid + 1
                else:
                    hi = mid
            new = lo - s - 1
            idx[FIRST, k], idx[OLD, k], idx[NEW, k] = s, old, new
            clock[k] = hours
        # the cells passed, read once for every check
        trip = near = enter = False
        for j in range(s + old + 1, s + new + 1):
            cell = cells[j]
            if trips and tripwires[cell]:
                w = watcher[cell]
                trip |= alive[w] and hostile[faction[u], faction[w]]
            near |= check_border and near_line[cell]
            enter |= check_zones and entry[j]
        if trip:
            idx[TRIPPED, tripped] = k
            tripped += 1
        if near:
            idx[BORDER, border] = k
            border += 1
        if enter:
            idx[ZONE, zone] = k
            zone += 1
    if tripped or stage == ADVANCE_ONLY:
        return m, tripped, 0, 0, 0
    done = 0
    for k in range(m):
        u, s, old, new = idx[MOVER, k], idx[FIRST, k], idx[OLD, k], idx[NEW, k]
        path_clock[u] = clock[k]
        path_pos[u] = new
        idx[START, k] = cells[s + old]
        end = cells[s + new]
        r = end // cols
        row[u] = r
        col[u] = end - r * cols
        if path_pos[u] >= path_last[u]:
            idx[DONE, done], idx[SERIAL, done] = u, serial[u]
            done += 1
    return m, 0, done, border, zone


@kernel
def ride_along(follower, leader, alive, row, col, posture):
    """Each follower whose leader and itself are alive takes its leader's ``row``, ``col`` and
    ``posture``, all read before any is written (as a numpy gather, then scatter)."""
    taken = np.empty((len(follower), 3), dtype=row.dtype)
    for k in range(len(follower)):
        a, b = follower[k], leader[k]
        if alive[a] and alive[b]:
            taken[k, 0], taken[k, 1], taken[k, 2] = row[b], col[b], posture[b]
    for k in range(len(follower)):
        a, b = follower[k], leader[k]
        if alive[a] and alive[b]:
            row[a], col[a], posture[a] = taken[k, 0], taken[k, 1], taken[k, 2]


class Tripwires(dict):
    """Road cells watched by an ambush or a fake checkpoint -> the unit watching (a ``dict``, as
    the tactics use it), with a boolean layer over the grid's flat cells kept in step, so the
    cells every mover passed in an hour are checked in one lookup instead of a set search; and
    the watching unit's index by cell (-1: none), so the compiled move phase
    (:func:`move_hour`) passes over the cells watched by a friend or a dead unit, which stop
    nobody."""

    def __init__(self, cells: int):
        super().__init__()
        self.layer = np.zeros(cells, dtype=bool)
        self.watcher = np.full(cells, -1, dtype=np.int32)

    def __setitem__(self, cell: int, unit) -> None:
        super().__setitem__(cell, unit)
        self.layer[cell] = True
        self.watcher[cell] = unit.idx

    def __delitem__(self, cell: int) -> None:
        super().__delitem__(cell)
        self.layer[cell] = False
        self.watcher[cell] = -1

    def pop(self, cell: int, *default):
        if cell in self:
            self.layer[cell] = False
            self.watcher[cell] = -1
        return super().pop(cell, *default)

    def clear(self) -> None:
        super().clear()
        self.layer[:] = False
        self.watcher[:] = -1

    def _read_only(self, *args, **kwargs):
        raise TypeError("Tripwires: set or delete cells one at a time, the layers follow them")

    update = setdefault = popitem = __ior__ = _read_only
