"""The browser visualisation: a scenario unfolding on the desert map, in Mesa's SolaraViz.

Three layers, cheapest to change last:

- :class:`VizModel`, a :class:`~sim.engine.model.DesertModel` whose ``__init__`` takes only keyword
  arguments with defaults (SolaraViz rebuilds it on Reset as ``type(model)(**params)``): the
  scenario (a bundled file or a path), the seed, and a few sliders, each mapped to override paths
  of the scenario (:func:`slider_specs`).
- Figures: :func:`map_figure` draws one frame. The terrain, roads, places, zones and legend of a
  view are drawn once (with :func:`sim.analysis.maps.plot_terrain`), rasterised and cached per
  (terrain, view); a frame puts that raster in the figure as a pixel-exact ``figimage`` and draws
  only the overlay on top: night shading, units, recent engagements, detections and attacks, the
  clock. :func:`plots_figure` draws the time series from the model's DataCollector.
- Solara components: :func:`MapView`, :func:`Plots`, and :func:`Page`, which wraps
  :func:`mesa.visualization.SolaraViz` (controls: play / step / reset, play and render
  intervals, model parameters) and lays the map and the plots out side by side.

``sim/app/serve.py`` serves :func:`Page` (``badia viz``).
"""

from __future__ import annotations

import io
import math
import os
import sys
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.patheffects as pe
import numpy as np
import solara
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter
from mesa.visualization import SolaraViz
from mesa.visualization.utils import update_counter

from sim.analysis import maps
from sim.engine.metrics import slug
from sim.engine.model import DEFAULT_SCENARIO, DesertModel, ModelConfig
from sim.engine.units import Posture
from sim.errors import PathError, ScenarioError
from sim.scenario.loading import SCENARIO_DIR, load_scenario
from sim.scenario.overrides import resolve_path
from sim.scenario.schema import Scenario
from sim.world.clock import LightLevel

#: Environment variable naming the scenario the app starts with (set by ``badia viz``).
ENV_SCENARIO = "BADIA_VIZ_SCENARIO"

# --------------------------------------------------------------------------------------------
# Scenarios and sliders
# --------------------------------------------------------------------------------------------


def bundled_scenarios() -> dict[str, Path]:
    """The scenario files shipped in ``scenarios/``, by file stem, sorted."""
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.yaml"))}


def start_scenario() -> Path:
    """The scenario the app opens with: ``$BADIA_VIZ_SCENARIO`` or the default scenario."""
    env = os.environ.get(ENV_SCENARIO, "").strip()
    return Path(env) if env else DEFAULT_SCENARIO


@dataclass(frozen=True)
class SliderSpec:
    """One parameter slider: what it is called, its range, and the scenario paths it sets.

    ``value`` is the scenario's own value (the slider's default); a slider left at it changes
    nothing. ``mode`` is ``"total"`` (the value is a total count spread over ``paths`` in
    proportion to their counts, each at least 1) or ``"value"`` (every path is set to it).
    """

    name: str
    label: str
    value: float
    min: float
    max: float
    step: float
    paths: tuple[str, ...]
    mode: str = "value"
    shares: tuple[int, ...] = ()
    unit: str = ""

    @property
    def is_float(self) -> bool:
        return isinstance(self.step, float) and not float(self.step).is_integer()

    def param(self, current: float | None = None) -> dict[str, Any]:
        """The SolaraViz ``model_params`` entry (showing ``current``, else the default)."""
        value = self.value if current is None else current
        kind = "SliderFloat" if self.is_float else "SliderInt"
        cast = float if self.is_float else int
        return {"type": kind, "label": self.label, "value": cast(value), "min": cast(self.min),
                "max": cast(self.max), "step": cast(self.step)}  # fmt: skip

    def overrides(self, value: float) -> list[str]:
        """``PATH=VALUE`` strings that put ``value`` into the scenario."""
        if self.mode == "total":
            counts = distribute(self.shares, round(value))
            return [f"{p}={c}" for p, c in zip(self.paths, counts, strict=True)]
        text = f"{float(value):g}" if self.is_float else str(round(value))
        return [f"{p}={text}" for p in self.paths]

    def describe(self, value: float) -> str:
        text = f"{float(value):g}" if self.is_float else str(round(value))
        return f"{self.label.split(' (')[0]} {text}{self.unit}"


def distribute(shares: Sequence[int], total: int) -> list[int]:
    """Split ``total`` over items in proportion to ``shares``, each at least 1 (largest remainder).

    The sum is exactly ``max(total, len(shares))``."""
    n = len(shares)
    total = max(int(total), n)
    weights = np.asarray(shares, dtype=float)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(n, 1.0 / n)
    # one each first, then the rest in proportion
    extra = weights * (total - n)
    out = np.floor(extra).astype(int) + 1
    left = total - int(out.sum())
    order = np.argsort(-(extra - np.floor(extra)), kind="stable")
    out[order[:left]] += 1
    return out.tolist()


def _matches(scenario: Scenario, path: str) -> list[tuple[tuple, Any]]:
    try:
        return resolve_path(scenario, path)
    except PathError:
        return []


