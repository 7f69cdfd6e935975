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

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sim.rules.state import RunState, UnitView


def _inside(rows: np.ndarray, cols: np.ndarray, square: tuple[int, int, int, int]) -> np.ndarray:
    r0, c0, h, w = square
    return (rows >= r0) & (rows < r0 + h) & (cols >= c0) & (cols < c0 + w)


def cordon_sightings(state: RunState, sweepers: Iterable[UnitView], prev_rc: np.ndarray) -> None:
    """Record and log every hostile unit leaving a cordoned square this hour.

    ``sweepers``: the units whose cordon is up, each with ``behaviour.square_mask_cells()``
    giving the square ``(row0, col0, height, width)``; ``prev_rc``: ``(n, 2)`` positions at the
    start of the hour. Uses ``state.force``, ``hostile``, ``terrain``, ``knowledge``, ``hour``,
    ``units`` and ``log``."""
    f = state.force
    n = f.n
    for sweeper in sweepers:
        square = sweeper.behaviour.square_mask_cells()
        fi = f.faction[sweeper.idx]
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
