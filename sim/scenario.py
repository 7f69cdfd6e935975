"""Scenario files: safe YAML loading, typed validation, references, overrides and `extends`.

A scenario is one YAML file (optionally `extends:` another) validated into the pydantic models
below. Every model forbids unknown keys. Names carry their units (`cell_km`, `speed_kmh`).
Problems are reported as one line each, `<file>: <field.path[2].x>: <message>`, collected in a
`ScenarioError`; callers never see a traceback for bad input. See docs/scenario-format.md.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import sys
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

# --------------------------------------------------------------------------------------------
# Enumerations
# --------------------------------------------------------------------------------------------

Ground = Literal["flat", "sand", "rugged", "wadi", "river", "irrigated"]
RoadClass = Literal["highway", "track"]
PlaceKind = Literal[
    "city", "town", "village", "oasis", "well", "outpost", "base", "crossing", "junction",
    "station", "landmark", "camp", "airbase", "rendezvous",
]
AreaKind = Literal["rugged", "sand", "wadi", "irrigated", "caves", "region"]
Mobility = Literal["foot", "offroad", "road"]
Role = Literal["garrison", "insurgent", "neutral"]
UnitKind = Literal["cell", "strongpoint", "patrol", "convoy", "qrf", "border_post", "zone_guard"]
WaterKind = Literal["oasis", "well"]
Schedule = Literal["day", "night", "always"]

#: Default town footprint radius by place kind, used when `radius_km` is omitted.
PLACE_RADIUS_KM: dict[str, float] = {
    "city": 4.0, "town": 1.5, "village": 0.5, "camp": 0.5, "airbase": 1.5, "base": 0.5,
}

#: The validation context key that makes model validators skip cross-reference checks, so
#: `parse_scenario` can run them itself and report every problem with its full path.
_DEFER_REFS = "defer_refs"

_KM_PER_DEG_LAT = 111.32
#: Largest grid a map may have (cells). A 1 km theatre of 460 x 380 km has about 175,000.
MAX_CELLS = 8_000_000
#: Largest lat or lon extent of a map box, in degrees.
MAX_SPAN_DEG = 30.0


def _check_point(value: Any) -> Any:
    """Accept a place name or `[lat, lon]`; reject anything else with one clear message."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("empty place name")
        return value
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            raise ValueError(f"expected a place name or [lat, lon], got {list(value)!r}")
        lat, lon = float(value[0]), float(value[1])
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise ValueError(f"coordinates must be finite, got [{lat}, {lon}]")
        if not -90.0 <= lat <= 90.0:
            raise ValueError(f"latitude {lat} outside [-90, 90] (points are [lat, lon])")
        if not -180.0 <= lon <= 180.0:
            raise ValueError(f"longitude {lon} outside [-180, 180] (points are [lat, lon])")
        return (lat, lon)
    raise ValueError(f"expected a place name or [lat, lon], got {type(value).__name__} {value!r}")


