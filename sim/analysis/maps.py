"""Briefing maps of a terrain: ground colours, roads, places, water, caves, borders, zones.

The ground is drawn as one RGB image (never one patch per cell); features are vector layers on
top in grid coordinates (x = column, y = row, north up), with latitude/longitude tick labels and
a faint graticule computed from the projection. `plot_terrain` draws into an Axes;
`render_map` writes a PNG. Overlays let callers (the run map, reports) add point sets such as
engagements or detections.

No pyplot: a map made here is a `matplotlib.figure.Figure` on an Agg canvas, so importing this
module or drawing a map never chooses a backend (a notebook's inline backend stays as it is)
and leaves no figure open in pyplot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.patheffects as pe
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from scipy import ndimage

from sim.world.raster import Ground, Terrain, Water

# desert palette per Ground value
GROUND_COLOURS: dict[Ground, str] = {
    Ground.FLAT: "#eadfc4",
    Ground.SAND: "#f1dc93",
    Ground.RUGGED: "#b39370",
    Ground.WADI: "#d3c99c",
    Ground.RIVER: "#3f7fbf",
    Ground.IRRIGATED: "#9dbf6a",
}
TOWN_COLOUR = "#8a8178"
HIGHWAY_COLOUR = "#a8322d"
TRACK_COLOUR = "#6e5435"
BORDER_COLOUR = "#4b2a6b"
ZONE_COLOUR = "#c0392b"
WATER_COLOUR = "#1f5fa8"
CAVE_COLOUR = "#2b2118"

# label priority: lower first; kinds absent here are labelled last
_LABEL_RANK = {"city": 0, "town": 1, "base": 2, "airbase": 2, "crossing": 3, "outpost": 3,
               "station": 4, "camp": 4, "village": 5, "oasis": 5, "landmark": 6, "well": 6,
               "junction": 7, "rendezvous": 7}
_MARKER = {"city": ("s", 7), "town": ("s", 5.5), "village": ("s", 4), "camp": ("s", 4),
           "base": ("p", 7), "airbase": ("p", 7), "outpost": ("p", 6), "crossing": ("D", 5),
           "station": ("h", 5.5), "landmark": ("*", 6.5), "junction": (".", 4),
           "rendezvous": ("*", 6.5), "oasis": ("o", 0), "well": ("o", 0)}
_SETTLEMENT_KINDS = ("city", "town", "village", "camp")
_LABELLED_AREA_KINDS = ("rugged", "sand", "wadi", "irrigated", "region")
REGION_COLOUR = "#5c4630"


@dataclass
class Overlay:
    """A set of points to draw on the map, given by `latlon` [(lat, lon)...] or `cells`
    [(row, col)...]. `line=True` joins them in order. `style` goes to `Axes.plot`
    (e.g. `{"marker": "x", "color": "red", "markersize": 6}`)."""

    latlon: Sequence[Sequence[float]] | None = None
    cells: Sequence[Sequence[float]] | None = None
    label: str | None = None
    line: bool = False
    style: dict[str, Any] = field(default_factory=dict)


def _hex_rgb(colour: str) -> np.ndarray:
    return np.array(matplotlib.colors.to_rgb(colour), dtype=np.float32)


def terrain_rgb(terrain: Terrain, river_px: int = 0) -> np.ndarray:
    """The ground as an RGB float image `(rows, cols, 3)`: ground colours, towns blended in.

    `river_px > 0` widens rivers by that many cells each side, for display on large maps where
    a one-cell river would be a hairline."""
    table = np.stack([_hex_rgb(GROUND_COLOURS[g]) for g in Ground])
    img = table[terrain.ground]
    if river_px > 0:
        wide = ndimage.binary_dilation(terrain.ground == Ground.RIVER, iterations=river_px)
        img[wide] = _hex_rgb(GROUND_COLOURS[Ground.RIVER])
    town = terrain.town >= 0
    img[town] = 0.35 * img[town] + 0.65 * _hex_rgb(TOWN_COLOUR)
    return img


def _uv(terrain: Terrain, lat: Any, lon: Any) -> tuple[np.ndarray, np.ndarray]:
    """Plot coordinates (x = column, y = row, continuous) of lat/lon points."""
    g = terrain.grid
    x, y = g.xy_km(lat, lon)
    u = (np.asarray(x) + g.width_km / 2.0) / g.cell_km - 0.5
    v = (g.height_km / 2.0 - np.asarray(y)) / g.cell_km - 0.5
    return u, v


def _nice_step(span: float, target: int = 6) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _fmt_deg(value: float, step: float, pos: str, neg: str) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    hemi = pos if value >= 0 else neg
    return f"{abs(value):.{decimals}f}°{hemi}"


def _graticule(ax: Axes, terrain: Terrain, draw_lines: bool) -> None:
    """Lat/lon tick labels on the frame and a faint graticule inside."""
    g = terrain.grid
    rr, cc = np.indices(g.shape)
    lat, lon = g.latlon_of(rr, cc)
    lat_step = _nice_step(float(lat.max() - lat.min()), 5)
    lon_step = _nice_step(float(lon.max() - lon.min()), 6)
    lon_levels = np.arange(math.ceil(lon.min() / lon_step) * lon_step, lon.max(), lon_step)
    lat_levels = np.arange(math.ceil(lat.min() / lat_step) * lat_step, lat.max(), lat_step)
    if draw_lines:
        kw = {"colors": "#5a4a3a", "linewidths": 0.4, "alpha": 0.35, "linestyles": ":"}
        if len(lon_levels):
            ax.contour(cc, rr, lon, levels=lon_levels, **kw)
        if len(lat_levels):
            ax.contour(cc, rr, lat, levels=lat_levels, **kw)
    # ticks: where each meridian crosses the bottom row, each parallel the left column
    bottom = lon[-1, :]
    left = lat[:, 0]
    xt = [float(np.interp(v, bottom, np.arange(g.cols))) for v in lon_levels
          if bottom.min() <= v <= bottom.max()]
    xl = [_fmt_deg(v, lon_step, "E", "W") for v in lon_levels if bottom.min() <= v <= bottom.max()]
    order = np.argsort(left)     # latitude falls with the row, np.interp needs it rising
    yt = [float(np.interp(v, left[order], np.arange(g.rows)[order])) for v in lat_levels
          if left.min() <= v <= left.max()]
    yl = [_fmt_deg(v, lat_step, "N", "S") for v in lat_levels if left.min() <= v <= left.max()]
    ax.set_xticks(xt, xl, fontsize=7)
    ax.set_yticks(yt, yl, fontsize=7)
    ax.tick_params(length=3, pad=2)


def _nice_km(width_km: float) -> float:
    target = width_km / 5.0
    mag = 10 ** math.floor(math.log10(target))
    best = mag
    for m in (1, 2, 5, 10):
        if m * mag <= target:
            best = m * mag
    return best


def _scale_bar(ax: Axes, terrain: Terrain) -> None:
    g = terrain.grid
    km = _nice_km(g.width_km)
    cells = km / g.cell_km
    x0 = g.cols * 0.03 - 0.5
    y0 = g.rows * 0.965 - 0.5
    h = max(g.rows * 0.008, 0.15)
    ax.add_patch(Rectangle((x0 - g.cols * 0.012, y0 - g.rows * 0.055), cells + g.cols * 0.024,
                           g.rows * 0.075, facecolor="white", alpha=0.75, edgecolor="none",
                           zorder=9))
    for i in range(4):
        ax.add_patch(Rectangle((x0 + i * cells / 4, y0 - h), cells / 4, h,
                               facecolor="black" if i % 2 == 0 else "white", edgecolor="black",
                               linewidth=0.6, zorder=10))
    label = f"{km:g} km"
    ax.text(x0 + cells / 2, y0 - h - g.rows * 0.008, label, ha="center", va="bottom",
            fontsize=7, zorder=10)


def _north_arrow(ax: Axes, terrain: Terrain) -> None:
    g = terrain.grid
    x = g.cols * 0.965 - 0.5
    y = g.rows * 0.05 - 0.5
    ax.annotate("N", xy=(x, y), xytext=(x, y + g.rows * 0.07), ha="center", va="top",
                fontsize=9, fontweight="bold", zorder=10,
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.2},
                path_effects=[pe.withStroke(linewidth=2.5, foreground="white")])


def _roads(ax: Axes, terrain: Terrain, lw_scale: float) -> list[Any]:
    handles = []
    for cls, colour, lw, ls, label in (
            ("track", TRACK_COLOUR, 1.1, (0, (3, 1.5)), "track"),
            ("highway", HIGHWAY_COLOUR, 2.0, "-", "highway")):
        segs = []
        for _, _, d in terrain.road_graph.edges(data=True):
            if d["cls"] == cls and len(d["cells"]) >= 1:
                cells = np.asarray(d["cells"], dtype=float)
                if len(cells) == 1:
                    continue
                segs.append(np.column_stack([cells[:, 1], cells[:, 0]]))
        if segs:
            if cls == "highway":   # a light casing makes highways read over any ground
                ax.add_collection(LineCollection(segs, colors="#fff6e0",
                                                 linewidths=(lw + 1.6) * lw_scale, zorder=3,
                                                 capstyle="round", joinstyle="round"))
            ax.add_collection(LineCollection(segs, colors=colour, linewidths=lw * lw_scale,
                                             linestyles=ls, zorder=4, capstyle="round",
                                             joinstyle="round"))
            handles.append(Line2D([], [], color=colour, lw=lw * lw_scale, ls=ls, label=label))
    return handles


def _borders(ax: Axes, terrain: Terrain) -> list[Any]:
    handles = []
    if not terrain.borders:
        return handles
    for i, b in enumerate(terrain.borders):
        if terrain.is_ascii:
            rr, cc = np.nonzero(terrain.border == i)
            ax.scatter(cc, rr, marker="s", s=_cell_points(ax, terrain) ** 2,
                       facecolor=BORDER_COLOUR, alpha=0.25, edgecolor="none", zorder=2)
        else:
            pts = np.array(b.points)
            u, v = _uv(terrain, pts[:, 0], pts[:, 1])
            ax.plot(u, v, color="white", lw=3.2, alpha=0.7, zorder=5, solid_capstyle="round")
            ax.plot(u, v, color=BORDER_COLOUR, lw=1.6, ls="-.", zorder=5)
    _country_labels(ax, terrain)
    handles.append(Line2D([], [], color=BORDER_COLOUR, lw=1.6, ls="-.", label="border"))
    rr, cc = np.nonzero(terrain.crossing)
    if len(rr):
        ax.scatter(cc, rr, marker="s", s=9, facecolor="white", edgecolor=BORDER_COLOUR,
                   linewidth=0.9, zorder=6)
        handles.append(Line2D([], [], marker="s", ls="", markerfacecolor="white",
                              markeredgecolor=BORDER_COLOUR, markersize=4,
                              label="border crossing"))
    return handles


def _country_labels(ax: Axes, terrain: Terrain) -> None:
    """Each border's side names (`sides[0]` left of the line), once per name, beside the line."""
    g = terrain.grid
    done: set[str] = set()
    gap_km = 0.06 * max(g.width_km, g.height_km)
    for b in terrain.borders:
        pts = np.array(b.points)
        x, y = g.xy_km(pts[:, 0], pts[:, 1])
        seg = np.hypot(np.diff(x), np.diff(y))
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        for side, sign in ((b.sides[0], 1.0), (b.sides[1], -1.0)):
            if side in done:
                continue
            for frac in (0.5, 0.35, 0.65, 0.2, 0.8):
                d = frac * cum[-1]
                k = int(np.clip(np.searchsorted(cum, d) - 1, 0, len(seg) - 1))
                t = (d - cum[k]) / seg[k] if seg[k] > 0 else 0.0
                px, py = x[k] + t * (x[k + 1] - x[k]), y[k] + t * (y[k + 1] - y[k])
                nx_, ny_ = -(y[k + 1] - y[k]) / seg[k], (x[k + 1] - x[k]) / seg[k]  # left
                lx, ly = px + sign * gap_km * nx_, py + sign * gap_km * ny_
                u = (lx + g.width_km / 2.0) / g.cell_km - 0.5
                v = (g.height_km / 2.0 - ly) / g.cell_km - 0.5
                if 0.08 * g.cols < u < 0.92 * g.cols and 0.08 * g.rows < v < 0.92 * g.rows:
                    ax.text(u, v, " ".join(side.upper()), ha="center", va="center",
                            fontsize=10, fontweight="bold", color="#6b5a48", alpha=0.75,
                            zorder=2.5)
                    done.add(side)
                    break


