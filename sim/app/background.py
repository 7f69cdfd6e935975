"""The static layers of a map view, drawn once and kept as pixels: terrain, roads, places,
zones, place names, scale bar, title and legend (with :func:`sim.analysis.maps.plot_terrain`),
darkened at night. A frame (:mod:`sim.app.map_frame`) draws only its overlay on top."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from sim.analysis import maps
from sim.app.style import (
    ATTACK_COLOUR,
    DETECTION_COLOUR,
    DPI,
    ENGAGEMENT_COLOUR,
    KIND_MARKERS,
    NIGHT_COLOUR,
    NIGHT_SHADE,
)
from sim.app.views import View, whole_view
from sim.engine.model import DesertModel
from sim.world.clock import LightLevel

FIG_WIDTH_IN = 7.4
_MARGIN_IN = {"left": 0.55, "right": 0.15, "top": 0.32, "bottom": 0.3}
_LEGEND_IN = 0.62
MAX_AXES_HEIGHT_IN = 6.3


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


def _scale_bar(ax, view: View, cell_km: float) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    width_km = view.width_cells * cell_km
    km = maps._nice_km(width_km)
    bar = AnchoredSizeBar(ax.transData, km / cell_km, f"{km:g} km", "lower right", pad=0.4,
                          frameon=True, size_vertical=view.width_cells / 200, fontproperties={
                              "size": 7})  # fmt: skip
    bar.patch.set_alpha(0.75)
    ax.add_artist(bar)