#: A place name or a `(lat, lon)` pair in degrees.
PointRef = Annotated[str | tuple[float, float], BeforeValidator(_check_point)]
Name = Annotated[str, Field(min_length=1)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class _Model(BaseModel):
    """Base: unknown keys are errors; `class` style aliases may also be filled by field name."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _defer(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(_DEFER_REFS))


# --------------------------------------------------------------------------------------------
# Map
# --------------------------------------------------------------------------------------------


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
    cell: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]] | None = None
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
    count: int | None = Field(default=None, ge=1)   # how many cave cells `within` scatters

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

    seed: int = Field(default=0, ge=0)
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


class FactionSpec(_Model):
    """A side. `hostile` lists factions it fights (hostility is made symmetric by the engine)."""

    role: Role
    hostile: list[Name] = Field(default_factory=list)
    colour: str = Field(default="#7f7f7f", pattern=r"^#[0-9a-fA-F]{6}$")
    comms_delay_hours: FiniteFloat = Field(default=1.0, ge=0)
    border_security: FiniteFloat = Field(default=0.0, ge=0, le=1)


# --------------------------------------------------------------------------------------------
# Tactics (discriminated union on `kind`)
# --------------------------------------------------------------------------------------------


class HideTactic(_Model):
    """Insurgent: stay concealed in the given areas (default: where it starts)."""

    kind: Literal["hide"]
    hides: list[Name] = Field(default_factory=list)           # area names


class NightRaidTactic(_Model):
    """Insurgent: move at night to a target place, strike, fall back to a hide."""

    kind: Literal["night_raid"]
    targets: list[Name] = Field(min_length=1)                  # place names
    hides: list[Name] = Field(default_factory=list)            # area names
    max_distance_km: FiniteFloat = Field(default=80.0, gt=0)
    abort_if_detected: bool = True


class AmbushTactic(_Model):
    """Insurgent: wait beside a road (optionally one stretch of it) and hit a passing convoy."""

    kind: Literal["ambush"]
    road: Name                                                  # road name
    segment: tuple[Name, Name] | None = None                    # two places on the road
    closure_hours: FiniteFloat = Field(default=12.0, ge=0)
    min_convoy_strength: int = Field(default=0, ge=0)
    max_odds: FiniteFloat = Field(default=2.0, gt=0)   # spring only if target <= odds x own
    wait_hours: FiniteFloat = Field(default=20.0, gt=0)  # how long an ambush lies in wait


class SeizeTownTactic(_Model):
    """Insurgent: gather groups, then take and hold a town."""

    kind: Literal["seize_town"]
    towns: list[Name] = Field(min_length=1)                    # place names
    gather_at: Name | None = None                               # area or place name
    hold_hours: FiniteFloat = Field(default=24.0, ge=0)
    min_group: int = Field(default=2, ge=1)


class BorderCrossingTactic(_Model):
    """Insurgent: cross a border to a rendezvous, at night, every few nights."""

    kind: Literal["border_crossing"]
    border: Name                                                # border name
    rendezvous: Name                                            # place name
    use_crossings: bool = False
    nights_between: int = Field(default=2, ge=0)


class RefugeTactic(_Model):
    """Insurgent: shelter in zones barred to its enemies (default: any such zone)."""

    kind: Literal["refuge"]
    zones: list[Name] = Field(default_factory=list)            # zone names


class HoldTactic(_Model):
    """Garrison: stay at the post and defend it."""

    kind: Literal["hold"]


class PatrolTactic(_Model):
    """Garrison: drive a route of places / points on a schedule."""

    kind: Literal["patrol"]
    route: list[PointRef] = Field(min_length=2)
    schedule: Schedule = "always"
    period_hours: FiniteFloat = Field(default=24.0, gt=0)


class EscortTactic(_Model):
    """Garrison: escort convoys along a route every so many hours."""

    kind: Literal["escort"]
    route: list[PointRef] = Field(min_length=2)
    depart_every_hours: FiniteFloat = Field(default=24.0, gt=0)
    escort_strength: int = Field(default=8, ge=0)


class PursueTactic(_Model):
    """Garrison: chase detected enemies up to a range from base, then return."""

    kind: Literal["pursue"]
    max_range_km: FiniteFloat = Field(default=80.0, gt=0)
    base: Name | None = None                                    # place name


class SweepTactic(_Model):
    """Garrison: search an area square by square, optionally with a cordon."""

    kind: Literal["sweep"]
    area: Name                                                  # area name
    square_km: FiniteFloat = Field(default=5.0, gt=0)
    hours_per_square: FiniteFloat = Field(default=6.0, gt=0)
    cordon: bool = True


class BorderWatchTactic(_Model):
    """Garrison: watch a border and intercept crossings."""

    kind: Literal["border_watch"]
    border: Name                                                # border name


class ZoneGuardTactic(_Model):
    """Garrison: guard a zone and engage barred factions inside it."""

    kind: Literal["zone_guard"]
    zone: Name                                                  # zone name


InsurgentTactic = (
    HideTactic | NightRaidTactic | AmbushTactic | SeizeTownTactic | BorderCrossingTactic
    | RefugeTactic
)
GarrisonTactic = (
    HoldTactic | PatrolTactic | EscortTactic | PursueTactic | SweepTactic | BorderWatchTactic
    | ZoneGuardTactic
)
TacticSpec = Annotated[
    HideTactic | NightRaidTactic | AmbushTactic | SeizeTownTactic | BorderCrossingTactic
    | RefugeTactic | HoldTactic | PatrolTactic | EscortTactic | PursueTactic | SweepTactic
    | BorderWatchTactic | ZoneGuardTactic,
    Field(discriminator="kind"),
]

INSURGENT_TACTICS = frozenset(
    ["hide", "night_raid", "ambush", "seize_town", "border_crossing", "refuge"])
GARRISON_TACTICS = frozenset(
    ["hold", "patrol", "escort", "pursue", "sweep", "border_watch", "zone_guard"])
TACTIC_MODELS: dict[str, type[BaseModel]] = {
    typing.get_args(m.model_fields["kind"].annotation)[0]: m
    for m in typing.get_args(typing.get_args(TacticSpec)[0])
}


# --------------------------------------------------------------------------------------------
# Units, events, scenario
# --------------------------------------------------------------------------------------------


class UnitSpec(_Model):
    """A unit (or `count` identical units). Numbers left out come from the kind's defaults
    (`sim.factions.KIND_DEFAULTS`); use `sim.factions.resolved_unit` to get them filled."""

    name: Name | None = None
    faction: Name
    kind: UnitKind
    count: int = Field(default=1, ge=1)
    at: PointRef                                  # place name, area name or [lat, lon]
    route: list[PointRef] | None = Field(default=None, min_length=2)
    strength: int | None = Field(default=None, ge=0)
    vehicles: int | None = Field(default=None, ge=0)
    mobility: Mobility | None = None
    speed_kmh: FiniteFloat | None = Field(default=None, ge=0)
    offroad_speed_kmh: FiniteFloat | None = Field(default=None, ge=0)
    sensor_range_km: FiniteFloat | None = Field(default=None, ge=0)
    night_sensor_range_km: FiniteFloat | None = Field(default=None, ge=0)
    weapon_range_km: FiniteFloat | None = Field(default=None, ge=0)
    kill_rate_per_hour: FiniteFloat | None = Field(default=None, ge=0)
    fortified: bool | None = None
    water_days: FiniteFloat | None = Field(default=None, ge=0)
    fuel_days: FiniteFloat | None = Field(default=None, ge=0)
    ammo_days: FiniteFloat | None = Field(default=None, ge=0)
    breakoff_loss_fraction: FiniteFloat | None = Field(default=None, ge=0, le=1)
    tactic: TacticSpec | None = None


class EventSpec(_Model):
    """At `day` + `hour` after the start, set scenario paths (override grammar) to new values."""

    day: FiniteFloat = Field(ge=0)
    hour: FiniteFloat = Field(default=0.0, ge=0, lt=24)
    set: dict[Name, Any] = Field(min_length=1)

    @property
    def at_hours(self) -> float:
        """Hours after the scenario start."""
        return self.day * 24.0 + self.hour


_DEFAULT_START = datetime(2018, 6, 1, 18, 0)


class _FlowListDumper(yaml.SafeDumper):
    """Safe dumper writing lists of scalars (points, name lists) on one line, as people do."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(not isinstance(v, (dict, list)) or (
        isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat and bool(data))