def _cell_points(ax: Axes, terrain: Terrain) -> float:
    """Width of one cell in points (to size markers on small maps)."""
    fig = ax.figure
    bbox = ax.get_position()
    width_pt = bbox.width * fig.get_figwidth() * 72
    return width_pt / terrain.grid.cols


def _zones(ax: Axes, terrain: Terrain) -> list[Any]:
    handles = []
    if not terrain.zones:
        return handles
    rr, cc = np.indices(terrain.shape)
    for i, z in enumerate(terrain.zones):
        mask = (terrain.zone == i).astype(float)
        if not mask.any():
            continue
        with matplotlib.rc_context({"hatch.color": ZONE_COLOUR, "hatch.linewidth": 0.6}):
            ax.contourf(cc, rr, mask, levels=[0.5, 1.5], colors="none", hatches=["////"],
                        zorder=2)
        ax.contour(cc, rr, mask, levels=[0.5], colors=ZONE_COLOUR, linewidths=1.2, zorder=5)
        r_idx, c_idx = np.nonzero(mask)
        # name at the top of the zone, inside it
        top = r_idx.min()
        xs = c_idx[r_idx <= top + max(1, 0.1 * (r_idx.max() - top))]
        barred = ", ".join(sorted(z.barred)) or "none"
        ax.text(float(np.mean(xs)), float(top) + 0.04 * (r_idx.max() - top + 1),
                f"{z.name}\n(barred: {barred})", ha="center", va="top", fontsize=7,
                color=ZONE_COLOUR, fontweight="bold", zorder=8,
                path_effects=[pe.withStroke(linewidth=2.2, foreground="white")])
    handles.append(Patch(facecolor="none", edgecolor=ZONE_COLOUR, hatch="////",
                         label="exclusion zone"))
    return handles


