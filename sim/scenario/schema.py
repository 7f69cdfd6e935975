"""The scenario schema: factions, tactics (a discriminated union on `kind`), units, events and
the Scenario itself. Types only; references are checked by :mod:`sim.scenario.references`."""

from __future__ import annotations

import math
import re
import typing
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    field_validator,
    model_validator,
)

from sim.scenario.campaign import CampaignSpec
from sim.scenario.fields import FiniteFloat, Int, Name, PointRef, _Model, at_most
from sim.scenario.map import MapSpec
from sim.scenario.vocab import Mobility, Role, Schedule, UnitKind

# --------------------------------------------------------------------------------------------
# Budgets: plausible ranges, checked when a file is validated, before anything is built, so that
# an absurd number is one line naming the field and its unit, not an overflow or an exhausted
# memory hours into a run. Each is far beyond any real scenario.
# --------------------------------------------------------------------------------------------

#: Units in one scenario, counting every `count` copy and the room reserved for recruited cells.
#: The 2020 campaign has about 160; the force table and the hourly numpy work grow with it.
MAX_UNITS = 20_000
#: Fighters (or people aboard) in one unit: a brigade. Cells are about 8, garrisons 20 to 50.
MAX_STRENGTH = 10_000
#: Vehicles of one unit.
MAX_VEHICLES = 2_000
#: Speed on a road or across country (km/h): a car flat out, well above any convoy.
MAX_SPEED_KMH = 200.0
#: Sensor and weapon ranges (km): radar on a mast sees tens of km; nothing here reaches farther.
MAX_RANGE_KM = 100.0
#: Aimed kills per shooter per hour of fire: one a minute; the defaults are below 1.
MAX_KILL_RATE_PER_HOUR = 60.0
#: Length of a run, and supplies carried (days): ten years. The campaign is one year.
MAX_DAYS = 3_660.0

Fighters = Annotated[Int, at_most(MAX_STRENGTH, "fighters", "a brigade; one unit is far less")]
Vehicles = Annotated[Int, at_most(MAX_VEHICLES, "vehicles")]
SpeedKmh = Annotated[FiniteFloat, at_most(MAX_SPEED_KMH, "km/h")]
RangeKm = Annotated[FiniteFloat, at_most(MAX_RANGE_KM, "km")]
Days = Annotated[FiniteFloat, at_most(MAX_DAYS, "days", "ten years")]


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
    split_when_pursued: bool = False    # a pursued cell splits in two that run to two hides
    split_min_strength: Int = Field(default=3, ge=1)          # fighters in each half, at least


class NightRaidTactic(_Model):
    """Insurgent: move at night to a target place, strike, fall back to a hide."""

    kind: Literal["night_raid"]
    targets: list[Name] = Field(min_length=1)                  # place names
    hides: list[Name] = Field(default_factory=list)            # area names
    max_distance_km: FiniteFloat = Field(default=80.0, gt=0)
    abort_if_detected: bool = True
    nights_between: Int = Field(default=0, ge=0)      # rest after a raid went out, nights
    avoid_qrf_km: FiniteFloat = Field(default=0.0, ge=0)  # no target this near a QRF's base
    max_odds: FiniteFloat | None = Field(default=None, gt=0)  # no target > odds x own strength
    split_when_pursued: bool = False    # a pursued cell splits in two that run to two hides
    split_min_strength: Int = Field(default=3, ge=1)          # fighters in each half, at least


class AmbushTactic(_Model):
    """Insurgent: wait beside a road (optionally one stretch of it) and hit a passing convoy."""

    kind: Literal["ambush"]
    road: Name                                                  # road name
    segment: tuple[Name, Name] | None = None                    # two places on the road
    closure_hours: FiniteFloat = Field(default=12.0, ge=0)
    min_convoy_strength: Int = Field(default=0, ge=0)
    max_odds: FiniteFloat = Field(default=2.0, gt=0)   # spring only if target <= odds x own
    wait_hours: FiniteFloat = Field(default=20.0, gt=0)  # how long an ambush lies in wait
    nights_between: Int = Field(default=0, ge=0)      # rest after an ambush was laid, nights
    split_when_pursued: bool = False    # a pursued cell splits in two that run to two hides
    split_min_strength: Int = Field(default=3, ge=1)          # fighters in each half, at least