def _flat(v: Any) -> bool:
    if isinstance(v, str):
        return "\n" not in v
    if isinstance(v, list):
        return all(_flat(x) and not isinstance(x, dict) for x in v)
    return not isinstance(v, dict)


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    flow = bool(data) and all(_flat(v) for v in data.values()) and len(str(data)) < 200
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_FlowListDumper.add_representer(list, _represent_list)
_FlowListDumper.add_representer(dict, _represent_dict)
_FlowListDumper.add_representer(str, _represent_str)


class Scenario(_Model):
    """A whole scenario, resolved (no `extends` left once loaded)."""

    name: Name
    description: str = ""
    extends: str | None = None
    seed: int = Field(default=0, ge=0)
    start: datetime = _DEFAULT_START
    utc_offset_hours: FiniteFloat = Field(default=3.0, ge=-12, le=14)
    days: FiniteFloat = Field(default=30.0, gt=0)
    map: MapSpec
    factions: dict[Name, FactionSpec] = Field(min_length=1)
    units: list[UnitSpec] = Field(default_factory=list)
    events: list[EventSpec] = Field(default_factory=list)

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v: Any) -> Any:
        # YAML may hand over a str ("2018-06-01T18:00"), a datetime or a date.
        if isinstance(v, datetime):
            return v
        if isinstance(v, (int, float)):
            # pydantic would read a number as a Unix timestamp: surely not what was meant
            raise ValueError(f"expected a date and time like 2018-06-01T18:00, got {v!r}")
        if hasattr(v, "isoformat") and hasattr(v, "year") and not hasattr(v, "hour"):
            return datetime(v.year, v.month, v.day)
        return v

    @model_validator(mode="after")
    def _wall_clock_and_refs(self, info: ValidationInfo) -> Scenario:
        if self.start.tzinfo is not None:
            # an explicit offset is converted to the scenario's wall clock
            wall = timezone(timedelta(hours=self.utc_offset_hours))
            self.start = self.start.astimezone(wall).replace(tzinfo=None)
        if not _defer(info):
            problems = scenario_reference_problems(self)
            if problems:
                raise ValueError("; ".join(f"{render_path(p)}: {m}" for p, m in problems))
        return self

    def to_yaml(self) -> str:
        """A resolved, self-contained YAML file (no `extends`, seed included) that reloads to an
        equal Scenario."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        data.pop("extends", None)
        data["seed"] = self.seed
        whole_minute = self.start.second == 0 and self.start.microsecond == 0
        data["start"] = self.start.isoformat(timespec="minutes" if whole_minute else "auto")
        return yaml.dump(data, Dumper=_FlowListDumper, sort_keys=False, allow_unicode=True,
                         width=100)

    @property
    def end(self) -> datetime:
        """Wall-clock time the run ends."""
        return self.start + timedelta(days=self.days)

    @property
    def hours(self) -> int:
        """Number of one-hour steps."""
        return math.ceil(self.days * 24.0 - 1e-9)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ScenarioError(Exception):
    """Bad scenario input. `.messages` holds one line per problem: `<file>: <path>: <message>`."""

    def __init__(self, messages: str | Sequence[str]):
        if isinstance(messages, str):
            messages = [messages]
        # one line each, whatever odd keys or values a file holds; keep order, drop repeats
        # (pydantic can report one cause twice)
        lines = [str(m).replace("\r", "\\r").replace("\n", "\\n") for m in messages]
        self.messages: list[str] = list(dict.fromkeys(lines))
        super().__init__("\n".join(self.messages))

    def __str__(self) -> str:
        return "\n".join(self.messages)


class PathError(ValueError):
    """A path (override / event / selector) that does not resolve. `.at` is where it failed."""

    def __init__(self, message: str, at: tuple = ()):
        super().__init__(message)
        self.at = at


Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


def render_path(loc: Iterable[Any]) -> str:
    """`('units', 0, 'strength')` -> `units[0].strength`."""
    out = ""
    for seg in loc:
        if isinstance(seg, int) and not isinstance(seg, bool):
            out += f"[{seg}]"
        elif isinstance(seg, Selector):
            out += f"[{seg.field}={seg.value}]"
        else:
            out += ("." if out else "") + str(seg)
    return out


def did_you_mean(word: Any, candidates: Iterable[Any]) -> str:
    """` (did you mean 'x'?)` for the closest candidate, or ''."""
    cands = sorted(str(c) for c in candidates)   # sorted: ties resolve the same every run
    match = difflib.get_close_matches(str(word), cands, n=1, cutoff=0.6)
    if not match:
        # case slips ('palmyra') are common and difflib's ratio can miss them on short names
        match = [c for c in cands if c.lower() == str(word).lower()][:1]
    return f" (did you mean '{match[0]}'?)" if match else ""


def _unknown(what: str, name: Any, candidates: Iterable[Any]) -> str:
    return f"unknown {what} '{name}'{did_you_mean(name, candidates)}"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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

    Uses `sim.geo.Grid(...).box` when the geo module is available, else a local equirectangular
    estimate (111.32 km per degree of latitude, cos(lat) shrink for longitude)."""
    try:
        from sim.geo import Grid  # local import: geo is optional for validation

        box = Grid(centre_lat, centre_lon, cell_km, rows, cols).box
        if isinstance(box, BoxSpec):
            return box
        if isinstance(box, Mapping):
            s, w, n, e = box["south"], box["west"], box["north"], box["east"]
        elif hasattr(box, "south"):
            s, w, n, e = box.south, box.west, box.north, box.east
        else:
            s, w, n, e = box
        return BoxSpec.model_construct(south=float(s), west=float(w), north=float(n), east=float(e))
    except Exception:
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
#: or point (a place name or [lat, lon]).
TACTIC_REFS: dict[str, dict[str, str]] = {
    "hide": {"hides": "area"},
    "night_raid": {"targets": "place", "hides": "area"},
    "ambush": {"road": "road", "segment": "place"},
    "seize_town": {"towns": "place", "gather_at": "place_or_area"},
    "border_crossing": {"border": "border", "rendezvous": "place"},
    "refuge": {"zones": "zone"},
    "hold": {},
    "patrol": {"route": "point"},
    "escort": {"route": "point"},
    "pursue": {"base": "place"},
    "sweep": {"area": "area"},
    "border_watch": {"border": "border"},
    "zone_guard": {"zone": "zone"},
}