def _water_sites(terrain: Terrain, code: Water) -> tuple[np.ndarray, np.ndarray]:
    """One marker cell per water source: each place with this water, plus the central cell of
    every patch of such cells that holds no such place. Returns (cells (n, 2), at_settlement)."""
    mask = terrain.water == code
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    cells, settled = [], []
    covered = set()
    for p in terrain.places.values():
        if p.water == code:
            cells.append((p.row, p.col))
            settled.append(p.kind not in ("oasis", "well"))   # drawn with its own marker
            covered.add(int(labels[p.row, p.col]))
    for k in range(1, n + 1):
        if k in covered:
            continue
        rr, cc = np.nonzero(labels == k)
        i = int(np.argmin((rr - rr.mean()) ** 2 + (cc - cc.mean()) ** 2))
        cells.append((int(rr[i]), int(cc[i])))
        settled.append(False)
    return np.array(cells, dtype=float).reshape(-1, 2), np.array(settled, bool)


def _water_and_caves(ax: Axes, terrain: Terrain, cell_pt: float) -> list[Any]:
    handles = []
    for code, face, label in ((Water.OASIS, WATER_COLOUR, "oasis"), (Water.WELL, "white", "well")):
        cells, settled = _water_sites(terrain, code)
        if not len(cells):
            continue
        lone = cells[~settled]
        if len(lone):
            ax.scatter(lone[:, 1], lone[:, 0], marker="o", s=max(22.0, 0.35 * cell_pt ** 2),
                       facecolor=face, edgecolor=WATER_COLOUR, linewidth=1.2, zorder=7)
        at_place = cells[settled]
        if len(at_place):   # a water ring around the place's own marker
            ax.scatter(at_place[:, 1], at_place[:, 0], marker="o", s=150, facecolor="none",
                       edgecolor=WATER_COLOUR, linewidth=1.8 if code == Water.OASIS else 1.0,
                       zorder=7.5)
        handles.append(Line2D([], [], marker="o", ls="", markerfacecolor=face,
                              markeredgecolor=WATER_COLOUR, markersize=5, label=label))
    rr, cc = np.nonzero(terrain.cave)
    if len(rr):
        ax.scatter(cc, rr, marker="^", s=max(10.0, 0.3 * cell_pt ** 2), facecolor=CAVE_COLOUR,
                   edgecolor="white", linewidth=0.3, zorder=6)
        handles.append(Line2D([], [], marker="^", ls="", markerfacecolor=CAVE_COLOUR,
                              markeredgecolor="white", markersize=5, label="cave"))
    return handles


