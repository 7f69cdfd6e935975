"""Recruitment: fighters join a faction's cells over time, depleted cells rebuild, and recruits
with no room form new cells in the hides (``campaign.recruitment``, one
:class:`~sim.scenario.campaign.RecruitmentSpec` each).

**Arrivals.** Recruits reach the hide areas as a Poisson process of rate
``lambda = fighters_per_month / DAYS_PER_MONTH`` a day, counted once a day at
``ARRIVAL_HOUR_OF_DAY`` local time (an entry on the run's agenda)::

    N_d ~ Poisson(lambda),    E[N_d] = Var[N_d] = lambda,    sum_{d=1..D} N_d ~ Poisson(lambda D).

**Joining.** The day's recruits, and those still waiting from earlier days, join one at a time
the weakest living cell of the faction *of the areas* (its home cell lies in them, or its tactic
names one of them among its hides) that is below ``max_cell_strength`` ``S``; ties go to the
lowest force-table index. This water-filling leaves every cell that had room with
``s' = s + j <= S`` (``j`` its joins; a cell at or above ``S`` gets none), and raises its full
strength to ``s0' = max(s0, s')``: a depleted cell rebuilds to its full strength, and a full one
grows up to ``S``.

**New cells.** Recruits that find no room wait, ``P`` of them. While ``P >= n``
(``new_cell_strength``) and fewer than ``M`` (``max_new_cells``) cells have formed, ``n`` of
them form a new cell at a hide cell of the areas drawn uniformly (``model.rng``), following the
recruitment's ``tactic`` (:func:`new_cell_tactic`). Once ``M`` cells have formed (or the force
table is full), recruits with no room are turned away: counted here, not modelled.

Events: ``recruits_joined`` (``unit``, ``fighters``, ``strength`` after) and ``cell_formed``
(``unit``, ``fighters``); both count in the daily ``recruits`` metric of campaign scenarios.

**Room in the run.** Units created during a run need rows in the force table, the path book
and the knowledge arrays, sized when the run starts: :func:`reserved_units` is how many the
campaign may create (new cells, and the cells that split when pursued).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sim.rules.state import RunState
from sim.scenario.defaults import resolved_unit
from sim.scenario.schema import TACTIC_MODELS
from sim.scenario.vocab import KINDS
from sim.world.clock import HOURS_PER_DAY

if TYPE_CHECKING:
    from datetime import datetime

    from sim.rules.force import ForceTable
    from sim.rules.state import UnitView
    from sim.scenario.campaign import RecruitmentSpec
    from sim.scenario.schema import Scenario

#: A month of recruitment is 30 days (the rate is given per month, drawn per day).
DAYS_PER_MONTH = 30.0
#: Recruits are counted in at midday, local time: cells lie up in their hides by day, so the
#: newcomers find them there, and a new cell has the evening to settle before it moves.
ARRIVAL_HOUR_OF_DAY = 12
#: The force table's kind code of insurgent cells (only cells take recruits).
CELL_KIND = KINDS.index("cell")


class RecruitingState(RunState, Protocol):
    """What recruitment uses of a run: the rules' :class:`RunState` and ``spawn_cell`` (the
    engine's ``DesertModel.spawn_cell``), which creates a cell during the run."""

    def spawn_cell(self, faction: str, cell: int, strength: int, tactic: Any, *, name: str,
                   like: UnitView | None = None) -> UnitView | None: ...


# --------------------------------------------------------------------------- the pure laws
def daily_rate(fighters_per_month: float) -> float:
    """``lambda``, the mean number of recruits a day."""
    return float(fighters_per_month) / DAYS_PER_MONTH


def arrivals(rng: np.random.Generator, fighters_per_month: float) -> int:
    """One day's recruits, ``N ~ Poisson(lambda)`` (one draw from ``rng``, even when 0)."""
    return int(rng.poisson(daily_rate(fighters_per_month)))


def allocate(strength: np.ndarray, max_strength: int, recruits: int) -> np.ndarray:
    """Joins per cell when ``recruits`` join one at a time the weakest cell below
    ``max_strength`` (ties: the lowest index). Their sum is at most ``recruits``; the rest
    found no room."""
    s = np.asarray(strength, dtype=float).copy()
    joins = np.zeros(len(s), dtype=np.int64)
    for _ in range(int(recruits)):
        room = s < max_strength
        if not room.any():
            break
        i = int(np.argmin(np.where(room, s, np.inf)))  # argmin: first of equals
        s[i] += 1
        joins[i] += 1
    return joins


def join(force: ForceTable, idx: np.ndarray, joins: np.ndarray) -> None:
    """Add ``joins`` fighters to the cells ``idx``: ``s' = s + j``, ``s0' = max(s0, s')``."""
    force.strength[idx] += joins
    force.strength0[idx] = np.maximum(force.strength0[idx], force.strength[idx])


def first_arrival_hour(start: datetime) -> int:
    """The run hour of the first draw: the first ``ARRIVAL_HOUR_OF_DAY`` o'clock (local) from
    the start (the start hour itself if it is that hour)."""
    return (ARRIVAL_HOUR_OF_DAY - start.hour) % HOURS_PER_DAY


def new_cell_tactic(spec: RecruitmentSpec) -> Any:
    """The validated tactic of the recruitment's new cells: ``spec.tactic`` (none:
    ``{kind: hide}``); a tactic with ``hides`` that names none hides in the recruitment's
    areas."""
    data = dict(spec.tactic) if spec.tactic is not None else {"kind": "hide"}
    model = TACTIC_MODELS[data["kind"]]
    if "hides" in model.model_fields and not data.get("hides"):
        data["hides"] = list(spec.hides)
    return model.model_validate(data)