class SeizeTownTactic(_Model):
    """Insurgent: gather groups, then take and hold a town."""

    kind: Literal["seize_town"]
    towns: list[Name] = Field(min_length=1)                    # place names
    gather_at: Name | None = None                               # area or place name
    hold_hours: FiniteFloat = Field(default=24.0, ge=0)
    min_group: Int = Field(default=2, ge=1)


class BorderCrossingTactic(_Model):
    """Insurgent: cross a border to a rendezvous, at night, every few nights."""

    kind: Literal["border_crossing"]
    border: Name                                                # border name
    rendezvous: Name                                            # place name
    use_crossings: bool = False
    nights_between: Int = Field(default=2, ge=0)


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
    escort_strength: Fighters = Field(default=8, ge=0)


class PursueTactic(_Model):
    """Garrison: chase detected enemies up to a range from base, then return."""

    kind: Literal["pursue"]
    max_range_km: FiniteFloat = Field(default=80.0, gt=0)
    base: Name | None = None                                    # place name
    muster_hours: Int = Field(default=0, ge=0)   # from news to driving out (readiness)


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


# --- campaign tactics (insurgent: mine_laying, fake_checkpoint, prey; civilian: traffic, forage)


class MineLayingTactic(_Model):
    """Insurgent: by night, lay mines or IEDs on a road near the hides; struck later by passing
    vehicles (:mod:`sim.rules.mines`)."""

    kind: Literal["mine_laying"]
    road: Name                                                  # road name
    segment: tuple[Name, Name] | None = None                    # two places on the road
    hides: list[Name] = Field(default_factory=list)             # area names
    mines_per_trip: Int = Field(default=1, ge=1)                # on as many nearby road cells
    nights_between: Int = Field(default=2, ge=0)                # rest between trips
    max_distance_km: FiniteFloat = Field(default=20.0, gt=0)    # road cells farther are ignored
    ammo_days_per_mine: FiniteFloat = Field(default=0.25, ge=0)  # explosive from the stock


class FakeCheckpointTactic(_Model):
    """Insurgent: by night, set up a fake checkpoint on a highway and stop soft targets (civilian
    vehicles, workers' convoys) that drive into it."""

    kind: Literal["fake_checkpoint"]
    road: Name                                                  # road name
    segment: tuple[Name, Name] | None = None                    # two places on the road
    hides: list[Name] = Field(default_factory=list)             # area names
    checkpoint_hours: FiniteFloat = Field(default=4.0, gt=0)    # at most this long in place
    max_odds: FiniteFloat = Field(default=1.0, gt=0)   # stop soldiers only if <= odds x own
    nights_between: Int = Field(default=2, ge=0)                # rest between checkpoints
    max_distance_km: FiniteFloat = Field(default=30.0, gt=0)    # road cells farther are ignored


class PreyTactic(_Model):
    """Insurgent: attack civilians in the open desert (truffle hunters, shepherds) near the
    hides, by day, away from the garrison; scout for them when none is known."""

    kind: Literal["prey"]
    hides: list[Name] = Field(default_factory=list)             # area names
    max_distance_km: FiniteFloat = Field(default=30.0, gt=0)    # prey farther off is ignored
    search_km: FiniteFloat = Field(default=15.0, ge=0)          # scouting radius about the hide
    scout: bool = True                                          # go looking when none is known
    nights_between: Int = Field(default=2, ge=0)                # rest between trips
    garrison_avoid_km: FiniteFloat = Field(default=10.0, ge=0)  # no attack this near the garrison


