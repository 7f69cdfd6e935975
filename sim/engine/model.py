"""DesertModel: one run of a scenario, one step per simulated hour.

The hourly step, in order::

    events -> light -> decide -> move -> detect -> engage -> supply -> record

Decisions are per unit (its tactic, woken by its own timer or an alert); everything else is numpy
over the force table. The model owns the only random generator (``self.rng``, seeded by ``rng=``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import mesa
import numpy as np
import pandas as pd

from sim.engine.knowledge import Knowledge
from sim.engine.metrics import Metrics
from sim.engine.movement import PathBook
from sim.engine.units import (
    KINDS,
    MOBILITIES,
    MOVING_POSTURES,
    NEVER_HOUR,
    ForceTable,
    Posture,
    Unit,
)
from sim.errors import ScenarioError
from sim.rules import combat, detection
from sim.rules.engagements import resolve_engagements
from sim.rules.events import apply_event
from sim.rules.supplies import SUPPLY_POINT_KINDS, SupplyConfig, consume, resupply_mask
from sim.scenario.defaults import FOOT_OFFROAD_SPEED_KMH, FOOT_SPEED_KMH, resolved_unit
from sim.scenario.loading import SCENARIO_DIR, load_scenario, parse_scenario
from sim.scenario.overrides import apply_overrides
from sim.scenario.schema import Scenario, UnitSpec
from sim.tactics import make_behaviour
from sim.tactics.garrison import Sweep
from sim.world.clock import Clock, LightLevel
from sim.world.routes import Router
from sim.world.terrain import build_terrain, hours_per_cell

DEFAULT_SCENARIO = SCENARIO_DIR / "outpost_night_raid.yaml"

#: Garrison kinds whose losses are made good: a destroyed convoy, escort, patrol or QRF is
#: replaced at its base after ``ModelConfig.replacement_hours`` (the next convoy still runs).
REPLACED_KINDS = {"convoy", "escort", "patrol", "qrf"}

#: Kinds whose crews fire on any hostile unit they see within weapon range.
GARRISON_FIRE_KINDS = {
    "strongpoint", "patrol", "convoy", "escort", "qrf", "border_post", "zone_guard",
}


_ZERO_HOURS = np.zeros(1)
#: Timed paths kept per model (cached routes with the speeds of the units following them).
TIMED_PATH_CACHE_SIZE = 2048
_STEP_LENGTH = np.array([1.0, np.sqrt(2.0)])  # cells per step: side, diagonal
_MOVING_LUT = np.isin(np.arange(len(Posture)), MOVING_POSTURES)  # posture -> on the move
#: A sighting of a unit its faction has not seen for this long is logged as a new contact.
NEW_CONTACT_GAP_HOURS = 6


@dataclass
class ModelConfig:
    """Rule settings that are not part of a scenario file (kept in one place, with units)."""

    detection: detection.DetectionConfig = field(default_factory=detection.DetectionConfig)
    combat: combat.CombatConfig = field(default_factory=combat.CombatConfig)
    supplies: SupplyConfig = field(default_factory=SupplyConfig)
    knowledge_max_age_hours: int = 48
    coverage_every_hours: int = 3
    replacement_hours: int = 48
    collect_every_hours: int = 24  # DataCollector cadence; the app sets 1


class DesertModel(mesa.Model):
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
        self.seed = seed
        self.spec = scenario.model_copy(update={"seed": seed})
        self.config = config or ModelConfig()
        self.hour = 0  # hours simulated so far; the current step decides hour `self.hour`
        self.events: list[dict] = []
        self.alerted: list[int] = []  # units with alerts waiting for the next decision round

        self.terrain = build_terrain(scenario.map, source=scenario.name)
        # one router per terrain, shared by every run in this process: its cached route fields
        # depend on the terrain only, so sharing them changes no result
        self.router = self.terrain.__dict__.setdefault("_router", Router(self.terrain))
        self._hpc_cache: dict[tuple, np.ndarray] = {}
        self._timed_paths: dict[tuple, tuple] = {}
        grid = self.terrain.grid
        centre_lat, centre_lon = grid.latlon_of(grid.rows // 2, grid.cols // 2)
        self.clock = Clock(
            scenario.start,
            float(centre_lat),
            float(centre_lon),
            utc_offset_hours=scenario.utc_offset_hours,
            hours=scenario.hours + 48,
        )
        self.light_by_hour = self.clock.light_levels(scenario.hours + 48)

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

        capacity = sum(u.count for u in scenario.units) + sum(
            u.count for u in scenario.units if getattr(u.tactic, "kind", None) == "escort"
        )
        self.force = ForceTable(max(capacity, 1))
        self.paths = PathBook(max(capacity, 1))
        self.units: list[Unit] = []
        self._attached: list[Unit] = []  # units that move with another (escorts)
        self._attached_arrays = (np.empty(0, np.int64), np.empty(0, np.int64))
        self.tripwires: dict[int, Unit] = {}  # road cells watched by an ambush -> the ambusher
        self._spawn_units()
        self._prev_rc = np.zeros((max(capacity, 1), 2), dtype=np.int32)
        self._latlon: dict[int, tuple[float, float]] = {}
        self.knowledge = Knowledge(
            nf,
            max(capacity, 1),
            np.array([round(scenario.factions[f].comms_delay_hours) for f in self.faction_names]),
        )
        self.metrics = Metrics(self)
        self._share_seen = self.knowledge.latest_share.copy()
        self._news_listeners = [
            [u for u in self.units if u.faction == name and u.behaviour is not None
             and u.behaviour.wakes_on_news]
            for name in self.faction_names
        ]  # fmt: skip
        self._sweepers = [u for u in self.units if isinstance(u.behaviour, Sweep)]
        self.supply_points = np.array(
            [u.idx for u in self.units if u.kind in SUPPLY_POINT_KINDS], dtype=np.int64
        )
        self._moving = np.zeros(self.force.n, dtype=bool)
        self._rc_now = np.zeros((max(capacity, 1), 2), dtype=np.int32)
        self._concealment = self.terrain.concealment.ravel()
        self._region = region_of_cells(self.terrain)
        self._blocks: list[tuple[np.ndarray, np.ndarray]] = []
        self._blocks_key = b""
        self._seizures: list[dict] = []
        self._replacements: list[tuple[int, Unit]] = []
        self._pending_events = sorted(
            ((round(e.at_hours), i, e) for i, e in enumerate(scenario.events)),
            key=lambda t: (t[0], t[1]),
        )
        self.datacollector = mesa.DataCollector(model_reporters=self.metrics.reporters())
        self.running = True

    # ------------------------------------------------------------------ building the force
    def _spawn_units(self) -> None:
        t = self.terrain
        for spec_index, spec in enumerate(self.spec.units):
            ru = resolved_unit(spec)
            cells = self._placement_cells(spec.at, spec.count, f"units[{spec_index}].at")
            for k in range(spec.count):
                r, c = divmod(int(cells[k]), t.cols)
                base = spec.name or f"{spec.kind}-{spec_index}"
                name = base if spec.count == 1 else f"{base}-{k + 1}"
                unit = self._add_unit(name, spec.faction, spec.kind, ru, r, c, spec_index)
                unit.behaviour = make_behaviour(self, unit, spec.tactic, spec)

    def _add_unit(self, name, faction, kind, ru, r, c, spec_index=-1) -> Unit:
        idx = self.force.add(
            row=r,
            col=c,
            faction=self.faction_index[faction],
            kind=KINDS.index(kind),
            mobility=MOBILITIES.index(ru.mobility),
            posture=int(Posture.RESTING),
            strength=ru.strength,
            strength0=ru.strength,
            vehicles=ru.vehicles,
            speed_kmh=ru.speed_kmh,
            offroad_speed_kmh=ru.offroad_speed_kmh,
            sensor_day_km=ru.sensor_range_km,
            sensor_night_km=ru.night_sensor_range_km,
            weapon_range_km=ru.weapon_range_km,
            kill_rate_per_hour=ru.kill_rate_per_hour,
            water_days=ru.water_days,
            fuel_days=ru.fuel_days,
            ammo_days=ru.ammo_days,
            water_cap=max(ru.water_days, 1e-9),
            fuel_cap=max(ru.fuel_days, 1e-9),
            ammo_cap=max(ru.ammo_days, 1e-9),
            breakoff=ru.breakoff_loss_fraction,
            alive=True,
            search_factor=1.0,
            fortified=ru.fortified,
            fires=kind in GARRISON_FIRE_KINDS,
        )
        unit = Unit(self, idx, name, faction, kind)
        unit.spec_index = spec_index
        unit.resolved = ru
        unit.home = r * self.terrain.cols + c
        self._set_path(unit, np.array([unit.home], dtype=np.int64), _ZERO_HOURS)
        self.units.append(unit)
        return unit

    def spawn_attached(self, leader: Unit, kind: str, strength: int) -> Unit:
        """Create a unit that moves with ``leader`` (an escort with its convoy: a patrol's
        numbers, riding in the convoy's vehicles)."""
        ru = resolved_unit_for_kind("patrol" if kind == "escort" else kind, leader.faction,
                                    strength)  # fmt: skip
        r, c = leader.rc
        unit = self._add_unit(f"{leader.name}-escort", leader.faction, kind, ru, r, c)
        unit.attached_to = leader
        unit.behaviour = None
        self._attached.append(unit)
        return unit

    def _placement_cells(self, at, count: int, field_path: str) -> np.ndarray:
        """Cells for ``count`` units placed ``at`` a place, an area or a [lat, lon] point."""
        t = self.terrain
        if isinstance(at, str) and at in t.places:
            return np.full(count, self.cell_of_place(at), dtype=np.int64)
        if isinstance(at, str) and at in t.areas:
            mask = t.areas[at]
            if t.cave[mask].any():
                mask = mask & t.cave
            candidates = np.flatnonzero(mask & np.isfinite(t.move_cost["foot"]))
            if len(candidates) == 0:
                raise ScenarioError([f"{self.spec.name}: {field_path}: area '{at}' has no cells"])
            return self.rng.choice(candidates, size=count, replace=len(candidates) < count)
        lat, lon = at
        r, c = t.grid.cell_of(lat, lon)
        return np.full(count, int(r) * t.cols + int(c), dtype=np.int64)

    # ------------------------------------------------------------------ orders (used by tactics)
    def _hours_along(self, unit: Unit, cells: np.ndarray) -> np.ndarray:
        """Cumulative hours to reach each cell of a path at the unit's speeds."""
        f = self.force
        i = unit.idx
        key = (int(f.mobility[i]), float(f.speed_kmh[i]), float(f.offroad_speed_kmh[i]))
        if f.vehicles[i] > 0 and f.fuel_days[i] <= 0:
            # out of fuel: the crew leaves the vehicles and walks
            key = (MOBILITIES.index("foot"), FOOT_SPEED_KMH, FOOT_OFFROAD_SPEED_KMH)
        hpc = self._hpc_cache.get(key)
        if hpc is None:  # a few speed classes per scenario: compute each layer once
            hpc = hours_per_cell(self.terrain, MOBILITIES[key[0]], key[1], key[2]).ravel()
            self._hpc_cache[key] = hpc
        if len(cells) < 2:
            return np.zeros(len(cells))
        hop = np.abs(np.diff(cells))
        diag = (hop > 1) & (hop != self.terrain.cols)  # a diagonal step (not a side one, no stay)
        out = np.empty(len(cells))
        out[0] = 0.0
        np.cumsum(hpc[cells[1:]] * _STEP_LENGTH[diag.view(np.int8)], out=out[1:])
        return out

    def _timed_path(self, unit: Unit, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(cells, hours)`` for a path that starts at the unit's cell, cut where it becomes
        impassable for the unit."""
        hours = self._hours_along(unit, cells)
        finite = np.isfinite(hours)
        if not finite.all():  # cut the path where it becomes impassable for this unit
            cut = int(np.argmin(finite))
            cells, hours = cells[:cut], hours[:cut]
        return cells, hours

    def order_path(self, unit: Unit, cells: np.ndarray, posture: Posture) -> None:
        """Follow ``cells`` (flat indices, starting at the unit's cell) with ``posture``."""
        cells = np.asarray(cells, dtype=np.int64)
        if len(cells) == 0 or cells[0] != unit.cell:
            cells = np.concatenate(([unit.cell], cells))
            timed = self._timed_path(unit, cells)
        elif cells.flags.writeable:
            timed = self._timed_path(unit, cells)
        else:
            # a read-only path is a cached route (a patrol's round, a route to a base): its
            # timing is kept by (path, speeds), so a unit repeating its round costs nothing
            f = self.force
            i = unit.idx
            key = (id(cells), int(f.mobility[i]), float(f.speed_kmh[i]),
                   float(f.offroad_speed_kmh[i]), bool(f.fuel_days[i] <= 0))  # fmt: skip
            hit = self._timed_paths.get(key)
            if hit is None or hit[0] is not cells:
                if len(self._timed_paths) >= TIMED_PATH_CACHE_SIZE:
                    self._timed_paths.clear()
                hit = (cells, self._timed_path(unit, cells))
                self._timed_paths[key] = hit
            timed = hit[1]
        self._set_path(unit, *timed)
        self.force.posture[unit.idx] = int(posture)

    def order_halt(self, unit: Unit, posture: Posture) -> None:
        """Stop ``unit`` where it stands (no route to compute)."""
        cell = unit.cell
        if len(unit.path) != 1 or unit.path[0] != cell:  # else already halted here
            self._set_path(unit, np.array([cell], dtype=np.int64), _ZERO_HOURS)
        else:
            self.force.path_clock[unit.idx] = 0.0
        self.force.posture[unit.idx] = int(posture)

    def _set_path(self, unit: Unit, cells: np.ndarray, hours: np.ndarray) -> None:
        i = unit.idx
        unit.path, unit.path_hours = cells, hours
        self.paths.write(i, cells, hours)
        self.force.path_pos[i] = 0
        self.force.path_last[i] = len(cells) - 1
        self.force.path_clock[i] = 0.0

    def order_move(self, unit: Unit, target: int, posture: Posture, *, often=False) -> bool:
        """Route to ``target`` over the cost field of the unit's mobility, avoiding barred zones."""
        f = self.force
        mob = MOBILITIES[f.mobility[unit.idx]]
        cells = self.router.local_path(
            unit.cell, int(target), mob, self.barred_zones[f.faction[unit.idx]], cache=often
        )
        if len(cells) == 0:
            return False
        self.order_path(unit, cells, posture)
        return True

    # ------------------------------------------------------------------ queries (used by tactics)
    @property
    def light(self) -> LightLevel:
        """Light level this hour."""
        return LightLevel(int(self.light_by_hour[self.hour]))

    def cell_of_place(self, name: str) -> int:
        p = self.terrain.places[name]
        return p.row * self.terrain.cols + p.col

    def distance_km(self, a: int, b: int) -> float:
        """Straight-line distance between two flat cells on the grid."""
        ra, ca = divmod(int(a), self.terrain.cols)
        rb, cb = divmod(int(b), self.terrain.cols)
        return float(np.hypot(ra - rb, ca - cb) * self.terrain.grid.cell_km)

    def known_enemies(self, unit: Unit, max_age_hours: int | None = None):
        """(unit indices, cells, ages in hours) of enemies the unit's faction knows of."""
        age = self.config.knowledge_max_age_hours if max_age_hours is None else max_age_hours
        fi = self.faction_index[unit.faction]
        idx, cells, ages = self.knowledge.known_to(fi, self.hour, unit.idx, age)
        keep = self.force.alive[idx] & self.hostile[fi, self.force.faction[idx]]
        return idx[keep], cells[keep], ages[keep]

    def log(self, event_type: str, cell: int, faction: str = "", **data) -> dict:
        """Append an event to the run's event log and return it."""
        cell = int(cell)
        r, c = divmod(cell, self.terrain.cols)
        latlon = self._latlon.get(cell)
        if latlon is None:
            lat, lon = self.terrain.grid.latlon_of(r, c)
            latlon = self._latlon[cell] = (round(float(lat), 5), round(float(lon), 5))
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
        """Advance one hour."""
        self._apply_due_events()
        self._decide()
        self._move()
        self._moving = _MOVING_LUT[self.force.posture[: self.force.n]]
        self._cordon_check()
        detections = self._detect()
        self._engage(detections)
        self._supply()
        if self._seizures:
            self._check_relief()
        self.metrics.record_hour(self, detections)
        self.hour += 1
        if self.hour % self.config.collect_every_hours == 0:
            self.datacollector.collect(self)
        if self.hour >= self.spec.hours:
            self.running = False

    def _apply_due_events(self) -> None:
        if self._replacements:
            self._replace_losses()
        while self._pending_events and self._pending_events[0][0] <= self.hour:
            _, _, event = self._pending_events.pop(0)
            apply_event(self, event)

    def _decide(self) -> None:
        """Wake the units whose timer is due or that were alerted, and let them decide.

        The timers are a force-table column, so the units due this hour are found in one
        numpy call; a quiet hour costs nothing per sleeping unit."""
        hour = self.hour
        f = self.force
        n = f.n
        units = self.units
        light_changed = hour > 0 and self.light_by_hour[hour] != self.light_by_hour[hour - 1]
        self._wake_on_news()
        due = f.alive[:n] & (f.wake_hour[:n] <= hour)
        if light_changed:
            due |= np.array([u.behaviour is not None and u.behaviour.wakes_on_light
                             for u in units])  # fmt: skip
        if self.alerted:
            due[self.alerted] = True
            self.alerted = []
        for i in np.flatnonzero(due).tolist():
            unit = units[i]
            b = unit.behaviour
            if b is None:
                f.wake_hour[i] = NEVER_HOUR  # nothing to decide (an escort rides along)
            elif f.alive[i] and (
                f.wake_hour[i] <= hour
                or (unit.alerts and b.woken_by(unit.alerts))
                or (light_changed and b.wakes_on_light)
            ):
                b.decide()
            unit.alerts.clear()

    def _wake_on_news(self) -> None:
        """Units that wait for news (a quick-reaction force at readiness) wake when a fresh
        sighting reaches their faction, instead of looking at the reports every hour."""
        share = self.knowledge.latest_share
        changed = np.flatnonzero(share != self._share_seen)
        if len(changed) == 0:
            return
        for fi in changed.tolist():
            at = max(int(share[fi]), self.hour)
            for unit in self._news_listeners[fi]:
                if unit.behaviour is not None and unit.behaviour.wakes_on_news:
                    unit.wake_hour = min(unit.wake_hour, at)
        self._share_seen = share.copy()

    def _move(self) -> None:
        """Advance every moving unit along its path by one hour of travel, all at once.

        One ``searchsorted`` in the path book finds where each mover is after the hour;
        ambush tripwires on the cells passed, border crossings and zone entries (a change of
        ``region_of_cells``) are found in numpy too, and only the few units that meet one are
        handled one by one."""
        f = self.force
        n = f.n
        prev = self._prev_rc[:n]
        prev[:, 0], prev[:, 1] = f.row[:n], f.col[:n]
        movers = np.flatnonzero(f.alive[:n] & (f.path_pos[:n] < f.path_last[:n]))
        if len(movers):
            book = self.paths
            old = f.path_pos[movers].astype(np.int64)
            clock = f.path_clock[movers] + 1.0
            new = book.advance(movers, clock)
            if self.tripwires:
                self._stop_at_tripwires(movers, old, new, clock)
            f.path_clock[movers] = clock
            f.path_pos[movers] = new
            start, end = book.cells_at(movers, old), book.cells_at(movers, new)
            f.row[movers], f.col[movers] = np.divmod(end, self.terrain.cols)
            done = new >= f.path_last[movers]
            arrived = [(self.units[i], book.serial[i]) for i in movers[done].tolist()]
            cols = self.terrain.cols
            for k in np.flatnonzero(self._region[start] != self._region[end]).tolist():
                unit = self.units[int(movers[k])]  # a zone edge or border lies between: look
                traversed = unit.path[old[k] + 1 : new[k] + 1]
                r0, c0 = divmod(int(start[k]), cols)
                self.metrics.on_move(unit, r0, c0, *divmod(int(end[k]), cols), traversed)
            for unit, serial in arrived:
                if book.serial[unit.idx] == serial:  # not turned back at a border (new orders)
                    unit.alert("arrived")
        if self._attached:  # escorts ride with their convoy
            follower, leader = self._attached_idx()
            ok = f.alive[follower] & f.alive[leader]
            follower, leader = follower[ok], leader[ok]
            f.row[follower], f.col[follower] = f.row[leader], f.col[leader]
            f.posture[follower] = f.posture[leader]

    def _stop_at_tripwires(self, movers, old, new, clock) -> None:
        """Movers that drive into a hostile ambush this hour halt under fire there (``new``
        and ``clock`` are updated in place)."""
        cells, owner = self.paths.passed(movers, old, new)
        hit = np.isin(cells, np.fromiter(self.tripwires, dtype=np.int64))
        for k in np.unique(owner[hit]).tolist():
            unit = self.units[int(movers[k])]
            stop = self._tripped(unit, int(old[k]), int(new[k]))
            if stop is not None:
                new[k], clock[k] = stop, unit.path_hours[stop]

    def _attached_idx(self) -> tuple[np.ndarray, np.ndarray]:
        if len(self._attached_arrays[0]) != len(self._attached):
            self._attached_arrays = (
                np.array([u.idx for u in self._attached], dtype=np.int64),
                np.array([u.attached_to.idx for u in self._attached], dtype=np.int64),
            )
        return self._attached_arrays

    def _tripped(self, unit: Unit, pos: int, new: int) -> int | None:
        """Index along ``unit``'s path where it runs into a hostile ambush this hour, if any."""
        fi = self.force.faction[unit.idx]
        cells = unit.path
        for k in range(pos + 1, new + 1):
            ambusher = self.tripwires.get(int(cells[k]))
            if ambusher is None or not ambusher.alive:
                continue
            if self.hostile[fi, self.force.faction[ambusher.idx]] and ambusher.behaviour.spring(
                unit
            ):
                return k
        return None

    def _detect(self) -> Detections:
        """All detections this hour, recorded into each observing faction's knowledge."""
        f = self.force
        n = f.n
        t = self.terrain
        light = int(self.light_by_hour[self.hour])
        fac = f.faction[:n]
        rc = self._rc_now[:n]
        rc[:, 0], rc[:, 1] = f.row[:n], f.col[:n]
        cells = rc[:, 0].astype(np.int64) * t.cols + rc[:, 1]
        ranges = detection.sensor_range_km(
            f.sensor_day_km[:n], f.sensor_night_km[:n], light, self.config.detection
        )
        observer, target = detection.detect_among(
            self.rng,
            self._hostile_blocks(),
            rc * t.grid.cell_km,
            self._prev_rc[:n] * t.grid.cell_km,
            ranges,
            self._concealment[cells],
            self._moving,
            light,
            self.config.detection,
            search_factor=f.search_factor[:n],
        )
        self._log_new_contacts(fac, observer, target, cells, light)
        self.knowledge.record(self.hour, fac[observer], observer, target, cells[target])
        units = self.units
        for tgt in np.unique(target).tolist():
            units[tgt].alert("detected")
        for obs in np.unique(observer).tolist():
            b = units[obs].behaviour
            if b is not None and b.wakes_on_contact:
                units[obs].alert("contact")
        return Detections(observer, target)

    def _hostile_blocks(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The living force split into blocks ``(a, b)`` such that every unit of ``a`` is
        hostile to every unit of ``b`` and each hostile pair of units is in exactly one block.

        Factions with the same enemies form a group (all garrisons against the insurgents);
        groups are hostile all-or-nothing, so the theatre is one block of garrisons against
        insurgents. Cached until a unit dies or returns."""
        f = self.force
        alive = f.alive[: f.n]
        key = alive.tobytes()
        if self._blocks_key != key:
            fac = f.faction[: f.n]
            groups: dict[bytes, list[int]] = {}
            for fi in range(len(self.faction_names)):
                groups.setdefault(self.hostile[fi].tobytes(), []).append(fi)
            members = list(groups.values())
            blocks = []
            for gi, ga in enumerate(members):
                for gb in members[gi + 1 :]:
                    if self.hostile[ga[0], gb[0]]:
                        a = np.flatnonzero(alive & np.isin(fac, ga))
                        b = np.flatnonzero(alive & np.isin(fac, gb))
                        if len(a) and len(b):
                            blocks.append((a, b))
            self._blocks, self._blocks_key = blocks, key
        return self._blocks

    def _log_new_contacts(self, fac, observer, target, cells, light) -> None:
        """Log a "detection" event when a faction regains sight of a unit it had not seen for
        ``NEW_CONTACT_GAP_HOURS``: where contacts are made, without logging every glimpse."""
        if len(target) == 0:
            return
        before = self.knowledge.seen_hour[fac[observer], target]
        new = np.flatnonzero(before < self.hour - NEW_CONTACT_GAP_HOURS)
        logged: set[tuple[int, int]] = set()
        for k in new.tolist():
            o, tg = int(observer[k]), int(target[k])
            if (fac[o], tg) in logged:
                continue
            logged.add((fac[o], tg))
            self.log("detection", int(cells[tg]), self.faction_names[fac[o]],
                     unit=self.units[o].name, target=self.units[tg].name,
                     target_faction=self.units[tg].faction, light=int(light))  # fmt: skip

    def _engage(self, det: Detections) -> None:
        """Resolve this hour's engagements: attacks under way and fire at detected enemies."""
        resolve_engagements(self, det)

    def _supply(self) -> None:
        f = self.force
        n = f.n
        consume(f, n, self._moving, self.config.supplies)
        refill = resupply_mask(self, n)
        for name in ("water", "fuel", "ammo"):
            days = getattr(f, f"{name}_days")
            cap = getattr(f, f"{name}_cap")
            days[:n] = np.where(refill, cap[:n], days[:n])

    # ------------------------------------------------------------------ hooks (used by tactics)
    def town_assaulted(self, town: str, unit: Unit) -> None:
        """Cells set out to take a town: the clock of the relief starts when they strike."""
        if not any(x["town"] == town and x["relief_hour"] is None for x in self._seizures):
            # one seizure per town until relieved, however many cells take part
            cell = self.cell_of_place(town)
            self._seizures.append({"town": town, "hour": None, "cell": cell,
                                   "relief_hour": None})  # fmt: skip

    def town_seized(self, town: str, unit: Unit) -> None:
        """A town fell: its garrison's faction knows at once (the news travels by phone)."""
        for s in self._seizures:
            if s["town"] == town and s["relief_hour"] is None:
                s["seized"] = True
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
        replaced = unit.kind in REPLACED_KINDS and not self.insurgent_faction[f.faction[unit.idx]]
        if replaced:
            f.alive[unit.idx] = False
            f.strength[unit.idx] = 0.0
            self._replacements.append((self.hour + self.config.replacement_hours, unit))
        else:
            unit.remove()

    def _replace_losses(self) -> None:
        """Bring destroyed garrison units back at their base, at full strength."""
        due = [x for x in self._replacements if x[0] <= self.hour]
        if not due:
            return
        self._replacements = [x for x in self._replacements if x[0] > self.hour]
        f = self.force
        for _, unit in due:
            i = unit.idx
            home = unit.attached_to.home if unit.attached_to is not None else unit.home
            f.row[i], f.col[i] = divmod(int(home), self.terrain.cols)
            f.alive[i] = True
            f.strength[i] = f.strength0[i]
            for name in ("water", "fuel", "ammo"):
                getattr(f, f"{name}_days")[i] = getattr(f, f"{name}_cap")[i]
            self.order_halt(unit, Posture.RESTING)
            if unit.behaviour is not None:
                unit.behaviour.set_state("waiting")
                unit.wake_hour = self.hour
            self.log("replaced", unit.cell, unit.faction, unit=unit.name, kind=unit.kind)

    def _check_relief(self) -> None:
        """The relief of an assaulted town: the first garrison unit to come in from outside.

        A seizure's clock starts at the first fight in the town (the assault) and stops when a
        garrison unit that was not there at the start drives into it."""
        f = self.force
        n = f.n
        t = self.terrain
        for s in self._seizures:
            if s["relief_hour"] is not None:
                continue
            r, c = divmod(s["cell"], t.cols)
            near = (np.abs(f.row[:n] - r) <= 1) & (np.abs(f.col[:n] - c) <= 1)
            garrison = self.metrics.garrison[f.faction[:n]] & f.alive[:n]
            if s["hour"] is None:
                fighting = any(
                    e["type"] == "engagement" and e["hour"] == self.hour
                    and abs(e["row"] - r) <= 2 and abs(e["col"] - c) <= 2
                    for e in self.events[-20:]
                )
                if not fighting:
                    continue
                s["hour"] = self.hour
                s["present"] = set(np.flatnonzero(near & garrison).tolist())
                continue
            arrived = set(np.flatnonzero(near & garrison).tolist()) - s["present"]
            if arrived:
                s["relief_hour"] = self.hour
                self.log("relief", s["cell"], "", town=s["town"],
                         relief_hours=self.hour - s["hour"],
                         units=[self.units[i].name for i in sorted(arrived)])  # fmt: skip

    def on_border_crossing(self, unit: Unit, old_rc: tuple[int, int]) -> bool:
        """A unit crossed a border line: the hostile side may intercept it and turn it back.

        The chance is ``1 - prod(1 - border_security)`` over the factions hostile to the unit.
        Returns True if the crossing went through.
        """
        fi = self.faction_index[unit.faction]
        security = self.border_security[self.hostile[fi]]
        p = 1.0 - float(np.prod(1.0 - security)) if len(security) else 0.0
        cell = unit.cell
        if p > 0 and self.rng.random() < p:
            self.log("crossing_intercepted", cell, unit.faction, unit=unit.name)
            self.force.row[unit.idx], self.force.col[unit.idx] = old_rc
            if hasattr(unit.behaviour, "intercepted"):
                unit.behaviour.intercepted()
            else:
                unit.halt(Posture.RESTING)
            unit.alert("intercepted")
            return False
        self.log("crossing", cell, unit.faction, unit=unit.name,
                 insurgent=bool(self.insurgent_faction[fi]))  # fmt: skip
        return True

    def _cordon_check(self) -> None:
        """A cordon sees hidden cells that slip out of the square being swept."""
        if not self._sweepers:
            return
        for sweeper in self._cordons():
            b = sweeper.behaviour
            r0, c0, h, w = b.square_mask_cells()
            f = self.force
            n = f.n
            fi = f.faction[sweeper.idx]
            enemy = f.alive[:n] & self.hostile[fi, f.faction[:n]]
            was_in = ((self._prev_rc[:n, 0] >= r0) & (self._prev_rc[:n, 0] < r0 + h)
                      & (self._prev_rc[:n, 1] >= c0) & (self._prev_rc[:n, 1] < c0 + w))  # fmt: skip
            now_in = ((f.row[:n] >= r0) & (f.row[:n] < r0 + h)
                      & (f.col[:n] >= c0) & (f.col[:n] < c0 + w))  # fmt: skip
            leaving = np.flatnonzero(enemy & was_in & ~now_in)
            if len(leaving):
                cells = f.row[leaving].astype(np.int64) * self.terrain.cols + f.col[leaving]
                observers = np.full(len(leaving), sweeper.idx)
                self.knowledge.record(self.hour, np.full(len(leaving), fi), observers, leaving,
                                      cells)  # fmt: skip
                for k, i in enumerate(leaving.tolist()):
                    self.log("cordon_sighting", int(cells[k]), sweeper.faction,
                             unit=self.units[i].name)  # fmt: skip

    def _cordons(self) -> list[Unit]:
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

    def extra_summary(self) -> dict[str, float]:
        """Tactic outcomes for the run summary: raids, refuge, seizures, sweeps, pursuits."""
        ev = self.events
        out: dict[str, float] = {}
        starts = [e for e in ev if e["type"] == "raid_start"]
        ends = [e for e in ev if e["type"] == "raid_end"]
        out["raids_started"] = len(starts)
        out["raids_started_at_night_fraction"] = (
            sum(e["night"] for e in starts) / len(starts) if starts else float("nan")
        )
        out["raids_hidden_before_first_light_fraction"] = (
            sum(e["before_first_light"] for e in ends) / len(ends) if ends else float("nan")
        )
        relief = [e["relief_hours"] for e in ev if e["type"] == "relief"]
        out["seizures"] = sum(1 for s in self._seizures if s.get("seized"))
        out["relief_hours_mean"] = float(np.mean(relief)) if relief else float("nan")
        out["pursuits_broken_off_at_zone"] = sum(
            1 for e in ev if e["type"] == "breakoff" and e.get("reason") == "zone"
        )
        out["crossings_intercepted"] = sum(1 for e in ev if e["type"] == "crossing_intercepted")
        out["insurgent_units_found_fraction"] = self.found_fraction()
        sweepers = [u.behaviour for u in self._sweepers]
        if sweepers:
            out["sweep_squares_cleared"] = sum(b.cleared_squares for b in sweepers)
            out["sweep_squares_total"] = sum(len(b.squares) for b in sweepers)
            done = [e for e in ev if e["type"] == "sweep_done"]
            out["sweep_days_to_clear"] = max(e["days"] for e in done) if done else float("nan")
            out["sweep_found_fraction"] = (
                done[-1]["found_fraction"] if len(done) == len(sweepers) else float("nan")
            )
        return out

    # ------------------------------------------------------------------ running
    def run_for_hours(self, hours: int, progress: bool = False) -> None:
        """Step ``hours`` times (stops early when the scenario's length is reached)."""
        it = range(int(hours))
        if progress:
            from tqdm import tqdm

            # the bar appears only if the run lasts more than a couple of seconds
            it = tqdm(it, desc=self.spec.name, unit="h", leave=False, delay=2.0)
        for _ in it:
            if not self.running:
                break
            self.step()

    def result(self) -> RunResult:
        """Daily metrics, summary and event log of what has been simulated so far."""
        return RunResult(
            daily=self.metrics.daily_frame(),
            summary=self.metrics.summary(self),
            events=list(self.events),
            scenario=self.spec,
        )


class Detections(NamedTuple):
    """This hour's detections: parallel arrays of observer and target unit indices."""

    observer: np.ndarray
    target: np.ndarray


@dataclass
class RunResult:
    """Outputs of one run (see docs/architecture.md, "Data flow")."""

    daily: pd.DataFrame
    summary: dict[str, float]
    events: list[dict]
    scenario: Scenario


def load_scenario_from_model(scenario: Scenario, overrides) -> Scenario:
    """Apply ``--set`` overrides to an already loaded scenario."""
    data = scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
    data = apply_overrides(data, list(overrides), scenario.name)
    return parse_scenario(data, source=scenario.name)


def resolved_unit_for_kind(kind: str, faction: str, strength: int):
    """Kind defaults for a unit created during a run (an escort)."""
    return resolved_unit(
        UnitSpec(faction=faction, kind=kind, at=[0.0, 0.0], strength=strength)
    )


def run_scenario(
    scenario: Scenario | str | Path,
    *,
    seed: int | None = None,
    days: float | None = None,
    overrides=(),
    progress: bool = False,
    config: ModelConfig | None = None,
) -> RunResult:
    """Run a scenario for ``days`` (default: the scenario's) and return its results."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, overrides=list(overrides))
        overrides = ()
    if days is not None:
        scenario = scenario.model_copy(update={"days": float(days)})
    model = DesertModel(scenario, rng=seed, overrides=overrides, config=config)
    model.run_for_hours(model.spec.hours, progress=progress)
    return model.result()


def region_of_cells(terrain) -> np.ndarray:
    """Per flat cell, a number that differs between cells in different exclusion zones or on
    different sides of any border: a move between cells with the same number crosses no border
    and enters no zone, so the hourly move only looks closer at the rare ones that change it.
    Cached on the terrain."""
    cached = terrain.__dict__.get("_regions")
    if cached is None:
        size = terrain.zone.size
        layers = np.vstack([terrain.zone.reshape(1, size),
                            terrain.border_side.reshape(len(terrain.border_side), size)])
        _, inverse = np.unique(layers, axis=1, return_inverse=True)
        cached = terrain.__dict__["_regions"] = inverse.ravel().astype(np.int32)
    return cached
