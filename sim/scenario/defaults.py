"""Factions and unit kinds: per-kind default numbers, resolved units, hostility and roles.

A `UnitSpec` may leave out any number; `resolved_unit` fills it from `KIND_DEFAULTS[kind]`.
The defaults are documented (with their reasoning) in docs/scenario-format.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from sim.scenario.schema import FactionSpec, Scenario, TacticSpec, UnitSpec
from sim.scenario.vocab import Mobility, Role, UnitKind


@dataclass(frozen=True)
class KindDefaults:
    """Default numbers for one unit kind (units as in the field names)."""

    strength: int                   # fighters
    vehicles: int
    mobility: Mobility
    speed_kmh: float                # top speed on a highway
    offroad_speed_kmh: float
    sensor_range_km: float          # by day
    night_sensor_range_km: float
    weapon_range_km: float
    kill_rate_per_hour: float       # aimed kills per shooter per hour of fire
    fortified: bool
    water_days: float
    fuel_days: float
    ammo_days: float
    breakoff_loss_fraction: float   # break off when losses pass this fraction of strength


def _kd(strength: int, vehicles: int, mobility: Mobility, speed: float, offroad: float,
        sensor: float, night_sensor: float, weapon: float, kill: float, supplies: float,
        breakoff: float, fortified: bool = False) -> KindDefaults:
    return KindDefaults(strength, vehicles, mobility, speed, offroad, sensor, night_sensor, weapon,
                        kill, fortified, supplies, supplies, supplies, breakoff)


#: Defaults per unit kind. Static posts have speed 0 and a month of supplies; mobile units carry
#: days. See docs/scenario-format.md for the reasoning behind each row.
KIND_DEFAULTS: Mapping[UnitKind, KindDefaults] = {
    "cell":        _kd(8, 2, "offroad", 70, 35, 5.0, 1.5, 1.0, 0.6, 3, 0.4),
    "strongpoint": _kd(25, 2, "road", 0, 0, 8.0, 2.5, 2.0, 0.5, 30, 0.8, fortified=True),
    "patrol":      _kd(10, 3, "offroad", 60, 30, 6.0, 2.0, 1.5, 0.5, 5, 0.4),
    "convoy":      _kd(4, 6, "road", 50, 20, 3.0, 1.0, 0.8, 0.2, 10, 0.5),
    "qrf":         _kd(20, 5, "offroad", 80, 40, 6.0, 2.5, 2.0, 0.7, 5, 0.4),
    "border_post": _kd(12, 1, "road", 0, 0, 6.0, 2.5, 1.5, 0.5, 30, 0.7, fortified=True),
    "zone_guard":  _kd(15, 4, "offroad", 70, 40, 8.0, 3.0, 3.0, 0.9, 10, 0.4),
    # civilians: a bus or truck (or a workers' convoy; strength = people aboard) and a group of
    # truffle hunters or shepherds with a pickup, slow off road as they search; they carry no
    # weapons (kill rate 0) and see little; they break off (flee) at the first loss
    "civilian_vehicle": _kd(20, 1, "road", 70, 20, 1.0, 0.3, 0.0, 0.0, 2, 0.05),
    "forager":     _kd(6, 1, "offroad", 40, 15, 1.0, 0.3, 0.0, 0.0, 3, 0.05),
}

_NUMBER_FIELDS = tuple(f.name for f in fields(KindDefaults))

#: Walking speeds for units on foot (km/h on a track and across country, loaded, at night).
FOOT_SPEED_KMH = 5.0
FOOT_OFFROAD_SPEED_KMH = 4.0


@dataclass(frozen=True)
class ResolvedUnit:
    """A unit spec with every number filled (spec value, else the kind default)."""

    name: str
    faction: str
    kind: UnitKind
    count: int
    at: str | tuple[float, float]
    route: tuple[str | tuple[float, float], ...] | None
    tactic: TacticSpec | None
    strength: int
    vehicles: int
    mobility: Mobility
    speed_kmh: float
    offroad_speed_kmh: float
    sensor_range_km: float
    night_sensor_range_km: float
    weapon_range_km: float
    kill_rate_per_hour: float
    fortified: bool
    water_days: float
    fuel_days: float
    ammo_days: float
    breakoff_loss_fraction: float
    spec_index: int | None = None   # position in `scenario.units`, when known


def resolved_unit(spec: UnitSpec, index: int | None = None) -> ResolvedUnit:
    """Fill the numbers `spec` leaves out from `KIND_DEFAULTS[spec.kind]`.

    `index` (the spec's position in `scenario.units`) names unnamed units `<kind>-<index>`."""
    base = asdict(KIND_DEFAULTS[spec.kind])
    if spec.mobility == "foot" and base["mobility"] != "foot":
        # a unit sent on foot walks: its kind's vehicle speeds do not apply
        base.update(speed_kmh=FOOT_SPEED_KMH, offroad_speed_kmh=FOOT_OFFROAD_SPEED_KMH,
                    vehicles=0)  # fmt: skip
    numbers = {k: (getattr(spec, k) if getattr(spec, k) is not None else base[k])
               for k in _NUMBER_FIELDS}
    name = spec.name if spec.name is not None else (
        f"{spec.kind}-{index}" if index is not None else spec.kind)
    return ResolvedUnit(
        name=name, faction=spec.faction, kind=spec.kind, count=spec.count, at=spec.at,
        route=tuple(spec.route) if spec.route is not None else None, tactic=spec.tactic,
        spec_index=index, **numbers,
    )


def resolved_units(scenario: Scenario) -> list[ResolvedUnit]:
    """Every unit spec of the scenario, resolved, in file order (`count` is not expanded)."""
    return [resolved_unit(u, i) for i, u in enumerate(scenario.units)]


def units_at_start(scenario: Scenario) -> int:
    """The units a run of `scenario` starts with, the one count `badia validate`, the app and
    the model's force table agree on: every entry's `count`, plus the escort each unit with an
    `escort` tactic brings along (created with its convoy when the run is built)."""
    return sum(u.count * (2 if getattr(u.tactic, "kind", None) == "escort" else 1)
               for u in scenario.units)


def hostile_pairs(factions: Mapping[str, FactionSpec]) -> frozenset[tuple[str, str]]:
    """Ordered pairs (a, b) of factions that fight each other.

    Hostility is symmetric: if either side lists the other in `hostile`, both (a, b) and (b, a)
    are in the set."""
    pairs: set[tuple[str, str]] = set()
    for a, spec in factions.items():
        for b in spec.hostile:
            if b in factions and b != a:
                pairs.add((a, b))
                pairs.add((b, a))
    return frozenset(pairs)


def is_hostile(factions: Mapping[str, FactionSpec], a: str, b: str) -> bool:
    """True if factions `a` and `b` fight each other (either lists the other as hostile)."""
    return (a, b) in hostile_pairs(factions)


def role_of(factions: Mapping[str, FactionSpec], name: str) -> Role:
    """The role (`garrison`, `insurgent`, `neutral`) of faction `name` (KeyError if unknown)."""
    return factions[name].role


def factions_with_role(factions: Mapping[str, FactionSpec], role: Role) -> list[str]:
    """Names of the factions with `role`, in file order."""
    return [n for n, f in factions.items() if f.role == role]


def enemies_of(factions: Mapping[str, FactionSpec], name: str) -> list[str]:
    """Factions hostile to `name` (symmetric), in file order."""
    pairs = hostile_pairs(factions)
    return [other for other in factions if (name, other) in pairs]
