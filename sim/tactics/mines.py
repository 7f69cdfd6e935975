"""The road campaign of the insurgent cells: mines and IEDs laid at night, and fake checkpoints.

Both are night work on a road near the hides, done and gone before first light. What a mine
does once laid (which vehicles strike it, how many die) is a rule, :mod:`sim.rules.mines`; a
fake checkpoint stops its prey through the ambush tripwires (``model.tripwires``: the model calls
:meth:`FakeCheckpoint.spring` when a hostile unit drives into the watched stretch) and fights
through the engagement rules like an ambush.
"""

from __future__ import annotations

import numpy as np

from sim.rules.mines import lay_mine
from sim.rules.state import NEVER_HOUR, Posture
from sim.scenario.vocab import CIVILIAN_KINDS
from sim.tactics.base import (
    column_strength,
    first_night_hour,
    last_trip_for,
    nearest,
    rest_hours,
)
from sim.tactics.cells import CellBehaviour

#: Darkness needed to set out (hours to first light): time to reach the road, work and leave.
MIN_DARK_HOURS = 3
#: Hours of darkness kept in hand on the way back, for the unexpected.
DAWN_MARGIN_HOURS = 1.0
#: Hours planned on the road to dig in the night's mines (a few minutes each, with a watch
#: posted and the spoil carried off).
LAY_HOURS = 1.0
#: A fake checkpoint is worth setting up only if it can stand at least this long (hours).
MIN_CHECKPOINT_HOURS = 1.0
#: Garrison vehicles a fake checkpoint stops when it outnumbers them (soldiers in a pickup or
#: a small convoy, flagged down by men in stolen uniforms).
GARRISON_PREY_KINDS = ("patrol", "convoy", "escort", "qrf")
#: A cell below this fraction of its starting strength does not go out on the road (as for
#: ambushes): it lies up until recruits or the wounded return.
MIN_STRENGTH_FRACTION = 0.5


class RoadWork(CellBehaviour):
    """What a night's work on a road shares: the tactic's road cells, the choice of a road cell
    within ``max_distance_km`` of the hide, the trip planned on the actual route so that the
    cell is back in a hide before first light, and the rest of ``nights_between`` nights between
    trips. Not a tactic of its own.

    Uses: what :class:`CellBehaviour` uses, and ``model.roads.cells_of``, ``model.terrain``
    (grid), ``model.force`` (strength, path clock), ``model.rng``; ``unit.go_to``,
    ``unit.path_hours``, ``unit.halt``.
    """

    kind = ""  # not a tactic: the registry skips it

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        self.road_cells = model.roads.cells_of(params.road, params.segment)
        # the cells start at random points of their rest (see first_night_hour)
        self.last_trip_hour = last_trip_for(first_night_hour(model.rng, params.nights_between),
                                            params.nights_between, NEVER_HOUR)
        self.target: int | None = None  # the road cell of the night's work
        self.hours_back = 0.0  # route hours from the hide to the road cell (and back)

    def rested(self) -> bool:
        return self.hour - self.last_trip_hour >= rest_hours(self.params.nights_between)

    def may_set_out(self) -> bool:
        """Night, darkness enough, rested, and strong enough: else sleep to the next dusk."""
        f = self.model.force
        i = self.unit.idx
        ok = (self.is_night and self.hours_to_first_light() >= MIN_DARK_HOURS and self.rested()
              and f.strength[i] >= MIN_STRENGTH_FRACTION * f.strength0[i])  # fmt: skip
        if not ok:
            self.unit.sleep_until(self.next_dusk_hour())
        return bool(ok)

    def set_out(self, work_hours: float) -> bool:
        """Drive to a road cell within ``max_distance_km``: one drawn at random, else the
        nearest, whichever route leaves ``work_hours`` on the road and the way back before
        first light (``DAWN_MARGIN_HOURS`` in hand). False (and halted) if none does."""
        m = self.model
        u = self.unit
        t = m.terrain
        home = u.cell
        r, c = divmod(home, t.cols)
        rr, cc = np.divmod(self.road_cells, t.cols)
        d_km = np.hypot(rr - r, cc - c) * t.grid.cell_km
        near = self.road_cells[d_km <= self.params.max_distance_km]
        if len(near) == 0:
            return False
        drawn = int(near[m.rng.integers(len(near))])
        closest = int(nearest(near, home, t.cols, 1)[0])
        dark = self.hours_to_first_light()
        for cell in dict.fromkeys((drawn, closest)):
            if not u.go_to(cell, Posture.MOVING):
                continue
            there = float(u.path_hours[-1])
            if 2 * there + work_hours + DAWN_MARGIN_HOURS <= dark:
                self.target, self.hours_back = cell, there
                self.last_trip_hour = self.hour
                return True
        u.halt(Posture.HIDDEN)
        return False

    def dark_enough_to_work(self, work_hours: float) -> bool:
        """Whether it is night and the darkness left covers the rest of the way to the road,
        ``work_hours`` there and the way back, with ``DAWN_MARGIN_HOURS`` in hand."""
        u = self.unit
        to_go = float(u.path_hours[-1]) - float(self.model.force.path_clock[u.idx])
        need = max(to_go, 0.0) + work_hours + self.hours_back + DAWN_MARGIN_HOURS
        return self.is_night and self.hours_to_first_light() >= need


