"""Road state during a run: the road segments (one per road-graph edge) and which are closed.

A segment is closed until an hour: an ambush lying by it closes it hour by hour, a sprung ambush
for ``closure_hours``. Tactics close roads, metrics read the closures; the state itself lives
here, in the world, not in either of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.world.raster import Terrain


@dataclass(frozen=True)
class RoadSegment:
    """One road-graph edge: the road's name, its end nodes, its length and its flat cells."""

    road: str
    a: str
    b: str
    length_km: float
    cells: np.ndarray


def segments_of(terrain: Terrain) -> list[RoadSegment]:
    """Road segments (road-graph edges) with their name, length and cells."""
    segs = []
    for u, v, data in terrain.road_graph.edges(data=True):
        cells = np.asarray(data.get("cells", []))
        if cells.ndim == 2 and len(cells):
            flat = cells[:, 0].astype(np.int64) * terrain.cols + cells[:, 1]
        else:
            flat = cells.astype(np.int64)
        segs.append(RoadSegment(road=str(data.get("road", "road")), a=str(u), b=str(v),
                                length_km=float(data.get("length_km", 0.0)), cells=flat))
    return segs


class RoadState:
    """The segments of a terrain's roads and the hour until which each is closed."""

    def __init__(self, terrain: Terrain):
        self.segments = segments_of(terrain)
        self.road_names = sorted({s.road for s in self.segments})
        self.segment_km = np.array([s.length_km for s in self.segments], dtype=float)
        self.closed_until = np.full(len(self.segments), -1, dtype=np.int64)
        #: The latest hour any segment is closed until (``closed_until.max()``, or -1), kept
        #: by :meth:`close`: most hours nothing is closed, and this tells so without a scan.
        self.any_closed_until = -1
        # int32: half the bytes of a per-cell layer every run allocates (11.5 MB at 0.25 km)
        self._segment_of_cell = np.full(terrain.rows * terrain.cols, -1, dtype=np.int32)
        for i, s in enumerate(self.segments):
            self._segment_of_cell[s.cells] = i
        self._cells_of: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}

    def segment_of(self, cell: int) -> int:
        """Index of the segment through ``cell``; -1 off the roads."""
        return int(self._segment_of_cell[cell]) if len(self.segments) else -1

    def close(self, cell: int, until_hour: int) -> int:
        """Close the segment through ``cell`` until ``until_hour``; its index, -1 if no road."""
        seg = self.segment_of(cell)
        if seg >= 0:
            self.closed_until[seg] = max(self.closed_until[seg], until_hour)
            self.any_closed_until = max(self.any_closed_until, int(until_hour))
        return seg

    def closed(self, hour: int) -> np.ndarray:
        """Bool per segment: closed during ``hour``."""
        return self.closed_until > hour

    def open_count(self, hour: int) -> int:
        """Segments open at ``hour``."""
        return int((self.closed_until <= hour).sum())

    def cells_of(self, road: str, segment: Sequence[str] | None = None) -> np.ndarray:
        """Sorted flat cells of ``road`` (only the segment between the two named places if
        ``segment`` is given)."""
        key = (road, tuple(segment or ()))
        cells = self._cells_of.get(key)
        if cells is None:
            segs = [s for s in self.segments
                    if s.road == road and (not segment or {s.a, s.b} == set(segment))]
            cells = np.concatenate([s.cells for s in segs]) if segs else np.empty(0, np.int64)
            cells = self._cells_of[key] = np.unique(cells)
        return cells
