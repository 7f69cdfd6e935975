"""Words and numbers for people: metric titles and units, factor paths in words, factor levels
and design points as labels, numbers to three significant digits.

Shared by the figures (`sim.analysis.figures`) and the HTML page (`sim.analysis.report`), so a
metric or a factor reads the same on a slide and in a table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

_PLURAL = {"attacks": "Attacks", "raid": "Raids", "ambush": "Ambushes",
           "seizure": "Seizures", "patrol_contact": "Patrol contacts"}
_FIXED: dict[str, tuple[str, str]] = {
    "attack_success_rate": ("Attack success rate", "successes per attempt"),
    "roads_open_fraction_mean": ("Road km open", "fraction, mean over hours"),
    "road_closed_hours_total": ("Road closure", "segment-hours per {run}"),
    "border_crossings_total": ("Border crossings", "per {run}"),
    "engagements_total": ("Engagements", "per {run}"),
    "zone_entries_total": ("Zone entries", "per {run}"),
    "zone_entries_barred_total": ("Entries into barred zones", "per {run}"),
    "pursuits_broken_off_total": ("Pursuits broken off at a zone edge", "per {run}"),
    "border_crossings_intercepted": ("Border crossings intercepted", "per {run}"),
    "insurgent_units_found_fraction": ("Insurgent units found", "fraction ever seen"),
    "raid_attempted_total": ("Raid attacks (fights opened on a target, joint raids once)",
                             "per {run}"),
    "raids_set_out": ("Raiding cells set out (each cell of a joint raid)", "per {run}"),
    "raids_set_out_at_night_fraction": ("Raids set out at night", "fraction of raids set out"),
    "raids_hidden_before_first_light_fraction": ("Raiders hidden before first light",
                                                 "fraction of raids"),
    "towns_seized": ("Towns seized", "per {run}"),
    "relief_hours_mean": ("Time to relieve a seized town", "h"),
    "sweep_squares_cleared": ("Sweep squares cleared", "per {run}"),
    "sweep_squares_total": ("Sweep squares", "per {run}"),
}


def _words(name: str) -> str:
    return name.replace("_", " ").strip()


def describe_metric(metric: str) -> tuple[str, str]:
    """(title, unit) of a summary or daily metric, e.g. ("Fighters lost, government",
    "fighters per {run}"); "{run}" stands for the run length (see `metric_label`)."""
    if metric in _FIXED:
        return _FIXED[metric]
    base = metric
    for suffix in ("_total", "_mean", "_end"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    daily = base == metric
    per = "per day" if daily else "per {run}"
    if m := re.fullmatch(r"(\w+?)_(attempted|succeeded)", base):
        kind = _PLURAL.get(m.group(1), _words(m.group(1)).capitalize())
        return f"{kind} {m.group(2)}", per
    if m := re.fullmatch(r"losses__(\w+)", base):
        return f"Fighters lost, {_words(m.group(1))}", f"fighters {per}"
    if m := re.fullmatch(r"detections_(day|night)__(\w+)", base):
        when = "by day" if m.group(1) == "day" else "at night"
        return f"Detections by {_words(m.group(2))} {when}", per
    if m := re.fullmatch(r"road_closed_hours(?:__(\w+))?", base):
        where = f" of {_words(m.group(1))}" if m.group(1) else ""
        return f"Road closure{where}", f"segment-hours {per}"
    if m := re.fullmatch(r"coverage_(road|area)_(day|night)", base):
        what = "Road" if m.group(1) == "road" else "Area"
        when = "by day" if m.group(2) == "day" else "at night"
        cells = "road cells" if m.group(1) == "road" else "map"
        return f"{what} coverage {when}", f"fraction of {cells} in sensor range"
    if base == "roads_open_fraction":
        return "Road km open", "fraction"
    if m := re.fullmatch(r"(fighters|units)_alive__(\w+)", base):
        when = " at the end" if metric.endswith("_end") else ""
        return f"{m.group(1).capitalize()} alive{when}, {_words(m.group(2))}", m.group(1)
    if base in ("border_crossings", "engagements", "zone_entries", "pursuits_broken_off"):
        return _words(base).capitalize(), per
    if base.endswith("_fraction"):
        return _words(base[: -len("_fraction")]).capitalize(), "fraction"
    if base.endswith("_events"):
        return _words(base).capitalize(), per
    return _words(metric).capitalize(), "per {run}" if metric.endswith("_total") else ""


def _run_text(days: float | None) -> str:
    return f"{days:g}-day run" if days else "run"


def metric_title(metric: str) -> str:
    """A metric's plain-language title, e.g. "Attacks attempted"."""
    return describe_metric(metric)[0]


def metric_label(metric: str, days: float | None = None, cumulative: bool = False) -> str:
    """Axis label with units, e.g. "Attacks attempted (per 7-day run)"."""
    title, unit = describe_metric(metric)
    unit = unit.replace("{run}", _run_text(days))
    if cumulative:
        title = f"{title}, running total"
        unit = unit.replace(" per day", "").replace("per day", "")
    return f"{title} ({unit})" if unit else title


_UNITS = (("_per_hour", "per h"), ("_kmh", "km/h"), ("_km", "km"), ("_hours", "h"),
          ("_days", "days"), ("_fraction", "fraction"))
_DROP = {"units", "factions", "tactic", "events"}


def factor_unit(path: str) -> str:
    """The unit in a factor path's last name (`night_sensor_range_km` -> "km"), or ""."""
    last = re.split(r"\.(?![^\[]*\])", path)[-1]
    for suffix, unit in _UNITS:
        if last.endswith(suffix):
            return unit
    return ""


def factor_label(path: str, unit: bool = True) -> str:
    """A factor path in words: `units[kind=strongpoint].night_sensor_range_km` ->
    "strongpoint night sensor range (km)"."""
    words = []
    for seg in re.split(r"\.(?![^\[]*\])", path):
        m = re.fullmatch(r"(\w+)\[(.*)\]", seg)
        if m:
            inner = m.group(2)
            words.append(inner.split("=", 1)[1] if "=" in inner else
                         f"{m.group(1).rstrip('s')} {inner}")
            continue
        if seg in _DROP:
            continue
        name = seg
        for suffix, _ in _UNITS:
            if name.endswith(suffix) and suffix != "_fraction":
                name = name[: -len(suffix)]
                break
        words.append(_words(name))
    text = " ".join(w for w in words if w) or path
    u = factor_unit(path)
    return f"{text} ({u})" if unit and u and u != "fraction" else text


def level_text(value: Any, factor: str | None = None) -> str:
    """A factor level for a label: numbers to 3 significant digits with the factor's unit."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    text = f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"
    u = factor_unit(factor) if factor else ""
    return f"{text} {u}" if u and u != "fraction" else text


def point_label(row: Any, factors: Sequence[str]) -> str:
    """A design point in a few words: its levels joined by " · " (e.g. "night · 4 km")."""
    return " · ".join(level_text(row[f], f) for f in factors) or "base"


def fmt(x: Any) -> str:
    """A number for a table or a heatmap cell: 3 significant digits (whole numbers as they
    are, thousands separated from 10,000), '' for None and NaN; text as it is."""
    if x is None:
        return ""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return ""
    if v == round(v) and abs(v) < 1e6:
        return f"{v:.0f}"
    if abs(v) >= 100:
        return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.1f}"
    return f"{v:.3g}"


__all__ = [
    "describe_metric",
    "factor_label",
    "factor_unit",
    "fmt",
    "level_text",
    "metric_label",
    "metric_title",
    "point_label",
]