def reserved_units(scenario: Scenario) -> int:
    """Rows the campaign may add to the force table during a run.

    * each recruitment's ``max_new_cells``;
    * splits (``split_when_pursued``): a cell of strength ``s`` splits only when
      ``s >= 2 m`` (``m`` = ``split_min_strength``) and leaves two halves of at least ``m``,
      so a lineage that starts with ``s`` fighters and loses some makes at most
      ``floor(s / m) - 1`` splits; with recruitment into the faction's cells ``s`` is taken as
      ``max(s, S)`` (``S`` its largest ``max_cell_strength``), each new cell that splits too.

    A lineage rebuilt by recruits more than once could split more often than this; when the
    room runs out a pursued cell stays whole."""
    camp = scenario.campaign
    recruitments = camp.recruitment if camp is not None else []
    cap: dict[str, int] = {}
    for r in recruitments:
        cap[r.faction] = max(cap.get(r.faction, 0), r.max_cell_strength)

    def splits(tactic: Any, strength: int, faction: str) -> int:
        if not getattr(tactic, "split_when_pursued", False):
            return 0
        s = max(int(strength), cap.get(faction, 0))
        return max(0, s // int(tactic.split_min_strength) - 1)

    total = 0
    for u in scenario.units:
        total += u.count * splits(u.tactic, resolved_unit(u).strength, u.faction)
    for r in recruitments:
        total += r.max_new_cells * (1 + splits(new_cell_tactic(r), r.new_cell_strength, r.faction))
    return total


# --------------------------------------------------------------------------- the run's recruitment
class Recruitment:
    """One ``campaign.recruitment`` entry during a run: the recruits waiting, the cells formed
    and the tallies (``arrived``, ``joined``, ``turned_away``).

    Args:
        spec: the scenario's entry.
        faction_index: index of ``spec.faction`` in the run's factions.
        areas_mask: flat bool mask of the ``hides`` areas (home cells in it count).
        hide_cells: flat cells where new cells form (the areas' hides, ``Sites.hides``).
    """

    def __init__(self, spec: RecruitmentSpec, faction_index: int, areas_mask: np.ndarray,
                 hide_cells: np.ndarray):
        self.spec = spec
        self.faction_index = faction_index
        self.areas_mask = np.asarray(areas_mask, dtype=bool).ravel()
        self.hide_cells = np.asarray(hide_cells, dtype=np.int64)
        self.tactic = new_cell_tactic(spec)
        self.waiting = 0
        self.formed = 0
        self.arrived = 0
        self.joined = 0
        self.turned_away = 0
        self._of_areas: dict[int, bool] = {}  # unit index -> its hide lies in the areas

    def of_areas(self, unit: UnitView) -> bool:
        """Whether the cell's hide lies in the areas: its home cell, or its tactic's hides."""
        known = self._of_areas.get(unit.idx)
        if known is None:
            named = getattr(getattr(unit.behaviour, "params", None), "hides", None) or ()
            known = bool(self.areas_mask[unit.home]) or bool(set(named) & set(self.spec.hides))
            self._of_areas[unit.idx] = known
        return known

    def cells(self, run: RunState) -> np.ndarray:
        """Force-table indices of the living cells of the faction whose hide lies in the areas."""
        f = run.force
        n = f.n
        idx = np.flatnonzero(f.alive[:n] & (f.faction[:n] == self.faction_index)
                             & (f.kind[:n] == CELL_KIND))  # fmt: skip
        return np.array([i for i in idx.tolist() if self.of_areas(run.units[i])], dtype=np.int64)

    def day(self, run: RecruitingState) -> None:
        """One day's draw: recruits arrive, join the weakest cells, form new cells or wait."""
        spec = self.spec
        n = arrivals(run.rng, spec.fighters_per_month)
        self.arrived += n
        self.waiting += n
        if self.waiting == 0:
            return
        f = run.force
        idx = self.cells(run)
        joins = allocate(f.strength[idx], spec.max_cell_strength, self.waiting)
        if joins.any():
            join(f, idx, joins)
            self.waiting -= int(joins.sum())
            self.joined += int(joins.sum())
            for i, j in zip(idx[joins > 0].tolist(), joins[joins > 0].tolist(), strict=True):
                unit = run.units[i]
                run.log("recruits_joined", unit.cell, unit.faction, unit=unit.name,
                        fighters=int(j), strength=int(f.strength[i]))  # fmt: skip
        while (self.waiting >= spec.new_cell_strength and self.formed < spec.max_new_cells
               and len(self.hide_cells)):
            cell = int(self.hide_cells[run.rng.integers(len(self.hide_cells))])
            unit = run.spawn_cell(spec.faction, cell, spec.new_cell_strength, self.tactic,
                                  name=f"{spec.faction} new cell")  # fmt: skip
            if unit is None:  # the force table is full
                break
            self.formed += 1
            self.waiting -= spec.new_cell_strength
            self.joined += spec.new_cell_strength
            run.log("cell_formed", unit.cell, unit.faction, unit=unit.name,
                    fighters=int(spec.new_cell_strength))  # fmt: skip
        if self.waiting >= spec.new_cell_strength or (
            self.waiting and self.formed >= spec.max_new_cells
        ):
            # no cell can form any more: the recruits with no room go home
            self.turned_away += self.waiting
            self.waiting = 0
