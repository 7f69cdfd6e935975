"""Orders: turning a tactic's "go there", "follow this", "halt" into a timed path in the path book.

A path is a sequence of flat cells starting at the unit's cell, with the cumulative hours to
reach each at the unit's own speeds over the terrain (``hours_per_cell`` for its mobility: a
side step costs one cell's hours, a diagonal sqrt(2) times that). A vehicle unit out of fuel
walks. A path is cut where it becomes impassable for the unit. Paths that are cached routes
(read-only arrays: a patrol's round, a route to a base) are timed once per set of speeds, and a
route asked for again is handed back from a memo. A unit that has arrived can ``stay`` on the
path it came by instead of being given a one-cell path (:meth:`Orders.stay`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from sim.compiled import kernel
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
_INT64 = np.dtype(np.int64)


class ForceItems:
    """One unit's numbers at a time: for each column of a :class:`ForceTable`, a memoryview of
    it under the same name (``items.row[i]`` is ``force.row.item(i)``, the same Python number;
    assigning to it writes the column, as ``force.row[i] = v`` does for an int, float or bool
    ``v`` of the column's kind).

    Why: a decision reads and writes single units' values a few dozen times, and a memoryview
    item costs about half of numpy's scalar indexing or ``ndarray.item`` (no index to parse, no
    method arguments, no array scalar). The columns are allocated once, at the table's
    capacity, so the views stay valid for the run."""

    def __init__(self, force: ForceTable):
        for name in (*force.FLOAT_COLUMNS, *force.INT_COLUMNS, *force.BOOL_COLUMNS):
            setattr(self, name, memoryview(getattr(force, name)))


class Orders:
    """The orders a run's units can be given; owns the path timing caches and the force
    table's :class:`ForceItems` (``items``), which the run's units share."""

    def __init__(self, terrain: Terrain, force: ForceTable, paths: PathBook, router: Router,
                 barred_zones: list[frozenset[int]]):
        self.terrain = terrain
        self.items = ForceItems(force)
        self.paths = paths
        self.router = router
        self.barred_zones = barred_zones  # the run's live list (scenario events change it)
        self._cols = terrain.cols  # the grid's width, read at every order (a property chain)
        self._hpc_cache: dict[tuple, np.ndarray] = {}
        self._timed_paths: dict[tuple, tuple] = {}
        # whether paths are timed by the compiled kernel: asked once (an environment look-up)
        self._compiled = _cumulative_hours.compiled

    def hours_along(self, unit: Unit, cells: np.ndarray) -> np.ndarray:
        """Cumulative hours to reach each cell of a path at the unit's speeds."""
        f = self.items
        i = unit.idx
        key = (f.mobility[i], f.speed_kmh[i], f.offroad_speed_kmh[i])
        if f.vehicles[i] > 0 and f.fuel_days[i] <= 0:
            # out of fuel: the crew leaves the vehicles and walks
            key = (MOBILITIES.index("foot"), FOOT_SPEED_KMH, FOOT_OFFROAD_SPEED_KMH)
        hpc = self._hpc_cache.get(key)
        if hpc is None:  # a few speed classes per scenario: each layer once per terrain
            hpc = shared_hours_per_cell(self.terrain, MOBILITIES[key[0]], key[1], key[2])
            self._hpc_cache[key] = hpc
        if len(cells) < 2:
            return np.zeros(len(cells))
        cells = np.asarray(cells)
        out = np.empty(len(cells))
        if self._compiled:
            _cumulative_hours(cells, hpc, self._cols, _STEP_LENGTH, out)
            return out
        hop = np.abs(cells[1:] - cells[:-1])  # np.diff's own sum, without its Python wrapper
        diag = (hop > 1) & (hop != self._cols)  # a diagonal step (not a side one, no stay)
        out[0] = 0.0
        np.cumsum(hpc[cells[1:]] * _STEP_LENGTH[diag.view(np.int8)], out=out[1:])
        return out

    def _timed(self, unit: Unit, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(cells, hours)`` for a path that starts at the unit's cell, cut where it becomes
        impassable for the unit."""
        hours = self.hours_along(unit, cells)
        # a cumulative sum stays infinite (or NaN) once it is: a finite last mark is a path
        # finite all along, and the common case costs no scan
        if len(hours) and not math.isfinite(hours[-1]):
            finite = np.isfinite(hours)  # cut the path where it becomes impassable for the unit
            cut = int(np.argmin(finite))
            cells, hours = cells[:cut], hours[:cut]
        return cells, hours

    def follow(self, unit: Unit, cells: np.ndarray, posture: Posture) -> None:
        """Follow ``cells`` (flat indices, starting at the unit's cell) with ``posture``."""
        f = self.items
        i = unit.idx
        cell = f.row[i] * self._cols + f.col[i]  # the unit's flat cell
        # a read-only path is a cached route (a patrol's round, a route to a base): its timing
        # is kept by (path, speeds) with its first cell, so a unit repeating its round from its
        # start costs a look-up (only read-only int64 arrays are kept, each with its array: a
        # kept id is that array's)
        key = (id(cells), f.mobility[i], f.speed_kmh[i], f.offroad_speed_kmh[i],
               f.fuel_days[i] <= 0)
        hit = self._timed_paths.get(key)
        if hit is None or hit[0] is not cells or hit[1] != cell:
            # by equality, not identity: a compiled kernel's int64 arrays carry an equal dtype
            # that is not numpy's own object, and a new view each time would never be kept
            if type(cells) is not np.ndarray or cells.dtype != _INT64:
                cells = np.asarray(cells, dtype=np.int64)
                key = (id(cells), *key[1:])  # a new array: none kept is it
            if len(cells) == 0 or cells.item(0) != cell:
                cells = np.concatenate(([cell], cells))
                self.set_path(unit, *self._timed(unit, cells))
                f.posture[i] = posture
                return
            if cells.flags.writeable:
                self.set_path(unit, *self._timed(unit, cells))
                f.posture[i] = posture
                return
            if len(self._timed_paths) >= TIMED_PATH_CACHE_SIZE:
                self._timed_paths.clear()
            hit = self._timed_paths[key] = (cells, cell, self._timed(unit, cells))
        # set_path(..., shared=True), written out: the commonest order of all (a round)
        cells, hours = hit[2]
        unit.path, unit.path_hours = cells, hours
        self.paths.write(i, cells, hours, True)
        f.path_pos[i] = 0
        f.path_last[i] = len(cells) - 1
        f.path_clock[i] = 0.0
        f.posture[i] = posture

    def halt(self, unit: Unit, posture: Posture) -> None:
        """Stop ``unit`` where it stands (no route to compute)."""
        f = self.items
        i = unit.idx
        cell = f.row[i] * self._cols + f.col[i]  # the unit's flat cell
        path = unit.path
        if len(path) != 1 or path.item(0) != cell:  # else already halted here
            self.set_path(unit, np.array([cell], dtype=np.int64), _ZERO_HOURS)
        else:
            f.path_clock[i] = 0.0
        f.posture[i] = posture

    def stay(self, unit: Unit, posture: Posture) -> None:
        """:meth:`halt` for a unit that has arrived at the end of its path (a patrol back from
        its round, a convoy at the end of its run), from a decision: it keeps the path it came
        by instead of being given a one-cell path (a path less to write), which is the same
        to everything that reads a path: the unit is not moving (at the path's last index, not
        a mover), its destination is its cell, the path from its index on is its cell alone, a
        sleep until arrival is one hour (its clock has passed the path's hours). The serial of
        its orders does not change, which only the move phase compares (never a decision's
        business). A unit not at the end of its path, or moved off it, is halted."""
        path = unit.path
        last = len(path) - 1
        i = unit.idx
        f = self.items
        if (last > 0 and f.path_pos[i] == last
                and path.item(last) == f.row[i] * self._cols + f.col[i]):  # at its end
            f.posture[i] = posture
        else:
            self.halt(unit, posture)

    def set_path(self, unit: Unit, cells: np.ndarray, hours: np.ndarray,
                 shared: bool = False) -> None:
        """Give ``unit`` a timed path, starting now (``shared``: a cached timed route, see
        :meth:`PathBook.write`)."""
        i = unit.idx
        unit.path, unit.path_hours = cells, hours
        self.paths.write(i, cells, hours, shared)
        f = self.items
        f.path_pos[i] = 0
        f.path_last[i] = len(cells) - 1
        f.path_clock[i] = 0.0

    def move(self, unit: Unit, target: int, posture: Posture, *, often: bool = False) -> bool:
        """Route to ``target`` over the cost field of the unit's mobility, avoiding barred zones;
        False if there is no route."""
        f = self.items
        i = unit.idx
        mob = MOBILITIES[f.mobility[i]]
        barred = self.barred_zones[f.faction[i]]
        source = f.row[i] * self._cols + f.col[i]  # the unit's flat cell
        if type(target) is not int:  # (int() costs more than the check)
            target = int(target)
        cells = self.router.local_path(source, target, mob, barred, cache=often)
        if len(cells) == 0:
            return False
        self.follow(unit, cells, posture)
        return True


@kernel
def _cumulative_hours(cells, hpc, cols, step_length, out):
    """``out[k]``: hours to reach ``cells[k]`` of a path from ``cells[0]`` (``out[0] = 0``):
    the running sum, in path order, of ``hpc[cells[k]] * step_length[d]`` (``d = 1`` for a
    diagonal step, whose flat hop is neither 1 nor ``cols``; 0 for a side step or a stay) --
    ``Orders.hours_along``'s products and ``np.cumsum`` (a sequential sum), operation for
    operation, so the hours are the numpy path's to the bit."""
    out[0] = 0.0
    total = 0.0
    for k in range(1, len(cells)):
        hop = abs(cells[k] - cells[k - 1])
        step = step_length[1] if hop > 1 and hop != cols else step_length[0]
        x = hpc[cells[k]] * step
        total = x if k == 1 else total + x
        out[k] = total
