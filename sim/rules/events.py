"""Scenario events: changes that happen during a run (``events: [{day, hour, set: {...}}]``).

Paths use the same grammar as ``--set`` (:func:`sim.scenario.overrides.resolve_path`); at run
time they
change the live state: a faction's ``border_security`` or ``comms_delay_hours``, the numbers of
the units that came from a ``units[...]`` entry (for example border posts reinforced on day 20),
or which factions a zone bars.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.errors import ScenarioError
from sim.scenario.overrides import resolve_path

if TYPE_CHECKING:
    from sim.rules.state import RunState
    from sim.scenario.schema import EventSpec

#: Unit spec fields that map onto force-table columns at run time.
UNIT_COLUMNS = {
    "strength": "strength",
    "vehicles": "vehicles",
    "speed_kmh": "speed_kmh",
    "offroad_speed_kmh": "offroad_speed_kmh",
    "sensor_range_km": "sensor_day_km",
    "night_sensor_range_km": "sensor_night_km",
    "weapon_range_km": "weapon_range_km",
    "kill_rate_per_hour": "kill_rate_per_hour",
    "breakoff_loss_fraction": "breakoff",
    "water_days": "water_days",
    "fuel_days": "fuel_days",
    "ammo_days": "ammo_days",
}


def apply_event(model: RunState, event: EventSpec) -> None:
    """Apply one scenario event to the running model and log it."""
    for path, value in event.set.items():
        try:
            locations = resolve_path(model.spec, path)
        except ValueError as exc:  # validated at load time; a failure here is a bug in the spec
            raise ScenarioError([f"{model.spec.name}: events: {path}: {exc}"]) from exc
        for loc in (loc for loc, _ in locations):
            _apply_location(model, loc, value)
        model.log("scenario_event", model.units[0].cell if model.units else 0, "",
                  path=path, value=value)  # fmt: skip


def _apply_location(model: RunState, loc: tuple, value) -> None:
    f = model.force
    head = loc[0]
    if head == "factions":
        fi = model.faction_index[loc[1]]
        field = loc[2]
        if field == "border_security":
            model.border_security[fi] = float(value)
        elif field == "comms_delay_hours":
            model.knowledge.delay[fi] = round(float(value))
        elif field == "hostile":
            model.hostile[fi, :] = False
            model.hostile[:, fi] = False
            for name, fac in model.spec.factions.items():
                others = value if name == loc[1] else fac.hostile
                for other in others:
                    a, b = model.faction_index[name], model.faction_index[other]
                    model.hostile[a, b] = model.hostile[b, a] = True
        return
    if head == "units":
        spec_index, field = loc[1], loc[2]
        column = UNIT_COLUMNS.get(field)
        if column is None:
            raise ScenarioError([f"{model.spec.name}: events: units[{spec_index}].{field}: "
                                 "cannot change during a run"])  # fmt: skip
        for unit in model.units:
            if unit.spec_index == spec_index and f.alive[unit.idx]:
                getattr(f, column)[unit.idx] = float(value)
                if column == "strength":
                    f.strength0[unit.idx] = max(f.strength0[unit.idx], float(value))
                if column.endswith("_days"):
                    getattr(f, column.replace("_days", "_cap"))[unit.idx] = float(value)
        return
    if head == "map" and loc[1] == "zones":
        zone, field = loc[2], loc[3]
        if field == "barred":
            for fi, name in enumerate(model.faction_names):
                zones = set(model.barred_zones[fi])
                if name in value:
                    zones.add(zone)
                else:
                    zones.discard(zone)
                model.barred_zones[fi] = frozenset(zones)
        return
