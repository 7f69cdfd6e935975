"""One frame of the map, two ways.

- :func:`overlay_svg` (the browser app): units, attacks under way, recent detections,
  engagements, attacks and losses, place and unit names, as a small SVG laid over the view's
  static layers (:func:`sim.app.background.layers`). Positions are percentages of the view and
  marker sizes CSS pixels, so the browser scales the map to the window and markers and names
  keep their size; names are drawn last, above every marker.
- :func:`map_figure` (PNG files, ``python -m sim.app.snapshot``): the cached background put in a
  matplotlib figure as a pixel-exact ``figimage`` and the same marks drawn on top."""

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
    LOSS_COLOUR,
    NIGHT_COLOUR,
    faction_colours,
)
from sim.app.views import UMPIRE, WHOLE_MAP, friendly_factions, observer_of, resolve_view
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
    colours = faction_colours(model)
    return np.array([to_rgba(colours[f]) for f in model.faction_names])


def _known(model: DesertModel, observer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit indices, last-seen cells, ages in hours) of living enemies ``observer`` knows of."""
    idx, cells, ages = model.knowledge.known_to(observer, model.hour, None,
                                                model.config.knowledge_max_age_hours)
    f = model.force
    keep = f.alive[idx] & model.hostile[observer, f.faction[idx]]
    return idx[keep], cells[keep], ages[keep]


def _recent_detection_cells(model: DesertModel, observer: int | None,
                            recent_hours: int) -> np.ndarray:
    """Flat cells of the units seen in the last ``recent_hours``, by the observer's faction
    (or, for the umpire, by any faction: one entry per faction that saw a unit)."""
    k = model.knowledge
    seen = k.seen_hour[:, : model.force.n] >= model.hour - recent_hours
    if observer is not None:
        seen = seen[[observer]]
    fi, ti = np.nonzero(seen)
    return k.seen_cell[fi if observer is None else observer, ti]


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
    cells = _recent_detection_cells(model, observer, recent_hours)
    if len(cells):
        r, c = np.divmod(cells, model.terrain.cols)
        ax.scatter(c, r, s=95 * zoom, marker="o", facecolors="none", edgecolors=DETECTION_COLOUR,
                   linewidths=1.5, zorder=5, gid="detections")  # fmt: skip

    ev = recent_events(model, recent_hours)
    visible = friendly_factions(model, observer)

    def pts(types: Iterable[str], own_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
        sel = [e for e in ev if e["type"] in types and (not own_only or e["faction"] in visible)]
        return (np.array([e["col"] for e in sel], float), np.array([e["row"] for e in sel], float))

    c, r = pts(("engagement",))
    if len(c):
        ax.scatter(c, r, s=80 * zoom, marker="X", c=ENGAGEMENT_COLOUR, edgecolors="black",
                   linewidths=0.6, zorder=6, gid="engagements")  # fmt: skip
    c, r = pts(ATTACK_TYPES)
    if len(c):
        ax.scatter(c, r, s=150 * zoom, marker="*", c=ATTACK_COLOUR, edgecolors="black",
                   linewidths=0.5, zorder=6.5, gid="attack_events")  # fmt: skip
    c, r = pts(("loss",))
    if len(c):
        ax.scatter(c, r, s=40 * zoom, marker="x", c=LOSS_COLOUR, linewidths=1.4, zorder=6,
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


# Marker shapes of the overlay, centred on (0, 0), in CSS pixels (about matplotlib's shapes).
_SVG_SHAPES = {
    "cell": '<circle r="5"/>',
    "strongpoint": '<rect x="-4.5" y="-4.5" width="9" height="9"/>',
    "patrol": '<path d="M0-5.5L5.5 0 0 5.5-5.5 0Z"/>',
    "convoy": '<path d="M-4.5-5.5L6 0-4.5 5.5Z"/>',
    "escort": '<path d="M0-4.5L3 0 0 4.5-3 0Z"/>',
    "qrf": '<path d="M0-8L2.2-2.6 7.6-2.5 3.4 1 5 6.5 0 3.3-5 6.5-3.4 1-7.6-2.5-2.2-2.6Z"/>',
    "border_post": '<path d="M-1.8-5.5h3.6v3.7h3.7v3.6h-3.7v3.7h-3.6v-3.7h-3.7v-3.6h3.7Z"/>',
    "zone_guard": '<path d="M0-5.5L4.8-2.75V2.75L0 5.5-4.8 2.75V-2.75Z"/>',
}
_SVG_DEFS = (
    "<defs>"
    + "".join(f'<g id="k-{k}" stroke="white" stroke-width="1">{v}</g>'
              for k, v in _SVG_SHAPES.items())
    + f'<path id="ev-engagement" d="M-6-4L-4-6 0-2 4-6 6-4 2 0 6 4 4 6 0 2-4 6-6 4-2 0Z" '
      f'fill="{ENGAGEMENT_COLOUR}" stroke="black" stroke-width="0.9"/>'
    + f'<path id="ev-attack" d="M0-9.5L2.6-3.1 9-3 4 1.2 6 7.7 0 3.9-6 7.7-4 1.2-9-3-2.6-3.1Z" '
      f'fill="{ATTACK_COLOUR}" stroke="black" stroke-width="0.9"/>'
    + f'<path id="ev-loss" d="M-4-4L4 4M4-4L-4 4" stroke="{LOSS_COLOUR}" stroke-width="2.2"/>'
    + '<g id="ev-detection" fill="none"><circle r="9" stroke="#1a1a1a" stroke-width="3.6"/>'
      f'<circle r="9" stroke="{DETECTION_COLOUR}" stroke-width="2"/></g>'
    + "</defs>"
)  # fmt: skip
_SVG_TEXT = ('font-family="DejaVu Sans, Arial, sans-serif" paint-order="stroke" '
             'stroke="white" stroke-width="3" stroke-linejoin="round"')  # fmt: skip


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def overlay_svg(
    model: DesertModel,
    layers,
    viewpoint: str = UMPIRE,
    recent_hours: int = 6,
) -> str:
    """The frame's marks as an SVG that covers ``layers`` (a
    :class:`~sim.app.background.Layers`) edge to edge; ``data-hour`` is the model's hour.

    What is shown follows :func:`map_figure`: the umpire sees every unit (hidden ones faint); a
    faction sees its own side and enemies only where it last saw them, fading with age, and
    only its own side's detections and attacks. Place names (from ``layers``) and, in zoomed
    views, the names of insurgents and of units in a fight are drawn last, above the markers."""
    view = layers.view
    w, h = view.width_cells, view.r1 - view.r0

    def pct(c, r) -> tuple[float, float]:
        return (c - view.c0) / w * 100, (r - view.r0) / h * 100

    def xy(c, r) -> str:
        x, y = pct(c, r)
        return f'x="{x:.2f}%" y="{y:.2f}%"'

    inside_cells = view.width_cells < model.terrain.cols - 1
    f = model.force
    rows, cols = f.view("row"), f.view("col")
    fac = f.view("faction")
    alive = f.view("alive")
    posture = f.view("posture")
    kinds = f.view("kind")
    by_name = faction_colours(model)
    colours = [by_name[name] for name in model.faction_names]
    observer = observer_of(model, viewpoint)
    shown = alive.copy() if observer is None else alive & ~model.hostile[observer, fac]
    inside = (cols >= view.c0) & (cols <= view.c1) & (rows >= view.r0) & (rows <= view.r1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="badia-overlay" '
           f'data-hour="{model.hour}" width="100%" height="100%">', _SVG_DEFS]  # fmt: skip

    if observer is not None:  # enemies where this faction last saw them, fading with age
        idx, cells, ages = _known(model, observer)
        out.append('<g class="known" fill="none" stroke-width="2">')
        for i, cell, age in zip(idx.tolist(), cells.tolist(), ages.tolist(), strict=True):
            r, c = divmod(cell, model.terrain.cols)
            op = min(max(1.0 - age / 48.0, 0.25), 1.0)
            x, y = pct(c, r)
            out.append(f'<circle cx="{x:.2f}%" cy="{y:.2f}%" r="6" stroke="{colours[fac[i]]}" '
                       f'stroke-opacity="{op:.2f}"/>')  # fmt: skip
        out.append("</g>")

    # attacks under way: attacker -> target
    named: set[int] = set()
    lines = []
    for u in model.units:
        tgt = u.attack_target
        if tgt is None or not alive[u.idx] or not shown[u.idx] or not alive[tgt]:
            continue
        x1, y1 = pct(cols[u.idx], rows[u.idx])
        x2, y2 = pct(cols[tgt], rows[tgt])
        lines.append(f'<line x1="{x1:.2f}%" y1="{y1:.2f}%" x2="{x2:.2f}%" y2="{y2:.2f}%"/>')
        named.update((u.idx, tgt))
    if lines:
        out.append(f'<g class="attacks" stroke="{ATTACK_COLOUR}" stroke-width="2.2" '
                   f'stroke-dasharray="6 3">{"".join(lines)}</g>')  # fmt: skip

    out.append('<g class="units">')
    hidden = posture == int(Posture.HIDDEN)
    for kind in KIND_MARKERS:
        sel = np.flatnonzero(shown & inside & (kinds == _KIND_CODES[kind]))
        for i in sel.tolist():
            faint = ' fill-opacity="0.4" stroke-opacity="0.5"' if hidden[i] else ""
            out.append(f'<use href="#k-{kind}" {xy(cols[i], rows[i])} fill="{colours[fac[i]]}"'
                       f"{faint}/>")  # fmt: skip
    out.append("</g>")

    # detections of the last hours (by the viewpoint's faction, or by anyone)
    marks = []
    for cell in np.unique(_recent_detection_cells(model, observer, recent_hours)).tolist():
        r, c = divmod(cell, model.terrain.cols)
        marks.append(f'<use href="#ev-detection" {xy(c, r)}/>')

    ev = recent_events(model, recent_hours)
    friends = friendly_factions(model, observer)
    for e in ev:
        kind = e["type"]
        if kind == "engagement":
            symbol = "engagement"
        elif kind in ATTACK_TYPES:
            symbol = "attack"
        elif kind == "loss":
            symbol = "loss"
        else:
            continue
        if observer is not None and not _event_seen_by(model, e, friends):
            continue
        marks.append(f'<use href="#ev-{symbol}" {xy(e["col"], e["row"])}/>')
    out.append(f'<g class="events">{"".join(marks)}</g>')

    # names last: above every marker, with a white halo
    out.append(f'<g class="labels" {_SVG_TEXT}>')
    for lab in layers.labels:
        style = (' font-weight="bold"' if lab.bold else "") + (
            ' font-style="italic"' if lab.italic else "") + (
            f' fill-opacity="{lab.opacity:.2f}"' if lab.opacity < 1 else "")
        x = f"{lab.x * 100:.2f}%"
        lines = lab.text.split("\n")
        # lines of a name centred on its point move up by half their extra height
        shift = {"central": -(len(lines) - 1) * 0.6, "auto": -(len(lines) - 1) * 1.2}.get(
            lab.baseline, 0.0)
        body = _esc(lines[0]) if len(lines) == 1 else "".join(
            f'<tspan x="{x}" dx="{lab.dx:.1f}" dy="{shift if i == 0 else 1.2:.2f}em">'
            f"{_esc(line)}</tspan>" for i, line in enumerate(lines))
        out.append(f'<text x="{x}" y="{lab.y * 100:.2f}%" dx="{lab.dx:.1f}" '
                   f'dy="{lab.dy:.1f}" text-anchor="{lab.anchor}" '
                   f'dominant-baseline="{lab.baseline}" font-size="{lab.size_px:g}" '
                   f'fill="{lab.colour}"{style}>{body}</text>')  # fmt: skip
    if inside_cells and view.width_cells <= LABEL_UNITS_BELOW_CELLS:
        named.update(np.flatnonzero(shown & model.insurgent_faction[fac]).tolist())
        by_cell: dict[tuple[int, int], list[str]] = {}
        for i in sorted(i for i in named if shown[i] and inside[i]):
            by_cell.setdefault((int(rows[i]), int(cols[i])), []).append(model.units[i].name)
        for (r, c), names in list(by_cell.items())[:MAX_UNIT_LABELS]:
            text = ", ".join(names[:2]) + (f" +{len(names) - 2}" if len(names) > 2 else "")
            out.append(f'<text {xy(c, r)} dx="8" dy="14" font-size="11" fill="#111">'
                       f"{_esc(text)}</text>")  # fmt: skip
    out.append("</g></svg>")
    return "".join(out)


def _event_seen_by(model: DesertModel, e: dict, friends: set[str]) -> bool:
    """Whether a faction (its side: ``friends``) knows of event ``e``: its own side's doings,
    and attacks on or fights with its own side."""
    if e.get("faction") in friends:
        return True
    faction_of = {u.name: u.faction for u in model.units}
    names = [e.get("target"), *(e.get("defender") or []), *(e.get("attacker") or [])]
    return any(faction_of.get(n) in friends for n in names if n)
