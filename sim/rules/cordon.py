"""The cordon of a square-by-square sweep: hostile units that slip out of the square being
searched are seen leaving it.

A sweep with ``cordon: true`` rings its current square; every hostile unit that was inside the
square at the start of the hour and is outside at its end is recorded as sighted by the sweeping
unit (into its faction's knowledge) and logged as ``cordon_sighting``. The cordon sees leavers,
not units that stay hidden inside: finding those is the sweep's search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.compiled import kernel

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sim.rules.state import RunState, UnitView


def _inside(rows: np.ndarray, cols: np.ndarray, square: tuple[int, int, int, int]) -> np.ndarray:
    r0, c0, h, w = square
    return (rows >= r0) & (rows < r0 + h) & (cols >= c0) & (cols < c0 + w)


def cordon_sightings(state: RunState, sweepers: Iterable[UnitView], prev_rc: np.ndarray,
                     compiled: bool | None = None) -> None:
    """Record and log every hostile unit leaving a cordoned square this hour.

    ``sweepers``: the units whose cordon is up, each with ``behaviour.square_mask_cells()``
    giving the square ``(row0, col0, height, width)``; ``prev_rc``: ``(n, 2)`` positions at the
    start of the hour. Uses ``state.force``, ``hostile``, ``terrain``, ``knowledge``, ``hour``,
    ``units`` and ``log``. With compiled kernels (:mod:`sim.compiled`) each square's leavers
    are found in one call (:func:`_leavers`); else in numpy, the reference. ``compiled``:
    whether the kernels run (None: ``_leavers.compiled``, asked now; a run asks once)."""
    f = state.force
    n = f.n
    if compiled is None:
        compiled = _leavers.compiled
    for sweeper in sweepers:
        square = sweeper.behaviour.square_mask_cells()
        fi = f.faction[sweeper.idx]
        if compiled:
            out = np.empty(n, dtype=np.int64)
            leaving = out[:_leavers(n, f.alive, f.faction, state.hostile[fi], prev_rc, f.row,
                                    f.col, *square, out)]  # fmt: skip
        else:
            # only the living enemies (a few: the sweeper's foes) can be seen leaving; those
            # inside at the start of the hour and outside now leave, in increasing order
            enemy = (f.alive[:n] & state.hostile[fi, f.faction[:n]]).nonzero()[0]
            was_in = enemy[_inside(prev_rc[enemy, 0], prev_rc[enemy, 1], square)]
            if not len(was_in):
                continue
            leaving = was_in[~_inside(f.row[was_in], f.col[was_in], square)]
        if len(leaving):
            cells = f.cells(leaving, state.terrain.cols)
            observers = np.full(len(leaving), sweeper.idx)
            state.knowledge.record(state.hour, np.full(len(leaving), fi), observers, leaving,
                                   cells)  # fmt: skip
            for k, i in enumerate(leaving.tolist()):
                state.log("cordon_sighting", int(cells[k]), sweeper.faction,
                          unit=state.units[i].name)  # fmt: skip


@kernel
def _leavers(n, alive, faction, hostile, prev_rc, row, col, r0, c0, h, w, out):
    """The units of the first ``n`` that are alive, of a faction ``hostile`` marks, inside the
    square ``[r0, r0 + h) x [c0, c0 + w)`` at ``prev_rc`` and outside it now (``row, col``):
    their indices in increasing order in ``out``; returns how many. One pass over the
    force instead of a dozen numpy calls on its columns (a cordon is up most hours of a
    sweep)."""
    k = 0
    for i in range(n):
        if not alive[i] or not hostile[faction[i]]:
            continue
        pr = prev_rc[i, 0]
        pc = prev_rc[i, 1]
        if r0 <= pr < r0 + h and c0 <= pc < c0 + w:
            r = row[i]
            c = col[i]
            if not (r0 <= r < r0 + h and c0 <= c < c0 + w):
                out[k] = i
                k += 1
    return k