def scenario_reference_problems(s: Scenario, include_map: bool = False) -> list[Problem]:
    """Factions, zones' factions, units and events refer to things that exist.

    Paths are from the scenario root. With `include_map`, map-internal checks are included."""
    out: list[Problem] = []
    m = s.map
    if include_map:
        shape = _map_shape_problems(m)
        out += [(("map", *loc), msg) for loc, msg in shape]
        out += [(("map", *loc), msg) for loc, msg in map_reference_problems(m)
                if not (shape and "outside the map" in msg)]
    factions = set(s.factions)
    names = {
        "place": place_names(m),
        "area": {a.name for a in m.areas},
        "road": {r.name for r in m.roads},
        "border": {b.name for b in m.borders},
        "zone": {z.name for z in m.zones},
    }
    names["place_or_area"] = names["place"] | names["area"]
    try:
        bounds: BoxSpec | None = m.bounds if not _map_shape_problems(m) else None
    except Exception:
        bounds = None

    for fname, f in s.factions.items():
        for j, h in enumerate(f.hostile):
            if h not in factions:
                out.append((("factions", fname, "hostile", j), _unknown("faction", h, factions)))
            elif h == fname:
                out.append((("factions", fname, "hostile", j), "a faction cannot be hostile to "
                                                                "itself"))
    for i, z in enumerate(m.zones):
        for j, fac in enumerate(z.barred):
            if fac not in factions:
                out.append((("map", "zones", i, "barred", j), _unknown("faction", fac, factions)))
        if z.guarded_by is not None and z.guarded_by not in factions:
            out.append((("map", "zones", i, "guarded_by"),
                        _unknown("faction", z.guarded_by, factions)))

    def ref(loc: Loc, value: Any, what: str) -> None:
        if value is None:
            return
        if isinstance(value, tuple) and what == "point":
            if bounds is not None and not bounds.contains(value[0], value[1]):
                out.append((loc, f"[{value[0]}, {value[1]}] is outside the map box"))
            return
        if isinstance(value, (list, tuple)):
            for j, v in enumerate(value):
                ref((*loc, j), v, what)
            return
        kind = "place" if what == "point" else what
        if value not in names[kind]:
            label = "place or area" if kind == "place_or_area" else kind
            out.append((loc, _unknown(label, value, names[kind])))

    for i, u in enumerate(s.units):
        loc: Loc = ("units", i)
        if u.faction not in factions:
            out.append(((*loc, "faction"), _unknown("faction", u.faction, factions)))
        ref((*loc, "at"), u.at, "point" if isinstance(u.at, tuple) else "place_or_area")
        if u.route is not None:
            ref((*loc, "route"), u.route, "point")
        t = u.tactic
        if t is None:
            continue
        role = s.factions[u.faction].role if u.faction in factions else None
        if role == "insurgent" and t.kind not in INSURGENT_TACTICS:
            out.append(((*loc, "tactic", "kind"), f"'{t.kind}' is a garrison tactic; faction "
                        f"'{u.faction}' is insurgent (use one of {sorted(INSURGENT_TACTICS)})"))
        elif role == "garrison" and t.kind not in GARRISON_TACTICS:
            out.append(((*loc, "tactic", "kind"), f"'{t.kind}' is an insurgent tactic; faction "
                        f"'{u.faction}' is garrison (use one of {sorted(GARRISON_TACTICS)})"))
        elif role == "neutral":
            out.append(((*loc, "tactic"), f"faction '{u.faction}' is neutral and takes no tactic"))
        for field, what in TACTIC_REFS[t.kind].items():
            ref((*loc, "tactic", field), getattr(t, field), what)
        if isinstance(t, AmbushTactic) and t.segment is not None and t.road in names["road"]:
            via = [v for v in next(r for r in m.roads if r.name == t.road).via
                   if isinstance(v, str)]
            for j, pl in enumerate(t.segment):
                if pl in names["place"] and pl not in via:
                    out.append(((*loc, "tactic", "segment", j),
                                f"place '{pl}' is not on road '{t.road}' (its places: "
                                f"{', '.join(via) or 'none'})"))
    for i, ev in enumerate(s.events):
        for path in ev.set:
            try:
                segs = parse_path(path)
                _check_event_root(segs)
                resolve_path(s, segs)
            except PathError as e:
                out.append((("events", i, "set", f'"{path}"'), str(e)))
    return out


#: Top-level fields events may change while a run is under way.
EVENT_ROOTS = ("factions", "units", "map.zones")


def _check_event_root(segs: list[Any]) -> None:
    head = segs[0]
    if head in ("factions", "units"):
        return
    if head == "map" and len(segs) > 1 and segs[1] == "zones":
        return
    raise PathError(f"events may only change {', '.join(EVENT_ROOTS)} (the map, clock and seed "
                    "are fixed when a run starts)")


# --------------------------------------------------------------------------------------------
# Paths: parse, walk the schema, resolve, set (shared by --set, events and experiment factors)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """`[field=value]`: every list element whose `field` equals `value` (compared as YAML)."""

    field: str
    value: str

    def matches(self, element: Any) -> bool:
        """True if `element` (a dict or a model) has `field` equal to `value`."""
        actual = _get_field(element, self.field, _MISSING)
        if actual is _MISSING:
            return False
        if isinstance(actual, str):
            return actual == self.value
        try:
            want = yaml.safe_load(self.value)
        except yaml.YAMLError:
            return False
        if isinstance(actual, tuple):
            actual = list(actual)
        return bool(actual == want)


