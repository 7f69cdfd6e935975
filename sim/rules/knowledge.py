"""What each faction knows of its enemies: last-seen positions, shared after a delay.

A detection is known at once to the unit that made it and to the rest of its faction only
``comms_delay_hours`` later, because reports travel up and back down a chain of command.
Stored as dense (faction x unit) arrays so a whole hour's detections update in one call.
``version`` counts the changes (:meth:`Knowledge.record`, :meth:`Knowledge.forget`), so what a
faction knows at an hour is worked out once for every unit asking while nothing changes.
"""

from __future__ import annotations

import numpy as np

NEVER = -(10**9)


class Knowledge:
    """Last-seen cell and hour of every unit, per observing faction."""

    def __init__(self, n_factions: int, capacity: int, comms_delay_hours: np.ndarray):
        self.seen_hour = np.full((n_factions, capacity), NEVER, dtype=np.int64)
        self.seen_cell = np.full((n_factions, capacity), -1, dtype=np.int64)
        self.shared_hour = np.full((n_factions, capacity), NEVER, dtype=np.int64)
        self.seen_by = np.full((n_factions, capacity), -1, dtype=np.int64)
        self.ever_seen = np.zeros((n_factions, capacity), dtype=bool)  # kept when forgotten
        self.latest_share = np.full(n_factions, NEVER, dtype=np.int64)  # newest sighting's share
        self.delay = np.asarray(comms_delay_hours, dtype=np.int64)
        #: Changes so far (:meth:`record`, :meth:`forget`): code writing the arrays otherwise
        #: must add one, or :meth:`known_to` may answer from before the change.
        self.version = 0
        # (faction, max age) -> what known_to found, at the version and hour of _known_stamp
        self._known: dict[tuple[int, int], tuple] = {}
        self._known_stamp = (0, NEVER)

    def record(
        self,
        hour: int,
        observer_faction: np.ndarray,
        observer: np.ndarray,
        target: np.ndarray,
        target_cell: np.ndarray,
    ) -> None:
        """Record detections (parallel arrays, one entry per detection) made at ``hour``."""
        if len(target) == 0:
            return
        self.version += 1
        self.seen_hour[observer_faction, target] = hour
        self.ever_seen[observer_faction, target] = True
        self.seen_cell[observer_faction, target] = target_cell
        self.seen_by[observer_faction, target] = observer
        self.shared_hour[observer_faction, target] = hour + self.delay[observer_faction]
        np.maximum.at(self.latest_share, observer_faction, hour + self.delay[observer_faction])

    def known_to(self, faction: int, hour: int, unit: int | None = None, max_age_hours=48):
        """Indices of enemy units the faction (or the observing ``unit`` itself) knows of.

        Returns ``(targets, cells, ages_hours)`` for sightings at most ``max_age_hours`` old that
        have reached the faction by ``hour`` (or were made by ``unit``), in unit order. The
        arrays are read-only: units of a faction asking at the same hour, with nothing recorded
        or forgotten in between, share them (the faction's sightings are found once, then only
        those not yet shared are checked for the asking unit's own).
        """
        if self._known_stamp != (self.version, hour):
            self._known.clear()
            self._known_stamp = (self.version, hour)
        key = (faction, max_age_hours)
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = self._sightings(faction, hour, max_age_hours)
        shared, pending, observers = found
        if unit is None or unit not in observers:
            return shared
        # the unit's own sightings, not yet shared with its faction, join the shared ones
        mine = pending[self.seen_by[faction, pending] == unit]
        idx = np.sort(np.concatenate((shared[0], mine)))
        return idx, self.seen_cell[faction, idx], hour - self.seen_hour[faction, idx]

    def _sightings(self, faction: int, hour: int, max_age_hours: int) -> tuple:
        """``(shared, pending, observers)``: the ``known_to`` answer of the faction as a whole
        (read-only), the sightings fresh enough but not yet shared, and who made those."""
        seen = self.seen_hour[faction]
        fresh = seen >= hour - max_age_hours
        shared = self.shared_hour[faction] <= hour
        idx = np.flatnonzero(fresh & shared)
        answer = (idx, self.seen_cell[faction, idx], hour - seen[idx])
        for a in answer:
            a.flags.writeable = False
        pending = np.flatnonzero(fresh & ~shared)
        return answer, pending, frozenset(self.seen_by[faction, pending].tolist())

    def forget(self, target: int) -> None:
        """Drop everything known of a unit (it was destroyed)."""
        self.version += 1
        self.seen_hour[:, target] = NEVER
        self.shared_hour[:, target] = NEVER