class MineLaying(RoadWork):
    """**Mine laying**: leave the hide at night, go to a road cell on the tactic's road (or
    segment) within ``max_distance_km``, lay ``mines_per_trip`` mines on the road cells nearest
    it, and be back in a hide before first light; rest ``nights_between`` nights, then go again.
    Each mine spends ``ammo_days_per_mine`` of the cell's ammunition: a cell short of one mine's
    worth stays home, and lays only as many as its stock allows. A mine is laid only at night,
    on arrival at the chosen road cell; a trip overtaken by twilight, or fought on the way,
    lays nothing.

    States: hidden -> to_road -> (lay) -> withdraw -> hidden; the refuge reflex may take over.

    Events: ``mine_trip_start``, ``mine_laid`` (per mine, :func:`sim.rules.mines.lay_mine`),
    ``mine_trip_abort`` (``reason``: dawn, engaged, not_reached), ``mine_trip_end``
    (``laid``, ``in_hide``, ``in_refuge``, ``before_first_light``).

    Uses: what :class:`RoadWork` uses, and ``model.minefield``, ``model.force`` (ammunition),
    ``model.log``; ``unit.supply``, ``unit.is_moving``, ``unit.cell``.
    """

    kind = "mine_laying"

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        self.laid = 0  # mines laid on the current trip
        self.on_trip = False

    def mines_in_stock(self) -> int:
        """Mines the cell can make from its ammunition tonight (at most ``mines_per_trip``)."""
        ammo = self.unit.supply("ammo")
        per_mine = float(self.params.ammo_days_per_mine)
        if ammo <= 0:
            return 0
        if per_mine <= 0:
            return int(self.params.mines_per_trip)
        return min(int(self.params.mines_per_trip), int(ammo / per_mine + 1e-9))

    def decide(self) -> None:
        u = self.unit
        m = self.model
        if self.reflexes():
            return
        state = self.state
        if state in ("start", "hidden", "to_water", "refuge"):
            if not self.back_in_hide() or not self.may_set_out():
                return
            if self.mines_in_stock() == 0 or not self.set_out(LAY_HOURS):
                u.sleep_until(self.next_dusk_hour())
                return
            self.laid = 0
            self.on_trip = True
            m.log("mine_trip_start", u.cell, u.faction, unit=u.name, road_cell=self.target)
            self.set_state("to_road")
            self.until_arrival()
        elif state == "to_road":
            if self.alerted("engaged", "broke_off"):
                self.abort("engaged")
            elif u.is_moving:
                if not self.dark_enough_to_work(LAY_HOURS):
                    self.abort("dawn")
                else:
                    self.until_arrival()
            elif u.cell != self.target:
                self.abort("not_reached")
            elif not self.is_night:
                self.abort("dawn")
            else:
                self.lay()
        elif state == "withdraw":
            if u.is_moving:
                return
            self.finish()

    def lay(self) -> None:
        """Lay tonight's mines on the road cells nearest the cell, then withdraw."""
        m = self.model
        u = self.unit
        k = self.mines_in_stock()
        for cell in nearest(self.road_cells, u.cell, m.terrain.cols, k).tolist():
            lay_mine(m, m.minefield, u, int(cell), float(self.params.ammo_days_per_mine))
            self.laid += 1
        self.withdraw()

    def abort(self, reason: str) -> None:
        u = self.unit
        self.model.log("mine_trip_abort", u.cell, u.faction, unit=u.name, reason=reason)
        self.withdraw()

    def withdraw(self) -> None:
        self.unit.cease_fire()
        self.go_to_ground()
        self.set_state("withdraw")

    def finish(self) -> None:
        u = self.unit
        self.end_trip(in_hide=bool(self.at_hide()), in_refuge=False)
        u.halt(Posture.HIDDEN)
        self.set_state("hidden")
        u.sleep_until(self.next_dusk_hour())

    def on_refuge(self) -> None:
        self.end_trip(in_hide=False, in_refuge=True)

    def end_trip(self, in_hide: bool, in_refuge: bool) -> None:
        if not self.on_trip:
            return
        u = self.unit
        safe = bool(self.is_night and (in_hide or in_refuge))
        self.model.log("mine_trip_end", u.cell, u.faction, unit=u.name, laid=self.laid,
                       in_hide=in_hide, in_refuge=in_refuge, before_first_light=safe)  # fmt: skip
        self.on_trip = False


