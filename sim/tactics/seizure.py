"""Town seizure for resupply: groups gather, take a lightly held town, refill, hold it, leave."""

from __future__ import annotations

import numpy as np

from sim.rules.state import Posture
from sim.tactics.base import HOURS_PER_DAY, nearest
from sim.tactics.cells import CellBehaviour

#: After a seizure the cell lies low this many days: the garrison is out looking for it.
LIE_LOW_DAYS = 7
#: Once its seizure is over a cell only wakes this often (hours) of its own accord, for its
#: reflexes (water, pursuers): it seizes no second town.
AFTER_SEIZURE_WAKE_HOURS = HOURS_PER_DAY


class SeizeTown(CellBehaviour):
    """**Town seizure for resupply**: groups gather, take a lightly held town at night, hold it
    for ``hold_hours`` refilling water, fuel and ammunition, and leave before relief arrives.

    States: start -> gather -> assault -> hold -> withdraw -> hidden (one seizure per cell).

    Uses: what :class:`CellBehaviour` uses, and ``model.units`` (the group's behaviours),
    ``model.cell_of_place``, ``model.terrain`` (places, areas, towns), ``model.town_assaulted``,
    ``model.town_seized``, ``model.force`` (positions, supplies and their caps);
    ``unit.go_to``, ``unit.attack``, ``unit.halt``, ``unit.sleep_until``.
    """

    kind = "seize_town"

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        t = model.terrain
        self.towns = [t.places[n] for n in params.towns]
        gather = params.gather_at
        if gather is None:
            self.gather_cells = np.array([unit.cell])
        elif gather in t.places:
            self.gather_cells = np.array([model.cell_of_place(gather)])
        else:
            self.gather_cells = np.flatnonzero(t.areas[gather])
        self.town = None
        self.held_since = None

    def _group(self) -> list:
        """The cells of this faction sharing the seize_town tactic and still alive."""
        return [
            u for u in self.model.units
            if u.alive and isinstance(u.behaviour, SeizeTown) and u.faction == self.unit.faction
        ]

    def decide(self) -> None:
        u = self.unit
        m = self.model
        t = m.terrain
        state = self.state
        if state == "start":
            target = nearest(self.gather_cells, u.cell, t.cols, 1)
            if len(target) and int(target[0]) != u.cell:
                u.go_to(int(target[0]), Posture.MOVING)
            self.set_state("gather")
            return
        if state == "gather":
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            group = self._group()
            ready = [g for g in group if g.behaviour.state == "gather" and not g.is_moving
                     and g.supply("ammo") > 0]  # fmt: skip
            if len(ready) >= self.params.min_group and self.is_night:
                town = min(self.towns, key=lambda p: m.distance_km(u.cell, m.cell_of_place(p.name)))
                for g in ready:
                    g.behaviour.go_seize(town)
                return
            u.sleep_until(self.next_dusk_hour() if not self.is_night else m.hour + 1)
            return
        if state == "assault":
            if u.is_moving:
                return
            town_cell = m.cell_of_place(self.town.name)
            defenders = self._defenders(town_cell)
            if defenders:
                u.attack(defenders[0], "seizure")
                u.sleep_until(m.hour + 1)
                return
            self.hold(town_cell)
            return
        if state == "hold":
            if self.alerted("broke_off") or m.hour >= self.held_since + self.params.hold_hours:
                m.log("seizure_end", u.cell, u.faction, unit=u.name, town=self.town.name,
                      held_hours=m.hour - self.held_since)  # fmt: skip
                self.go_to_ground()
                self.set_state("withdraw")
                return
            u.sleep_until(m.hour + 1)
            return
        if state == "withdraw":
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            self.set_state("hidden")
            u.sleep_until(m.hour + HOURS_PER_DAY * LIE_LOW_DAYS)
            return
        if self.reflexes():
            return
        u.sleep_until(m.hour + AFTER_SEIZURE_WAKE_HOURS)

    def go_seize(self, town) -> None:
        self.town = town
        self.model.town_assaulted(town.name, self.unit)
        self.unit.go_to(self.model.cell_of_place(town.name), Posture.ATTACKING)
        self.set_state("assault")

    def _defenders(self, town_cell: int) -> list[int]:
        m = self.model
        f = m.force
        fi = f.faction[self.unit.idx]
        t = m.terrain
        mask = t.town.ravel() == t.town.ravel()[town_cell]
        if t.town.ravel()[town_cell] < 0:
            mask = np.zeros(t.rows * t.cols, bool)
            mask[town_cell] = True
        cells = f.row[: f.n].astype(np.int64) * t.cols + f.col[: f.n]
        idx = np.flatnonzero(f.alive[: f.n] & m.hostile[fi, f.faction[: f.n]] & mask[cells])
        return idx.tolist()

    def hold(self, town_cell: int) -> None:
        u = self.unit
        m = self.model
        f = m.force
        if self.held_since is None:
            self.held_since = m.hour
            m.log("seizure_start", u.cell, u.faction, unit=u.name, town=self.town.name)
            m.town_seized(self.town.name, u)
        before = {name: round(float(getattr(f, f"{name}_days")[u.idx]), 3)
                  for name in ("water", "fuel", "ammo")}  # fmt: skip
        for name in ("water", "fuel", "ammo"):  # the town's stores
            getattr(f, f"{name}_days")[u.idx] = getattr(f, f"{name}_cap")[u.idx]
        after = {name: round(float(getattr(f, f"{name}_days")[u.idx]), 3) for name in before}
        m.log("resupply", u.cell, u.faction, unit=u.name, town=self.town.name, before=before,
              after=after)  # fmt: skip
        u.halt(Posture.RESTING)
        self.set_state("hold")
        u.sleep_until(m.hour + 1)
