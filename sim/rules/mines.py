"""Mines and IEDs on the roads: the minefield, and what a passing vehicle does to a mine.

A *mine* is a record (cell, faction of the layer, hour laid, layer's name), put down by the
``mine_laying`` tactic (:func:`lay_mine`). It is *live* from the hour it is laid (laying happens
in the decision phase, before the hour's moves) until it is struck or cleared, or until
``lifetime_days`` have passed, after which it is inert (:meth:`Minefield.expire`).

In an hour's move, a unit *drives over* a live mine when

* its move this hour enters the mine's cell (the cells passed, not just the end cell),
* it is a *driving vehicle*: it has vehicles (``vehicles > 0`` in the force table), is not on
  foot (mobility), and has fuel (a unit out of fuel walks, and walkers do not set off an
  anti-vehicle mine), and
* its faction is a *victim* of the layer's: hostile to it, or of a civilian faction when
  ``civilians_strike`` (a mine does not choose its victim). The layer's own faction never is.

Each such passage is one trial. With ``q = clearance_probability`` for a garrison patrol
(:data:`CLEARING_KINDS`; ``q = 0`` for every other kind) and ``p = strike_probability``::

    P(cleared) = q,    P(struck) = (1 - q) p,    P(passes) = (1 - q)(1 - p).

A cleared or struck mine is gone; a passed one stays live for the next vehicle. Mines in the
cells a unit enters are tried in path order (several in one cell in the order laid); a strike
ends the unit's move for the hour, so mines beyond it are not reached this hour.

A strike hits one vehicle of the column (the mover and the escorts riding with it), drawn in
proportion to each unit's vehicles. Its occupants, ``n = min(strength, ceil(strength /
vehicles))`` of the struck unit, each die with probability ``f = killed_fraction``::

    K ~ Binomial(n, f),    E[K] = n f.

The losses go through :func:`sim.rules.engagements.apply_losses`, the path engagements use (a
unit that loses its last fighter is destroyed and, for garrison vehicles, replaced later). The
vehicle halts in the mine's cell for the rest of the hour and is alerted ``struck_mine``.

Events (the layer is elsewhere: no attacker is present):

* ``mine_laid`` (faction: the layer's; ``unit``: the layer, ``road_cell``), not an attack;
* ``mine_strike`` (faction: the layer's; ``unit``: the struck unit, ``kind``,
  ``victim_faction``, ``layer``, ``laid_hour``, ``killed`` and ``losses`` ``{victim faction:
  killed}``, the same mapping an ``engagement`` carries) followed by ``attack_result``
  (``attack: mine_strike``, ``succeeded: killed > 0``, ``unit``: the layer, ``target``: the
  struck unit). ``mine_strike`` is an attack kind (``CAMPAIGN_ATTACK_TYPES``), so the metrics
  count it in ``attacks_attempted``; its ``losses`` are counted in ``losses__<faction>`` like an
  engagement's. A mine strike is not an engagement (nobody fires): it is not counted in
  ``engagements``;
* ``mine_cleared`` (faction: the patrol's; ``unit``: the patrol, ``layer_faction``,
  ``laid_hour``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.rules.engagements import apply_losses
from sim.scenario.campaign import MinesSpec
from sim.scenario.vocab import MOBILITIES
from sim.world.clock import HOURS_PER_DAY

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sim.rules.force import ForceTable
    from sim.rules.state import RunState, UnitView
    from sim.scenario.schema import Scenario

#: Unit kinds that look for mines as they drive and may clear one: road patrols scan the
#: verges (convoys, escorts and QRFs drive to get somewhere, and civilians do not look).
CLEARING_KINDS = ("patrol",)
#: The force table's mobility code of units on foot (they never drive over a mine).
FOOT = MOBILITIES.index("foot")
#: The tactic whose units lay mines: a scenario with one of them gets a minefield.
LAYING_TACTIC = "mine_laying"


@dataclass(frozen=True)
class Mine:
    """One mine or IED on a road cell: where, whose (faction index), since when, laid by whom."""

    cell: int
    faction: int
    laid_hour: int
    layer: str


class Minefield:
    """The live mines of a run. The cells of all mines are one numpy array (for the hourly
    ``np.isin`` against the cells passed); the records are looked at only for the rare hits.

    Args:
        spec: the scenario's ``campaign.mines`` (the defaults where it has none).
    """

    def __init__(self, spec: MinesSpec):
        self.spec = spec
        self.lifetime_hours = float(spec.lifetime_days) * HOURS_PER_DAY
        self.mines: list[Mine] = []
        self.cells = np.empty(0, dtype=np.int64)  # cell of each mine, parallel to ``mines``
        self._laid = np.empty(0, dtype=np.int64)  # hour each mine was laid

    def __len__(self) -> int:
        return len(self.mines)

    def _reindex(self) -> None:
        self.cells = np.fromiter((m.cell for m in self.mines), np.int64, len(self.mines))
        self._laid = np.fromiter((m.laid_hour for m in self.mines), np.int64, len(self.mines))

    def lay(self, cell: int, faction: int, hour: int, layer: str) -> Mine:
        """Add a mine and return it."""
        mine = Mine(cell=int(cell), faction=int(faction), laid_hour=int(hour), layer=layer)
        self.mines.append(mine)
        self._reindex()
        return mine

    def remove(self, mine: Mine) -> None:
        """Take a struck or cleared mine out of the field."""
        self.mines.remove(mine)
        self._reindex()

    def at(self, cell: int) -> list[Mine]:
        """The mines in ``cell``, in the order they were laid."""
        return [self.mines[i] for i in np.flatnonzero(self.cells == cell).tolist()]

    def expire(self, hour: int) -> list[Mine]:
        """Drop the mines inert at ``hour`` (``hour >= laid_hour + lifetime``); return them."""
        if not len(self.mines) or self._laid.min() + self.lifetime_hours > hour:
            return []
        dead = self._laid + self.lifetime_hours <= hour
        gone = [m for m, d in zip(self.mines, dead.tolist(), strict=True) if d]
        self.mines = [m for m, d in zip(self.mines, dead.tolist(), strict=True) if not d]
        self._reindex()
        return gone


def minefield_for(scenario: Scenario) -> Minefield | None:
    """The run's minefield: one if the scenario has ``campaign.mines`` or any unit lays mines,
    else None (the mines check then costs nothing)."""
    campaign = scenario.campaign
    spec = campaign.mines if campaign is not None else None
    lays = any(getattr(u.tactic, "kind", None) == LAYING_TACTIC for u in scenario.units)
    if spec is None and not lays:
        return None
    return Minefield(spec if spec is not None else MinesSpec())


def lay_mine(state: RunState, field: Minefield, unit: UnitView, cell: int,
             ammo_days: float) -> Mine:
    """``unit`` lays a mine in ``cell`` now, spending ``ammo_days`` of its ammunition (the
    explosive comes from its stock; the caller checks there is enough). Logs ``mine_laid``."""
    f = state.force
    f.ammo_days[unit.idx] = max(float(f.ammo_days[unit.idx]) - ammo_days, 0.0)
    mine = field.lay(cell, state.faction_index[unit.faction], state.hour, unit.name)
    state.log("mine_laid", cell, unit.faction, unit=unit.name, laid_hour=state.hour)
    return mine


def mined_passages(field: Minefield, force: ForceTable, movers: np.ndarray, cells: np.ndarray,
                   owner: np.ndarray, hour: int) -> np.ndarray:
    """Positions in ``movers`` of the driving vehicles that entered a mined cell this hour.

    ``cells`` and ``owner`` are the cells entered and their mover's position (the path book's
    ``passed``). Expires the mines inert at ``hour`` first. Victims are sorted out per mine by
    :func:`drive_over`, for these few units only."""
    field.expire(hour)
    if not len(field):
        return np.empty(0, dtype=np.int64)
    hit = np.isin(cells, field.cells)
    if not hit.any():
        return np.empty(0, dtype=np.int64)
    k = np.unique(owner[hit])
    i = movers[k]
    driving = (force.vehicles[i] > 0) & (force.mobility[i] != FOOT) & (force.fuel_days[i] > 0)
    return k[driving]


def is_victim(state: RunState, layer_faction: int, faction: int, spec: MinesSpec) -> bool:
    """Whether a vehicle of ``faction`` sets off a mine laid by ``layer_faction``: hostile to
    the layer's faction, or civilian when ``civilians_strike``; never the layer's own."""
    if faction == layer_faction:
        return False
    if state.hostile[layer_faction, faction]:
        return True
    role = state.spec.factions[state.faction_names[faction]].role
    return bool(spec.civilians_strike and role == "civilian")


def drive_over(state: RunState, field: Minefield, unit: UnitView,
               cells: Sequence[int]) -> int | None:
    """``unit`` (a driving vehicle) enters ``cells`` in this order this hour: try each live mine
    it meets (clearance, then strike; see the module's law). Returns the position in ``cells``
    where a strike stopped it, or None if it drove on.

    Uses ``state.force``, ``faction_names``, ``hostile``, ``spec`` (faction roles), ``rng`` and
    ``log``; through :func:`strike`, ``units``, ``terrain`` and ``unit_destroyed``."""
    f = state.force
    fi = int(f.faction[unit.idx])
    spec = field.spec
    clears = unit.kind in CLEARING_KINDS
    for j, cell in enumerate(np.asarray(cells).tolist()):
        for mine in field.at(cell):
            if not is_victim(state, mine.faction, fi, spec):
                continue
            if clears and state.rng.random() < spec.clearance_probability:
                field.remove(mine)
                state.log("mine_cleared", cell, unit.faction, unit=unit.name,
                          layer_faction=state.faction_names[mine.faction],
                          laid_hour=mine.laid_hour)  # fmt: skip
                continue
            if state.rng.random() < spec.strike_probability:
                field.remove(mine)
                strike(state, mine, unit, spec)
                return j
    return None


def strike(state: RunState, mine: Mine, unit: UnitView, spec: MinesSpec) -> int:
    """``unit``'s column sets off ``mine``: one vehicle is hit and each of its occupants dies
    with ``killed_fraction``; the losses are applied, the events logged and the unit alerted.
    Returns the number killed. Uses ``state.force``, ``units`` (the escorts riding with the
    unit), ``terrain``, ``rng``, ``faction_names``, ``log`` and, through
    :func:`~sim.rules.engagements.apply_losses`, ``unit_destroyed``."""
    f = state.force
    column = [unit] + [x for x in state.units if x.attached_to is unit and x.alive]
    struck = column[0]
    if len(column) > 1:
        vehicles = np.array([f.vehicles[x.idx] for x in column], dtype=float)
        if vehicles.sum() > 0:
            struck = column[int(state.rng.choice(len(column), p=vehicles / vehicles.sum()))]
    strength = int(f.strength[struck.idx])
    aboard = min(strength, math.ceil(strength / max(float(f.vehicles[struck.idx]), 1.0)))
    killed = int(state.rng.binomial(aboard, spec.killed_fraction)) if aboard > 0 else 0
    cell = mine.cell
    # the column halts in the mine's cell (the engine's move puts the mover there too)
    for x in column:
        f.row[x.idx], f.col[x.idx] = divmod(cell, state.terrain.cols)
    layer_faction = state.faction_names[mine.faction]
    apply_losses(state, [struck.idx], killed)
    state.log("mine_strike", cell, layer_faction, unit=struck.name, kind=struck.kind,
              victim_faction=struck.faction, layer=mine.layer, laid_hour=mine.laid_hour,
              killed=killed, losses={struck.faction: killed})  # fmt: skip
    state.log("attack_result", cell, layer_faction, attack="mine_strike",
              succeeded=killed > 0, unit=mine.layer, target=struck.name)  # fmt: skip
    for x in column:
        if x.alive:
            x.alert("struck_mine")
    return killed