def _weighted_median(values: Sequence[float], weights: Sequence[int]) -> float:
    order = np.argsort(values, kind="stable")
    v = np.asarray(values, dtype=float)[order]
    w = np.cumsum(np.asarray(weights, dtype=float)[order])
    return float(v[np.searchsorted(w, w[-1] / 2.0)])


def slider_specs(scenario: Scenario) -> list[SliderSpec]:
    """The sliders that make sense for ``scenario``: each only if its paths resolve in it.

    - ``patrols``: total number of patrol units (``units[kind=patrol].count``, spread over the
      patrol entries in proportion);
    - ``cells``: total number of insurgent cells (``units[kind=cell].count``);
    - ``night_sensor_range_km``: night sensor range of every unit of the garrison factions
      (``units[faction=F].night_sensor_range_km``);
    - ``border_security``: starting border security of the factions that have one (or, on a map
      with borders, of the garrison factions with border posts) (``factions.F.border_security``);
    - ``escort_strength``: fighters escorting each convoy (``units[i].tactic.escort_strength``).
    """
    from sim.scenario.defaults import resolved_unit

    specs: list[SliderSpec] = []
    for name, kind, label in (("patrols", "patrol", "Patrols (total)"),
                              ("cells", "cell", "Insurgent cells (total)")):  # fmt: skip
        hits = _matches(scenario, f"units[kind={kind}].count")
        if hits:
            counts = tuple(int(v) for _, v in hits)
            total = sum(counts)
            specs.append(SliderSpec(
                name, label, total, len(counts), max(2 * total, total + 6, 8), 1,
                tuple(f"units[{loc[1]}].count" for loc, _ in hits), "total", counts))  # fmt: skip

    garrison = [f for f, spec in scenario.factions.items() if spec.role == "garrison"]
    paths, values, weights = [], [], []
    for fac in garrison:
        if _matches(scenario, f"units[faction={fac}].night_sensor_range_km"):
            paths.append(f"units[faction={fac}].night_sensor_range_km")
            for u in scenario.units:
                if u.faction == fac:
                    values.append(resolved_unit(u).night_sensor_range_km)
                    weights.append(u.count)
    if paths:
        default = round(2 * _weighted_median(values, weights)) / 2
        specs.append(SliderSpec("night_sensor_range_km", "Night sensor range, garrison (km)",
                                default, 0.5, 10.0, 0.5, tuple(paths), unit=" km"))  # fmt: skip

    secured = [f for f, spec in scenario.factions.items() if spec.border_security > 0]
    if not secured and scenario.map.borders:
        secured = [f for f in garrison
                   if any(u.faction == f and u.kind == "border_post" for u in scenario.units)]
    paths = [f"factions.{f}.border_security" for f in secured
             if _matches(scenario, f"factions.{f}.border_security")]
    if paths:
        default = max(scenario.factions[f].border_security for f in secured)
        specs.append(SliderSpec("border_security", "Border security (at start)",
                                round(default, 2), 0.0, 1.0, 0.05, tuple(paths)))  # fmt: skip

    hits = [(loc, v) for loc, v in _matches(scenario, "units[kind=convoy].tactic.escort_strength")
            if v is not None]
    if hits:
        counts = [scenario.units[loc[1]].count for loc, _ in hits]
        default = round(_weighted_median([v for _, v in hits], counts))
        specs.append(SliderSpec(
            "escort_strength", "Escort strength (fighters per convoy)", default, 0, 40, 1,
            tuple(f"units[{loc[1]}].tactic.escort_strength" for loc, _ in hits)))  # fmt: skip
    return specs


@dataclass
class VizInfo:
    """What the app shows about how a :class:`VizModel` was built."""

    source: Path  # the scenario file
    key: str  # identity of the scenario the sliders belong to
    bundled_name: str  # stem of the bundled file, or "" for one's own path
    custom_path: str  # the path typed in, or ""
    seed_text: str  # the seed as typed ("" = the scenario's)
    sliders: list[SliderSpec] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)  # every slider's value in this run
    changed: dict[str, float] = field(default_factory=dict)  # the ones that differ from default
    overrides: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # one-line problems with the inputs