Segment = str | int | Selector
_MISSING = object()
_PATH_TOKEN = re.compile(r"\[([^\[\]]*)\]|([^.\[\]]+)|(\.)")


def parse_path(path: str) -> list[Segment]:
    """Parse `a.b[2].c` / `units[kind=border_post].strength` into segments.

    Keys are str, `[n]` is an int index, `[field=value]` a `Selector`. Raises `PathError`."""
    if not isinstance(path, str) or not path.strip():
        raise PathError(f"empty path {path!r}")
    segs: list[Segment] = []
    pos = 0
    expect_key = True   # after a '.' (or at the start) a key must follow
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if m is None:
            raise PathError(f"cannot parse path {path!r} at column {pos + 1}")
        bracket, key, dot = m.groups()
        if dot is not None:
            if expect_key:
                raise PathError(f"cannot parse path {path!r}: empty key at column {pos + 1}")
            expect_key = True
        elif key is not None:
            if not expect_key:
                raise PathError(f"cannot parse path {path!r}: missing '.' at column {pos + 1}")
            segs.append(key.strip())
            expect_key = False
        else:
            if expect_key:
                raise PathError(f"cannot parse path {path!r}: '[' must follow a key")
            inner = bracket.strip()
            if re.fullmatch(r"\d+", inner):
                segs.append(int(inner))
            elif "=" in inner:
                field, _, value = inner.partition("=")
                if not field.strip():
                    raise PathError(f"cannot parse path {path!r}: selector needs field=value")
                segs.append(Selector(field.strip(), value.strip()))
            else:
                raise PathError(f"cannot parse path {path!r}: [{inner}] must be an index >= 0 "
                                "or field=value")
        pos = m.end()
    if expect_key:
        raise PathError(f"cannot parse path {path!r}: ends with '.'")
    return segs