class TrafficTactic(_Model):
    """Civilian: vehicles (buses, trucks, oil and gas workers' convoys) driving a route on a
    timetable: ``departures_per_day`` trips, on the road only between the wall-clock ``hours``
    [first, last); at the end of the route they wait and drive back on the next departure
    (``turn_around``) or drive straight back home (``return``)."""

    kind: Literal["traffic"]
    route: list[PointRef] = Field(min_length=2)
    departures_per_day: Int = Field(default=2, ge=1, le=24)
    hours: tuple[Int, Int] = (7, 17)                            # local hours [first, last)
    at_end: Literal["turn_around", "return"] = "turn_around"

    @model_validator(mode="after")
    def _hours(self) -> TrafficTactic:
        first, last = self.hours
        if not 0 <= first < last <= 24:
            raise ValueError(f"hours must be [first, last] with 0 <= first < last <= 24 (local "
                             f"wall-clock hours), got [{first}, {last}]")
        return self


class ForageTactic(_Model):
    """Civilian: groups out in the open desert in their season (truffle hunting, February to
    April), home in town the rest of the year: in a season month each group drives out at
    ``start_hour`` to a random cell of its ``areas`` and is home again by ``end_hour``."""

    kind: Literal["forage"]
    areas: list[Name] = Field(min_length=1)                      # area names
    months: list[Int] = Field(default_factory=lambda: [2, 3, 4], min_length=1)
    start_hour: Int = Field(default=8, ge=0, le=23)              # local hour it leaves home
    end_hour: Int = Field(default=16, ge=1, le=24)               # local hour it is home by
    home: Name | None = None                                     # place name (none = start)

    @model_validator(mode="after")
    def _season_and_hours(self) -> ForageTactic:
        bad = [m for m in self.months if not 1 <= m <= 12]
        if bad:
            raise ValueError(f"months are 1 (January) to 12 (December), got {bad}")
        if self.start_hour >= self.end_hour:
            raise ValueError(f"start_hour ({self.start_hour}) must be before end_hour "
                             f"({self.end_hour})")
        return self


InsurgentTactic = (
    HideTactic | NightRaidTactic | AmbushTactic | SeizeTownTactic | BorderCrossingTactic
    | RefugeTactic | MineLayingTactic | FakeCheckpointTactic | PreyTactic
)
CivilianTactic = TrafficTactic | ForageTactic
GarrisonTactic = (
    HoldTactic | PatrolTactic | EscortTactic | PursueTactic | SweepTactic | BorderWatchTactic
    | ZoneGuardTactic
)
TacticSpec = Annotated[
    HideTactic | NightRaidTactic | AmbushTactic | SeizeTownTactic | BorderCrossingTactic
    | RefugeTactic | HoldTactic | PatrolTactic | EscortTactic | PursueTactic | SweepTactic
    | BorderWatchTactic | ZoneGuardTactic | MineLayingTactic | FakeCheckpointTactic | PreyTactic
    | TrafficTactic | ForageTactic,
    Field(discriminator="kind"),
]

INSURGENT_TACTICS = frozenset(
    ["hide", "night_raid", "ambush", "seize_town", "border_crossing", "refuge", "mine_laying",
     "fake_checkpoint", "prey"])