class VizModel(DesertModel):
    """A :class:`DesertModel` built from the app's inputs (every argument has a default).

    Args:
        scenario_file: stem of a bundled scenario (``scenarios/<stem>.yaml``).
        scenario_path: one's own scenario file; used instead of ``scenario_file`` when not blank.
        rng: the seed as text or int; blank or None takes the scenario's seed.
        patrols, cells, night_sensor_range_km, border_security, escort_strength: slider values
            (see :func:`slider_specs`); None or the scenario's own value changes nothing.
        sliders_for: the scenario the slider values were chosen for (``VizInfo.key``); values
            chosen for another scenario are ignored, so switching scenarios starts from the new
            scenario's own values.

    Bad input never raises: a scenario that does not load falls back to the start scenario and
    a bad seed to the scenario's seed, each with a one-line notice in ``self.viz.notices``.
    """

    def __init__(
        self,
        scenario_file: str = "",
        scenario_path: str = "",
        rng: str | int | None = "",
        patrols: int | None = None,
        cells: int | None = None,
        night_sensor_range_km: float | None = None,
        border_security: float | None = None,
        escort_strength: int | None = None,
        sliders_for: str = "",
    ):
        notices: list[str] = []
        bundled = bundled_scenarios()
        custom = str(scenario_path or "").strip()
        if custom:
            source = Path(custom).expanduser()
        elif scenario_file in bundled:
            source = bundled[scenario_file]
        else:
            if scenario_file:
                notices.append(f"no bundled scenario '{scenario_file}'; opened the start scenario")
            source = start_scenario()
        try:
            base = load_scenario(source)
        except ScenarioError as exc:
            notices.extend(exc.messages[:3])
            fallback = start_scenario()
            if fallback.resolve() == source.resolve():
                fallback = DEFAULT_SCENARIO
            notices.append(f"opened {_short_path(fallback)} instead")
            source, custom = fallback, ""
            base = load_scenario(source)

        seed_text = "" if rng is None else str(rng).strip()
        seed: int | None = None
        if seed_text:
            try:
                seed = int(seed_text)
                if seed < 0:
                    raise ValueError
            except ValueError:
                notices.append(f"seed '{seed_text}' is not a whole number >= 0; "
                               f"used the scenario's seed {base.seed}")  # fmt: skip
                seed = None

        key = str(source.resolve())
        given = {"patrols": patrols, "cells": cells,
                 "night_sensor_range_km": night_sensor_range_km,
                 "border_security": border_security,
                 "escort_strength": escort_strength}  # fmt: skip
        specs = slider_specs(base)
        use_sliders = not sliders_for or sliders_for == key
        values: dict[str, float] = {}
        changed: dict[str, float] = {}
        overrides: list[str] = []
        for spec in specs:
            value = given.get(spec.name)
            values[spec.name] = spec.value
            if not use_sliders or value is None or value == "":
                continue
            value = float(value) if spec.is_float else round(float(value))
            values[spec.name] = value
            if not math.isclose(float(value), float(spec.value), abs_tol=1e-9):
                changed[spec.name] = value
                overrides += spec.overrides(value)
        scenario = base
        if overrides:
            try:
                scenario = load_scenario(source, overrides)
            except ScenarioError as exc:
                notices.extend(exc.messages[:3])
                notices.append("ran the scenario without the slider changes")
                values = {s.name: s.value for s in specs}
                changed, overrides = {}, []

        super().__init__(scenario, rng=seed, config=ModelConfig(collect_every_hours=1))
        self.viz = VizInfo(
            source=source,
            key=key,
            bundled_name=next((k for k, p in bundled.items() if str(p.resolve()) == key), ""),
            custom_path=custom,
            seed_text=seed_text,
            sliders=specs,
            values=values,
            changed=changed,
            overrides=overrides,
            notices=notices,
        )


def _short_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def model_params(model: VizModel) -> dict[str, Any]:
    """SolaraViz ``model_params`` for the scenario ``model`` runs (its sliders, current values)."""
    info = model.viz
    names = list(bundled_scenarios())
    params: dict[str, Any] = {
        "scenario_file": {"type": "Select", "label": "Scenario", "values": names,
                          "value": info.bundled_name or (names[0] if names else "")},
        "scenario_path": {"type": "InputText", "label": "...or a scenario file (path)",
                          "value": info.custom_path},
        "rng": {"type": "InputText", "label": "Seed (blank: the scenario's)",
                "value": info.seed_text},
    }  # fmt: skip
    for spec in info.sliders:
        params[spec.name] = spec.param(info.values.get(spec.name))
    params["sliders_for"] = info.key
    return params


# --------------------------------------------------------------------------------------------
# Views (regions of the map)
# --------------------------------------------------------------------------------------------

WHOLE_MAP = "whole map"
FOLLOW_PREFIX = "around "
FOLLOW_KM = 80.0


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


def _whole(terrain) -> View:
    rows, cols = terrain.shape
    return View(-0.5, rows - 0.5, -0.5, cols - 0.5)


def map_regions(model: DesertModel) -> dict[str, View]:
    """Named views of the model's map: the whole map, exclusion zones, rivers, named areas
    (ranges, regions) and towns; small ones only where they are well inside the map."""
    t = model.terrain
    rows, cols = t.shape
    km = t.grid.cell_km
    out: dict[str, View] = {WHOLE_MAP: _whole(t)}

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
    return map_regions(model).get(region, _whole(model.terrain))


# --------------------------------------------------------------------------------------------
# The map figure: cached background, per-frame overlay
# --------------------------------------------------------------------------------------------

DPI = 100
FIG_WIDTH_IN = 7.4
_MARGIN_IN = {"left": 0.55, "right": 0.15, "top": 0.32, "bottom": 0.3}
_LEGEND_IN = 0.62
MAX_AXES_HEIGHT_IN = 6.3

KIND_MARKERS = {"cell": "o", "strongpoint": "s", "patrol": "D", "convoy": ">", "escort": "d",
                "qrf": "*", "border_post": "P", "zone_guard": "h"}  # fmt: skip
