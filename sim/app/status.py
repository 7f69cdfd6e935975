"""The app's text: the clock and the light of the hour shown, the status line (scenario, seed,
units alive, parameter values) and the latest notable events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.app.views import friendly_factions
from sim.engine.model import DesertModel
from sim.scenario.vocab import ATTACK_TYPES
from sim.world.clock import LightLevel

if TYPE_CHECKING:
    from sim.app.model import VizModel


def light_shown(model: DesertModel) -> LightLevel:
    """Light of the hour just simulated (of hour 0 before the first step)."""
    return LightLevel(int(model.light_by_hour[max(model.hour - 1, 0)]))


def clock_text(model: DesertModel) -> str:
    """``Day 3 · Sun 03 Jun 2018 21:00 · night · hour 51 of 336``."""
    tick = model.clock.at(model.hour)
    light = light_shown(model).name.lower()
    return (f"Day {model.hour // 24 + 1} · {tick.local:%a %d %b %Y %H:%M} · {light} · "
            f"hour {model.hour} of {model.spec.hours}")  # fmt: skip


def status_text(model: VizModel) -> str:
    """Scenario, seed, units alive by faction and the parameter values of this run."""
    info = getattr(model, "viz", None)
    f = model.force
    alive = f.view("alive")
    fac = f.view("faction")
    counts = " · ".join(
        f"{name} {int((alive & (fac == i)).sum())}" for i, name in enumerate(model.faction_names)
    )
    parts = [f"{model.spec.name} · seed {model.seed} · units alive: {counts}"]
    if info is not None and info.sliders:
        shown = []
        for spec in info.sliders:
            value = info.values.get(spec.name, spec.value)
            tag = " (set)" if spec.name in info.changed else ""
            shown.append(spec.describe(value) + tag)
        parts.append("parameters: " + " · ".join(shown))
    return "\n".join(parts)


def pending_lines(model: VizModel, chosen: dict) -> list[str]:
    """Each slider's value in this run, and the inputs chosen in the sidebar that differ from
    this run's (they apply on Reset), marked as pending."""
    info = getattr(model, "viz", None)
    if info is None:
        return []
    lines = []
    for spec in info.sliders:
        value = info.values.get(spec.name, spec.value)
        line = spec.describe(value)
        want = chosen.get(spec.name)
        if want is not None and want != "" and float(want) != float(value):
            line += f"  → {spec.describe(float(want)).split(' ', 1)[-1]} (pending: Reset applies)"
        lines.append(line)
    for name, label, now in (("scenario_file", "scenario", info.bundled_name),
                             ("scenario_path", "scenario file", info.custom_path),
                             ("rng", "seed", info.seed_text)):
        want = chosen.get(name)
        if want is not None and str(want).strip() != str(now or "").strip():
            lines.append(f"{label}: {str(want).strip() or '(the scenario’s)'} "
                         "(pending: Reset applies)")
    return lines


def scenario_lines(model: DesertModel) -> list[str]:
    """What the scenario is about, as progress lines: a sweep's squares cleared, border
    crossings made and intercepted, roads open."""
    lines = []
    sweeps = [u.behaviour for u in model.units if type(u.behaviour).__name__ == "Sweep"
              and hasattr(u.behaviour, "squares")]  # fmt: skip
    if sweeps:
        done = sum(s.cleared_squares for s in sweeps)
        total = sum(len(s.squares) for s in sweeps)
        lines.append(f"sweep: {done} of {total} squares cleared")
    if any(getattr(u.tactic, "kind", None) == "border_crossing" for u in model.spec.units):
        ins = {f for f, s in model.spec.factions.items() if s.role == "insurgent"}
        crossed = sum(1 for e in model.events if e["type"] == "crossing" and e["faction"] in ins)
        caught = sum(1 for e in model.events if e["type"] == "crossing_intercepted")
        lines.append(f"border: {crossed} crossings, {caught} intercepted")
    n = len(model.roads.segments)
    if n:
        closed = int((model.roads.closed_until > model.hour).sum())
        lines.append(f"roads: {n - closed} of {n} segments open")
    return lines


def event_lines(model: DesertModel, limit: int = 8, observer: int | None = None) -> list[str]:
    """The latest notable events (attacks, engagements, losses, raids, crossings by insurgents),
    newest first, as short lines.

    With ``observer`` (a faction index) only what that faction knows: its own side's doings and
    attacks on it, enemy units named only if the faction knows them (else "unknown ...")."""
    roles = {f: s.role for f, s in model.spec.factions.items()}
    friends = None
    known: set[str] = set()
    faction_of = {u.name: u.faction for u in model.units}
    if observer is not None:
        friends = friendly_factions(model, observer)
        idx, _, _ = model.knowledge.known_to(observer, model.hour, None,
                                             model.config.knowledge_max_age_hours)  # fmt: skip
        known = {model.units[i].name for i in idx.tolist()}

    def name(unit: str) -> str:
        if friends is None or faction_of.get(unit) in friends or unit in known:
            return unit
        return f"unknown {faction_of.get(unit, 'enemy')}"

    def seen(e: dict) -> bool:
        if friends is None or e.get("faction") in friends:
            return True
        others = [e.get("target"), *(e.get("defender") or []), *(e.get("attacker") or [])]
        if any(faction_of.get(n) in friends for n in others if n):
            return True
        return e["type"] == "loss" and e.get("unit") in known
    wanted = {"engagement", "loss", "raid_start", "raid_end", "raid_abort", "ambush_set",
              "seizure_start", "seizure_end", "breakoff", "pursuit_start", "crossing_intercepted",
              *ATTACK_TYPES}  # fmt: skip
    lines = []
    for e in reversed(model.events):
        kind = e["type"]
        if kind == "crossing" and roles.get(e["faction"]) == "insurgent":
            pass
        elif kind not in wanted:
            continue
        if not seen(e):
            continue
        when = model.clock.at(e["hour"]).local
        who = name(e["unit"]) if e.get("unit") else ""
        extra = ""
        if "target" in e and isinstance(e["target"], str):
            extra = f" on {name(e['target'])}"
        if kind == "engagement":
            sides = [sorted({name(u) for u in e.get(k) or []}) for k in ("attacker", "defender")]
            who = " vs ".join(", ".join(s[:2]) + (" +" if len(s) > 2 else "") for s in sides)
            losses = ", ".join(f"{k} {v:g}" for k, v in e.get("losses", {}).items() if v)
            extra = f" (losses: {losses})" if losses else ""
        elif "reason" in e:
            extra = f" ({e['reason']})"
        lines.append(f"D{e['hour'] // 24 + 1} {when:%H:%M} {kind.replace('_', ' ')}"
                     f"{' — ' + who if who else ''}{extra}")  # fmt: skip
        if len(lines) >= limit:
            break
    return lines