def _places(ax: Axes, terrain: Terrain, scale: float = 1.0) -> list[Any]:
    handles = []
    kinds_seen: set[str] = set()
    for p in terrain.places.values():
        if p.kind in ("oasis", "well"):
            continue
        marker, size = _MARKER.get(p.kind, ("o", 4))
        settlement = p.kind in _SETTLEMENT_KINDS
        face = "#3b3b3b" if settlement else "#fdfdfd"
        ax.plot(p.col, p.row, marker=marker, markersize=size * scale, markerfacecolor=face,
                markeredgecolor="black", markeredgewidth=0.7, ls="", zorder=8)
        kinds_seen.add(p.kind)
    for kind in sorted(kinds_seen, key=lambda k: _LABEL_RANK.get(k, 9)):
        marker, size = _MARKER.get(kind, ("o", 4))
        face = "#3b3b3b" if kind in _SETTLEMENT_KINDS else "#fdfdfd"
        handles.append(Line2D([], [], marker=marker, ls="", markersize=min(size, 6),
                              markerfacecolor=face, markeredgecolor="black", label=kind))
    return handles


def _labels(ax: Axes, terrain: Terrain, fontsize: float) -> None:
    """Label places greedily by importance, skipping a label only if every candidate spot
    overlaps one already placed (and the place is minor)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    offsets = ((5, 3, "left", "bottom"), (5, -3, "left", "top"), (-5, 3, "right", "bottom"),
               (-5, -3, "right", "top"), (0, 6, "center", "bottom"), (0, -6, "center", "top"))
    places = sorted(terrain.places.values(), key=lambda p: (_LABEL_RANK.get(p.kind, 9), p.name))
    for p in places:
        rank = _LABEL_RANK.get(p.kind, 9)
        major = rank <= 2
        weight = "bold" if p.kind in ("city", "town") else "normal"
        # a type hierarchy: cities largest, minor places smaller
        size = fontsize + (1 if p.kind == "city" else 0) - (0.6 if rank >= 4 else 0)
        best = None
        for dx, dy, ha, va in offsets:
            t = ax.annotate(p.name, (p.col, p.row), xytext=(dx, dy), textcoords="offset points",
                            ha=ha, va=va, fontsize=size, fontweight=weight, zorder=9,
                            path_effects=[pe.withStroke(linewidth=2.2, foreground="white")])
            bb = t.get_window_extent(renderer).expanded(1.04, 1.1)
            axbb = ax.get_window_extent(renderer)
            inside = (bb.x0 >= axbb.x0 and bb.x1 <= axbb.x1 and bb.y0 >= axbb.y0
                      and bb.y1 <= axbb.y1)
            if inside and not any(bb.overlaps(o) for o in placed):
                best = (t, bb)
                break
            t.remove()
        if best is None and major:
            t = ax.annotate(p.name, (p.col, p.row), xytext=(5, 3), textcoords="offset points",
                            fontsize=size, fontweight=weight, zorder=9,
                            path_effects=[pe.withStroke(linewidth=2.2, foreground="white")])
            best = (t, t.get_window_extent(renderer))
        if best is not None:
            placed.append(best[1])
    # named areas last, in italics at their centre, only where they do not crowd a place label
    axbb = ax.get_window_extent(renderer)
    for name, kind in terrain.area_kinds.items():
        if kind not in _LABELLED_AREA_KINDS:
            continue
        rr, cc = np.nonzero(terrain.areas[name])
        if len(rr) < 4:
            continue
        for dy in (0, -8, 8):
            t = ax.annotate(name, (float(cc.mean()), float(rr.mean())), xytext=(0, dy),
                            textcoords="offset points", ha="center", va="center",
                            fontsize=fontsize - 0.5, fontstyle="italic", color="#4a3826",
                            zorder=8.5,
                            path_effects=[pe.withStroke(linewidth=2.0, foreground="#f4ecd8")])
            bb = t.get_window_extent(renderer).expanded(1.04, 1.1)
            if axbb.contains(bb.x0, bb.y0) and axbb.contains(bb.x1, bb.y1) and not any(
                    bb.overlaps(o) for o in placed):
                placed.append(bb)
                break
            t.remove()


def _regions(ax: Axes, terrain: Terrain) -> list[Any]:
    """Outline named regions (areas with no ground effect, e.g. sweep areas)."""
    rr, cc = np.indices(terrain.shape)
    drawn = False
    for name, kind in terrain.area_kinds.items():
        mask = terrain.areas[name]
        if kind != "region" or not mask.any():
            continue
        ax.contour(cc, rr, mask.astype(float), levels=[0.5], colors=REGION_COLOUR,
                   linewidths=1.0, linestyles=[(0, (1.5, 1.5))], zorder=2.6)
        drawn = True
    if not drawn:
        return []
    return [Line2D([], [], color=REGION_COLOUR, lw=1.0, ls=(0, (1.5, 1.5)),
                   label="named region")]


def _overlays(ax: Axes, terrain: Terrain, overlays: Iterable[Overlay | Mapping[str, Any]]
              ) -> list[Any]:
    handles = []
    for ov in overlays:
        if isinstance(ov, Mapping):
            ov = Overlay(**ov)
        if ov.latlon is not None:
            pts = np.asarray(ov.latlon, dtype=float).reshape(-1, 2)
            x, y = _uv(terrain, pts[:, 0], pts[:, 1])
        elif ov.cells is not None:
            pts = np.asarray(ov.cells, dtype=float).reshape(-1, 2)
            x, y = pts[:, 1], pts[:, 0]
        else:
            raise ValueError("an overlay needs latlon or cells")
        style = {"marker": "o", "markersize": 5, "color": "black"}
        style.update(ov.style)
        if not ov.line:
            style["linestyle"] = "none"
        style.setdefault("zorder", 11)
        (line,) = ax.plot(x, y, label=ov.label, **style)
        if ov.label:
            handles.append(line)
    return handles


def plot_terrain(
    terrain: Terrain,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    overlays: Iterable[Overlay | Mapping[str, Any]] | None = None,
    labels: bool = True,
    legend: bool = True,
) -> Axes:
    """Draw the terrain (and optional overlays) into `ax` and return it. With `ax=None` the
    map gets a Figure of its own, on an Agg canvas and not known to pyplot (`ax.figure`; a
    notebook shows it by displaying `ax.figure`)."""
    rows, cols = terrain.shape
    if ax is None:
        aspect = rows / cols
        width = 11.5 if cols > 120 else 9.5
        fig = Figure(figsize=(width, max(4.0, (width - 2.6) * aspect + 0.8)))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        fig.subplots_adjust(left=0.06, right=0.80, top=0.94, bottom=0.06)
    small = cols <= 120 and rows <= 120
    ax.imshow(terrain_rgb(terrain, river_px=0 if cols < 250 else 1),
              extent=(-0.5, cols - 0.5, rows - 0.5, -0.5), interpolation="nearest", zorder=0)
    if small:
        # faint cell lines help read a tactical grid
        ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
        ax.grid(which="minor", color="#000000", alpha=0.06, linewidth=0.4)
        ax.tick_params(which="minor", length=0)
    handles = [Patch(facecolor=GROUND_COLOURS[Ground(g)], edgecolor="#999999",
                     label=Ground(g).name.lower())
               for g in np.unique(terrain.ground)]
    if (terrain.town >= 0).any():
        handles.append(Patch(facecolor=TOWN_COLOUR, edgecolor="#999999", label="built-up"))
    handles += _zones(ax, terrain)
    handles += _regions(ax, terrain)
    handles += _roads(ax, terrain, 1.6 if small else 1.0)
    handles += _borders(ax, terrain)
    handles += _water_and_caves(ax, terrain, _cell_points(ax, terrain))
    handles += _places(ax, terrain, 1.5 if small else 1.0)
    ov_handles = _overlays(ax, terrain, overlays or ())
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_aspect("equal")
    _graticule(ax, terrain, draw_lines=not small)
    _scale_bar(ax, terrain)
    _north_arrow(ax, terrain)
    if labels:
        _labels(ax, terrain, fontsize=7 if not small else 8)
    if title:
        ax.set_title(title, fontsize=11, fontweight="bold", loc="left")
    g = terrain.grid
    ax.text(1.0, 1.008,
            f"{g.cols} x {g.rows} cells of {g.cell_km:g} km; azimuthal equidistant about "
            f"{g.centre_lat:.2f}°N {g.centre_lon:.2f}°E", transform=ax.transAxes, ha="right",
            va="bottom", fontsize=6.5, color="#555555")
    if legend:
        ax.legend(handles=handles + ov_handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize=7, frameon=False, borderaxespad=0.0, handlelength=2.2)
    return ax


def render_map(terrain: Terrain, path: str | Path, *, dpi: int = 150, **kw: Any) -> Path:
    """Draw the terrain with `plot_terrain(**kw)` and write a PNG to `path`."""
    ax = plot_terrain(terrain, **kw)
    out = Path(path)
    ax.figure.savefig(out, dpi=dpi)
    return out


__all__ = ["Overlay", "plot_terrain", "render_map", "terrain_rgb"]