CIVILIAN_TACTICS = frozenset(["traffic", "forage"])
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
    (`sim.scenario.defaults.KIND_DEFAULTS`); use `sim.scenario.defaults.resolved_unit` to get
    them filled."""

    name: Name | None = None
    faction: Name
    kind: UnitKind
    count: Annotated[Int, at_most(MAX_UNITS, "units", "the most a scenario may have")] = Field(
        default=1, ge=1)
    at: PointRef                                  # place name, area name or [lat, lon]
    route: list[PointRef] | None = Field(default=None, min_length=2)
    strength: Fighters | None = Field(default=None, ge=0)
    vehicles: Vehicles | None = Field(default=None, ge=0)
    mobility: Mobility | None = None
    speed_kmh: SpeedKmh | None = Field(default=None, ge=0)
    offroad_speed_kmh: SpeedKmh | None = Field(default=None, ge=0)
    sensor_range_km: RangeKm | None = Field(default=None, ge=0)
    night_sensor_range_km: RangeKm | None = Field(default=None, ge=0)
    weapon_range_km: RangeKm | None = Field(default=None, ge=0)
    kill_rate_per_hour: Annotated[FiniteFloat, at_most(
        MAX_KILL_RATE_PER_HOUR, "kills per shooter per hour", "one a minute")] | None = Field(
        default=None, ge=0)
    fortified: bool | None = None
    water_days: Days | None = Field(default=None, ge=0)
    fuel_days: Days | None = Field(default=None, ge=0)
    ammo_days: Days | None = Field(default=None, ge=0)
    breakoff_loss_fraction: FiniteFloat | None = Field(default=None, ge=0, le=1)
    tactic: TacticSpec | None = None


class EventSpec(_Model):
    """At `day` + `hour` after the start, set scenario paths (override grammar) to new values."""

    day: Days = Field(ge=0)
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
    """A whole scenario, resolved (no `extends` left once loaded).

    Validating this model checks each field; references between parts (a unit's place, a
    tactic's road, an event's path) are checked by :func:`sim.scenario.loading.parse_scenario`,
    the one way scenarios enter the program, which reports every problem with its full path."""

    name: Name
    description: str = ""
    extends: str | None = None
    seed: Int = Field(default=0, ge=0)
    start: datetime = _DEFAULT_START
    utc_offset_hours: FiniteFloat = Field(default=3.0, ge=-12, le=14)
    days: Days = Field(default=30.0, gt=0)
    map: MapSpec
    factions: dict[Name, FactionSpec] = Field(min_length=1)
    units: list[UnitSpec] = Field(default_factory=list)
    events: list[EventSpec] = Field(default_factory=list)
    campaign: CampaignSpec | None = None

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v: Any) -> Any:
        # YAML may hand over a str ("2018-06-01T18:00"), a datetime or a date; the safe loader
        # leaves a timestamp that is no calendar date (2018-02-30) as its text.
        if isinstance(v, datetime):
            return v
        if isinstance(v, (int, float)):
            # pydantic would read a number as a Unix timestamp: surely not what was meant
            raise ValueError(f"expected a date and time like 2018-06-01T18:00, got {v!r}")
        if hasattr(v, "isoformat") and hasattr(v, "year") and not hasattr(v, "hour"):
            return datetime(v.year, v.month, v.day)
        if isinstance(v, str) and re.match(r"\s*\d{4}-\d{1,2}-\d{1,2}", v):
            text = v.strip()
            try:
                # Python names the calendar problem ("day is out of range for month")
                datetime.fromisoformat(re.sub(r"(?i)^(\S+?)\s+(?=\d)", r"\1T", text)
                                       .replace("z", "Z"))
            except ValueError as exc:
                raise ValueError(f"{exc} (got {text!r}; a date and time like "
                                 "2018-06-01T18:00)") from None
        return v

    @field_validator("units")
    @classmethod
    def _unit_budget(cls, units: list[UnitSpec]) -> list[UnitSpec]:
        total = sum(u.count for u in units)
        if total > MAX_UNITS:
            raise ValueError(f"{total:,} units in all (counting each count), more than the "
                             f"{MAX_UNITS:,} a scenario may have")
        return units

    @model_validator(mode="after")
    def _recruit_budget(self) -> Scenario:
        room = sum(r.max_new_cells for r in self.campaign.recruitment) if self.campaign else 0
        total = sum(u.count for u in self.units)
        if room and total + room > MAX_UNITS:
            raise ValueError(f"campaign.recruitment: max_new_cells: room for {room:,} recruited "
                             f"cells besides {total:,} units is more than the {MAX_UNITS:,} "
                             "units a scenario may have")
        return self

    @model_validator(mode="after")
    def _wall_clock(self) -> Scenario:
        if self.start.tzinfo is not None:
            # an explicit offset is converted to the scenario's wall clock
            wall = timezone(timedelta(hours=self.utc_offset_hours))
            self.start = self.start.astimezone(wall).replace(tzinfo=None)
        return self

    @model_validator(mode="after")
    def _measured_period(self) -> Scenario:
        first = self.campaign.measured_from if self.campaign else None
        if first is not None and not self.start.date() <= first < self.end.date():
            raise ValueError(f"campaign.measured_from: {first.isoformat()} is not a day of the "
                             f"run ({self.start.date().isoformat()} to "
                             f"{self.end.date().isoformat()}, before the end)")
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
