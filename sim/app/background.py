"""The static layers of a map view, drawn once and kept as pixels: terrain, roads, places,
zones, place names, scale bar, title and legend (with :func:`sim.analysis.maps.plot_terrain`),
darkened at night.

Two forms: :func:`background` (one RGBA image with margins, title and legend, under which
:mod:`sim.app.map_frame` draws a whole frame with matplotlib, for PNG files) and
:func:`layers` (what the browser app stacks: the bare ground, the map features on a transparent
image, and the place names as text for the overlay, so the browser shades the night between
ground and features and the server redraws only units and events)."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Annotation, Text

from sim.analysis import maps
from sim.app.style import (
    ATTACK_COLOUR,
    DETECTION_COLOUR,
    DPI,
    ENGAGEMENT_COLOUR,
    HIGHWAY_COLOUR,
    KIND_MARKERS,
    NIGHT_COLOUR,
    NIGHT_SHADE,
    ZONE_COLOUR,
    faction_colours,
)
from sim.app.views import View, whole_view
from sim.engine.model import DesertModel
from sim.world.clock import LightLevel

FIG_WIDTH_IN = 7.4
_MARGIN_IN = {"left": 0.55, "right": 0.15, "top": 0.32, "bottom": 0.3}
_LEGEND_IN = 0.62
MAX_AXES_HEIGHT_IN = 6.3

#: The browser layers are laid out for a map shown about this wide (CSS pixels; a little less
#: than the map of a 1280x800 window, about 840, as the browser's text runs a little wider than
#: matplotlib's): place names are placed so that at this size, in 11 px type, none overlaps
#: another. Wider maps only spread them further apart.
LAYOUT_WIDTH_PX = 800
#: ... and rasterised this many times larger, so a 1920x1080 window shows them sharp.
LAYER_SCALE = 1.6
LABEL_PT = 8.0  # 11 CSS px at 100 dpi


@dataclass
class Background:
    """A view's static layers rasterised: pixels, figure size and where the axes sit."""

    rgba: np.ndarray  # (height_px, width_px, 4) uint8
    figsize: tuple[float, float]
    ax_bounds: tuple[float, float, float, float]  # figure fractions (left, bottom, width, height)
    view: View


@dataclass(frozen=True)
class Label:
    """A place name for the overlay: where (fractions of the view), offset (CSS px) and style."""

    x: float
    y: float
    dx: float
    dy: float
    text: str
    anchor: str  # SVG text-anchor: start, middle, end
    baseline: str  # SVG dominant-baseline: auto (above), hanging (below), central
    size_px: float
    bold: bool
    italic: bool
    colour: str
    opacity: float = 1.0


@dataclass
class Layers:
    """A view for the browser: ground and features as PNG (same size, the view edge to edge),
    the place names as :class:`Label` for the overlay, and the size in pixels."""

    ground_png: bytes
    features_png: bytes
    labels: list[Label]
    width_px: int
    height_px: int
    view: View


_BACKGROUNDS: OrderedDict[tuple, Background] = OrderedDict()
_LAYERS: OrderedDict[tuple, Layers] = OrderedDict()
_BACKGROUND_CACHE_SIZE = 16
# sim.analysis.maps reads its colours from module globals at draw time; the app swaps in its own
# (style.HIGHWAY_COLOUR, style.ZONE_COLOUR) for the length of a draw, one draw at a time.
_MAPS_LOCK = threading.Lock()


@contextmanager
def _app_colours() -> Iterator[None]:
    with _MAPS_LOCK:
        saved = maps.HIGHWAY_COLOUR, maps.ZONE_COLOUR
        maps.HIGHWAY_COLOUR, maps.ZONE_COLOUR = HIGHWAY_COLOUR, ZONE_COLOUR
        try:
            yield
        finally:
            maps.HIGHWAY_COLOUR, maps.ZONE_COLOUR = saved


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
    colours = faction_colours(model)
    handles: list[Any] = [
        Patch(facecolor=colours[f], edgecolor="white", label=f) for f in model.faction_names
    ]
    handles += [Line2D([], [], ls="", marker=KIND_MARKERS[k],
                       markersize=9 if k == "qrf" else 6.5, color="#444444",
                       markeredgecolor="white", label=k.replace("_", " "))
                for k in unit_kinds(model)]  # fmt: skip
    handles += [
        Line2D([], [], ls="", marker="o", markersize=6, color="#555555", alpha=0.35,
               label="hidden (faint)"),
        Line2D([], [], ls="", marker="X", markersize=8, color=ENGAGEMENT_COLOUR,
               markeredgecolor="black", markeredgewidth=0.6, label="engagement"),
        Line2D([], [], ls="", marker="*", markersize=9, color=ATTACK_COLOUR,
               markeredgecolor="black", markeredgewidth=0.4, label="attack"),
        Line2D([], [], ls="--", color=ATTACK_COLOUR, lw=1.4, label="attack under way"),
        Line2D([], [], ls="", marker="o", markersize=8, markerfacecolor="none",
               markeredgecolor=DETECTION_COLOUR, markeredgewidth=1.6, label="detected"),
        Line2D([], [], ls="", marker="x", markersize=6, color="black", label="unit lost"),
    ]  # fmt: skip
    return handles