#: Marker areas relative to a cell marker (matplotlib's ``s``: points squared).
KIND_SIZES = {"cell": 1.0, "strongpoint": 0.8, "patrol": 0.75, "convoy": 0.9, "escort": 0.5,
              "qrf": 2.0, "border_post": 0.9, "zone_guard": 0.9}  # fmt: skip
NIGHT_SHADE = {LightLevel.NIGHT: 0.5, LightLevel.TWILIGHT: 0.22, LightLevel.DAY: 0.0}
NIGHT_COLOUR = "#0b1736"
ENGAGEMENT_COLOUR = "#e8141b"
ATTACK_COLOUR = "#ff8c00"
DETECTION_COLOUR = "#fff44f"
ATTACK_TYPES = ("raid", "ambush", "seizure", "attack")
LAUNCH_TYPES = ("raid_start", "ambush_set", "seizure_start")
UMPIRE = "umpire: all units"
LABEL_UNITS_BELOW_CELLS = 160  # name units in views narrower than this
MAX_UNIT_LABELS = 40
_HALO = pe.withStroke(linewidth=2.2, foreground="white")
VIEW_SUFFIX = ": what it knows"


@dataclass
class Background:
    """A view's static layers rasterised: pixels, figure size and where the axes sit."""

    rgba: np.ndarray  # (height_px, width_px, 4) uint8
    figsize: tuple[float, float]
    ax_bounds: tuple[float, float, float, float]  # figure fractions (left, bottom, width, height)
    view: View


_BACKGROUNDS: OrderedDict[tuple, Background] = OrderedDict()
_BACKGROUND_CACHE_SIZE = 16


def _layout(view: View) -> tuple[tuple[float, float], tuple[float, float, float, float]]:
    m = _MARGIN_IN
    aw = FIG_WIDTH_IN - m["left"] - m["right"]
    ah = aw * view.aspect
    if ah > MAX_AXES_HEIGHT_IN:
        ah = MAX_AXES_HEIGHT_IN
        aw = ah / view.aspect
    fh = ah + m["top"] + m["bottom"] + _LEGEND_IN
    left = m["left"] + (FIG_WIDTH_IN - m["left"] - m["right"] - aw) / 2.0
    bottom = m["bottom"] + _LEGEND_IN
    return (FIG_WIDTH_IN, fh), (left / FIG_WIDTH_IN, bottom / fh, aw / FIG_WIDTH_IN, ah / fh)


def _legend_handles(model: DesertModel) -> list[Any]:
    handles: list[Any] = [
        Patch(facecolor=model.spec.factions[f].colour, edgecolor="white", label=f)
        for f in model.faction_names
    ]
    escorted = any(getattr(u.tactic, "kind", None) == "escort" for u in model.spec.units)
    kinds = [k for k in KIND_MARKERS
             if any(u.kind == k for u in model.units) or (k == "escort" and escorted)]
    handles += [Line2D([], [], ls="", marker=KIND_MARKERS[k],
                       markersize=9 if k == "qrf" else 6.5, color="#444444",
                       markeredgecolor="white", label=k.replace("_", " ")) for k in kinds]
    handles += [
        Line2D([], [], ls="", marker="o", markersize=6, color="#555555", alpha=0.35,
               label="hidden (faint)"),
        Line2D([], [], ls="", marker="X", markersize=8, color=ENGAGEMENT_COLOUR,
               markeredgecolor="white", label="engagement"),
        Line2D([], [], ls="", marker="*", markersize=9, color=ATTACK_COLOUR,
               markeredgecolor="black", markeredgewidth=0.4, label="attack"),
        Line2D([], [], ls="--", color=ATTACK_COLOUR, lw=1.4, label="attack under way"),
        Line2D([], [], ls="", marker="o", markersize=8, markerfacecolor="none",
               markeredgecolor=DETECTION_COLOUR, markeredgewidth=1.6, label="detected"),
        Line2D([], [], ls="", marker="x", markersize=6, color="black", label="unit lost"),
    ]  # fmt: skip
    return handles


