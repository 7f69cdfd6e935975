"""Towns seized by insurgents and their relief.

A seizure's clock starts at the first fight in the town (the assault) and stops when a garrison
unit that was not there at the start drives into it: the relief. One seizure per town is open at
a time, however many cells take part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.rules.state import RunState

#: How close (in cells, Chebyshev) a fight must be to the town's cell to count as its assault,
#: and how many of the latest events are searched for it (a busy hour logs a dozen).
ASSAULT_RADIUS_CELLS = 2
RECENT_EVENTS = 20
#: How close (in cells) a garrison unit must come to relieve the town.
RELIEF_RADIUS_CELLS = 1


@dataclass
class Seizure:
    """One town under insurgent assault: when it started, whether it fell, when relieved."""

    town: str
    cell: int
    hour: int | None = None  # the hour of the first fight in the town
    relief_hour: int | None = None
    seized: bool = False
    present: set[int] = field(default_factory=set)  # garrison units there at the assault

    @property
    def open(self) -> bool:
        return self.relief_hour is None


def check_relief(state: RunState, seizures: list[Seizure], garrison: np.ndarray) -> None:
    """Start the clock of each new assault and log each relief (``garrison``: bool per
    faction). Uses ``state.force``, ``terrain``, ``hour``, ``events``, ``units`` and ``log``."""
    f = state.force
    n = f.n
    cols = state.terrain.cols
    for s in seizures:
        if not s.open:
            continue
        r, c = divmod(s.cell, cols)
        near = ((np.abs(f.row[:n] - r) <= RELIEF_RADIUS_CELLS)
                & (np.abs(f.col[:n] - c) <= RELIEF_RADIUS_CELLS))  # fmt: skip
        ours = garrison[f.faction[:n]] & f.alive[:n]
        if s.hour is None:
            fighting = any(
                e["type"] == "engagement" and e["hour"] == state.hour
                and abs(e["row"] - r) <= ASSAULT_RADIUS_CELLS
                and abs(e["col"] - c) <= ASSAULT_RADIUS_CELLS
                for e in state.events[-RECENT_EVENTS:]
            )
            if not fighting:
                continue
            s.hour = state.hour
            s.present = set(np.flatnonzero(near & ours).tolist())
            continue
        arrived = set(np.flatnonzero(near & ours).tolist()) - s.present
        if arrived:
            s.relief_hour = state.hour
            state.log("relief", s.cell, "", town=s.town, relief_hours=state.hour - s.hour,
                      units=[state.units[i].name for i in sorted(arrived)])  # fmt: skip
