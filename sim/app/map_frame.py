"""One frame of the map: the cached background of the view (:mod:`sim.app.background`) put in
the figure as a pixel-exact ``figimage``, and the overlay drawn on top of it: units, attacks
under way, unit names in zoomed views, recent detections, engagements, attacks and losses,
and the clock."""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.patheffects as pe
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from sim.app.background import background
from sim.app.status import clock_text, light_shown
from sim.app.style import (
    ATTACK_COLOUR,
    DETECTION_COLOUR,
    DPI,
    ENGAGEMENT_COLOUR,
    KIND_MARKERS,
    KIND_SIZES,
    NIGHT_COLOUR,
)
from sim.app.views import UMPIRE, WHOLE_MAP, observer_of, resolve_view
from sim.engine.model import DesertModel
from sim.rules.state import Posture
from sim.scenario.vocab import ATTACK_TYPES, KINDS
from sim.world.clock import LightLevel

LABEL_UNITS_BELOW_CELLS = 160  # name units in views narrower than this
MAX_UNIT_LABELS = 40
_HALO = pe.withStroke(linewidth=2.2, foreground="white")
#: The force table's ``kind`` code of each marked kind.
_KIND_CODES = {kind: KINDS.index(kind) for kind in KIND_MARKERS}


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
    return np.array([to_rgba(model.spec.factions[f].colour) for f in model.faction_names])


def _known(model: DesertModel, observer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit indices, last-seen cells, ages in hours) of living enemies ``observer`` knows of."""
    idx, cells, ages = model.knowledge.known_to(observer, model.hour, None,
                                                model.config.knowledge_max_age_hours)
    f = model.force
    keep = f.alive[idx] & model.hostile[observer, f.faction[idx]]
    return idx[keep], cells[keep], ages[keep]


def map_figure(
    model: DesertModel,
    region: str = WHOLE_MAP,
    viewpoint: str = UMPIRE,
    recent_hours: int = 6,
    dpi: int = DPI,
) -> Figure:
    """One frame of the map: the cached background of ``region`` plus the overlay.

    ``viewpoint`` is :data:`~sim.app.views.UMPIRE` (every unit; hidden ones faint) or
    ``"<faction>: what it knows"`` (that faction's and its friends' units, and enemies only
    where it last saw them, fading with age). Engagements, attacks and detections of the last
    ``recent_hours`` hours are marked; attacks under way are drawn as dashed lines from
    attacker to target. In zoomed views insurgent units and the units they attack are named."""
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
    kinds = f.view("kind")
    colours = _faction_rgba(model)
    observer = observer_of(model, viewpoint)

    # the umpire sees every unit; a faction its own side's (enemies are drawn from knowledge)
    shown = alive.copy() if observer is None else alive & ~model.hostile[observer, fac]
    rgba = colours[fac].copy()
    rgba[posture == int(Posture.HIDDEN), 3] = 0.35
    for kind, marker in KIND_MARKERS.items():
        sel = np.flatnonzero(shown & (kinds == _KIND_CODES[kind]))
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