def _unwrap(tp: Any) -> list[Any]:
    """Concrete alternatives of an annotation: strips Annotated / Optional / unions."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        out: list[Any] = []
        for a in typing.get_args(tp):
            if a is not type(None):
                out += _unwrap(a)
        return out
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _field_key(model: type[BaseModel], key: str) -> str | None:
    """The field name for a key given by name or alias, or None."""
    for name, f in model.model_fields.items():
        if key == name or key == f.alias:
            return name
    return None


def _yaml_key(model: type[BaseModel], name: str) -> str:
    alias = model.model_fields[name].alias
    return alias or name


def _schema_child(tps: list[Any], seg: Segment) -> tuple[list[Any], list[str]]:
    """Types reachable from `tps` through `seg`, and key names to suggest when none are."""
    child: list[Any] = []
    cands: list[str] = []
    for tp in tps:
        if tp is Any:
            child.append(Any)
            continue
        origin = typing.get_origin(tp)
        if isinstance(seg, str):
            if _is_model(tp):
                name = _field_key(tp, seg)
                cands += [_yaml_key(tp, n) for n in tp.model_fields]
                if name is not None:
                    child += _unwrap(tp.model_fields[name].annotation)
            elif origin is dict:
                child += _unwrap(typing.get_args(tp)[1])
        elif origin is list:
            child += _unwrap(typing.get_args(tp)[0])
        elif origin is tuple and isinstance(seg, int):
            args = [a for a in typing.get_args(tp) if a is not Ellipsis]
            if args:
                child += _unwrap(args[min(seg, len(args) - 1)])
    return child, list(dict.fromkeys(cands))


def _get_field(node: Any, key: str, default: Any = _MISSING) -> Any:
    if isinstance(node, Mapping):
        return node.get(key, default)
    if isinstance(node, BaseModel):
        name = _field_key(type(node), key)
        if name is not None:
            return getattr(node, name)
        return default
    return default


def resolve_path(obj: Any, path: str | Sequence[Segment]) -> list[tuple[Loc, Any]]:
    """Every concrete location `path` names in `obj` (a raw dict or a Scenario) and its value.

    Selectors expand to the matching indices, e.g. `units[kind=qrf].strength` ->
    `[(('units', 4, 'strength'), 20), ...]`. Pure. Raises `PathError` (with did-you-mean) when a
    key is not in the schema, an index is out of range, or a selector matches nothing. A known
    optional field that is absent resolves to None."""
    segs = parse_path(path) if isinstance(path, str) else list(path)
    if not segs:
        raise PathError("empty path")
    targets: list[tuple[Loc, Any, list[Any]]] = [((), obj, [Scenario])]
    for seg in segs:
        nxt: list[tuple[Loc, Any, list[Any]]] = []
        for loc, node, tps in targets:
            child_tps, cands = _schema_child(tps, seg)
            where = render_path(loc) or "the scenario"
            if isinstance(seg, str):
                if not child_tps:
                    raise PathError(f"unknown key '{seg}' in {where}{did_you_mean(seg, cands)}",
                                    loc)
                is_dict = isinstance(node, Mapping) and not _is_model_container(tps)
                value = _get_field(node, seg, _MISSING)
                if value is _MISSING:
                    if is_dict:
                        raise PathError(f"no '{seg}' in {where}{did_you_mean(seg, list(node))}",
                                        loc)
                    if node is not None and not isinstance(node, (Mapping, BaseModel)):
                        raise PathError(f"{where} is not a mapping", loc)
                    value = None  # a known optional field that is absent
                nxt.append(((*loc, seg), value, child_tps))
            else:
                if not child_tps or not isinstance(node, (list, tuple)):
                    raise PathError(f"{where} is not a list", loc)
                if isinstance(seg, int):
                    if seg >= len(node):
                        raise PathError(f"index {seg} out of range ({where} has {len(node)} "
                                        "items)", loc)
                    nxt.append(((*loc, seg), node[seg], child_tps))
                else:
                    elem_fields = _schema_child(child_tps, seg.field)
                    if not elem_fields[0]:
                        raise PathError(f"selector field '{seg.field}' is not a field of "
                                        f"{where} items{did_you_mean(seg.field, elem_fields[1])}",
                                        loc)
                    hits = [((*loc, j), el, child_tps) for j, el in enumerate(node)
                            if seg.matches(el)]
                    if not hits:
                        raise PathError(f"no item of {where} has {seg.field}={seg.value}", loc)
                    nxt += hits
        targets = nxt
    return [(loc, value) for loc, value, _ in targets]


def _is_model_container(tps: list[Any]) -> bool:
    return any(_is_model(t) for t in tps)


def _parse_override(item: Any) -> tuple[str, Any]:
    if isinstance(item, str):
        depth = 0
        for k, ch in enumerate(item):
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
            elif ch == "=" and depth == 0:
                path, text = item[:k].strip(), item[k + 1:]
                try:
                    return path, yaml.safe_load(text) if text.strip() else None
                except yaml.YAMLError as e:
                    raise PathError(f"value {text.strip()!r} is not valid YAML "
                                    f"({_yaml_problem(e)})") from None
        raise PathError(f"expected path=value, got {item!r}")
    if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
        return item[0], item[1]
    raise PathError(f"override {item!r}: expected 'path=value' or (path, value)")


def _override_label(item: Any) -> str:
    """The path part of an override, for messages."""
    if isinstance(item, str):
        depth = 0
        for k, ch in enumerate(item):
            depth += (ch == "[") - (ch == "]")
            if ch == "=" and depth == 0:
                return item[:k].strip()
        return item.strip()
    if isinstance(item, (tuple, list)) and item:
        return str(item[0])
    return repr(item)


def _set_one(root: dict, segs: list[Segment], value: Any) -> list[Loc]:
    """Set `value` at every location `segs` names in the raw dict `root`; return them.

    Missing intermediate model fields are created as {}; new list items are not."""
    parent_loc = resolve_path(root, segs[:-1]) if len(segs) > 1 else [((), root)]
    # walk the schema down to the parent to know its type
    tps: list[Any] = [Scenario]
    for seg in segs[:-1]:
        tps, _ = _schema_child(tps, seg)
    last = segs[-1]
    child_tps, cands = _schema_child(tps, last)
    done: list[Loc] = []
    for loc, _ in parent_loc:
        node = _ensure_container(root, loc)
        where = render_path(loc) or "the scenario"
        if isinstance(last, str):
            if not child_tps:
                raise PathError(f"unknown key '{last}' in {where}{did_you_mean(last, cands)}", loc)
            if not isinstance(node, dict):
                raise PathError(f"{where} is not a mapping", loc)
            key = last
            model = next((t for t in tps if _is_model(t) and _field_key(t, last)), None)
            if model is not None:
                name = _field_key(model, last)
                assert name is not None
                key = _yaml_key(model, name)
                # one spelling only, or pydantic would see both `class` and `cls`
                for other in (name, model.model_fields[name].alias):
                    if other and other != key:
                        node.pop(other, None)
            node[key] = copy.deepcopy(value)
            done.append((*loc, key))
        else:
            if not child_tps or not isinstance(node, list):
                raise PathError(f"{where} is not a list", loc)
            if isinstance(last, int):
                if last >= len(node):
                    raise PathError(f"index {last} out of range ({where} has {len(node)} items)",
                                    loc)
                node[last] = copy.deepcopy(value)
                done.append((*loc, last))
            else:
                hits = [j for j, el in enumerate(node) if last.matches(el)]
                if not hits:
                    raise PathError(f"no item of {where} has {last.field}={last.value}", loc)
                for j in hits:
                    node[j] = copy.deepcopy(value)
                    done.append((*loc, j))
    return done


def _ensure_container(root: dict, loc: Loc) -> Any:
    """Walk `loc` in `root`, creating absent (or null) mapping fields as {}."""
    node: Any = root
    for seg in loc:
        if isinstance(node, dict):
            if node.get(seg) is None:
                node[seg] = {}
            node = node[seg]
        else:
            node = node[seg]
    return node


def set_path(data: dict, path: str | Sequence[Segment], value: Any) -> dict:
    """A copy of the raw scenario dict with `path` set to `value` (pure). Raises `PathError`."""
    out = copy.deepcopy(data)
    segs = parse_path(path) if isinstance(path, str) else list(path)
    _set_one(out, segs, value)
    return out


def apply_overrides(
    data: dict,
    overrides: Iterable[Any] | Mapping[str, Any],
    source: str,
    _provenance: dict[Loc, str] | None = None,
) -> dict:
    """Apply overrides to a raw (merged) scenario dict before validation; returns a new dict.

    `overrides` is a mapping `{path: value}`, or an iterable of `"path=value"` strings (value
    parsed with `yaml.safe_load`) or `(path, value)` pairs. Setting an absent optional field is
    fine; unknown keys, out-of-range indices and empty selectors raise `ScenarioError` with one
    line per bad override, naming `source`."""
    out = copy.deepcopy(data) if isinstance(data, dict) else {}
    items = list(overrides.items()) if isinstance(overrides, Mapping) else list(overrides)
    errors: list[str] = []
    for item in items:
        text = item if isinstance(item, str) else None
        try:
            path, value = _parse_override(item)
            text = text or f"{path}={_short(value)}"
            segs = parse_path(path)
            for loc in _set_one(out, segs, value):
                if _provenance is not None:
                    for k in [k for k in _provenance if k[: len(loc)] == loc]:
                        del _provenance[k]
                    _provenance[loc] = f"--set {text}"
        except PathError as e:
            errors.append(f"{source}: {_override_label(item)}: bad override: {e}")
    if errors:
        raise ScenarioError(errors)
    return out


# --------------------------------------------------------------------------------------------
# Loading: YAML, extends, validation, error formatting
# --------------------------------------------------------------------------------------------


def _yaml_problem(e: yaml.YAMLError) -> str:
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return str(problem)


def _read_yaml(path: Path, source: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{source}: file not found") from None
    except IsADirectoryError:
        raise ScenarioError(f"{source}: is a directory, not a scenario file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{source}: cannot read file ({e})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ScenarioError(f"{source}: {at}YAML syntax error: {_yaml_problem(e)}") from None


def _merge(base: dict, over: dict, loc: Loc, prov: dict[Loc, str], src: str) -> dict:
    """Deep merge: dicts merge recursively, anything else (lists too) replaces."""
    out = dict(base)
    for k, v in over.items():
        here = (*loc, k)
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            # the merged mapping is now "last touched" by src; its untouched keys keep the
            # file they came from, so push that origin down one level first
            for kk in out[k]:
                if kk not in v and ((*here, kk)) not in prov:
                    prov[(*here, kk)] = _origin(prov, (*here, kk), src)[0]
            prov[here] = src
            out[k] = _merge(out[k], v, here, prov, src)
        else:
            out[k] = copy.deepcopy(v)
            for old in [p for p in prov if p[: len(here)] == here]:
                del prov[old]
            prov[here] = src
    return out


def _source_name(path: Path) -> str:
    text = str(path)
    return text


def _load_tree(path: Path, source: str, stack: list[Path]) -> tuple[dict, dict[Loc, str]]:
    """Read a file and everything it extends; return merged raw data and key provenance."""
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join([str(p.name) for p in stack[stack.index(resolved):]] + [path.name])
        raise ScenarioError(f"{source}: extends: cycle {chain}")
    data = _read_yaml(path, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the top level must be a mapping of keys (name, map, ...), "
                            f"got {type(data).__name__}")
    prov: dict[Loc, str] = {(): source}
    prov.update({(k,): source for k in data})
    ext = data.pop("extends", None)
    prov.pop(("extends",), None)
    if ext is None:
        return data, prov
    if not isinstance(ext, str) or not ext.strip():
        raise ScenarioError(f"{source}: extends: expected a file name, got {_short(ext)}")
    base_path = Path(ext) if Path(ext).is_absolute() else path.parent / ext
    base_source = _source_name(Path(_normpath(base_path)))
    if not base_path.exists():
        raise ScenarioError(f"{source}: extends: file not found: {base_source}")
    base, base_prov = _load_tree(base_path, base_source, [*stack, resolved])
    base_prov[()] = source
    merged = _merge(base, data, (), base_prov, source)
    return merged, base_prov


def _normpath(p: Path) -> str:
    import os.path

    return os.path.normpath(str(p))


def _origin(prov: dict[Loc, str] | None, loc: Loc, source: str) -> tuple[str, str]:
    """(file to name, note) for an error at `loc`: the file that set the deepest enclosing key."""
    if not prov:
        return source, ""
    for n in range(len(loc), -1, -1):
        src = prov.get(tuple(loc[:n]))
        if src is not None:
            if src.startswith("--set "):
                return source, f" (from {src})"
            return src, ""
    return source, ""


def _data_loc(loc: tuple[Any, ...], data: Any) -> tuple[Loc, Any]:
    """Map a pydantic error loc onto the raw data: drop union-member labels pydantic inserts
    (e.g. the tactic tag); return the data path and the node the error is about."""
    out: list[Any] = []
    node = data
    for i, seg in enumerate(loc):
        last = i == len(loc) - 1
        in_dict = isinstance(node, dict) and seg in node
        in_list = isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node)
        if in_dict or in_list:
            out.append(seg)
            node = node[seg]
        elif last:
            out.append(seg)
            node = _MISSING
        # else: a union member label (pydantic adds them to locs), not part of the data path
    return tuple(out), node


def _model_at(loc: Loc, data: Any) -> list[Any]:
    """Schema types at a data path (used for 'did you mean' on unknown keys)."""
    tps: list[Any] = [Scenario]
    node = data
    for seg in loc:
        if isinstance(seg, int):
            tps, _ = _schema_child(tps, 0)
        else:
            tps, _ = _schema_child(tps, str(seg))
        node = node[seg] if isinstance(node, (dict, list)) else None
        # a tactic dict names its own model through its `kind`
        if isinstance(node, dict) and isinstance(node.get("kind"), str):
            model = TACTIC_MODELS.get(node["kind"])
            if model is not None and model in tps:
                tps = [model]
    return tps


def _format_pydantic(err: ValidationError, data: dict, source: str,
                     prov: dict[Loc, str] | None) -> list[str]:
    lines: list[str] = []
    for e in err.errors(include_url=False):
        loc, _ = _data_loc(tuple(e["loc"]), data)
        etype = e["type"]
        msg = e["msg"]
        if etype == "extra_forbidden":
            key = loc[-1] if loc else "?"
            parent = loc[:-1]
            cands: list[str] = []
            for t in _model_at(parent, data):
                if _is_model(t):
                    cands += [_yaml_key(t, n) for n in t.model_fields]
            msg = f"unknown key '{key}'{did_you_mean(key, cands)}"
            loc = parent
        elif etype == "missing":
            msg = "missing required field"
        elif etype == "union_tag_invalid":
            tag = e.get("ctx", {}).get("tag")
            kinds = sorted(TACTIC_MODELS)
            hint = did_you_mean(tag, kinds) or f" (one of {', '.join(kinds)})"
            msg = f"unknown tactic kind '{tag}'{hint}"
            loc = (*loc, "kind")
        elif etype == "union_tag_not_found":
            msg = f"missing 'kind' (one of {', '.join(sorted(TACTIC_MODELS))})"
        elif etype == "literal_error":
            expected = re.findall(r"'([^']*)'", str(e.get("ctx", {}).get("expected", "")))
            got = e.get("input")
            msg = (f"{_short(got)} is not one of {', '.join(expected)}"
                   f"{did_you_mean(got, expected) if isinstance(got, str) else ''}")
        elif etype in ("value_error", "assertion_error"):
            msg = re.sub(r"^(Value|Assertion) error, ", "", msg)
        elif etype.startswith(("model_type", "model_attributes_type")):
            msg = f"expected a mapping of keys, got {_short(e.get('input'))}"
        else:
            if "input" in e and not isinstance(e["input"], (dict, list)):
                msg = f"{msg} (got {_short(e['input'])})"
        src, note = _origin(prov, loc, source)
        path = render_path(loc)
        lines.append(f"{src}: {path}: {msg}{note}" if path else f"{src}: {msg}{note}")
    return lines


def _format_problems(problems: list[Problem], source: str,
                     prov: dict[Loc, str] | None) -> list[str]:
    lines = []
    for loc, msg in problems:
        src, note = _origin(prov, loc, source)
        path = render_path(loc)
        lines.append(f"{src}: {path}: {msg}{note}" if path else f"{src}: {msg}{note}")
    return lines


def parse_scenario(data: dict, source: str, base_dir: str | Path | None = None,
                   _provenance: dict[Loc, str] | None = None) -> Scenario:
    """Validate a raw scenario dict into a Scenario, checking every reference.

    `source` names the file in messages. An `extends:` key is resolved relative to `base_dir`
    (default: the current directory). Raises `ScenarioError` listing every problem found."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the top level must be a mapping of keys (name, map, ...), "
                            f"got {type(data).__name__}")
    prov = _provenance
    if data.get("extends") is not None:
        base = Path(base_dir) if base_dir is not None else Path(".")
        ext = data["extends"]
        if not isinstance(ext, str) or not ext.strip():
            raise ScenarioError(f"{source}: extends: expected a file name, got {_short(ext)}")
        base_path = Path(ext) if Path(ext).is_absolute() else base / ext
        base_source = _normpath(base_path)
        if not base_path.exists():
            raise ScenarioError(f"{source}: extends: file not found: {base_source}")
        base_data, prov = _load_tree(base_path, base_source, [])
        own = {k: v for k, v in data.items() if k != "extends"}
        prov[()] = source
        data = _merge(base_data, own, (), prov, source)
    try:
        scenario = Scenario.model_validate(data, context={_DEFER_REFS: True})
    except ValidationError as e:
        raise ScenarioError(_format_pydantic(e, data, source, prov)) from None
    problems = scenario_reference_problems(scenario, include_map=True)
    lines = _format_problems(problems, source, prov)
    lines += _event_value_problems(scenario, data, source, prov)
    if lines:
        raise ScenarioError(lines)
    return scenario