def unit_kinds(model: DesertModel) -> list[str]:
    """The marked unit kinds present in the run (escorts: when a convoy is escorted)."""
    escorted = any(getattr(u.tactic, "kind", None) == "escort" for u in model.spec.units)
    return [k for k in KIND_MARKERS
            if any(u.kind == k for u in model.units) or (k == "escort" and escorted)]


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
    with _app_colours():
        maps.plot_terrain(t, ax=ax, labels=False, legend=False)
    if NIGHT_SHADE[light]:  # above the ground image (zorder 0), below every map feature
        ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, facecolor=NIGHT_COLOUR,
                               alpha=NIGHT_SHADE[light], edgecolor="none", zorder=0.5))
    ax.set_xlim(view.c0, view.c1)
    ax.set_ylim(view.r1, view.r0)
    # place names are placed for the view shown (a zoomed view has room for more of them)
    maps._labels(ax, t, fontsize=7 if t.cols > 120 or t.rows > 120 else 8)
    for text in ax.texts:  # map-wide texts (country names, scale) must not spill into margins
        text.set_clip_on(True)
    if view != whole_view(t):
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


def layers(model: DesertModel, view: View) -> Layers:
    """The view for the browser (see :class:`Layers`), cached per (terrain, scenario, view).

    The figure is the view edge to edge, :data:`LAYOUT_WIDTH_PX` wide at 100 dpi, so points
    and CSS pixels agree at that size; it is written :data:`LAYER_SCALE` times larger."""
    t = model.terrain
    key = (t.spec_hash, model.spec.name, view)
    hit = _LAYERS.get(key)
    if hit is not None:
        _LAYERS.move_to_end(key)
        return hit
    w_in = LAYOUT_WIDTH_PX / DPI
    fig = Figure(figsize=(w_in, w_in * view.aspect), dpi=DPI)
    fig.patch.set_alpha(0.0)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    with _app_colours():
        maps.plot_terrain(t, ax=ax, labels=False, legend=False)
    ax.set_xlim(view.c0, view.c1)
    ax.set_ylim(view.r1, view.r0)
    if view != whole_view(t):
        _scale_bar(ax, view, t.grid.cell_km)
    before = {id(x) for x in ax.texts if not _on_the_map(x, ax)}  # north arrow, grid note
    maps._labels(ax, t, fontsize=LABEL_PT)
    labels = []
    renderer = fig.canvas.get_renderer()
    names = [x.get_window_extent(renderer) for x in ax.texts if isinstance(x, Annotation)]
    for text in list(ax.texts):  # names on the map go to the overlay, above the units
        if id(text) in before:
            continue
        if not isinstance(text, Annotation) and any(
                text.get_window_extent(renderer).overlaps(b) for b in names):
            continue  # a country name across a place name stays faint in the raster, below it
        label = _label_of(text, view)
        if 0.0 <= label.x <= 1.0 and 0.0 <= label.y <= 1.0:  # (a major place outside the view
            labels.append(label)  # is labelled anyway by maps._labels; not here)
        text.remove()
    for text in ax.texts:  # map-wide texts (country names, scale) stay inside the view
        text.set_clip_on(True)
    ground = [a for a in ax.get_children() if isinstance(a, AxesImage)]
    features = [a for a in ax.get_children() if a.get_visible() and a not in ground
                and a is not ax.patch]  # fmt: skip
    for a in features:
        a.set_visible(False)
    ground_png = _png(fig)
    for a in features:
        a.set_visible(True)
    for a in ground:
        a.set_visible(False)
    ax.patch.set_visible(False)
    features_png = _png(fig)
    w, h = fig.canvas.get_width_height()
    out = Layers(ground_png, features_png, labels, round(w * LAYER_SCALE),
                 round(h * LAYER_SCALE), view)  # fmt: skip
    _LAYERS[key] = out
    while len(_LAYERS) > _BACKGROUND_CACHE_SIZE:
        _LAYERS.popitem(last=False)
    return out


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI * LAYER_SCALE, transparent=True)
    return buf.getvalue()


def _on_the_map(text: Text, ax) -> bool:
    """A text placed in data coordinates (a place, zone or country name), not in axes ones."""
    if isinstance(text, Annotation):
        return text.xycoords == "data"
    return text.get_transform() == ax.transData


def _label_of(text: Text, view: View) -> Label:
    if isinstance(text, Annotation):
        x, y = text.xy
        dx, dy = text.xyann  # offset points; 100 dpi: 1 pt = 100/72 px
    else:
        (x, y), dx, dy = text.get_position(), 0.0, 0.0
    ha, va = text.get_horizontalalignment(), text.get_verticalalignment()
    size_px = max(10.0, text.get_fontsize() * DPI / 72.0)
    return Label(
        x=(x - view.c0) / view.width_cells,
        y=(y - view.r0) / (view.r1 - view.r0),
        dx=dx * DPI / 72.0,
        dy=-dy * DPI / 72.0,
        text=text.get_text(),
        anchor={"left": "start", "right": "end"}.get(ha, "middle"),
        baseline={"top": "hanging", "center": "central"}.get(va, "auto"),
        size_px=round(size_px, 1),
        bold=text.get_fontweight() in ("bold", 700),
        italic=text.get_fontstyle() == "italic",
        colour=to_hex(text.get_color()),
        opacity=1.0 if text.get_alpha() is None else float(text.get_alpha()),
    )


def _scale_bar(ax, view: View, cell_km: float) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    width_km = view.width_cells * cell_km
    km = maps._nice_km(width_km)
    bar = AnchoredSizeBar(ax.transData, km / cell_km, f"{km:g} km", "lower right", pad=0.4,
                          frameon=True, size_vertical=view.width_cells / 200, fontproperties={
                              "size": 7.5})  # fmt: skip
    bar.patch.set_alpha(0.75)
    ax.add_artist(bar)
