"""Movement: every unit's current path in one flat buffer, advanced for all movers in numpy.

An order gives a unit a path (flat cells) and the cumulative hours to reach each of its cells at
the unit's speeds. :class:`PathBook` appends each new path to shared arrays, so one hour of
travel for every moving unit is a single ``searchsorted``: the sort key of a path's cell is
``segment start x KEY_STRIDE_HOURS + hours``, which keeps segments in buffer order and each
segment's hours in path order. Paths that are no longer followed are dropped when the buffer
is compacted.
"""

from __future__ import annotations

import numpy as np

#: Longer than any path takes (hours), so one path's keys never reach the next path's.
KEY_STRIDE_HOURS = float(1 << 20)
#: Initial buffer length (cells); it grows by doubling when compaction cannot make room.
INITIAL_CELLS = 1 << 14


class PathBook:
    """The paths units follow: ``start[i]`` is where unit ``i``'s path begins in the buffer."""

    def __init__(self, capacity: int, initial_cells: int = INITIAL_CELLS):
        self.cells = np.zeros(initial_cells, dtype=np.int64)
        self.hours = np.zeros(initial_cells)
        self.key = np.zeros(initial_cells)
        self.n = 0
        self.start = np.zeros(capacity, dtype=np.int64)
        self.length = np.zeros(capacity, dtype=np.int64)
        self.serial = np.zeros(capacity, dtype=np.int64)  # orders given to each unit so far

    def write(self, unit: int, cells: np.ndarray, hours: np.ndarray) -> None:
        """Give ``unit`` a new path (``hours[0] == 0`` at its current cell)."""
        k = len(cells)
        if self.n + k > len(self.cells):
            self._compact(k)
        s = self.n
        self.cells[s : s + k] = cells
        self.hours[s : s + k] = hours
        self.key[s : s + k] = s * KEY_STRIDE_HOURS + np.asarray(hours)
        self.start[unit], self.length[unit] = s, k
        self.serial[unit] += 1
        self.n = s + k

    def _compact(self, extra: int) -> None:
        """Keep only the paths units follow now (in unit order), growing if still short."""
        live = np.flatnonzero(self.length > 0)
        need = int(self.length[live].sum()) + extra
        size = len(self.cells)
        while size < 2 * need:
            size *= 2
        cells, hours = np.zeros(size, dtype=np.int64), np.zeros(size)
        s = 0
        for u in live.tolist():
            a, k = int(self.start[u]), int(self.length[u])
            cells[s : s + k] = self.cells[a : a + k]
            hours[s : s + k] = self.hours[a : a + k]
            self.start[u] = s
            s += k
        starts = np.repeat(self.start[live], self.length[live])
        key = np.zeros(size)
        key[:s] = starts * KEY_STRIDE_HOURS + hours[:s]
        self.cells, self.hours, self.key, self.n = cells, hours, key, s

    def advance(self, units: np.ndarray, clock_hours: np.ndarray) -> np.ndarray:
        """Index along each unit's path of the last cell reached by ``clock_hours`` after its
        order (the path's end once the clock passes its last mark)."""
        start = self.start[units]
        at = np.searchsorted(self.key[: self.n], start * KEY_STRIDE_HOURS + clock_hours, "right")
        return np.minimum(at - 1 - start, self.length[units] - 1)

    def cells_at(self, units: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Flat cell at ``index`` along each unit's path."""
        return self.cells[self.start[units] + index]

    def passed(self, units: np.ndarray, old: np.ndarray, new: np.ndarray):
        """Cells entered between path positions ``old`` (excluded) and ``new`` (included), all
        units together: ``(cells, owner)`` with ``owner`` the position in ``units``."""
        steps = new - old
        owner = np.repeat(np.arange(len(units)), steps)
        first = np.repeat(self.start[units] + old + 1 - np.cumsum(steps) + steps, steps)
        return self.cells[first + np.arange(len(owner))], owner
