"""Orders: turning a tactic's "go there", "follow this", "halt" into a timed path in the path book.

A path is a sequence of flat cells starting at the unit's cell, with the cumulative hours to
reach each at the unit's own speeds over the terrain (``hours_per_cell`` for its mobility: a
side step costs one cell's hours, a diagonal sqrt(2) times that). A vehicle unit out of fuel
walks. A path is cut where it becomes impassable for the unit. Paths that are cached routes
(read-only arrays: a patrol's round, a route to a base) are timed once per set of speeds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.rules.state import Posture
from sim.scenario.defaults import FOOT_OFFROAD_SPEED_KMH, FOOT_SPEED_KMH
from sim.scenario.vocab import MOBILITIES
from sim.world.raster import shared_hours_per_cell

if TYPE_CHECKING:
    from sim.engine.movement import PathBook
    from sim.rules.force import ForceTable
    from sim.rules.state import UnitView as Unit
    from sim.world.raster import Terrain
    from sim.world.routes import Router

_ZERO_HOURS = np.zeros(1)
#: Timed paths kept per run (cached routes with the speeds of the units following them).
TIMED_PATH_CACHE_SIZE = 2048
_STEP_LENGTH = np.array([1.0, np.sqrt(2.0)])  # cells per step: side, diagonal


class Orders:
    """The orders a run's units can be given; owns the path timing caches."""

    def __init__(self, terrain: Terrain, force: ForceTable, paths: PathBook, router: Router,
                 barred_zones: list[frozenset[int]]):
        self.terrain = terrain
        self.force = force
        self.paths = paths
        self.router = router
        self.barred_zones = barred_zones  # the run's live list (scenario events change it)
        self._hpc_cache: dict[tuple, np.ndarray] = {}
        self._timed_paths: dict[tuple, tuple] = {}

    def hours_along(self, unit: Unit, cells: np.ndarray) -> np.ndarray:
        """Cumulative hours to reach each cell of a path at the unit's speeds."""
        f = self.force
        i = unit.idx
        key = (int(f.mobility[i]), float(f.speed_kmh[i]), float(f.offroad_speed_kmh[i]))
        if f.vehicles[i] > 0 and f.fuel_days[i] <= 0:
            # out of fuel: the crew leaves the vehicles and walks
            key = (MOBILITIES.index("foot"), FOOT_SPEED_KMH, FOOT_OFFROAD_SPEED_KMH)
        hpc = self._hpc_cache.get(key)
        if hpc is None:  # a few speed classes per scenario: each layer once per terrain
            hpc = shared_hours_per_cell(self.terrain, MOBILITIES[key[0]], key[1], key[2])
            self._hpc_cache[key] = hpc
        if len(cells) < 2:
            return np.zeros(len(cells))
        hop = np.abs(np.diff(cells))
        diag = (hop > 1) & (hop != self.terrain.cols)  # a diagonal step (not a side one, no stay)
        out = np.empty(len(cells))
        out[0] = 0.0
        np.cumsum(hpc[cells[1:]] * _STEP_LENGTH[diag.view(np.int8)], out=out[1:])
        return out

    def _timed(self, unit: Unit, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(cells, hours)`` for a path that starts at the unit's cell, cut where it becomes
        impassable for the unit."""
        hours = self.hours_along(unit, cells)
        finite = np.isfinite(hours)
        if not finite.all():  # cut the path where it becomes impassable for this unit
            cut = int(np.argmin(finite))
            cells, hours = cells[:cut], hours[:cut]
        return cells, hours

    def follow(self, unit: Unit, cells: np.ndarray, posture: Posture) -> None:
        """Follow ``cells`` (flat indices, starting at the unit's cell) with ``posture``."""
        cells = np.asarray(cells, dtype=np.int64)
        if len(cells) == 0 or cells[0] != unit.cell:
            cells = np.concatenate(([unit.cell], cells))
            timed = self._timed(unit, cells)
        elif cells.flags.writeable:
            timed = self._timed(unit, cells)
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
                hit = (cells, self._timed(unit, cells))
                self._timed_paths[key] = hit
            self.set_path(unit, *hit[1], shared=True)
            self.force.posture[unit.idx] = int(posture)
            return
        self.set_path(unit, *timed)
        self.force.posture[unit.idx] = int(posture)

    def halt(self, unit: Unit, posture: Posture) -> None:
        """Stop ``unit`` where it stands (no route to compute)."""
        cell = unit.cell
        if len(unit.path) != 1 or unit.path[0] != cell:  # else already halted here
            self.set_path(unit, np.array([cell], dtype=np.int64), _ZERO_HOURS)
        else:
            self.force.path_clock[unit.idx] = 0.0
        self.force.posture[unit.idx] = int(posture)

    def set_path(self, unit: Unit, cells: np.ndarray, hours: np.ndarray,
                 shared: bool = False) -> None:
        """Give ``unit`` a timed path, starting now (``shared``: a cached timed route, see
        :meth:`PathBook.write`)."""
        i = unit.idx
        unit.path, unit.path_hours = cells, hours
        self.paths.write(i, cells, hours, shared)
        self.force.path_pos[i] = 0
        self.force.path_last[i] = len(cells) - 1
        self.force.path_clock[i] = 0.0

    def move(self, unit: Unit, target: int, posture: Posture, *, often: bool = False) -> bool:
        """Route to ``target`` over the cost field of the unit's mobility, avoiding barred zones;
        False if there is no route."""
        f = self.force
        mob = MOBILITIES[f.mobility[unit.idx]]
        cells = self.router.local_path(
            unit.cell, int(target), mob, self.barred_zones[f.faction[unit.idx]], cache=often
        )
        if len(cells) == 0:
            return False
        self.follow(unit, cells, posture)
        return True
