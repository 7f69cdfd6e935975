"""Cross-reference checks of a whole scenario (pure: Scenario in, list of (path, message) out):
factions, zones, units, tactics and events refer to things that exist."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from sim.errors import PathError
from sim.scenario.fields import _unknown
from sim.scenario.map import BoxSpec, _map_shape_problems, map_reference_problems, place_names
from sim.scenario.overrides import resolve_path
from sim.scenario.paths import Loc, Problem, parse_path
from sim.scenario.schema import (
    CIVILIAN_TACTICS,
    GARRISON_TACTICS,
    INSURGENT_TACTICS,
    TACTIC_MODELS,
    AmbushTactic,
    FakeCheckpointTactic,
    MineLayingTactic,
    Scenario,
)

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
    "mine_laying": {"road": "road", "segment": "place", "hides": "area"},
    "fake_checkpoint": {"road": "road", "segment": "place", "hides": "area"},
    "prey": {"hides": "area"},
    "traffic": {"route": "point"},
    "forage": {"areas": "area", "home": "place"},
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
        elif role == "civilian" and t.kind not in CIVILIAN_TACTICS:
            out.append(((*loc, "tactic", "kind"), f"'{t.kind}' is not a civilian tactic; faction "
                        f"'{u.faction}' is civilian (use one of {sorted(CIVILIAN_TACTICS)})"))
        elif role == "neutral":
            out.append(((*loc, "tactic"), f"faction '{u.faction}' is neutral and takes no tactic"))
        for field, what in TACTIC_REFS[t.kind].items():
            ref((*loc, "tactic", field), getattr(t, field), what)
        if (isinstance(t, AmbushTactic | MineLayingTactic | FakeCheckpointTactic)
                and t.segment is not None and t.road in names["road"]):
            via = [v for v in next(r for r in m.roads if r.name == t.road).via
                   if isinstance(v, str)]
            for j, pl in enumerate(t.segment):
                if pl in names["place"] and pl not in via:
                    out.append(((*loc, "tactic", "segment", j),
                                f"place '{pl}' is not on road '{t.road}' (its places: "
                                f"{', '.join(via) or 'none'})"))
    out += campaign_reference_problems(s, names)
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


def campaign_reference_problems(s: Scenario, names: dict[str, set[str]]) -> list[Problem]:
    """The recruitment, caches and air strikes of ``campaign:``: factions that exist and have
    the right role (insurgents recruit and keep caches, garrisons fly strikes), hide areas
    that exist, and a new cells' tactic that is a valid insurgent tactic naming things that
    exist."""
    out: list[Problem] = []
    if s.campaign is None:
        return out
    sections = (("recruitment", "insurgent"), ("caches", "insurgent"),
                ("air_strikes", "garrison"))  # fmt: skip
    for section, role in sections:
        for i, spec in enumerate(getattr(s.campaign, section)):
            loc: Loc = ("campaign", section, i)
            fac = s.factions.get(spec.faction)
            if fac is None:
                out.append(((*loc, "faction"), _unknown("faction", spec.faction, s.factions)))
            elif fac.role != role:
                out.append(((*loc, "faction"), f"faction '{spec.faction}' is {fac.role}; "
                            f"{section} needs a{'n' if role[0] in 'aeiou' else ''} {role} "
                            "faction"))
            for j, area in enumerate(getattr(spec, "hides", ())):
                if area not in names["area"]:
                    out.append(((*loc, "hides", j), _unknown("area", area, names["area"])))
    for i, spec in enumerate(s.campaign.recruitment):
        out += _new_cell_tactic_problems(spec.tactic, ("campaign", "recruitment", i, "tactic"),
                                         names)
    return out


def _new_cell_tactic_problems(tactic: dict[str, Any] | None, loc: Loc,
                              names: dict[str, set[str]]) -> list[Problem]:
    """A recruitment's tactic for new cells: a known insurgent tactic, valid, whose names exist."""
    if tactic is None:
        return []
    kind = tactic.get("kind")
    if kind not in TACTIC_MODELS:
        return [((*loc, "kind"), f"unknown tactic kind '{kind}' (one of "
                 f"{', '.join(sorted(INSURGENT_TACTICS))})")]
    if kind not in INSURGENT_TACTICS:
        return [((*loc, "kind"), f"'{kind}' is not an insurgent tactic (use one of "
                 f"{sorted(INSURGENT_TACTICS)})")]
    try:
        t = TACTIC_MODELS[kind].model_validate(tactic)
    except ValidationError as e:
        return [((*loc, *err["loc"]), err["msg"]) for err in e.errors(include_url=False)]
    out: list[Problem] = []
    for field, what in TACTIC_REFS[kind].items():
        value = getattr(t, field)
        values = value if isinstance(value, (list, tuple)) else [value]
        for j, v in enumerate(values):
            kind_names = names["place"] if what == "point" else names[what]
            if v is None or isinstance(v, tuple) or v in kind_names:
                continue
            where = (*loc, field, j) if isinstance(value, (list, tuple)) else (*loc, field)
            out.append((where, _unknown(what.replace("_or_", " or "), v, kind_names)))
    return out
