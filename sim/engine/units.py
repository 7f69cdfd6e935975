"""Units: one Mesa agent per unit, backed by a row of the model's force table.

What every unit does every hour (moving along its path, being seen, spending supplies) is done
by the model in numpy over the whole :class:`ForceTable`; a :class:`Unit` agent owns its row and
makes the decisions (through its tactic) when it wakes. That split keeps the hourly step
vectorised while the agents stay readable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import mesa
import numpy as np

from sim.rules.state import NEVER_HOUR, Operation, Posture

if TYPE_CHECKING:
    from sim.engine.orders import Orders
    from sim.tactics.base import Behaviour, TacticState

    class UnitHost(TacticState, Protocol):
        """The run a unit belongs to: the tactics' view of it, and the orders."""

        orders: Orders
        alerted: list[int]


#: The force table's column of each supply (days left): asked at most insurgent decisions.
_SUPPLY_COLUMNS = {name: f"{name}_days" for name in ("water", "fuel", "ammo")}


class Unit(mesa.Agent):
    """A unit: an insurgent cell, a strongpoint, a patrol, a convoy, a QRF, a post or a guard.

    Numeric state (position, strength, supplies, posture) is read and written through
    properties onto the model's :class:`ForceTable`; the agent itself keeps identity, its
    orders (the path it follows) and its tactic.
    """

    def __init__(self, model: UnitHost, idx: int, name: str, faction: str, kind: str):
        super().__init__(model)
        # the force table (its items), the grid's width and the orders never change during a
        # run: kept here, so the handle's properties and orders (at every decision) skip lookups
        self._items = model.orders.items
        self._cols = model.terrain.cols
        self._orders = model.orders
        self.idx = idx
        self.name = name
        self.faction = faction
        self.kind = kind
        self.behaviour: Behaviour | None = None
        self.path: np.ndarray = np.empty(0, dtype=np.int64)  # flat cells, path[0] = start
        self.path_hours: np.ndarray = np.empty(0)  # cumulative hours to reach path[i]
        self.wake_hour = 0  # the next hour the tactic wants to decide
        self.alerts: list[str] = []  # why the unit was woken early (arrived, detected, fired on...)
        self.home: int = -1  # flat cell of its base, hide or post
        self.attached_to: Unit | None = None  # an escort follows its convoy
        self.attack_target = None  # force-table index of the unit it attacks
        self.operation: Operation | None = None  # the attack under way
        self.spec_index = -1  # which scenario `units[i]` entry it came from

    # --- numeric state, stored in the force table -------------------------------------------
    @property
    def wake_hour(self) -> int:
        """The next hour the tactic wants to decide (a column, so the model finds the units
        due this hour in one numpy call)."""
        return self._items.wake_hour[self.idx]

    @wake_hour.setter
    def wake_hour(self, hour: int) -> None:
        self._items.wake_hour[self.idx] = min(int(hour), NEVER_HOUR)

    @property
    def attack_target(self) -> int | None:
        """Force-table index of the unit it attacks, if any (a column of the model's
        ``attack_targets``, -1 for none, so the engagement rule finds the attackers in one
        numpy call)."""
        tgt = int(self.model.attack_targets[self.idx])
        return None if tgt < 0 else tgt

    @attack_target.setter
    def attack_target(self, target: int | None) -> None:
        self.model.attack_targets[self.idx] = -1 if target is None else int(target)

    @property
    def cell(self) -> int:
        """Flat index of the unit's cell."""
        f = self._items
        return f.row[self.idx] * self._cols + f.col[self.idx]

    @property
    def rc(self) -> tuple[int, int]:
        f = self._items
        return f.row[self.idx], f.col[self.idx]

    @property
    def strength(self) -> float:
        return self._items.strength[self.idx]

    @property
    def alive(self) -> bool:
        return self._items.alive[self.idx]

    @property
    def posture(self) -> Posture:
        return Posture(self._items.posture[self.idx])

    @posture.setter
    def posture(self, value: Posture) -> None:
        self._items.posture[self.idx] = int(value)

    def supply(self, name: str) -> float:
        """Days of ``water``, ``fuel`` or ``ammo`` left."""
        return getattr(self._items, _SUPPLY_COLUMNS[name])[self.idx]

    @property
    def is_moving(self) -> bool:
        return self._items.path_pos[self.idx] < len(self.path) - 1

    @property
    def path_pos(self) -> int:
        return self._items.path_pos[self.idx]

    @property
    def destination(self) -> int:
        return int(self.path[-1]) if len(self.path) else self.cell

    # --- orders ----------------------------------------------------------------------------------
    def go_to(self, target_cell: int, posture: Posture = Posture.MOVING, *, often=False) -> bool:
        """Plan a route to ``target_cell`` and start moving; False if it cannot be reached.

        ``often=True`` marks a target the unit will return to (its base, a patrol point), whose
        route field is then kept in the router's cache."""
        return self._orders.move(self, target_cell, posture, often=often)

    def follow(self, cells: np.ndarray, posture: Posture = Posture.MOVING) -> None:
        """Follow an explicit cell path (a patrol route)."""
        self._orders.follow(self, cells, posture)

    def halt(self, posture: Posture = Posture.RESTING) -> None:
        """Stop where it stands."""
        self._orders.halt(self, posture)

    def stay(self, posture: Posture = Posture.RESTING) -> None:
        """Stop where it stands, having arrived: as :meth:`halt` (see ``Orders.stay``)."""
        self._orders.stay(self, posture)

    def attack(self, target_idx: int, kind: str) -> None:
        """Open fire on unit ``target_idx`` when in weapon range (``kind``: raid, ambush...)."""
        self.attack_target = int(target_idx)
        if self.operation is None or self.operation.target != target_idx:
            self.operation = Operation(kind=kind, target=int(target_idx), since=self.model.hour)
        self.posture = Posture.ATTACKING

    def cease_fire(self) -> None:
        """Stop attacking; the operation (one raid, one ambush) is over."""
        self.attack_target = None
        self.operation = None

    def alert(self, reason: str) -> None:
        """Wake the unit at the next decision round because of ``reason`` (arrived, detected,
        engaged ...); its tactic decides whether the reason calls for new orders."""
        if not self.alerts:
            self.model.alerted.append(self.idx)
        self.alerts.append(reason)

    def sleep_until(self, hour: int) -> None:
        """Ask to decide again at ``hour`` (absolute model hour), unless woken by an alert."""
        # the wake_hour setter inlined: max(hour, next hour), capped at NEVER_HOUR, written
        # without calls to int, min and max (each costs more than the rest): the commonest order
        if type(hour) is not int:
            hour = int(hour)
        soonest = self.model.hour + 1
        if hour < soonest:
            hour = soonest
        elif hour > NEVER_HOUR:
            hour = NEVER_HOUR
        self._items.wake_hour[self.idx] = hour

    def remove(self) -> None:
        """Take the unit out of the model (destroyed)."""
        self._items.alive[self.idx] = False
        self._items.strength[self.idx] = 0.0
        super().remove()

    def __repr__(self) -> str:
        return f"<Unit {self.name} {self.faction}/{self.kind} at {self.rc}>"