def background(model: DesertModel, view: View, title: str = "",
               light: LightLevel = LightLevel.DAY, dpi: int = DPI) -> Background:
    """The view's static layers (terrain, features, labels, legend, ``title``) as pixels; cached
    per (terrain, factions, view, title, light, dpi).

    At night and twilight the ground is darkened under the roads, places and labels, which
    stay legible."""
    t = model.terrain
    light = LightLevel(int(light))
    key = (t.spec_hash, tuple(model.faction_names), model.spec.name, view, title, light, dpi)
    hit = _BACKGROUNDS.get(key)
    if hit is not None:
        _BACKGROUNDS.move_to_end(key)
        return hit
    figsize, bounds = _layout(view)
    fig = Figure(figsize=figsize, dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes(bounds)
    maps.plot_terrain(t, ax=ax, labels=False, legend=False)
    if NIGHT_SHADE[light]:  # above the ground image (zorder 0), below every map feature
        ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, facecolor=NIGHT_COLOUR,
                               alpha=NIGHT_SHADE[light], edgecolor="none", zorder=0.5))
    whole = _whole(t)
    ax.set_xlim(view.c0, view.c1)
    ax.set_ylim(view.r1, view.r0)
    # place names are placed for the view shown (a zoomed view has room for more of them)
    maps._labels(ax, t, fontsize=7 if t.cols > 120 or t.rows > 120 else 8)
    for text in ax.texts:  # map-wide texts (country names, scale) must not spill into margins
        text.set_clip_on(True)
    if view != whole:
        _scale_bar(ax, view, t.grid.cell_km)
    fig.text(0.01, 1 - 0.06 / figsize[1], model.spec.name + (f" — {title}" if title else ""),
             ha="left", va="top", fontsize=10, fontweight="bold")
    fig.legend(handles=_legend_handles(model), loc="lower center", ncol=7, fontsize=7,
               frameon=False, bbox_to_anchor=(0.5, 0.0), handlelength=1.6, columnspacing=1.0)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba()).copy()
    bg = Background(rgba, figsize, bounds, view)
    _BACKGROUNDS[key] = bg
    while len(_BACKGROUNDS) > _BACKGROUND_CACHE_SIZE:
        _BACKGROUNDS.popitem(last=False)
    return bg


def _scale_bar(ax, view: View, cell_km: float) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    width_km = view.width_cells * cell_km
    km = maps._nice_km(width_km)
    bar = AnchoredSizeBar(ax.transData, km / cell_km, f"{km:g} km", "lower right", pad=0.4,
                          frameon=True, size_vertical=view.width_cells / 200, fontproperties={
                              "size": 7})  # fmt: skip
    bar.patch.set_alpha(0.75)
    ax.add_artist(bar)


def light_shown(model: DesertModel) -> LightLevel:
    """Light of the hour just simulated (of hour 0 before the first step)."""
    return LightLevel(int(model.light_by_hour[max(model.hour - 1, 0)]))


def clock_text(model: DesertModel) -> str:
    """``Day 3 · Sun 03 Jun 2018 21:00 · night · hour 51 of 336``."""
    tick = model.clock.at(model.hour)
    light = light_shown(model).name.lower()
    return (f"Day {model.hour // 24 + 1} · {tick.local:%a %d %b %Y %H:%M} · {light} · "
            f"hour {model.hour} of {model.spec.hours}")  # fmt: skip


def viewpoints(model: DesertModel) -> list[str]:
    """The map's viewpoints: the umpire (everything) and each faction (what it knows)."""
    return [UMPIRE, *(f + VIEW_SUFFIX for f in model.faction_names)]


def _unit_kinds(model: DesertModel) -> np.ndarray:
    cache = model.__dict__.setdefault("_viz_kinds", {})
    n = len(model.units)
    if cache.get("n") != n:  # escorts join during the run
        cache["n"] = n
        cache["kinds"] = np.array([u.kind for u in model.units], dtype=object)
    return cache["kinds"]


def recent_events(model: DesertModel, hours: int) -> list[dict]:
    """Events of the last ``hours`` simulated hours, oldest first."""
    since = model.hour - hours
    out = []
    for e in reversed(model.events):
        if e["hour"] < since:
            break
        out.append(e)
    return out[::-1]


def _faction_rgba(model: DesertModel) -> np.ndarray:
    from matplotlib.colors import to_rgba

    return np.array([to_rgba(model.spec.factions[f].colour) for f in model.faction_names])


