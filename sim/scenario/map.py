"""The map section of a scenario: its pydantic models and its own checks (shape, references
between places, roads, areas and zones). Pure: a MapSpec in, a list of problems out."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import (
    Field,
    ValidationInfo,
    model_validator,
)

from sim.scenario.fields import FiniteFloat, Int, Name, PointRef, _defer, _Model, _unknown
from sim.scenario.paths import Loc, Problem, render_path
from sim.scenario.vocab import AreaKind, Ground, PlaceKind, RoadClass, WaterKind
from sim.world.geo import Grid

#: Default town footprint radius by place kind, used when `radius_km` is omitted.
_KM_PER_DEG_LAT = 111.32
#: Largest grid a map may have (cells). A 1 km theatre of 460 x 380 km has about 175,000.
MAX_CELLS = 8_000_000
#: Largest lat or lon extent of a map box, in degrees.
MAX_SPAN_DEG = 30.0
#: Largest ASCII grid (characters = cells). A run needs about 350 bytes a cell (3 million cells
#: took 1 GB), and a grid typed by hand is read by people: 1000 x 1000 is far past either.
#: Geographic maps (`box`) go up to MAX_CELLS.
MAX_ASCII_CELLS = 1_000_000

PLACE_RADIUS_KM: dict[str, float] = {
    "city": 4.0, "town": 1.5, "village": 0.5, "camp": 0.5, "airbase": 1.5, "base": 0.5,
}

#: The validation context key that makes model validators skip cross-reference checks, so
#: `parse_scenario` can run them itself and report every problem with its full path.
class BoxSpec(_Model):
    """A lat/lon box in degrees."""

    south: FiniteFloat = Field(ge=-90, le=90)
    west: FiniteFloat = Field(ge=-180, le=180)
    north: FiniteFloat = Field(ge=-90, le=90)
    east: FiniteFloat = Field(ge=-180, le=180)

    @model_validator(mode="after")
    def _ordered(self) -> BoxSpec:
        if self.south >= self.north:
            raise ValueError(f"south ({self.south}) must be less than north ({self.north})")
        if self.west >= self.east:
            raise ValueError(f"west ({self.west}) must be less than east ({self.east})")
        return self

    def contains(self, lat: float, lon: float, tol_deg: float = 1e-9) -> bool:
        """True if the point is inside the box (edges included)."""
        return (self.south - tol_deg <= lat <= self.north + tol_deg
                and self.west - tol_deg <= lon <= self.east + tol_deg)


class LatLonSpec(_Model):
    """A point in degrees."""

    lat: FiniteFloat = Field(ge=-90, le=90)
    lon: FiniteFloat = Field(ge=-180, le=180)


class CellSpec(_Model):
    """What one legend character of an ASCII map means."""

    ground: Ground = "flat"
    road: RoadClass | None = None
    water: WaterKind | None = None
    cave: bool = False
    town: str | None = None        # place name this town cell belongs to
    border: str | None = None      # border name
    crossing: bool = False         # a crossing point on `border`
    zone: str | None = None        # zone name

    @model_validator(mode="after")
    def _crossing_needs_border(self) -> CellSpec:
        if self.crossing and self.border is None:
            raise ValueError("crossing: true needs a border name")
        return self


class PlaceSpec(_Model):
    """A named point (town, oasis, outpost, crossing...): `lat`+`lon`, or `cell` on ASCII maps."""

    name: Name
    kind: PlaceKind
    lat: FiniteFloat | None = Field(default=None, ge=-90, le=90)
    lon: FiniteFloat | None = Field(default=None, ge=-180, le=180)
    cell: tuple[Annotated[Int, Field(ge=0)], Annotated[Int, Field(ge=0)]] | None = None
    oasis: bool = False
    well: bool = False
    radius_km: FiniteFloat | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _position_and_water(self) -> PlaceSpec:
        has_ll = self.lat is not None or self.lon is not None
        if has_ll and (self.lat is None or self.lon is None):
            raise ValueError("give both lat and lon")
        if has_ll and self.cell is not None:
            raise ValueError("give either lat/lon or cell, not both")
        if not has_ll and self.cell is None:
            raise ValueError(
                "missing position: give lat and lon (or cell [row, col] on ASCII maps)")
        # kinds oasis/well imply the water flag, so consumers only look at the flags
        if self.kind == "oasis":
            self.oasis = True
        if self.kind == "well":
            self.well = True
        if self.radius_km is None:
            self.radius_km = PLACE_RADIUS_KM.get(self.kind, 0.0)
        return self

    @property
    def water(self) -> WaterKind | None:
        """'oasis', 'well' or None (an oasis wins over a well)."""
        return "oasis" if self.oasis else ("well" if self.well else None)


class RoadSpec(_Model):
    """A road polyline through places and/or [lat, lon] points. YAML key `class` = field `cls`."""

    name: Name
    cls: RoadClass = Field(default="highway", alias="class")
    via: list[PointRef] = Field(min_length=2)


class RiverSpec(_Model):
    """A river polyline; cells it crosses become ground `river` (water everywhere along it)."""

    name: Name
    width_km: FiniteFloat = Field(default=0.5, gt=0)
    points: list[PointRef] = Field(min_length=2)


class BorderSpec(_Model):
    """An international border polyline. `sides[0]` is left of the line's direction."""

    name: Name
    sides: tuple[Name, Name]
    points: list[PointRef] = Field(min_length=2)
    crossings: list[Name] = Field(default_factory=list)   # place names on the border

    @model_validator(mode="after")
    def _distinct_sides(self) -> BorderSpec:
        if self.sides[0] == self.sides[1]:
            raise ValueError(f"sides must differ, got {list(self.sides)}")
        return self


