"""What part of the map a frame shows, and from whose side: named regions (the whole map,
zones, river valleys, named areas, towns), views that follow an insurgent unit, and the
viewpoints (the umpire, or what one faction knows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.engine.model import DesertModel

WHOLE_MAP = "whole map"
FOLLOW_PREFIX = "around "
FOLLOW_KM = 80.0
UMPIRE = "umpire: all units"
VIEW_SUFFIX = ": what it knows"


@dataclass(frozen=True)
class View:
    """A rectangle of the map in cell coordinates: rows ``r0..r1``, columns ``c0..c1`` (edges)."""

    r0: float
    r1: float
    c0: float
    c1: float

    @property
    def aspect(self) -> float:
        return (self.r1 - self.r0) / (self.c1 - self.c0)

    @property
    def width_cells(self) -> float:
        return self.c1 - self.c0


def _fit(terrain, r0: float, r1: float, c0: float, c1: float, margin: float = 0.15,
         min_cells: float = 12.0) -> View:
    """The box grown by ``margin``, to at least ``min_cells``, aspect kept in 0.6..1.2, clipped."""
    rows, cols = terrain.shape
    h = max((r1 - r0) * (1 + 2 * margin), min_cells)
    w = max((c1 - c0) * (1 + 2 * margin), min_cells)
    h, w = max(h, 0.6 * w), max(w, h / 1.2)
    h, w = min(h, rows), min(w, cols)
    rc, cc = (r0 + r1) / 2.0, (c0 + c1) / 2.0
    top = min(max(rc - h / 2.0, 0.0), rows - h) - 0.5
    left = min(max(cc - w / 2.0, 0.0), cols - w) - 0.5
    return View(top, top + h, left, left + w)


def whole_view(terrain) -> View:
    """The whole map."""
    rows, cols = terrain.shape
    return View(-0.5, rows - 0.5, -0.5, cols - 0.5)


def map_regions(model: DesertModel) -> dict[str, View]:
    """Named views of the model's map: the whole map, exclusion zones, rivers, named areas
    (ranges, regions) and towns; small ones only where they are well inside the map."""
    t = model.terrain
    rows, cols = t.shape
    km = t.grid.cell_km
    out: dict[str, View] = {WHOLE_MAP: whole_view(t)}

    def add(name: str, mask_or_box) -> None:
        if isinstance(mask_or_box, np.ndarray):
            rr, cc = np.nonzero(mask_or_box)
            if not len(rr):
                return
            box = (rr.min(), rr.max(), cc.min(), cc.max())
        else:
            box = mask_or_box
        view = _fit(t, *box)
        if view.width_cells * view.aspect * view.width_cells < 0.6 * rows * cols:
            out.setdefault(name, view)

    for i, z in enumerate(t.zones):
        add(z.name, t.zone == i)
    for river in getattr(model.spec.map, "rivers", None) or []:
        pts = np.array([p for p in river.points if not isinstance(p, str)], dtype=float)
        if len(pts):
            r, c = t.grid.cell_of(pts[:, 0], pts[:, 1])
            add(f"{river.name} valley", (np.min(r), np.max(r), np.min(c), np.max(c)))
    for name, kind in t.area_kinds.items():
        if kind in ("rugged", "region", "irrigated", "wadi"):
            add(name, t.areas[name])
    half = 35.0 / km  # a 70 km square around a town
    for p in sorted(t.places.values(), key=lambda p: (p.kind not in ("city", "town"), p.name)):
        if p.kind in ("city", "town", "base", "airbase", "outpost"):
            add(p.name, (p.row - half, p.row + half, p.col - half, p.col + half))
    return out


def follow_names(model: DesertModel) -> list[str]:
    """Region names that follow a unit: the living units of insurgent factions."""
    ins = {f for f, s in model.spec.factions.items() if s.role == "insurgent"}
    alive = model.force.alive
    return [FOLLOW_PREFIX + u.name for u in model.units if u.faction in ins and alive[u.idx]]


def follow_view(model: DesertModel, unit_name: str) -> View | None:
    """An ``FOLLOW_KM`` square around a unit, its centre snapped to a quarter of the square (so
    the cached terrain of the view is reused while the unit stays near the centre)."""
    unit = next((u for u in model.units if u.name == unit_name), None)
    if unit is None:
        return None
    t = model.terrain
    size = min(FOLLOW_KM / t.grid.cell_km, t.rows, t.cols)
    snap = max(size / 4.0, 1.0)
    r, c = unit.rc
    r, c = round(r / snap) * snap, round(c / snap) * snap
    return _fit(t, r - size / 2, r + size / 2, c - size / 2, c + size / 2, margin=0.0)


def resolve_view(model: DesertModel, region: str) -> View:
    """The view named ``region`` (a map region or ``around <unit>``); the whole map if unknown."""
    if region.startswith(FOLLOW_PREFIX):
        view = follow_view(model, region[len(FOLLOW_PREFIX) :])
        if view is not None:
            return view
    return map_regions(model).get(region, whole_view(model.terrain))


def viewpoints(model: DesertModel) -> list[str]:
    """The map's viewpoints: the umpire (everything) and each faction (what it knows)."""
    return [UMPIRE, *(f + VIEW_SUFFIX for f in model.faction_names)]


def observer_of(model: DesertModel, viewpoint: str) -> int | None:
    """The faction index whose knowledge ``viewpoint`` shows; None for the umpire (or unknown)."""
    if viewpoint != UMPIRE and viewpoint.endswith(VIEW_SUFFIX):
        return model.faction_index.get(viewpoint[: -len(VIEW_SUFFIX)])
    return None


def friendly_factions(model: DesertModel, observer: int | None) -> set[str]:
    """The factions whose own units and events a viewpoint shows: every faction for the umpire
    (``observer`` None), else those not hostile to the observer."""
    if observer is None:
        return set(model.faction_names)
    return {name for i, name in enumerate(model.faction_names) if not model.hostile[observer, i]}
