"""Border crossings and their interception.

A unit's move *crosses a border* when it changes side of a border line and its path passes
through the line itself (the side layer extends beyond the line's ends, so a change of side alone
is not enough). Every crossing along the cells a unit passes in the hour counts
(:meth:`BorderLines.crossings`): a unit that crosses and comes back within the hour makes two
attempts, and an intercepted one stops there. The hostile side may intercept a crossing: with
``s_j`` the ``border_security`` of each faction ``j`` hostile to the crosser, the crossing is
stopped with probability

    p = 1 - prod_j (1 - s_j),

i.e. each hostile faction's border guard gets an independent chance. An intercepted unit is
turned back to where it started the hour, its tactic is told (``intercepted``), and the event is
logged; a crossing that goes through is logged as ``crossing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.ndimage import binary_dilation

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sim.rules.state import RunState, UnitView
    from sim.world.raster import Terrain


class BorderLines:
    """Where the border lines run, for the crossing test (built once per run)."""

    def __init__(self, terrain: Terrain):
        self.side = terrain.border_side
        # a path "passes through the line" if it touches a line cell or its 8 neighbours
        # (a diagonal step can slip between two line cells)
        self.near_line = binary_dilation(terrain.border >= 0, iterations=1).ravel()
        self._side_code = side_code(self.side)

    def crossings(self, start: int, traversed: Sequence[int]) -> np.ndarray:
        """Where a move from the flat cell ``start`` through the flat cells ``traversed`` crosses
        a border line: the indices into ``traversed`` of the cells at which each crossing is
        complete, in order (empty if none).

        The walk is read at its *key cells*: the start, every cell off the line (neither a line
        cell nor a neighbour of one) and the last cell. A crossing is a change of side (of any
        line) from one key cell to the next with a line cell or a neighbour of one at or between
        them. Cells on and beside the line are not read for their side, so a unit driving along
        the line does not cross at each step, and a change of side far from the line (the side
        layer extends beyond the line's ends) is no crossing. A move that crosses once is one
        crossing, as the old hourly test (the sides of the hour's first and last cells) found;
        one that crosses and comes back within the hour is two."""
        cells = np.asarray(traversed, dtype=np.int64)
        if not self.side.shape[0] or len(cells) == 0:
            return np.empty(0, dtype=np.int64)
        near = self.near_line[cells]
        if not near.any():
            return np.empty(0, dtype=np.int64)
        # key cells among ``traversed``: off the line, and the last; the start is the key cell
        # before the first of them
        key = ~near
        key[-1] = True
        at = key.nonzero()[0]
        # the sides of every line as one number per cell, at the start and each key cell
        code = self._side_code[np.concatenate(((start,), cells[at]))]
        # a line cell (or a neighbour) at or between consecutive key cells: the count of
        # those up to each key cell (none before the first) grew since the last one
        touched = np.concatenate(((0,), near.cumsum()[at]))
        crossed = code[1:] != code[:-1]
        crossed &= touched[1:] != touched[:-1]
        return at[crossed]


def side_code(side: np.ndarray) -> np.ndarray:
    """Flat, one number per cell that differs between two cells exactly when they lie on
    different sides of some line: the ``(lines, rows, cols)`` int8 side layer's bytes packed,
    8 bits per line (up to 8 lines; beyond, the rank of each cell's column of sides)."""
    lines = side.reshape(len(side), int(np.prod(side.shape[1:])))
    if len(lines) == 0:
        return np.zeros(lines.shape[1], dtype=np.uint8)
    if side.dtype == np.int8 and len(lines) <= 8:
        dtype = np.dtype(f"uint{8 * 2 ** int(np.ceil(np.log2(len(lines))))}")
        code = lines[0].view(np.uint8).astype(dtype)
        for row in lines[1:]:
            code = (code << dtype.type(8)) | row.view(np.uint8)
        return code
    return np.unique(lines, axis=1, return_inverse=True)[1].ravel()


def interception_probability(border_security: np.ndarray, hostile: np.ndarray) -> float:
    """``1 - prod(1 - s)`` over the factions hostile to the crosser (``hostile``: a bool row of
    the hostility matrix)."""
    security = border_security[hostile]
    return 1.0 - float(np.prod(1.0 - security)) if len(security) else 0.0


def interception_table(border_security: np.ndarray, hostile: np.ndarray) -> list[float]:
    """:func:`interception_probability` of a crosser of each faction (``hostile``: the
    hostility matrix), as plain floats: a table the caller keeps while the border security and
    hostility stay the same, instead of a numpy product at each crossing."""
    return [interception_probability(border_security, row) for row in hostile]


def attempt_crossing(state: RunState, unit: UnitView, old_rc: tuple[int, int],
                     p: float | None = None) -> bool:
    """A unit crossed a border line this hour: the hostile side may intercept it and turn it
    back. Returns True if the crossing went through.

    ``p``: the unit's faction's :func:`interception_probability`, if the caller has it (from
    :func:`interception_table`). Uses ``state.faction_index``, ``hostile``,
    ``border_security``, ``insurgent_faction``, ``rng``, ``force`` and ``log``; the unit's
    ``behaviour.intercepted()`` if it has one."""
    fi = state.faction_index[unit.faction]
    if p is None:
        p = interception_probability(state.border_security, state.hostile[fi])
    cell = unit.cell
    if p > 0 and state.rng.random() < p:
        state.log("crossing_intercepted", cell, unit.faction, unit=unit.name)
        state.force.row[unit.idx], state.force.col[unit.idx] = old_rc
        if hasattr(unit.behaviour, "intercepted"):
            unit.behaviour.intercepted()
        else:
            unit.halt()
        unit.alert("intercepted")
        return False
    state.log("crossing", cell, unit.faction, unit=unit.name,
              insurgent=bool(state.insurgent_faction[fi]))  # fmt: skip
    return True