def _event_value_problems(s: Scenario, data: dict, source: str,
                          prov: dict[Loc, str] | None) -> list[str]:
    """Each event's values must validate where they land (apply to a copy, re-validate)."""
    lines: list[str] = []
    for i, ev in enumerate(s.events):
        for path, value in ev.set.items():
            loc: Loc = ("events", i, "set", f'"{path}"')
            try:
                trial = set_path(data, path, value)
                Scenario.model_validate(trial, context={_DEFER_REFS: True})
            except PathError:
                continue  # already reported by the reference checks
            except ValidationError as e:
                src, note = _origin(prov, loc, source)
                for err in e.errors(include_url=False):
                    where, _ = _data_loc(tuple(err["loc"]), trial)
                    msg = re.sub(r"^(Value|Assertion) error, ", "", err["msg"])
                    lines.append(f"{src}: {render_path(loc)}: sets {render_path(where)} to "
                                 f"{_short(value)}: {msg}{note}")
    return lines


def load_scenario(path: str | Path, overrides: Iterable[Any] | Mapping[str, Any] = ()
                  ) -> Scenario:
    """Load, merge (`extends`), override (`--set`), validate and reference-check a scenario file.

    Raises `ScenarioError` (one line per problem, each naming the file and field path)."""
    p = Path(path)
    source = str(path)
    data, prov = _load_tree(p, source, [])
    if overrides:
        data = apply_overrides(data, overrides, source, prov)
    return parse_scenario(data, source, base_dir=p.parent, _provenance=prov)


def load_raw(path: str | Path) -> dict:
    """The merged raw dict of a scenario file (extends resolved, not validated)."""
    data, _ = _load_tree(Path(path), str(path), [])
    return data


def main_validate(paths: Sequence[str | Path], overrides: Sequence[str] = ()) -> int:
    """`badia validate FILE...`: print one line per problem to stderr, 'ok' lines to stdout.

    Returns the exit code: 0 if every file is valid, 1 otherwise."""
    bad = 0
    for path in paths:
        try:
            s = load_scenario(path, overrides)
        except ScenarioError as e:
            bad += 1
            for line in e.messages:
                print(line, file=sys.stderr)
        except Exception as e:
            bad += 1
            print(f"{path}: internal error while validating: {type(e).__name__}: {e}",
                  file=sys.stderr)
        else:
            n_units = sum(u.count for u in s.units)
            print(f"{path}: ok ({s.name}: {len(s.map.places)} places, {n_units} units, "
                  f"{s.days:g} days)")
    return 1 if bad else 0