class FakeCheckpoint(RoadWork):
    """**Fake checkpoint**: at night, go to a road cell on the tactic's highway (or segment)
    within ``max_distance_km`` and stand there, in the open and in stolen uniforms, for up to
    ``checkpoint_hours`` (less if first light would catch the cell on the way back). The road
    cells within weapon range are tripwires (``model.tripwires``, shared with ambushes): a unit
    of a faction hostile to the cell that drives into them is offered to :meth:`spring`, which
    stops civilian vehicles (``CIVILIAN_KINDS``) always and garrison vehicles
    (``GARRISON_PREY_KINDS``, escort counted) only when their strength is at most ``max_odds``
    times the cell's, each at most once a night; the stopped vehicle halts and the cell attacks
    it (attack kind ``fake_checkpoint``). After each fight it ceases fire and goes on stopping
    cars, unless it lost fighters or broke off; it withdraws to a hide when its time is up, or
    when found and fired on. Then it rests ``nights_between`` nights.

    States: hidden -> to_road -> checkpoint [-> attack -> checkpoint] -> withdraw -> hidden.

    Events: ``checkpoint_set``, ``fake_checkpoint`` + ``attack_result`` (logged by the
    engagement rules when the fight opens), ``checkpoint_end`` (``reason``: done, fought,
    blown, dawn, fled; ``hours`` in place, ``stopped``). A trip that never set up ends without an
    event (``reason`` dawn, blown or not_reached on the way).

    Uses: what :class:`RoadWork` uses, and ``model.tripwires``, ``model.escorts_of``,
    ``model.force`` (strength, weapon range, ammunition), ``model.terrain``, ``model.log``;
    ``unit.attack``, ``unit.cease_fire``, ``unit.alert``. The model calls :meth:`spring`.
    """

    kind = "fake_checkpoint"

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        self.watching: list[int] = []  # road cells this checkpoint covers (model tripwires)
        self.until_hour = -1
        self.set_hour = -1
        self.stopped = 0
        self.stopped_units: set[int] = set()  # stopped once: let through if they come again
        self.strength_at_set = 0.0

    def decide(self) -> None:
        u = self.unit
        m = self.model
        if self.reflexes():
            if self.state not in ("checkpoint", "attack"):
                self.close("fled")  # the refuge reflex (or a split) took the cell off the road
            return
        state = self.state
        if state in ("start", "hidden", "to_water", "refuge"):
            if not self.back_in_hide() or not self.may_set_out():
                return
            if u.supply("ammo") <= 0 or not self.set_out(MIN_CHECKPOINT_HOURS):
                u.sleep_until(self.next_dusk_hour())
                return
            self.set_state("to_road")
            self.until_arrival()
        elif state == "to_road":
            if self.alerted("engaged", "broke_off"):
                self.withdraw("blown")
            elif u.is_moving:
                if not self.dark_enough_to_work(MIN_CHECKPOINT_HOURS):
                    self.withdraw("dawn")
                else:
                    self.until_arrival()
            elif u.cell != self.target:
                self.withdraw("not_reached")
            elif not self.dark_enough_to_work(MIN_CHECKPOINT_HOURS):
                self.withdraw("dawn")
            else:
                self.set_up()
        elif state == "attack":
            u.cease_fire()
            lost = m.force.strength[u.idx] < self.strength_at_set
            if self.alerted("broke_off") or lost:
                self.withdraw("fought")
                return
            u.halt(Posture.RESTING)
            self.set_state("checkpoint")
            self.stand()
        elif state == "checkpoint":
            if self.alerted("engaged", "broke_off"):
                self.withdraw("blown")  # found and fired on
                return
            self.stand()
        elif state == "withdraw":
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            self.set_state("hidden")
            u.sleep_until(self.next_dusk_hour())

    def set_up(self) -> None:
        """On the road: stand in the open and watch the road cells within weapon range."""
        m = self.model
        u = self.unit
        t = m.terrain
        u.halt(Posture.RESTING)
        dark = self.hours_to_first_light() - self.hours_back - DAWN_MARGIN_HOURS
        self.until_hour = m.hour + int(min(float(self.params.checkpoint_hours), dark))
        self.set_hour = m.hour
        self.stopped = 0
        self.stopped_units = set()
        self.strength_at_set = float(m.force.strength[u.idx])
        reach = max(1, int(m.force.weapon_range_km[u.idx] / t.grid.cell_km))
        r, c = divmod(u.cell, t.cols)
        rr, cc = np.divmod(self.road_cells, t.cols)
        near = (np.abs(rr - r) <= reach) & (np.abs(cc - c) <= reach)
        self.watching = self.road_cells[near].tolist()
        for cell in self.watching:
            m.tripwires[int(cell)] = u
        m.log("checkpoint_set", u.cell, u.faction, unit=u.name)
        self.set_state("checkpoint")
        self.stand()

    def stand(self) -> None:
        """Stay another hour, or leave when the time is up or the night is ending."""
        if self.hour >= self.until_hour or not self.is_night:
            self.withdraw("done" if self.is_night else "dawn")
            return
        self.unit.sleep_until(self.hour + 1)

    def spring(self, prey) -> bool:
        """A hostile unit drives into the watched stretch: stop it if it is a soft target."""
        u = self.unit
        m = self.model
        f = m.force
        if self.state != "checkpoint" or u.attack_target is not None:
            return False
        if f.ammo_days[u.idx] <= 0:
            return False
        leader, odds = column_strength(m, prey)
        if leader.idx in self.stopped_units:
            return False  # already robbed tonight: waved on as it drives off
        if leader.kind not in CIVILIAN_KINDS:
            if leader.kind not in GARRISON_PREY_KINDS:
                return False
            if odds > self.params.max_odds * float(f.strength[u.idx]):
                return False
        u.attack(leader.idx, "fake_checkpoint")
        self.set_state("attack")
        self.stopped += 1
        self.stopped_units.add(leader.idx)
        u.alert("sprung")
        return True

    def close(self, reason: str) -> None:
        """Stop watching the road (log the checkpoint's end if it was set up)."""
        m = self.model
        u = self.unit
        if self.watching:
            m.log("checkpoint_end", u.cell, u.faction, unit=u.name, reason=reason,
                  hours=m.hour - self.set_hour, stopped=self.stopped)  # fmt: skip
        for cell in self.watching:
            if m.tripwires.get(cell) is u:
                del m.tripwires[cell]
        self.watching = []

    def withdraw(self, reason: str) -> None:
        self.close(reason)
        self.unit.cease_fire()
        self.go_to_ground()
        self.set_state("withdraw")
