"""DesertModel: one run of a scenario, one step per simulated hour.

The hourly step, in order::

    agenda (replacements, scenario events) -> decide -> move (borders, zones) -> cordon
    -> detect -> engage -> supply -> relief -> record

Decisions are per unit (its tactic, woken by its own timer, an alert, the light or news);
everything else is numpy over the force table, through the pure rules of :mod:`sim.rules`. The
model owns the only random generator (``self.rng``, seeded by ``rng=``) and provides the narrow
views rules and tactics are typed against (:class:`sim.rules.state.RunState`,
:class:`sim.tactics.base.TacticState`).

Building the force (:mod:`sim.engine.spawning`) and the campaign's agenda phases
(:mod:`sim.engine.campaign`) are mixed into the class from their own modules; the hour itself
stays here, in order, each phase a few lines calling into a rule.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mesa
import numpy as np

from sim.engine.agenda import (
    REPLACEMENT,
    SCENARIO_EVENT,
    Agenda,
)
from sim.engine.campaign import CampaignRules
from sim.engine.metrics import Metrics
from sim.engine.movement import (
    ADVANCE,
    ADVANCE_ONLY,
    BORDER,
    DONE,
    FIRST,
    MOVE_ROWS,
    MOVER,
    NEW,
    OLD,
    SERIAL,
    SETTLE,
    START,
    TRIPPED,
    ZONE,
    PathBook,
    Tripwires,
    move_hour,
    owner_of,
    ride_along,
)
from sim.engine.orders import Orders
from sim.engine.result import RunResult
from sim.engine.spawning import Spawning
from sim.engine.summary import tactic_outcomes
from sim.engine.units import Unit
from sim.rules import detection
from sim.rules.borders import BorderLines, attempt_crossing, interception_table
from sim.rules.config import ModelConfig
from sim.rules.cordon import cordon_sightings
from sim.rules.engagements import resolve_engagements
from sim.rules.events import apply_event
from sim.rules.force import ForceTable
from sim.rules.knowledge import Knowledge
from sim.rules.mines import drive_over, mined_passages, minefield_for
from sim.rules.recruitment import (
    reserved_units,
)
from sim.rules.seizures import Seizure, check_relief
from sim.rules.state import MOVING_POSTURES, NEVER_HOUR, Detections, Posture
from sim.rules.supplies import SUPPLY_POINT_KINDS, SupplyPoints, supply_hour
from sim.scenario.defaults import units_at_start
from sim.scenario.loading import SCENARIO_DIR, load_scenario, parse_scenario
from sim.scenario.overrides import apply_overrides
from sim.scenario.schema import Scenario
from sim.tactics.garrison import Sweep
from sim.tactics.sites import Sites
from sim.world.cache import build_terrain
from sim.world.clock import HOURS_PER_DAY, Clock, LightCalendar, LightLevel
from sim.world.raster import read_only
from sim.world.roads import RoadState
from sim.world.routes import router_for

DEFAULT_SCENARIO = SCENARIO_DIR / "outpost_night_raid.yaml"

#: Kinds whose losses are made good (except in insurgent factions): a destroyed convoy, escort,
#: patrol or QRF is replaced at its base after ``ModelConfig.replacement_hours`` (the next convoy
#: still runs); a civilian vehicle after ``CIVILIAN_REPLACEMENT_HOURS``.
REPLACED_KINDS = {"convoy", "escort", "patrol", "qrf", "civilian_vehicle"}
#: A destroyed civilian vehicle (bus, truck) is "replaced" by the next one to leave its home
#: terminus: it is back there after this many hours and keeps its timetable (traffic keeps
#: running). Foragers are not replaced: those lost are lost.
CIVILIAN_REPLACEMENT_HOURS = 1
#: Static posts: lost for good, unless a campaign re-mans them (``campaign.regarrison_days``).
POST_KINDS = frozenset({"strongpoint", "border_post"})



_MOVING_LUT = np.isin(np.arange(len(Posture)), MOVING_POSTURES)  # posture -> on the move
#: Moves along shared routes whose border crossings are kept (see ``DesertModel._crossings``).
CROSSINGS_KEPT = 4096
#: Cell offsets whose distance `distance_km` keeps (then it starts afresh).
OFFSETS_KEPT = 1 << 16
#: `distance_km` to at most this many cells goes cell by cell through the kept distances.
FEW_DISTANCES = 8
#: Cells whose (lat, lon) the event log keeps per terrain (then it starts afresh): about 6 MB.
LATLON_KEPT = 1 << 16
#: An hour without detections (read-only empty arrays: nothing can change them).
_NO_DETECTIONS = Detections(read_only(np.empty(0, dtype=np.intp)),
                            read_only(np.empty(0, dtype=np.intp)))
#: A sighting of a unit its faction has not seen for this long is logged as a new contact.
NEW_CONTACT_GAP_HOURS = 6


class DesertModel(Spawning, CampaignRules, mesa.Model):
    """A desert theatre: terrain, factions, units, clock; ``step()`` advances one hour.

    Args:
        scenario: a loaded :class:`~sim.scenario.schema.Scenario` or a path to a scenario file.
        rng: random seed; ``None`` takes the scenario's ``seed``.
        overrides: ``PATH=VALUE`` strings applied to the scenario (as ``badia run --set``).
        config: rule settings (detection, combat, supplies); defaults are documented there.
    """

    def __init__(
        self,
        scenario: Scenario | str | Path = DEFAULT_SCENARIO,
        rng: int | None = None,
        overrides: tuple[str, ...] | list[str] = (),
        config: ModelConfig | None = None,
    ):
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario, overrides=list(overrides))
        elif overrides:
            scenario = load_scenario_from_model(scenario, overrides)
        seed = scenario.seed if rng is None else int(rng)
        super().__init__(rng=seed)
        # The hour is stepped here, not through Mesa's event list: Mesa steps a model by an
        # event per step (popped, run, the next one made and queued: about 15 us, 5% of a
        # theatre's first month), and badia schedules everything else on its own agenda. So
        # Mesa's step schedule is stopped and `step` is this class's own (Mesa 3.5 puts a
        # wrapper on each instance), which counts Mesa's `time` and `steps` as Mesa's would.
        # A Mesa without that schedule and wrapper keeps stepping its own way.
        schedule = getattr(self, "_default_schedule", None)
        self._own_clock = schedule is not None and "step" in vars(self)
        if self._own_clock:
            schedule.stop()
            del self.step
        self.seed = seed
        self.spec = scenario.model_copy(update={"seed": seed})
        self.config = config or ModelConfig()
        self.hour = 0  # hours simulated so far; the current step decides hour `self.hour`
        self.events: list[dict] = []
        self.alerted: list[int] = []  # units with alerts waiting for the next decision round

        self.terrain = build_terrain(scenario.map, source=scenario.name)
        # one router per terrain, shared by every run in this process: its cached route fields
        # depend on the terrain only, so sharing them changes no result
        self.router = router_for(self.terrain)
        grid = self.terrain.grid
        centre_lat, centre_lon = grid.latlon_of(grid.rows // 2, grid.cols // 2)
        self.clock = Clock(
            scenario.start,
            float(centre_lat),
            float(centre_lon),
            utc_offset_hours=scenario.utc_offset_hours,
            hours=scenario.hours + 48,
        )
        self.calendar = LightCalendar(self.clock.light_levels(scenario.hours + 48))
        self.light_by_hour = self.calendar.levels
        self._light_levels = [LightLevel(v) for v in self.light_by_hour.tolist()]  # for .light

        self.faction_names = list(scenario.factions)
        self.faction_index = {name: i for i, name in enumerate(self.faction_names)}
        nf = len(self.faction_names)
        self.hostile = np.zeros((nf, nf), dtype=bool)
        for name, fac in scenario.factions.items():
            for other in fac.hostile:
                self.hostile[self.faction_index[name], self.faction_index[other]] = True
                self.hostile[self.faction_index[other], self.faction_index[name]] = True
        self.insurgent_faction = np.array(
            [scenario.factions[f].role == "insurgent" for f in self.faction_names]
        )
        self.border_security = np.array(
            [scenario.factions[f].border_security for f in self.faction_names]
        )
        self.barred_zones = [
            frozenset(
                z for z, info in enumerate(self.terrain.zones) if name in info.barred
            )
            for name in self.faction_names
        ]

        # the units at start (escorts included) and the cells the campaign may add
        capacity = units_at_start(scenario) + reserved_units(scenario)
        self.force = ForceTable(max(capacity, 1))
        self.attack_targets = np.full(max(capacity, 1), -1, dtype=np.int64)  # Unit.attack_target
        zone = self.terrain.zone.ravel()
        self.paths = PathBook(max(capacity, 1), zone=zone if (zone >= 0).any() else None)
        self._row_of, self._col_of = self.terrain.derived("row_col_of_cell", row_col_of_cell)
        self.orders = Orders(self.terrain, self.force, self.paths, self.router, self.barred_zones)
        self.units: list[Unit] = []
        self._attached: list[Unit] = []  # units that move with another (escorts)
        self._attached_arrays = (np.empty(0, np.int64),) * 3
        # road cells watched by an ambush -> the ambusher (a dict with a boolean layer)
        self.tripwires: dict[int, Unit] = Tripwires(self.terrain.rows * self.terrain.cols)
        self.minefield = minefield_for(scenario)  # mines on the roads; None: no mines in the run
        self.sites = Sites(self.terrain)
        self.roads = RoadState(self.terrain)
        self._spawn_units()
        # each unit's cell at the start of the hour (set by _move), then now (by _detect):
        # the start is a view of the first two columns, so _detect reads it without a copy
        self._track_rc = np.zeros((max(capacity, 1), 4), dtype=np.int32)
        self._prev_rc = self._track_rc[:, :2]
        # the compiled move's per-mover table and clocks (:func:`movement.move_hour`); whether
        # the run uses the kernels, asked at its first move (asking costs a microsecond, and
        # imports Numba, which building a model must not)
        self._move_idx = np.zeros((MOVE_ROWS, max(capacity, 1)), dtype=np.int64)
        self._move_clock = np.zeros(max(capacity, 1))
        self._kernels: bool | None = None
        # each event's cell's (lat, lon), rounded: shared by every model on the terrain (a
        # batch's runs log at the same bases, posts and towns)
        self._latlon: dict[int, tuple[float, float]] = self.terrain.derived("event_latlon",
                                                                            lambda _: {})
        # distance_km's, by offset: the terrain's cell size alone sets them, so shared too
        self._offset_km: dict[tuple[int, int], float] = self.terrain.derived("offset_km",
                                                                             lambda _: {})
        # known_enemies' answers by (faction, age): (the knowledge's answer it filtered, the
        # hostility it filtered by, its own answer)
        self._enemies: dict[tuple[int, int], tuple[tuple, bytes, tuple]] = {}
        self.knowledge = Knowledge(
            nf,
            max(capacity, 1),
            np.array([round(scenario.factions[f].comms_delay_hours) for f in self.faction_names]),
        )
        self.border_lines = BorderLines(self.terrain)
        self._interception_key: tuple[bytes, bytes] | None = None  # see _interception
        self._interception_p: list[float] = []
        self._crossings_seen: dict[tuple[int, int, int], tuple[np.ndarray, list[int]]] = {}
        self.metrics = Metrics(self)
        self.garrison_faction = np.array(
            [scenario.factions[f].role == "garrison" for f in self.faction_names]
        )
        self._share_seen = self.knowledge.latest_share.copy()
        self._news_listeners = [
            [u for u in self.units if u.faction == name and u.behaviour is not None
             and u.behaviour.wakes_on_news]
            for name in self.faction_names
        ]  # fmt: skip
        self._sweepers = [u for u in self.units if isinstance(u.behaviour, Sweep)]
        self.supply_points = SupplyPoints(
            np.array([u.idx for u in self.units if u.kind in SUPPLY_POINT_KINDS], dtype=np.int64),
            nf, (self.terrain.rows, self.terrain.cols),
        )
        self._moving = np.zeros(self.force.n, dtype=bool)
        self._concealment = self.terrain.concealment.ravel()
        self._blocks: list[tuple[np.ndarray, np.ndarray]] = []
        self._blocks_key: tuple[bytes, bytes] | None = None
        self._finder = detection.PairFinder([])  # replaced at the first hour (_pair_finder)
        self._ranges_key: tuple[bytes, bytes] | None = None  # sensor columns of the ranges
        self._ranges_by_light: list[np.ndarray] = []
        self._flags_n = -1  # units the behaviour flags were computed for
        self.seizures: list[Seizure] = []
        self.agenda = Agenda()
        for hour, _, event in sorted(
            ((round(e.at_hours), i, e) for i, e in enumerate(scenario.events)),
            key=lambda t: (t[0], t[1]),
        ):
            self.agenda.schedule(hour, SCENARIO_EVENT, event)
        self._start_campaign()
        self.datacollector = mesa.DataCollector(model_reporters=self.metrics.reporters())
        self.running = True

    # ------------------------------------------------------------------ building the force
    # ------------------------------------------------------------------ queries (used by tactics)
    @property
    def light(self) -> LightLevel:
        """Light level this hour."""
        return self._light_levels[self.hour]  # the members, made once: asked at most decisions

    def cell_of_place(self, name: str) -> int:
        p = self.terrain.places[name]
        return p.row * self.terrain.cols + p.col

    def distance_km(self, a: int, b):
        """Straight-line distance between flat cell ``a`` and flat cell(s) ``b`` on the grid
        (``b`` an array: an array, so a tactic weighing many sightings makes one call)."""
        cols = self.terrain.cols
        ra, ca = divmod(int(a), cols)
        if np.ndim(b):
            b = np.asarray(b, dtype=np.int64)
            if b.ndim == 1 and len(b) <= FEW_DISTANCES:  # (most: a sighting or a few)
                return np.array([self._offset_distance(ra, ca, *divmod(x, cols))
                                 for x in b.tolist()], dtype=float)
            rb, cb = np.divmod(b, cols)
            return np.hypot(ra - rb, ca - cb) * self.terrain.grid.cell_km
        return self._offset_distance(ra, ca, *divmod(int(b), cols))

    def _offset_distance(self, ra: int, ca: int, rb: int, cb: int) -> float:
        """`distance_km` of two cells by row and column, numpy's `hypot` of their offsets
        times the cell's km, kept by the offsets' sizes (hypot's value, whatever their signs):
        tactics ask for a few hundred distinct offsets, a thousand times a month, and numpy
        costs 5 us a call on scalars and arrays of a few."""
        key = (abs(ra - rb), abs(ca - cb))
        km = self._offset_km.get(key)
        if km is None:
            if len(self._offset_km) >= OFFSETS_KEPT:
                self._offset_km.clear()
            km = self._offset_km[key] = float(np.hypot(ra - rb, ca - cb)
                                              * self.terrain.grid.cell_km)
        return km

    def escorts_of(self, leader: Unit) -> list[Unit]:
        """The living units riding with ``leader`` (a convoy's escort)."""
        return [x for x in self._attached if x.attached_to is leader and x.alive]

    def known_enemies(self, unit: Unit, max_age_hours: int | None = None):
        """(unit indices, cells, ages in hours) of enemies the unit's faction knows of (read-only
        arrays)."""
        age = self.config.knowledge_max_age_hours if max_age_hours is None else max_age_hours
        fi = self.faction_index[unit.faction]
        found = self.knowledge.known_to(fi, self.hour, unit.idx, age)
        # units of a faction asking in one hour mostly get one shared answer of the knowledge
        # (the same object while nothing is recorded or forgotten): it is filtered once. The
        # living units in it cannot change while it is shared (a death is forgotten, which
        # makes a new answer; a unit brought back was forgotten when it died), its hostility
        # can (a scenario event), so that is compared.
        hostile = self.hostile[fi].tobytes()
        hit = self._enemies.get((fi, age))
        if hit is not None and hit[0] is found and hit[1] == hostile:
            return hit[2]
        idx, cells, ages = found
        keep = self.force.alive[idx] & self.hostile[fi, self.force.faction[idx]]
        out = idx[keep], cells[keep], ages[keep]
        for a in out:  # shared by the faction's askers: read-only, as the knowledge's own
            a.flags.writeable = False
        self._enemies[(fi, age)] = (found, hostile, out)  # (an answer of the unit's own too:
        return out  # held here, it is never the object a later call gets, so never a hit)

    def log(self, event_type: str, cell: int, faction: str = "", **data) -> dict:
        """Append an event to the run's event log and return it."""
        cell = int(cell)
        r, c = divmod(cell, self.terrain.cols)
        latlon = self._latlon.get(cell)
        if latlon is None:
            if len(self._latlon) >= LATLON_KEPT:  # (a year's theatre run logs at ~5,000)
                self._latlon.clear()
            lat, lon = self.terrain.grid.cell_latlon(r, c)
            latlon = self._latlon[cell] = (round(lat, 5), round(lon, 5))
        event = {
            "hour": self.hour,
            "day": self.hour // 24 + 1,
            "type": event_type,
            "row": r,
            "col": c,
            "lat": latlon[0],
            "lon": latlon[1],
            "faction": faction,
            **data,
        }
        self.events.append(event)
        self.metrics.on_event(event)
        return event

    # ------------------------------------------------------------------ the hourly step
    def step(self) -> None:
        """Advance one hour (Mesa's ``time`` and ``steps`` by one, as Mesa's own step)."""
        if self._own_clock:
            self.time += 1
            self.steps += 1
        self._apply_due_events()
        self._decide()
        self._move()
        self._moving = _MOVING_LUT[self.force.posture[: self.force.n]]
        if self._sweepers and (cordons := self._cordons()):  # most hours: no cordon is up
            cordon_sightings(self, cordons, self._prev_rc, self._kernels)
        detections = self._detect()
        self._engage(detections)
        self._supply()
        if self.seizures:
            check_relief(self, self.seizures, self.garrison_faction)
        self.metrics.record_hour(self, detections)
        self.hour += 1
        if self.hour % self.config.collect_every_hours == 0:
            self.datacollector.collect(self)
        if self.hour >= self.spec.hours:
            self.running = False

    def _apply_due_events(self) -> None:
        """Everything on the agenda for this hour: replacements, then scenario events."""
        for phase, item in self.agenda.pop_due(self.hour):
            if phase == REPLACEMENT:
                self._replace(item)
            elif phase == SCENARIO_EVENT:
                apply_event(self, item)
            else:
                self._campaign_due(phase, item)

    def _decide(self) -> None:
        """Wake the units whose timer is due or that were alerted, and let them decide.

        The timers are a force-table column, so the units due this hour are found in one
        numpy call; a quiet hour costs nothing per sleeping unit."""
        hour = self.hour
        f = self.force
        n = f.n
        units = self.units
        light_changed = self.calendar.changed_at(hour)
        self._wake_on_news()
        # (no alive column: the loop meets a dead unit's timer once and sets it to never)
        due = f.wake_hour[:n] <= hour
        if light_changed:
            due |= self._behaviour_flags()[0][:n]
        if self.alerted:
            for i in self.alerted:  # a handful: scalar stores beat converting the list
                due[i] = True
            self.alerted = []
        items = self.orders.items  # one unit's values at a time, at half numpy's cost
        alive, wake = items.alive, items.wake_hour
        for i in due.nonzero()[0].tolist():
            unit = units[i]
            b = unit.behaviour
            alerts = unit.alerts  # the unit's own list, appended to by alert() (never replaced)
            if b is None or not alive[i]:
                # nothing to decide: an escort rides along; a dead unit waits to be replaced
                # (which sets its timer again)
                wake[i] = NEVER_HOUR
            elif (
                wake[i] <= hour
                or (alerts and b.woken_by(alerts))
                or (light_changed and b.wakes_on_light)
            ):
                b.decide()
            if alerts:
                alerts.clear()

    def _wake_on_news(self) -> None:
        """Units that wait for news (a quick-reaction force at readiness) wake when a fresh
        sighting reaches their faction, instead of looking at the reports every hour."""
        share = self.knowledge.latest_share
        if share.tobytes() == self._share_seen.tobytes():
            return  # most hours: no news (integer hours, so equal bytes are equal values)
        changed = np.flatnonzero(share != self._share_seen)
        for fi in changed.tolist():
            at = max(int(share[fi]), self.hour)
            for unit in self._news_listeners[fi]:
                if unit.behaviour is not None and unit.behaviour.wakes_on_news:
                    unit.wake_hour = min(unit.wake_hour, at)
        self._share_seen = share.copy()

    def _move(self) -> None:
        """Advance every moving unit along its path by one hour of travel, all at once.

        One search in the path book finds where each mover is after the hour, and one pass
        the cells every mover passed, which ambush tripwires, mines, border lines and zone
        entries (``Metrics``) are all read from; only the few units that meet a tripwire, a
        mine or a border line are handled one by one (every border crossing in the hour,
        :meth:`BorderLines.crossings`). With compiled kernels the common hour is one call
        (:func:`~sim.engine.movement.move_hour`); else numpy over all movers at once, the
        reference (:meth:`_advance`)."""
        f = self.force
        compiled = self._kernels
        if compiled is None:  # ride_along's too: one switch for every kernel
            compiled = self._kernels = move_hour.compiled
        if compiled:
            self._advance_compiled()
        else:
            n = f.n
            prev = self._prev_rc[:n]
            prev[:, 0], prev[:, 1] = f.row[:n], f.col[:n]
            # ``nonzero()[0]``, not ``np.flatnonzero``: the same indices of a 1-d mask without
            # the wrapper's calls, which cost more than the search over a few hundred units
            movers = (f.alive[:n] & (f.path_pos[:n] < f.path_last[:n])).nonzero()[0]
            if len(movers):
                self._advance(movers)
        if self._attached:  # escorts ride with their convoy
            follower, leader, pairs = self._attached_idx()
            if compiled:
                ride_along(follower, leader, f.alive, f.row, f.col, f.posture)
            else:
                if not f.alive[pairs].all():  # one gather while all are alive, as mostly
                    ok = f.alive[follower] & f.alive[leader]
                    follower, leader = follower[ok], leader[ok]
                f.row[follower], f.col[follower] = f.row[leader], f.col[leader]
                f.posture[follower] = f.posture[leader]

    def _advance(self, movers: np.ndarray) -> None:
        """One hour of travel for ``movers`` (alive, short of their path's end), in numpy."""
        f = self.force
        book = self.paths
        first = book.start[movers]  # where each mover's path is in the book
        old = f.path_pos[movers]  # int32: sums with the int64 book indices are int64
        clock = f.path_clock[movers] + 1.0
        new = book.advance(movers, clock, first)
        # the cells entered this hour, read by every check below; a mover halted by an ambush
        # or a mine enters fewer, so they are gathered again then (rarely)
        at, ends = book.passed_at(movers, old, new, first)
        cells = book.cells[at]
        if self.tripwires and (hit := self.tripwires.layer[cells]).any():
            tripped = dict.fromkeys(owner_of(ends, hit.nonzero()[0]).tolist())  # in order
            if self._stop_at_tripwires(movers, old, new, clock, tripped):
                at, ends = book.passed_at(movers, old, new, first)
                cells = book.cells[at]
        if (self.minefield is not None and len(self.minefield)
                and self._drive_over_mines(movers, old, new, clock, cells, ends)):
            at, ends = book.passed_at(movers, old, new, first)
            cells = book.cells[at]
        f.path_clock[movers] = clock
        # stored as int32 (the column's type): a scatter that casts costs more than the cast
        new32 = new.astype(np.int32)
        f.path_pos[movers] = new32
        start, end = book.cells[first + old], book.cells[first + new]
        # each cell's row and column from tables (int32, the columns' type): cheaper than a
        # divmod and the casting scatter of its int64 results
        f.row[movers] = self._row_of[end]
        f.col[movers] = self._col_of[end]
        done = movers[(new32 >= f.path_last[movers]).nonzero()[0]]
        units = self.units
        arrived = list(zip([units[i] for i in done.tolist()], book.serial[done].tolist(),
                           strict=True))  # fmt: skip
        moved = self._cross_borders(movers, self._near_border(cells, ends), start, old, new)
        self.metrics.on_zone_moves(movers, cells, book.entry, at, ends, new - old, start, moved,
                                   f.faction, self.barred_zones)
        self._alert_arrived(arrived)

    def _advance_compiled(self) -> None:
        """:meth:`_move`'s start and :meth:`_advance` for every mover with the compiled kernel
        (:func:`~sim.engine.movement.move_hour`): one call in the common hour; a hostile
        tripwire passed or a minefield takes a second (the movers stopped in between by the
        numpy path's methods); the movers the kernel lists as near a border line or entering
        a zone are handled by the numpy path's methods too."""
        f = self.force
        book = self.paths
        idx, clock = self._move_idx, self._move_clock
        mines = self.minefield is not None and len(self.minefield) > 0
        m, tripped, n_done, n_border, n_zone = self._move_kernel(
            ADVANCE_ONLY if mines else ADVANCE, 0)
        if not m:
            return
        if tripped or mines:
            movers, first, old, new = idx[MOVER, :m], idx[FIRST, :m], idx[OLD, :m], idx[NEW, :m]
            if tripped:
                self._stop_at_tripwires(movers, old, new, clock[:m],
                                        idx[TRIPPED, :tripped].tolist())
            if mines:
                at, ends = book.passed_at(movers, old, new, first)
                self._drive_over_mines(movers, old, new, clock[:m], book.cells[at], ends)
            m, _, n_done, n_border, n_zone = self._move_kernel(SETTLE, m)
        units = self.units
        arrived = list(zip([units[i] for i in idx[DONE, :n_done].tolist()],
                           idx[SERIAL, :n_done].tolist(), strict=True))  # fmt: skip
        if n_border or n_zone:
            movers, first, old, new = idx[MOVER, :m], idx[FIRST, :m], idx[OLD, :m], idx[NEW, :m]
            start = idx[START, :m]
            moved = (self._cross_borders(movers, idx[BORDER, :n_border].tolist(), start, old,
                                         new) if n_border else None)  # fmt: skip
            if n_zone:  # the entries of the movers that enter a zone: the numpy path's count
                # over all movers is a sum over movers
                z = idx[ZONE, :n_zone]
                entering = movers[z]
                at, ends = book.passed_at(entering, old[z], new[z], first[z])
                self.metrics.on_zone_moves(entering, book.cells[at], book.entry, at, ends,
                                           new[z] - old[z], start[z],
                                           None if moved is None else moved[z], f.faction,
                                           self.barred_zones)
        self._alert_arrived(arrived)

    def _move_kernel(self, stage: int, m: int) -> tuple[int, int, int, int, int]:
        """:func:`~sim.engine.movement.move_hour` on the model's columns (the book's arrays
        are read at each call: stopping a mover may compact it)."""
        f = self.force
        book = self.paths
        trips = self.tripwires
        return move_hour(stage, f.n, m, f.alive, f.path_pos, f.path_last, f.path_clock, f.row,
                         f.col, self._track_rc, f.faction, self.hostile, book.start, book.key,
                         book.n, book.cells, book.entry, book.serial, trips.layer, trips.watcher,
                         self.border_lines.near_line, self.terrain.cols, bool(trips),
                         self.border_lines.side.shape[0] > 0, book.zone is not None,
                         self._move_idx, self._move_clock)  # fmt: skip

    def _cross_borders(self, movers: np.ndarray, near: list[int], start: np.ndarray,
                       old: np.ndarray, new: np.ndarray) -> np.ndarray | None:
        """Every border crossing of the movers at positions ``near`` (those whose cells passed
        touch a border line, in increasing order) from cell ``start`` along their path from
        index ``old`` to ``new``; the hostile side may turn them back
        (:func:`~sim.rules.borders.attempt_crossing`). Returns None if all moves happened,
        else per mover whether its move happened."""
        moved = None
        for k in near:
            unit = self.units[int(movers[k])]
            s = int(start[k])
            for _ in self._crossings(unit.path, int(old[k]), int(new[k])):
                p = self._interception(unit.faction)
                if not attempt_crossing(self, unit, divmod(s, self.terrain.cols), p):
                    if moved is None:
                        moved = np.ones(len(movers), dtype=bool)
                    moved[k] = False  # turned back at the border
                    break
        return moved

    def _alert_arrived(self, arrived: list[tuple[Unit, int]]) -> None:
        """Alert the units that reached their path's end this hour (with the serial of the
        orders they followed), unless given new orders since (turned back at a border)."""
        serials = self.paths.serial
        for unit, serial in arrived:
            if serials.item(unit.idx) == serial:
                unit.alert("arrived")

    def _interception(self, faction: str) -> float:
        """The chance a crossing by a unit of ``faction`` is intercepted
        (:func:`~sim.rules.borders.interception_probability`), from a table kept while the
        factions' border security and hostility stay the same (a scenario event may change
        them)."""
        key = (self.border_security.tobytes(), self.hostile.tobytes())
        if key != self._interception_key:
            self._interception_p = interception_table(self.border_security, self.hostile)
            self._interception_key = key
        return self._interception_p[self.faction_index[faction]]

    def _near_border(self, cells: np.ndarray, ends: np.ndarray) -> list[int]:
        """Positions among the movers of those whose ``cells`` passed this hour (``ends``: see
        :meth:`PathBook.passed_at`) touch a border line (or a neighbour of one), in increasing
        order; the only ones that may have crossed."""
        if not self.border_lines.side.shape[0] or not len(cells):
            return []
        near = self.border_lines.near_line[cells]
        if not near.any():
            return []
        # the owners of increasing positions increase, so the first sighting of each keeps
        # them in order
        return list(dict.fromkeys(owner_of(ends, near.nonzero()[0]).tolist()))

    def _crossings(self, path: np.ndarray, old: int, new: int) -> list[int]:
        """The border crossings of a move from ``path[old]`` through ``path[old + 1 : new + 1]``
        (:meth:`BorderLines.crossings`). Read-only paths are shared routes (a convoy's run, a
        patrol's round) driven again and again from the same hour marks, so their crossings
        are kept by (path, old, new); the path is kept with them, so its id is not reused."""
        if path.flags.writeable:
            return self.border_lines.crossings(int(path[old]), path[old + 1 : new + 1]).tolist()
        key = (id(path), old, new)
        seen = self._crossings_seen.get(key)
        if seen is None or seen[0] is not path:
            if len(self._crossings_seen) >= CROSSINGS_KEPT:
                self._crossings_seen.clear()
            found = self.border_lines.crossings(int(path[old]), path[old + 1 : new + 1])
            seen = self._crossings_seen[key] = (path, found.tolist())
        return seen[1]

    def _stop_at_tripwires(self, movers, old, new, clock, tripped) -> bool:
        """Movers that drive into a hostile ambush this hour halt under fire there (``new``
        and ``clock`` are updated in place); True if one did. ``tripped``: the positions among
        the movers, in increasing order, of those whose cells passed include a watched one
        (or only those watched by a live hostile unit, the only ones that stop a mover)."""
        stopped = False
        for k in tripped:
            unit = self.units[int(movers[k])]
            stop = self._tripped(unit, int(old[k]), int(new[k]))
            if stop is not None:
                new[k], clock[k] = stop, unit.path_hours[stop]
                stopped = True
        return stopped

    def _drive_over_mines(self, movers, old, new, clock, cells, ends) -> bool:
        """Movers whose vehicles drive over a live mine this hour (``sim.rules.mines``); one that
        strikes it halts in the mine's cell (``new`` and ``clock`` are updated in place); True
        if one did. ``cells``, ``ends``: the cells passed (:meth:`PathBook.passed_at`)."""
        stopped = False
        owner = owner_of(ends, np.arange(len(cells)))
        for k in mined_passages(self.minefield, self.force, movers, cells, owner,
                                self.hour).tolist():  # fmt: skip
            unit = self.units[int(movers[k])]
            hit = drive_over(self, self.minefield, unit, unit.path[old[k] + 1 : new[k] + 1])
            if hit is not None:
                new[k] = old[k] + 1 + hit
                clock[k] = unit.path_hours[new[k]]
                stopped = True
        return stopped

    def _attached_idx(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(followers, their leaders, both in one array), rebuilt when an escort is added."""
        if len(self._attached_arrays[0]) != len(self._attached):
            follower = np.array([u.idx for u in self._attached], dtype=np.int64)
            leader = np.array([u.attached_to.idx for u in self._attached], dtype=np.int64)
            self._attached_arrays = (follower, leader, np.concatenate((follower, leader)))
        return self._attached_arrays

    def _tripped(self, unit: Unit, pos: int, new: int) -> int | None:
        """Index along ``unit``'s path where it runs into a hostile ambush this hour, if any."""
        fi = self.force.faction[unit.idx]
        cells = unit.path
        # only the watched cells among those passed, in path order
        watched = self.tripwires.layer[cells[pos + 1 : new + 1]].nonzero()[0] + pos + 1
        for k in watched.tolist():
            ambusher = self.tripwires[int(cells[k])]
            if not ambusher.alive:
                continue
            if self.hostile[fi, self.force.faction[ambusher.idx]] and ambusher.behaviour.spring(
                unit
            ):
                return k
        return None

    def _detect(self) -> Detections:
        """All detections this hour, recorded into each observing faction's knowledge.

        The candidate pairs come from a :class:`~sim.rules.detection.PairFinder` kept while the
        hostile blocks stay the same (it recomputes only the units that moved), the ranges
        from a table by light; an hour without candidates ends there."""
        f = self.force
        n = f.n
        t = self.terrain
        light = self.light_by_hour.item(self.hour)
        track = self._track_rc[:n]  # each unit's cell at the start of the hour (_move), then now
        track[:, 2], track[:, 3] = f.row[:n], f.col[:n]
        track_km = track * t.grid.cell_km
        track_km.flags.writeable = False  # the pair finder keeps it until the next hour
        ranges = self._sensor_ranges(light)
        oi, ti = self._pair_finder().pairs(track_km, ranges)
        if len(oi) == 0:
            return Detections(oi, ti)
        exposed, hours, draws = detection.draw_exposed_pairs(self.rng, track_km, oi, ti, ranges,
                                                             self._kernels)
        if len(exposed) == 0:  # no pair was ever in range this hour
            return _NO_DETECTIONS
        observer, target = oi[exposed], ti[exposed]
        cells = f.row[:n].astype(np.int64) * t.cols + f.col[:n]
        hit = draws < detection.pair_probability(
            hours,
            self._concealment[cells[target]],
            self._moving[target],
            light,
            self.config.detection,
            f.search_factor[observer],
        )
        observer, target = observer[hit], target[hit]
        if len(target) == 0:
            return Detections(observer, target)
        fac = f.faction[:n]
        self._log_new_contacts(fac, observer, target, cells, light)
        self.knowledge.record(self.hour, fac[observer], observer, target, cells[target])
        units = self.units
        _, hears_detected, wakes_on_contact = self._behaviour_flags()
        # only units whose tactic heeds the alert get it: to the others (garrisons and
        # civilians ignore being seen; an escort has no tactic) it would be a no-op
        for tgt in np.unique(target[hears_detected[target]]).tolist():
            units[tgt].alert("detected")
        for obs in np.unique(observer[wakes_on_contact[observer]]).tolist():
            units[obs].alert("contact")
        return Detections(observer, target)

    def _sensor_ranges(self, light: int) -> np.ndarray:
        """Every unit's sensor range under ``light``: a table by light, rebuilt only when the
        sensor columns change (units added, a scenario event)."""
        f = self.force
        key = (f.sensor_day_km[: f.n].tobytes(), f.sensor_night_km[: f.n].tobytes())
        if key != self._ranges_key:
            day, night = f.sensor_day_km[: f.n], f.sensor_night_km[: f.n]
            self._ranges_by_light = [
                detection.sensor_range_km(day, night, lv, self.config.detection)
                for lv in sorted(LightLevel)
            ]
            for ranges in self._ranges_by_light:  # read-only: the pair finder may rely on it
                ranges.flags.writeable = False
            self._ranges_key = key
        return self._ranges_by_light[light]

    def _pair_finder(self) -> detection.PairFinder:
        """The candidate-pair finder of the current hostile blocks (a new one when they change)."""
        blocks = self._hostile_blocks()
        if self._finder.blocks is not blocks:
            self._finder = detection.PairFinder(blocks)
        return self._finder

    def _behaviour_flags(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per unit: whether its tactic wakes on a change of light, heeds being detected, and
        wakes on its own contacts. A unit's tactic is set when it is created (``Spawning``) and
        never changes, so the columns are rebuilt only when units are added."""
        if self._flags_n != len(self.units):
            tactics = [u.behaviour for u in self.units]
            self._flags = (
                np.array([b is not None and b.wakes_on_light for b in tactics], dtype=bool),
                np.array([b is not None and "detected" not in b.ignores for b in tactics],
                         dtype=bool),
                np.array([b is not None and b.wakes_on_contact for b in tactics], dtype=bool),
            )
            self._flags_n = len(self.units)
        return self._flags

    def _hostile_blocks(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """:func:`~sim.rules.detection.hostile_blocks` of the living force, cached until a unit
        dies or returns or hostility changes (a scenario event)."""
        f = self.force
        alive = f.alive[: f.n]
        key = (alive.tobytes(), self.hostile.tobytes())  # two bytes objects, not joined
        if self._blocks_key != key:
            self._blocks = detection.hostile_blocks(alive, f.faction[: f.n], self.hostile)
            self._blocks_key = key
        return self._blocks

    def _log_new_contacts(self, fac, observer, target, cells, light) -> None:
        """Log a "detection" event when a faction regains sight of a unit it had not seen for
        ``NEW_CONTACT_GAP_HOURS``: where contacts are made, without logging every glimpse."""
        seen = self.knowledge.seen_hour
        for o, tg in detection.new_contacts(seen, fac, observer, target,
                                            self.hour - NEW_CONTACT_GAP_HOURS):  # fmt: skip
            self.log("detection", int(cells[tg]), self.faction_names[fac[o]],
                     unit=self.units[o].name, target=self.units[tg].name,
                     target_faction=self.units[tg].faction, light=int(light))  # fmt: skip

    def _engage(self, det: Detections) -> None:
        """Resolve this hour's engagements: attacks under way and fire at detected enemies."""
        resolve_engagements(self, det)

    def _supply(self) -> None:
        f = self.force
        n = f.n
        supply_hour(f, n, self._moving, self.config.supplies, self.terrain, self._cave_refill,
                    self.supply_points)
        if self.caches is not None:  # factions with caches refill only there, from the stock
            self.caches.refill()
            self.caches.supply(f, n, self.terrain.cols, ~self._moving)

    # ------------------------------------------------------------------ hooks (used by tactics)
    def town_assaulted(self, town: str, unit: Unit) -> None:
        """Cells set out to take a town: the clock of the relief starts when they strike."""
        if not any(x.town == town and x.open for x in self.seizures):
            # one seizure per town until relieved, however many cells take part
            self.seizures.append(Seizure(town=town, cell=self.cell_of_place(town)))

    def town_seized(self, town: str, unit: Unit) -> None:
        """A town fell: its garrison's faction knows at once (the news travels by phone)."""
        for s in self.seizures:
            if s.town == town and s.open:
                s.seized = True
        f = self.force
        for fi, name in enumerate(self.faction_names):
            garrison = self.spec.factions[name].role == "garrison"
            if garrison and self.hostile[fi, f.faction[unit.idx]]:
                self.knowledge.record(self.hour, np.array([fi]), np.array([unit.idx]),
                                      np.array([unit.idx]), np.array([unit.cell]))  # fmt: skip

    def unit_destroyed(self, unit: Unit) -> None:
        """A unit lost its last fighter: log it; replace it later if its kind is replaced."""
        f = self.force
        self.log("loss", unit.cell, unit.faction, unit=unit.name, kind=unit.kind)
        self.knowledge.forget(unit.idx)
        unit.cease_fire()
        garrison = not self.insurgent_faction[f.faction[unit.idx]]
        regarrison = self.spec.campaign.regarrison_days if self.spec.campaign else None
        post = unit.kind in POST_KINDS and regarrison is not None
        if garrison and (unit.kind in REPLACED_KINDS or post):
            f.alive[unit.idx] = False
            f.strength[unit.idx] = 0.0
            if post:  # a lost post is manned again (campaign.regarrison_days)
                delay = round(regarrison * HOURS_PER_DAY)
            elif unit.kind == "civilian_vehicle":
                delay = CIVILIAN_REPLACEMENT_HOURS
            else:
                delay = self.config.replacement_hours
            self.agenda.schedule(self.hour + delay, REPLACEMENT, unit)
        else:
            unit.remove()

    def _replace(self, unit: Unit) -> None:
        """Bring a destroyed garrison unit back at its base, at full strength."""
        f = self.force
        i = unit.idx
        home = unit.attached_to.home if unit.attached_to is not None else unit.home
        f.row[i], f.col[i] = divmod(int(home), self.terrain.cols)
        f.alive[i] = True
        f.strength[i] = f.strength0[i]
        for name in ("water", "fuel", "ammo"):
            getattr(f, f"{name}_days")[i] = getattr(f, f"{name}_cap")[i]
        unit.halt(Posture.RESTING)
        if unit.behaviour is not None:
            unit.behaviour.set_state("waiting")
            unit.wake_hour = self.hour
        self.log("replaced", unit.cell, unit.faction, unit=unit.name, kind=unit.kind)

    def _cordons(self) -> list[Unit]:
        """Sweepers whose cordon is up: alive, with a cordon, and a square under way."""
        return [
            u for u in self._sweepers
            if u.behaviour.params.cordon and u.alive
            and 0 <= u.behaviour.current < len(u.behaviour.squares)
        ]

    def found_fraction(self) -> float:
        """Fraction of insurgent units any garrison faction has detected at least once."""
        f = self.force
        insurgent = self.insurgent_faction[f.faction[: f.n]]
        if not insurgent.any():
            return float("nan")
        garrisons = np.flatnonzero(~self.insurgent_faction)
        seen = self.knowledge.ever_seen[garrisons][:, : f.n].any(axis=0)
        return float(seen[insurgent].mean())

    def summary(self) -> dict[str, float]:
        """The run summary: the metrics' totals, end values and means, then the tactics'
        outcomes (:func:`sim.engine.summary.tactic_outcomes`)."""
        out = self.metrics.summary()
        if out["days"] > 0:  # nothing to summarise before the first day ends
            sweeps = [u.behaviour for u in self._sweepers]
            outcomes = tactic_outcomes(self.events, self.seizures, sweeps, self.found_fraction())
            out.update((k, float(v)) for k, v in outcomes.items())
        return out

    # ------------------------------------------------------------------ running
    def run_for_hours(self, hours: int, progress: bool = False,
                      after_step: Callable[[DesertModel], None] | None = None) -> None:
        """Step ``hours`` times (stops early when the scenario's length is reached);
        ``after_step(self)`` is called after each step (e.g. to record tracks)."""
        it = range(int(hours))
        if progress:
            from tqdm.auto import tqdm

            # the bar appears only if the run lasts more than a couple of seconds
            it = tqdm(it, desc=self.spec.name, unit="h", leave=False, delay=2.0)
        for _ in it:
            if not self.running:
                break
            self.step()
            if after_step is not None:
                after_step(self)

    # Mesa's ways of running, on this model's hourly step (see __init__)
    def run_for(self, duration: float) -> None:
        """Run for ``duration`` hours (Mesa's ``run_for``: the steps due in that time)."""
        self.run_until(self.time + duration)

    def run_until(self, end_time: float) -> None:
        """Step while the next hour is due by ``end_time`` (Mesa's ``run_until``; ``time``
        counts the hours stepped), stopping at the scenario's end as :meth:`run_for_hours`."""
        while self.time + 1 <= end_time and self.running:
            self.step()

    def schedule_event(self, *args, **kwargs):
        """Mesa's, where Mesa keeps stepping the model; else refused: the event would never
        run (the model steps itself, see __init__)."""
        if not self._own_clock:
            return super().schedule_event(*args, **kwargs)
        raise NotImplementedError("DesertModel steps hour by hour without Mesa's event list: "
                                  "schedule on its agenda (model.agenda) or in a scenario's "
                                  "events")

    def schedule_recurring(self, *args, **kwargs):
        """As :meth:`schedule_event`."""
        if not self._own_clock:
            return super().schedule_recurring(*args, **kwargs)
        return self.schedule_event(*args, **kwargs)

    def result(self) -> RunResult:
        """Daily metrics, summary and event log of what has been simulated so far."""
        return RunResult(
            daily=self.metrics.daily_frame(),
            summary=self.summary(),
            events=list(self.events),
            scenario=self.spec,
        )


def row_col_of_cell(terrain) -> tuple[np.ndarray, np.ndarray]:
    """Read-only int32 tables of each flat cell's row and column (``divmod(cell, cols)``),
    shared by every model on the terrain (:meth:`~sim.world.raster.Terrain.derived`)."""
    rows, cols = np.divmod(np.arange(terrain.rows * terrain.cols, dtype=np.int32),
                           np.int32(terrain.cols))  # fmt: skip
    return read_only(rows), read_only(cols)


def load_scenario_from_model(scenario: Scenario, overrides) -> Scenario:
    """Apply ``--set`` overrides to an already loaded scenario."""
    data = scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
    data = apply_overrides(data, list(overrides), scenario.name)
    return parse_scenario(data, source=scenario.name)
