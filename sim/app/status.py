"""The app's text: the clock and the light of the hour shown, the status line (scenario, seed,
units alive, parameter values) and the latest notable events."""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def event_lines(model: DesertModel, limit: int = 8) -> list[str]:
    """The latest notable events (attacks, engagements, losses, raids, crossings by insurgents),
    newest first, as short lines."""
    roles = {f: s.role for f, s in model.spec.factions.items()}
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
        when = model.clock.at(e["hour"]).local
        who = e.get("unit", "")
        extra = ""
        if kind == "engagement":
            losses = ", ".join(f"{k} {v:g}" for k, v in e.get("losses", {}).items() if v)
            extra = f" (losses: {losses})" if losses else ""
        elif "reason" in e:
            extra = f" ({e['reason']})"
        lines.append(f"D{e['hour'] // 24 + 1} {when:%H:%M} {kind.replace('_', ' ')}"
                     f"{' — ' + who if who else ''}{extra}")  # fmt: skip
        if len(lines) >= limit:
            break
    return lines