def map_figure(
    model: DesertModel,
    region: str = WHOLE_MAP,
    viewpoint: str = UMPIRE,
    recent_hours: int = 6,
    dpi: int = DPI,
) -> Figure:
    """One frame of the map: the cached background of ``region`` plus the overlay.

    ``viewpoint`` is :data:`UMPIRE` (every unit; hidden ones faint) or ``"<faction>: what it
    knows"`` (that faction's and its friends' units, and enemies only where it last saw them,
    fading with age). Engagements, attacks and detections of the last ``recent_hours`` hours
    are marked; attacks under way are drawn as dashed lines from attacker to target. In zoomed
    views insurgent units and the units they attack are named."""
    view = resolve_view(model, region)
    light = light_shown(model)
    bg = background(model, view, "" if region == WHOLE_MAP else region, light, dpi)
    fig = Figure(figsize=bg.figsize, dpi=dpi, facecolor="white")
    fig.figimage(bg.rgba, 0, 0, origin="upper", zorder=0)
    ax = fig.add_axes(bg.ax_bounds)
    ax.set_zorder(1)  # above the figimage
    ax.set_axis_off()
    ax.patch.set_alpha(0.0)
    ax.set_xlim(view.c0, view.c1)
    ax.set_ylim(view.r1, view.r0)
    ax.set_autoscale_on(False)
    # a marker about one cell wide, within 5.5..13 points (readable on the theatre, not huge on
    # a tactical map)
    cell_pt = bg.ax_bounds[2] * bg.figsize[0] * 72.0 / view.width_cells
    base = float(np.clip(0.9 * cell_pt, 5.5, 13.0)) ** 2
    zoom = base / 34.0

    f = model.force
    n = f.n
    rows, cols = f.view("row"), f.view("col")
    fac = f.view("faction")
    alive = f.view("alive")
    posture = f.view("posture")
    kinds = _unit_kinds(model)[:n]
    colours = _faction_rgba(model)
    observer = None
    if viewpoint != UMPIRE and viewpoint.endswith(VIEW_SUFFIX):
        name = viewpoint[: -len(VIEW_SUFFIX)]
        observer = model.faction_index.get(name)

    # the umpire sees every unit; a faction its own side's (enemies are drawn from knowledge)
    shown = alive.copy() if observer is None else alive & ~model.hostile[observer, fac]
    rgba = colours[fac].copy()
    rgba[posture == int(Posture.HIDDEN), 3] = 0.35
    for kind, marker in KIND_MARKERS.items():
        sel = np.flatnonzero(shown & (kinds == kind))
        if len(sel):
            ax.scatter(cols[sel], rows[sel], s=KIND_SIZES[kind] * base, marker=marker,
                       c=rgba[sel], edgecolors="white", linewidths=0.6, zorder=4,
                       gid=f"units:{kind}")  # fmt: skip

    if observer is not None:  # enemies where this faction last saw them, fading with age
        idx, cells, ages = _known(model, observer)
        if len(idx):
            alpha = np.clip(1.0 - ages / 48.0, 0.2, 1.0)
            edge = colours[fac[idx]].copy()
            edge[:, 3] = alpha
            r, c = np.divmod(cells, model.terrain.cols)
            ax.scatter(c, r, s=40 * zoom, marker="o", facecolors="none", edgecolors=edge,
                       linewidths=1.6, zorder=4, gid="known")  # fmt: skip

    # attacks under way: attacker -> target
    segs = []
    named: set[int] = set()
    for u in model.units:
        tgt = u.attack_target
        if tgt is None or not alive[u.idx] or not shown[u.idx] or not alive[tgt]:
            continue
        segs.append([(cols[u.idx], rows[u.idx]), (cols[tgt], rows[tgt])])
        named.update((u.idx, tgt))
    if segs:
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(segs, colors=ATTACK_COLOUR, linewidths=1.6,
                                         linestyles="--", zorder=3.5, gid="attacks"))  # fmt: skip

    if view.width_cells <= LABEL_UNITS_BELOW_CELLS:
        insurgent = model.insurgent_faction[fac]
        named.update(np.flatnonzero(shown & insurgent).tolist())
        inside = ((cols >= view.c0) & (cols <= view.c1) & (rows >= view.r0) & (rows <= view.r1))
        by_cell: dict[tuple[int, int], list[str]] = {}
        for i in sorted(i for i in named if shown[i] and inside[i]):
            by_cell.setdefault((int(rows[i]), int(cols[i])), []).append(model.units[i].name)
        for (r, c), names in list(by_cell.items())[:MAX_UNIT_LABELS]:
            text = ", ".join(names[:2]) + (f" +{len(names) - 2}" if len(names) > 2 else "")
            ax.annotate(text, (c, r), xytext=(5, -5), textcoords="offset points", va="top",
                        fontsize=6.5, color="black", zorder=7, path_effects=[_HALO],
                        annotation_clip=True)  # fmt: skip

    # detections of the last hours (by the viewpoint's faction, or by anyone)
    k = model.knowledge
    since = model.hour - recent_hours
    seen = k.seen_hour[:, :n] >= since
    if observer is not None:
        seen = seen[[observer]]
    fi, ti = np.nonzero(seen)
    if len(ti):
        cells = k.seen_cell[fi if observer is None else observer, ti]
        r, c = np.divmod(cells, model.terrain.cols)
        ax.scatter(c, r, s=95 * zoom, marker="o", facecolors="none", edgecolors=DETECTION_COLOUR,
                   linewidths=1.5, zorder=5, gid="detections")  # fmt: skip

    ev = recent_events(model, recent_hours)
    visible = set(model.faction_names) if observer is None else {
        name for i, name in enumerate(model.faction_names) if not model.hostile[observer, i]}

    def pts(types: Iterable[str], own_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
        sel = [e for e in ev if e["type"] in types and (not own_only or e["faction"] in visible)]
        return (np.array([e["col"] for e in sel], float), np.array([e["row"] for e in sel], float))

    c, r = pts(("engagement",))
    if len(c):
        ax.scatter(c, r, s=80 * zoom, marker="X", c=ENGAGEMENT_COLOUR, edgecolors="white",
                   linewidths=0.8, zorder=6, gid="engagements")  # fmt: skip
    c, r = pts(ATTACK_TYPES)
    if len(c):
        ax.scatter(c, r, s=150 * zoom, marker="*", c=ATTACK_COLOUR, edgecolors="black",
                   linewidths=0.5, zorder=6.5, gid="attack_events")  # fmt: skip
    c, r = pts(("loss",))
    if len(c):
        ax.scatter(c, r, s=40 * zoom, marker="x", c="black", linewidths=1.4, zorder=6,
                   gid="losses")

    n_fights = sum(1 for e in ev if e["type"] == "engagement")
    summary = (f"{clock_text(model).split(' · hour')[0]}\n{len(segs)} attack(s) under way · "
               f"{n_fights} engagement(s) in the last {recent_hours} h")  # fmt: skip
    ax.text(0.01, 0.99, summary, transform=ax.transAxes, linespacing=1.4,
            ha="left", va="top", fontsize=8.5, fontweight="bold",
            color="white" if light == LightLevel.NIGHT else "black", zorder=8,
            bbox={"boxstyle": "round,pad=0.3", "alpha": 0.75, "edgecolor": "none",
                  "facecolor": NIGHT_COLOUR if light == LightLevel.NIGHT else "white"})  # fmt: skip
    return fig


def _known(model: DesertModel, observer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit indices, last-seen cells, ages in hours) of living enemies ``observer`` knows of."""
    idx, cells, ages = model.knowledge.known_to(observer, model.hour, None,
                                                model.config.knowledge_max_age_hours)
    f = model.force
    keep = f.alive[idx] & model.hostile[observer, f.faction[idx]]
    return idx[keep], cells[keep], ages[keep]


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes, at the figure's own dpi (as the app sends it to the browser)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def plots_figure(model: DesertModel) -> Figure:
    """Time series from the DataCollector, by hour: attacks and losses by faction, units alive
    by faction, road segments open, and garrison coverage of the roads by day and by night."""
    fig = Figure(figsize=(4.6, 6.9), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    axes = fig.subplots(4, 1, sharex=True)
    fig.subplots_adjust(left=0.14, right=0.97, top=0.97, bottom=0.07, hspace=0.42)
    df = model.datacollector.get_model_vars_dataframe()
    days = (np.arange(len(df)) + 1) / 24.0
    colours = {slug(f): model.spec.factions[f].colour for f in model.faction_names}
    a0, a1, a2, a3 = axes
    a0.set_title("Attacks and losses (cumulative)", fontsize=8, loc="left")
    a1.set_title("Units alive (log scale)", fontsize=8, loc="left")
    a2.set_title("Road segments open", fontsize=8, loc="left")
    a3.set_title("Garrison coverage of roads", fontsize=8, loc="left")
    if len(df):
        a0.plot(days, df["attacks attempted"], color="black", lw=1.4, label="attacks")
        a0.plot(days, df["attacks succeeded"], color="black", lw=1.0, ls=":",
                label="attacks succeeded")
        for name, colour in colours.items():
            col = f"losses {name}"
            if col in df and df[col].iloc[-1] > 0:
                a0.plot(days, df[col], color=colour, lw=1.3, label=f"lost: {name}")
            col = f"units alive {name}"
            if col in df:
                a1.plot(days, df[col].clip(lower=0.8), color=colour, lw=1.4,
                        label=f"{name} ({int(df[col].iloc[-1])})")
        n_segments = len(model.metrics.segments)
        a2.plot(days, df["road segments open"], color="#a8322d", lw=1.4,
                label=f"of {n_segments} segments")
        a2.axhline(n_segments, color="#999999", lw=0.8, ls="--")
        a2.set_ylim(0, max(n_segments, 1) * 1.05)
        a2.legend(fontsize=6, loc="lower left", frameon=False)
        every = model.config.coverage_every_hours
        sample_hour = (np.arange(len(df)) // every) * every
        night = model.light_by_hour[sample_hour] == LightLevel.NIGHT
        road = df["coverage road"].to_numpy(dtype=float)
        a3.plot(days, np.where(~night, road, np.nan), color="#e0a100", lw=1.5, label="day")
        a3.plot(days, np.where(night, road, np.nan), color=NIGHT_COLOUR, lw=1.5, label="night")
        a3.set_ylim(0, 1.02)
        a0.legend(fontsize=6, loc="upper left", frameon=False, ncol=2)
        a1.set_yscale("log")
        a1.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        a1.yaxis.set_major_formatter(ScalarFormatter())
        a1.yaxis.set_minor_formatter(NullFormatter())
        a1.legend(fontsize=6, loc="center right", frameon=False, ncol=2)
        a3.legend(fontsize=6, loc="upper left", frameon=False, ncol=2)
    else:
        a0.text(0.5, 0.5, "no data yet: press Step", transform=a0.transAxes, ha="center",
                va="center", fontsize=8, color="#777777")
    for a in axes:
        a.tick_params(labelsize=7)
        a.grid(alpha=0.3, lw=0.5)
    a3.set_xlabel("day of the run", fontsize=7)
    return fig


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Solara components
# --------------------------------------------------------------------------------------------

# View settings of the map, one per browser session (solara scopes these per connection).
region_choice = solara.reactive(WHOLE_MAP)
viewpoint_choice = solara.reactive(UMPIRE)
recent_hours_choice = solara.reactive(6)
RECENT_HOURS = [1, 3, 6, 12, 24, 48]

_CSS = """
.badia-map img, .badia-plots img { max-width: 100%; height: auto; }
.badia-status { white-space: pre-line; font-size: 13px; }
.badia-clock { font-size: 16px; font-weight: 600; }
.badia-notice { color: #b00020; white-space: pre-line; }
.badia-events { font-size: 12px; white-space: pre-line; font-family: monospace; }
"""


@solara.component
def MapView(model: DesertModel):
    """The map with its view controls, the clock, the status line and the latest events."""
    update_counter.get()
    regions = solara.use_memo(lambda: list(map_regions(model)), [model])
    options = regions + follow_names(model)
    region = region_choice.value if region_choice.value in options else WHOLE_MAP
    views = viewpoints(model)
    viewpoint = viewpoint_choice.value if viewpoint_choice.value in views else UMPIRE
    recent = recent_hours_choice.value
    deps = [id(model), model.hour, region, viewpoint, recent]
    fig = solara.use_memo(lambda: map_figure(model, region, viewpoint, recent), deps)
    with solara.Column(classes=["badia-map"], gap="4px"):
        solara.Text(clock_text(model), classes=["badia-clock"])
        solara.Text(status_text(model), classes=["badia-status"])
        notices = getattr(getattr(model, "viz", None), "notices", [])
        if notices:
            solara.Text("\n".join(notices), classes=["badia-notice"])
        with solara.Row(gap="12px"):
            solara.Select("Region", values=options, value=region, on_value=region_choice.set,
                          style={"max-width": "260px"})  # fmt: skip
            solara.Select("Viewpoint", values=views, value=viewpoint,
                          on_value=viewpoint_choice.set, style={"min-width": "250px"})
            solara.Select("Mark events of the last (hours)", values=RECENT_HOURS, value=recent,
                          on_value=recent_hours_choice.set, style={"max-width": "200px"})
        solara.FigureMatplotlib(fig, dependencies=deps, format="png", dpi=DPI)
        lines = event_lines(model)
        solara.Text("\n".join(lines) if lines else "no events yet", classes=["badia-events"])


@solara.component
def Plots(model: DesertModel):
    """The time-series plots of the run so far."""
    update_counter.get()
    deps = [id(model), model.hour]
    fig = solara.use_memo(lambda: plots_figure(model), deps)
    with solara.Column(classes=["badia-plots"]):
        solara.FigureMatplotlib(fig, dependencies=deps, format="png", dpi=DPI)


def initial_model() -> VizModel:
    """The model the app opens with (``$BADIA_VIZ_SCENARIO``, the scenario's seed)."""
    source = start_scenario()
    bundled = {str(p.resolve()): k for k, p in bundled_scenarios().items()}
    stem = bundled.get(str(source.resolve()))
    if stem is not None:
        return VizModel(scenario_file=stem)
    return VizModel(scenario_path=str(source))


@solara.component
def Page():
    """The app: SolaraViz's controls in the sidebar, the map and the plots side by side.

    The model belongs to this browser session. SolaraViz is keyed by the scenario, so choosing
    another scenario (then Reset) rebuilds the parameter sliders for it."""
    first = solara.use_memo(initial_model, [])
    model = solara.use_reactive(first)
    m = model.value
    solara.Style(_CSS)
    SolaraViz(
        model,
        components=[],
        model_params=model_params(m),
        name="badia: insurgent cells against garrison coverage (1 step = 1 hour)",
        play_interval=150,
        render_interval=1,
    ).key(f"viz-{m.viz.key}")
    with solara.Columns([3, 2]):
        MapView(m)
        Plots(m)


# --------------------------------------------------------------------------------------------
# A frame to a file (for documentation images): python -m sim.app.viz SCENARIO -o frame.png
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run a scenario to an hour and write the app's map frame (and plots) as PNG."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sim.app.viz", description=main.__doc__)
    parser.add_argument("scenario", type=Path, nargs="?", default=DEFAULT_SCENARIO)
    parser.add_argument("--seed", default="", help="seed (default: the scenario's)")
    parser.add_argument("--hours", type=int, default=0, help="hours to simulate first")
    parser.add_argument("--until-night-raid", action="store_true",
                        help="then go on to the first night hour with an attack under way")
    parser.add_argument("--region", default=WHOLE_MAP)
    parser.add_argument("--viewpoint", default=UMPIRE)
    parser.add_argument("--dpi", type=int, default=DPI)
    parser.add_argument("-o", "--output", type=Path, default=Path("frame.png"))
    parser.add_argument("--plots", type=Path, help="also write the plots panel here")
    args = parser.parse_args(argv)  # fmt: skip

    model = VizModel(scenario_path=str(args.scenario), rng=args.seed)
    for line in model.viz.notices:
        print(f"python -m sim.app.viz: {line}", file=sys.stderr)
    if model.viz.notices:
        return 1
    model.run_for_hours(args.hours)
    if args.until_night_raid:
        while model.running and not (
            light_shown(model) == LightLevel.NIGHT
            and any(u.attack_target is not None and u.alive for u in model.units)
        ):
            model.step()
        if not model.running:
            print("python -m sim.app.viz: no night raid before the end of the run", file=sys.stderr)
            return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(figure_png(map_figure(model, args.region, args.viewpoint,
                                                  dpi=args.dpi)))  # fmt: skip
    print(f"wrote {args.output} ({clock_text(model)})")
    if args.plots:
        args.plots.write_bytes(figure_png(plots_figure(model)))
        print(f"wrote {args.plots}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