class CircleSpec(_Model):
    """A circle: `around` a place, or at `lat`/`lon`."""

    around: Name | None = None
    lat: FiniteFloat | None = Field(default=None, ge=-90, le=90)
    lon: FiniteFloat | None = Field(default=None, ge=-180, le=180)
    radius_km: FiniteFloat = Field(gt=0)

    @model_validator(mode="after")
    def _centre(self) -> CircleSpec:
        has_ll = self.lat is not None or self.lon is not None
        if has_ll and (self.lat is None or self.lon is None):
            raise ValueError("give both lat and lon")
        if has_ll == (self.around is not None):
            raise ValueError("give exactly one of around (a place name) or lat+lon")
        return self


_AREA_SHAPES = ("polygon", "circle", "box", "points", "within")


class AreaSpec(_Model):
    """A named area; exactly one shape: polygon, circle, box, points, or `within` (caves only)."""

    name: Name
    kind: AreaKind
    polygon: list[PointRef] | None = Field(default=None, min_length=3)
    circle: CircleSpec | None = None
    box: BoxSpec | None = None
    points: list[PointRef] | None = Field(default=None, min_length=1)
    within: Name | None = None      # caves scattered (seeded) inside another area
    count: Int | None = Field(default=None, ge=1)   # how many cave cells `within` scatters

    @model_validator(mode="after")
    def _one_shape(self) -> AreaSpec:
        given = [s for s in _AREA_SHAPES if getattr(self, s) is not None]
        if len(given) != 1:
            which = ", ".join(given) if given else "none"
            raise ValueError(
                f"give exactly one shape of polygon, circle, box, points, within (got {which})")
        if self.within is not None and self.kind != "caves":
            raise ValueError("within: is only for kind: caves (scatters cave cells in an area)")
        if self.count is not None and self.within is None:
            raise ValueError("count: is only used with within:")
        if self.within is not None and self.count is None:
            self.count = 10
        return self

    @property
    def shape(self) -> str:
        """Which shape field is set: polygon, circle, box, points or within."""
        return next(s for s in _AREA_SHAPES if getattr(self, s) is not None)


