"""The run's agenda: every timed thing, in one heap (in the spirit of SimPy's event queue).

An entry is ``(hour, phase, seq, item)``: due at ``hour``; within an hour, lower phases first
(garrison replacements before scenario events, so a reinforced unit is back before an event
changes it, then the campaign's recruitment and air strikes), and in the order they were
scheduled. ``pop_due(hour)`` hands back, in that order, everything due at or before ``hour``
(including entries scheduled for this hour while it hands them out).

Unit wake-ups are not on this heap: they are the force table's ``wake_hour`` column, so the
units due each hour come from one numpy comparison over all units instead of one heap push per
decision (a few hundred units re-schedule themselves every few hours).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Any

#: Phases within an hour, in the order they are applied.
REPLACEMENT = 0
SCENARIO_EVENT = 1
#: The campaign's rules (``scenario.campaign``), after the scenario's events: the day's
#: recruits (``sim.rules.recruitment``), then air-strike requests from what the faction knows
#: (``sim.rules.air``), then the strikes that land this hour (one requested with no delay lands
#: in the same hour).
RECRUITMENT = 2
AIR_REQUEST = 3
AIR_STRIKE = 4
#: Once a day, insurgents learn again where the hostile posts stand (``campaign.posts_known``).
POSTS_KNOWN = 5


class Agenda:
    """A heap of timed items."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, int, Any]] = []
        self._seq = itertools.count()

    def schedule(self, hour: int, phase: int, item: Any) -> None:
        """Put ``item`` on the agenda at ``hour`` in ``phase``."""
        heapq.heappush(self._heap, (int(hour), phase, next(self._seq), item))

    def pop_due(self, hour: int) -> Iterator[tuple[int, Any]]:
        """``(phase, item)`` of every entry due at or before ``hour``, removed as handed out."""
        heap = self._heap
        while heap and heap[0][0] <= hour:
            _, phase, _, item = heapq.heappop(heap)
            yield phase, item

    def __len__(self) -> int:
        return len(self._heap)