class ZoneSpec(_Model):
    """A zone barred to some factions and guarded by one. Shape may be omitted on ASCII maps."""

    name: Name
    circle: CircleSpec | None = None
    polygon: list[PointRef] | None = Field(default=None, min_length=3)
    box: BoxSpec | None = None
    barred: list[Name] = Field(default_factory=list)    # faction names
    guarded_by: Name | None = None                      # faction name

    @model_validator(mode="after")
    def _at_most_one_shape(self) -> ZoneSpec:
        given = [s for s in ("circle", "polygon", "box") if getattr(self, s) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one shape of circle, polygon, box (got {given})")
        return self


class TextureSpec(_Model):
    """Seeded noise patches of sand / rugged ground laid over flat ground."""

    seed: Int = Field(default=0, ge=0)
    sand_fraction: FiniteFloat = Field(default=0.0, ge=0, le=1)
    rugged_fraction: FiniteFloat = Field(default=0.0, ge=0, le=1)
    scale_km: FiniteFloat = Field(default=10.0, gt=0)


class MapSpec(_Model):
    """The map: a geographic `box`, or an `ascii` grid with `centre` and `legend`."""

    cell_km: FiniteFloat = Field(gt=0)
    box: BoxSpec | None = None
    centre: LatLonSpec | None = None
    ascii: str | None = None
    legend: dict[str, CellSpec] = Field(default_factory=dict)
    places: list[PlaceSpec] = Field(default_factory=list)
    roads: list[RoadSpec] = Field(default_factory=list)
    rivers: list[RiverSpec] = Field(default_factory=list)
    borders: list[BorderSpec] = Field(default_factory=list)
    areas: list[AreaSpec] = Field(default_factory=list)
    zones: list[ZoneSpec] = Field(default_factory=list)
    texture: TextureSpec | None = None

    @model_validator(mode="after")
    def _kind_and_refs(self, info: ValidationInfo) -> MapSpec:
        if _defer(info):
            return self  # parse_scenario runs these checks itself, one line per problem
        problems = _map_shape_problems(self)
        if not problems:
            problems = map_reference_problems(self)
        if problems:
            raise ValueError("; ".join(f"{render_path(p)}: {m}" if p else m for p, m in problems))
        return self

    @property
    def is_ascii(self) -> bool:
        """True for an ASCII tactical map."""
        return self.ascii is not None

    @property
    def ascii_rows(self) -> list[str]:
        """The ASCII grid's rows (row 0 = north), without the surrounding blank lines."""
        return _ascii_rows(self.ascii or "")

    @property
    def grid_shape(self) -> tuple[int, int] | None:
        """(rows, cols) of ASCII maps; None for box maps (their shape comes from the projection)."""
        if self.ascii is None:
            return None
        rows = self.ascii_rows
        return (len(rows), len(rows[0]) if rows else 0)

    @property
    def bounds(self) -> BoxSpec:
        """The map's lat/lon box: `box`, or the extent of the ASCII grid about `centre`."""
        if self.box is not None:
            return self.box
        assert self.centre is not None and self.ascii is not None
        rows, cols = self.grid_shape or (0, 0)
        return ascii_box(self.centre.lat, self.centre.lon, self.cell_km, rows, cols)

    def place(self, name: str) -> PlaceSpec:
        """The place called `name` (KeyError if none)."""
        for p in self.places:
            if p.name == name:
                return p
        raise KeyError(name)

    def area(self, name: str) -> AreaSpec:
        """The area called `name` (KeyError if none)."""
        for a in self.areas:
            if a.name == name:
                return a
        raise KeyError(name)


# --------------------------------------------------------------------------------------------
# Factions
# --------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------
# Geometry helpers (bounds of ASCII maps)
# --------------------------------------------------------------------------------------------


def _ascii_rows(text: str) -> list[str]:
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def ascii_box(centre_lat: float, centre_lon: float, cell_km: float, rows: int, cols: int
              ) -> BoxSpec:
    """The lat/lon box covered by a rows x cols grid of `cell_km` cells centred on a point.

    The grid's own projection (:class:`sim.world.geo.Grid`) gives the box; a degenerate grid
    (no rows or columns, which validation reports on its own) falls back to an equirectangular
    estimate (111.32 km per degree of latitude, cos(lat) shrink for longitude)."""
    try:
        s, w, n, e = Grid(centre_lat, centre_lon, cell_km, rows, cols).box
        return BoxSpec.model_construct(south=s, west=w, north=n, east=e)
    except (ValueError, ArithmeticError):
        pass
    half_lat = rows * cell_km / 2.0 / _KM_PER_DEG_LAT
    coslat = max(math.cos(math.radians(centre_lat)), 1e-6)
    half_lon = cols * cell_km / 2.0 / (_KM_PER_DEG_LAT * coslat)
    return BoxSpec.model_construct(
        south=max(centre_lat - half_lat, -90.0), north=min(centre_lat + half_lat, 90.0),
        west=max(centre_lon - half_lon, -180.0), east=min(centre_lon + half_lon, 180.0),
    )


# --------------------------------------------------------------------------------------------
# Cross-field and reference checks (pure: model in, list of (path, message) out)
# --------------------------------------------------------------------------------------------


def _map_shape_problems(m: MapSpec) -> list[Problem]:
    """Map-internal structure: box xor ascii, ascii grid well formed, legend complete."""
    out: list[Problem] = []
    if m.box is not None:
        b = m.box
        if b.north - b.south > MAX_SPAN_DEG or b.east - b.west > MAX_SPAN_DEG:
            out.append((("box",), f"a map box may span at most {MAX_SPAN_DEG:g} degrees each way "
                                  "(the projection is for theatre-sized maps)"))
        elif not -89.0 < (b.south + b.north) / 2 < 89.0:
            out.append((("box",), "the map must be centred between 89S and 89N"))
        else:
            coslat = math.cos(math.radians(min(abs(b.south), abs(b.north))
                                           if b.south * b.north > 0 else 0.0))
            rows = (b.north - b.south) * _KM_PER_DEG_LAT / m.cell_km
            cols = (b.east - b.west) * _KM_PER_DEG_LAT * coslat / m.cell_km
            if rows * cols > MAX_CELLS:
                out.append((("cell_km",), f"the map would have about {rows * cols:,.0f} cells "
                            f"({rows:,.0f} x {cols:,.0f}); the limit is {MAX_CELLS:,}: use a "
                            "larger cell_km or a smaller box"))
    if m.centre is not None and not -89.0 < m.centre.lat < 89.0:
        out.append((("centre", "lat"), "the map must be centred between 89S and 89N"))
    if (m.box is None) == (m.ascii is None):
        got = "both" if m.box is not None else "neither"
        out.append(((), f"give exactly one of box (geographic map) or ascii (tactical grid), "
                        f"got {got}"))
    if m.ascii is None:
        if m.centre is not None:
            out.append((("centre",), "centre is only used with ascii maps"))
        if m.legend:
            out.append((("legend",), "legend is only used with ascii maps"))
        for i, p in enumerate(m.places):
            if p.cell is not None:
                out.append((("places", i, "cell"),
                            "cell positions need an ascii map; give lat and lon"))
        return out
    if m.centre is None:
        out.append((("centre",), "centre {lat, lon} is required with ascii"))
    for ch in m.legend:
        if len(ch) != 1:
            out.append((("legend", ch), f"legend keys must be single characters, got {ch!r}"))
    rows = _ascii_rows(m.ascii)
    if not rows:
        out.append((("ascii",), "ascii map has no rows"))
        return out
    width = len(rows[0])
    cells = sum(len(row) for row in rows)
    if cells > MAX_ASCII_CELLS:
        out.append((("ascii",), f"the ascii map has {cells:,} cells ({len(rows):,} rows); the "
                                f"limit is {MAX_ASCII_CELLS:,}: use a box map for a large area"))
        return out
    span_deg = max(len(rows), width) * m.cell_km / _KM_PER_DEG_LAT
    if span_deg > MAX_SPAN_DEG:
        out.append((("cell_km",), f"the ascii map spans about {span_deg:,.0f} degrees "
                                  f"({max(len(rows), width):,} cells of {m.cell_km:g} km); a map "
                                  f"may span at most {MAX_SPAN_DEG:g} degrees each way"))
    for r, row in enumerate(rows):
        if len(row) != width:
            hint = " (trailing whitespace?)" if row != row.rstrip() else ""
            out.append((("ascii",), f"ragged rows: row {r} has {len(row)} columns, row 0 has "
                                    f"{width}{hint}"))
    seen: set[str] = set()
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            if ch not in m.legend and ch not in seen:
                seen.add(ch)
                out.append((("ascii",), f"character {ch!r} (row {r}, col {c}) is not in "
                                        f"map.legend"))
    return out


def place_names(m: MapSpec) -> set[str]:
    """Declared places plus towns named only by ASCII legend cells (terrain makes them places)."""
    return {p.name for p in m.places} | {c.town for c in m.legend.values() if c.town is not None}


def map_reference_problems(m: MapSpec) -> list[Problem]:
    """Names unique, every referenced place/area/border/zone exists, every point inside the map.

    Paths are relative to the map. Assumes `_map_shape_problems(m)` is empty for bounds checks."""
    out: list[Problem] = []
    places = place_names(m)
    areas = {a.name for a in m.areas}
    borders = {b.name for b in m.borders}
    zones = {z.name for z in m.zones}
    for field in ("places", "roads", "rivers", "borders", "areas", "zones"):
        seen: set[str] = set()
        for i, item in enumerate(getattr(m, field)):
            if item.name in seen:
                out.append(((field, i, "name"), f"duplicate name '{item.name}' in map.{field}"))
            seen.add(item.name)
    for i, a in enumerate(m.areas):
        if a.name in places:
            out.append((("areas", i, "name"), f"'{a.name}' names both a place and an area; "
                                              "positions and tactics could not tell them apart"))
    try:
        bounds: BoxSpec | None = m.bounds if not _map_shape_problems(m) else None
    except Exception:
        bounds = None
    shape = m.grid_shape

    def where(lat: float, lon: float) -> str:
        assert bounds is not None
        return (f"[{lat}, {lon}] is outside the map box "
                f"(lat {bounds.south:.4f}..{bounds.north:.4f},"
                f" lon {bounds.west:.4f}..{bounds.east:.4f})")

    def point(loc: Loc, pt: Any) -> None:
        if isinstance(pt, str):
            if pt not in places:
                out.append((loc, _unknown("place", pt, places)))
        elif bounds is not None and not bounds.contains(pt[0], pt[1]):
            out.append((loc, where(pt[0], pt[1])))

    def circle(loc: Loc, c: CircleSpec) -> None:
        if c.around is not None:
            if c.around not in places:
                out.append(((*loc, "around"), _unknown("place", c.around, places)))
        elif bounds is not None and not bounds.contains(c.lat, c.lon):
            out.append((loc, "centre " + where(c.lat, c.lon)))

    def box(loc: Loc, b: BoxSpec) -> None:
        if bounds is not None and not (bounds.contains(b.south, b.west)
                                       and bounds.contains(b.north, b.east)):
            out.append((loc, f"box {b.south}..{b.north}, {b.west}..{b.east} is not inside the map "
                             f"box (lat {bounds.south:.4f}..{bounds.north:.4f}, "
                             f"lon {bounds.west:.4f}..{bounds.east:.4f})"))

    for i, p in enumerate(m.places):
        if p.lat is not None and p.lon is not None and bounds is not None \
                and not bounds.contains(p.lat, p.lon):
            out.append((("places", i), f"place '{p.name}' at " + where(p.lat, p.lon)))
        if p.cell is not None and shape is not None and not (
                p.cell[0] < shape[0] and p.cell[1] < shape[1]):
            out.append((("places", i, "cell"), f"cell {list(p.cell)} is outside the {shape[0]} x "
                                               f"{shape[1]} ascii grid"))
    for i, r in enumerate(m.roads):
        for j, pt in enumerate(r.via):
            point(("roads", i, "via", j), pt)
    for i, rv in enumerate(m.rivers):
        for j, pt in enumerate(rv.points):
            point(("rivers", i, "points", j), pt)
    for i, b in enumerate(m.borders):
        for j, pt in enumerate(b.points):
            point(("borders", i, "points", j), pt)
        for j, name in enumerate(b.crossings):
            if name not in places:
                out.append((("borders", i, "crossings", j), _unknown("place", name, places)))
    for i, a in enumerate(m.areas):
        loc: Loc = ("areas", i)
        if a.polygon is not None:
            for j, pt in enumerate(a.polygon):
                point((*loc, "polygon", j), pt)
        if a.points is not None:
            for j, pt in enumerate(a.points):
                point((*loc, "points", j), pt)
        if a.circle is not None:
            circle((*loc, "circle"), a.circle)
        if a.box is not None:
            box((*loc, "box"), a.box)
        if a.within is not None:
            if a.within not in areas:
                out.append(((*loc, "within"), _unknown("area", a.within, areas)))
            elif a.within == a.name:
                out.append(((*loc, "within"), "an area cannot be within itself"))
            elif m.area(a.within).within is not None:
                out.append(((*loc, "within"), f"area '{a.within}' is itself a within-scatter; "
                                               "within needs an area with a shape"))
    legend_zones = {c.zone for c in m.legend.values() if c.zone is not None}
    for i, z in enumerate(m.zones):
        loc = ("zones", i)
        if z.circle is not None:
            circle((*loc, "circle"), z.circle)
        if z.polygon is not None:
            for j, pt in enumerate(z.polygon):
                point((*loc, "polygon", j), pt)
        if z.box is not None:
            box((*loc, "box"), z.box)
        if z.circle is None and z.polygon is None and z.box is None and z.name not in legend_zones:
            out.append((loc, f"zone '{z.name}' has no shape: give circle, polygon or box"
                             + (" (or mark its cells in the ascii legend)" if m.is_ascii else "")))
    for ch, c in m.legend.items():
        if c.border is not None and c.border not in borders:
            out.append((("legend", ch, "border"), _unknown("border", c.border, borders)))
        if c.zone is not None and c.zone not in zones:
            out.append((("legend", ch, "zone"), _unknown("zone", c.zone, zones)))
    return out


#: For each tactic kind, which fields name what: place, area, place_or_area, road, border, zone,
