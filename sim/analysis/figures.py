"""Figures of a results folder for briefings and notebooks (matplotlib, no pyplot state).

Every `plot_*` function takes a `sim.experiments.results.Results` (from
`sim.experiments.results.load`) and returns a `matplotlib.figure.Figure` of one slide (16:9,
`SLIDE_INCHES` at `DPI`), drawn in one style: titles say what is shown, axes carry units,
intervals are labelled with their level. The numbers come from `sim.analysis.statistics`, the
words from `sim.analysis.labels`. `save_figure(fig, path)` writes a PNG and returns its pixel
size. Figures are made with `matplotlib.figure.Figure` on an Agg canvas, never with pyplot, so
drawing one neither opens a window nor touches a notebook's backend or current figure.
(`matplotlib.figure` and `sim.analysis.maps` are imported inside the functions that use them:
`badia report --help` imports this module, and they cost most of a second.)
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import numpy as np
import pandas as pd

from sim.analysis.labels import (
    factor_label,
    fmt,
    level_text,
    metric_label,
    metric_title,
    point_label,
)
from sim.analysis.statistics import (
    SHARE_DEFINITION,
    daily_bands,
    daily_column,
    design_table,
    event_density,
    factor_levels,
    interaction_table,
    is_share,
    main_effects,
    metric_bounds,
    n_finished,
    ok_runs,
    run_days,
    scenario_terrain,
    select_points,
    sensitivity,
)
from sim.errors import ResultsError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sim.experiments.results import Results
    from sim.world.raster import Terrain

#: A briefing slide: 16:9; at DPI this is 1200 x 675 pixels.
SLIDE_INCHES = (10.0, 5.625)
DPI = 120
#: Okabe-Ito colours (distinguishable with colour-blindness), for design points.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#F0E442")
ACCENT = "#0072B2"
STYLE: dict[str, Any] = {
    "font.size": 10.5,
    "axes.titlesize": 11.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 10.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.7,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "figure.titlesize": 13.5,
    "figure.titleweight": "bold",
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


# --------------------------------------------------------------------------------------------
# Figure helpers
# --------------------------------------------------------------------------------------------


def new_figure(size: tuple[float, float] = SLIDE_INCHES) -> Figure:
    """An empty slide-sized Figure (constrained layout) not tied to pyplot, on an Agg canvas
    (so it renders, and `sim.analysis.maps` can measure text, without any GUI backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> tuple[int, int]:
    """Write `fig` as a PNG at `DPI`; returns its (width, height) in pixels, as written."""
    from PIL import Image

    path = Path(path)
    # zlib level 3: a third of the default's encoding time for files about 10% larger
    fig.savefig(path, dpi=DPI, facecolor="white", pil_kwargs={"compress_level": 3})
    with Image.open(path) as im:
        return im.size


def _footnote(fig: Figure, text: str) -> None:
    # small grey lines at the foot of the slide: what the intervals are, how many runs
    width = int(fig.get_figwidth() * 17)   # characters of 8.5 pt text per line
    fig.supxlabel(textwrap.fill(text, width), fontsize=8.5, color="#555555")


def _title(fig: Figure, text: str) -> None:
    # left-aligned slide title, wrapped when long so it never runs off the slide
    fig.suptitle(textwrap.fill(text, int(fig.get_figwidth() * 9)), x=0.01, ha="left")


# --------------------------------------------------------------------------------------------
# Main effects
# --------------------------------------------------------------------------------------------


def plot_main_effects(results: Results, metric: str, factor: str | Sequence[str] | None = None,
                      level: float = 0.95, effects: dict[str, pd.DataFrame] | None = None
                      ) -> Figure:
    """Main effects of one or more factors (default: all) on a summary metric: one panel per
    factor, the mean at each level over the other factors' levels with its CI, the design
    points' means as grey dots, and the mean over all runs as a dashed line. `effects` may
    hold `sim.analysis.statistics.main_effects` tables already computed, by factor."""
    factors = (list(results.factors) if factor is None
               else [factor] if isinstance(factor, str) else list(factor))
    days = run_days(results)
    runs = ok_runs(results)
    point_means = runs.groupby("point_id")[metric].mean()
    overall = float(runs[metric].mean())
    with mpl.rc_context(STYLE):
        fig = new_figure()
        axes = fig.subplots(1, max(1, len(factors)), sharey=True, squeeze=False)[0]
        for ax, f in zip(axes, factors, strict=True):
            eff = (effects or {}).get(f)
            if eff is None:
                eff = main_effects(results, metric, f, level)
            numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                          for v in eff["level"])
            x = (eff["level"].astype(float).to_numpy() if numeric
                 else np.arange(len(eff), dtype=float))
            y = eff["mean"].to_numpy(dtype=float)
            lo, hi = eff["ci_low"].to_numpy(dtype=float), eff["ci_high"].to_numpy(dtype=float)
            # the design points' own means, at their level (jittered for categorical factors)
            lv, _, _ = factor_levels(results, f)
            pos = {v: xi for v, xi in zip(eff["level"], x, strict=True)}
            px = np.array([pos.get(lv.get(p), np.nan) for p in point_means.index], dtype=float)
            if not numeric:
                rng = np.random.default_rng(0)
                px = px + rng.uniform(-0.08, 0.08, len(px))
            ax.scatter(px, point_means.to_numpy(), s=14, color="#9a9a9a", alpha=0.6,
                       zorder=2, linewidths=0, label="design point mean")
            if numeric:
                ax.fill_between(x, lo, hi, color=ACCENT, alpha=0.18, linewidth=0, zorder=1,
                                label=f"{level:.0%} CI")
                ax.plot(x, y, "-o", color=ACCENT, lw=2, ms=6, zorder=3, label="mean")
            else:
                ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", color=ACCENT, ms=7,
                            capsize=5, lw=2, zorder=3, label=f"mean, {level:.0%} CI")
                ax.set_xticks(x, [level_text(v, f) for v in eff["level"]])
                ax.set_xlim(-0.5, len(x) - 0.5)
            ax.axhline(overall, color="#444444", lw=1, ls="--", zorder=1,
                       label="mean of all runs")
            binned = bool(eff["binned"].iloc[0]) if len(eff) else False
            ax.set_xlabel(factor_label(f) + (", binned (bin means)" if binned else ""))
            ax.set_title(factor_label(f, unit=False).capitalize(), loc="left")
            if numeric and not binned:
                ax.set_xticks(x, [level_text(v) for v in eff["level"]])
        axes[0].set_ylabel(metric_label(metric, days))
        axes[0].legend(loc="best")
        _title(fig, f"{metric_title(metric)}: main effects")
        _footnote(fig, f"Mean over the other factors' levels with its {level:.0%} confidence "
                       f"interval across replicates; {n_finished(results)} runs of "
                       f"{len(results.design)} design points ({results.manifest.get('name')})"
                       + _share_note(metric))
    return fig


# --------------------------------------------------------------------------------------------
# Interactions
# --------------------------------------------------------------------------------------------


def _share_note(metric: str) -> str:
    """The footnote's words for a share, the same definition as the tables'."""
    return f". A share: {SHARE_DEFINITION}" if is_share(metric) else ""


def colour_limits(grid: np.ndarray, half: np.ndarray,
                  bounds: tuple[float, float] = (-np.inf, np.inf)
                  ) -> tuple[float, float, bool]:
    """(vmin, vmax, widened) for a heatmap of cell means with CI half-widths `half`: the
    cells' range, widened about its middle to at least the widest CI (2 x the largest
    half-width) and kept inside `bounds` where it can be, so differences smaller than their
    intervals do not span the whole colour scale."""
    vmin, vmax = float(np.nanmin(grid)), float(np.nanmax(grid))
    need = 2 * float(np.nanmax(half)) if np.isfinite(half).any() else 0.0
    if not vmax - vmin < need:
        return vmin, vmax, False
    lo, hi = (vmin + vmax - need) / 2, (vmin + vmax + need) / 2
    if lo < bounds[0]:
        lo, hi = bounds[0], bounds[0] + need
    elif hi > bounds[1]:
        lo, hi = bounds[1] - need, bounds[1]
    return lo, hi, True


def plot_interaction(results: Results, metric: str, factor_x: str, factor_y: str,
                     level: float = 0.95) -> Figure:
    """Heatmap of a metric's mean over two factors' levels (averaged over any others), each
    cell annotated with the mean and the half-width of its CI."""
    tab = interaction_table(results, metric, factor_x, factor_y, level)
    xs, ys = tab.attrs["x_levels"], tab.attrs["y_levels"]
    grid = np.full((len(ys), len(xs)), np.nan)
    half = np.full_like(grid, np.nan)
    xi = {v: i for i, v in enumerate(xs)}
    yi = {v: i for i, v in enumerate(ys)}
    for row in tab.itertuples():
        i, j = yi[row.y], xi[row.x]
        grid[i, j] = row.mean
        half[i, j] = (row.ci_high - row.ci_low) / 2
    days = run_days(results)
    with mpl.rc_context(STYLE):
        fig = new_figure()
        ax = fig.subplots()
        ax.grid(False)
        cmap = mpl.colormaps["viridis"]
        vmin, vmax, widened = colour_limits(grid, half, metric_bounds(metric, grid))
        im = ax.imshow(grid, cmap=cmap, aspect="auto", origin="lower", vmin=vmin, vmax=vmax)
        big = 15 if grid.size <= 12 else 12 if grid.size <= 25 else 9
        for i in range(len(ys)):
            for j in range(len(xs)):
                if not np.isfinite(grid[i, j]):
                    continue
                frac = 0.5 if vmax == vmin else (grid[i, j] - vmin) / (vmax - vmin)
                colour = "black" if frac > 0.55 else "white"
                text = fmt(grid[i, j])
                ax.text(j, i + 0.06, text, ha="center", va="center", fontsize=big,
                        fontweight="bold", color=colour)
                if np.isfinite(half[i, j]):
                    ax.text(j, i - 0.22, f"± {fmt(half[i, j])}", ha="center", va="center",
                            fontsize=big * 0.62, color=colour)
        ax.set_xticks(range(len(xs)), [level_text(v, factor_x) for v in xs])
        ax.set_yticks(range(len(ys)), [level_text(v, factor_y) for v in ys])
        binned = ", binned (bin means)"
        ax.set_xlabel(factor_label(factor_x) + (binned if tab.attrs["x_binned"] else ""))
        ax.set_ylabel(factor_label(factor_y) + (binned if tab.attrs["y_binned"] else ""))
        for s in ax.spines.values():
            s.set_visible(False)
        cb = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02)
        cb.set_label(metric_label(metric, days))
        cb.outline.set_visible(False)
        _title(fig, f"{metric_title(metric)} by {factor_label(factor_x, False)} and "
                    f"{factor_label(factor_y, False)}")
        _footnote(fig, f"Mean of the runs in each cell (bold) and the half-width of its "
                       f"{level:.0%} CI (±), averaged over any other factors; "
                       f"{n_finished(results)} runs ({results.manifest.get('name')})"
                       + (f". Colour scale widened to the widest CI ({fmt(vmax - vmin)}): the "
                          f"cells differ by less than their intervals" if widened else "")
                       + _share_note(metric))
    return fig


# --------------------------------------------------------------------------------------------
# Time series
# --------------------------------------------------------------------------------------------


def plot_timeseries(results: Results, column: str, points: Sequence[int] | None = None,
                    cumulative: bool | None = None, level: float = 0.95) -> Figure:
    """A daily metric by day for a few design points: the mean over replicates as a line and
    the CI of that mean as a band. `column` is a daily column (`losses__government`) or a
    summary metric whose daily column exists (`losses__government_total`, drawn as a running
    total). `points` default: at most 6, the extremes of the metric."""
    col, cum = column, bool(cumulative)
    if column not in results.daily.columns:
        found = daily_column(results, column)
        if found is None:
            raise ResultsError(f"{results.path}: no daily column behind {column!r}")
        col, cum = found if cumulative is None else (found[0], cumulative)
    if points is None:
        summary = f"{col}_total" if f"{col}_total" in results.runs.columns else None
        points = select_points(results, summary)
    bands = daily_bands(results, col, points, cum, level)
    design = design_table(results).set_index("point_id")
    with mpl.rc_context(STYLE):
        fig = new_figure()
        ax = fig.subplots()
        for k, pid in enumerate(points):
            b = bands[bands["point_id"] == pid]
            if b.empty:
                continue
            colour = PALETTE[k % len(PALETTE)]
            label = f"{pid}: {point_label(design.loc[pid], results.factors)}"
            ax.fill_between(b["day"], b["ci_low"], b["ci_high"], color=colour, alpha=0.12,
                            linewidth=0)
            ax.plot(b["day"], b["mean"], "-o", color=colour, lw=2, ms=4, label=label)
        ax.set_xlabel("day of the run")
        ax.set_ylabel(metric_label(col, cumulative=cum))
        days = sorted(bands["day"].unique())
        if days and len(days) <= 31:
            ax.set_xticks(days)
        title = "\n".join(textwrap.wrap(" · ".join(factor_label(f, unit=False)
                                                   for f in results.factors), 34))
        ax.legend(title=f"design point\n({title})" if title else "design point",
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), title_fontsize=9,
                  alignment="left")
        _title(fig, f"{metric_title(col)}{', running total' if cum else ''} by day")
        n = int(bands["n_runs"].max()) if len(bands) else 0
        _footnote(fig, f"Mean over replicates (line) and its {level:.0%} confidence interval "
                       f"(band); up to {n} runs per point ({results.manifest.get('name')})")
    return fig


# --------------------------------------------------------------------------------------------
# Event maps
# --------------------------------------------------------------------------------------------


def _map_bins(terrain: Terrain) -> tuple[int, float]:
    rows, cols = terrain.shape
    bin_cells = max(1, math.ceil(max(rows, cols) / 80))
    return bin_cells, 0.8


def density_cmap() -> mpl.colors.Colormap:
    """Blue-purple with opacity rising with the value: it stands out from the desert browns
    and greens, and sparse places leave the terrain readable."""
    base = mpl.colormaps["BuPu"](np.linspace(0.42, 1.0, 256))
    base[:, 3] = np.linspace(0.55, 0.92, 256)
    return mpl.colors.ListedColormap(base, name="badia_density").with_extremes(
        bad=(0.0, 0.0, 0.0, 0.0))


def _density_layer(ax: Any, density: np.ndarray, bin_cells: int, vmax: float) -> Any:
    shown = np.ma.masked_less(density, 0.03 * vmax if vmax > 0 else 1.0)
    nb_r, nb_c = density.shape
    return ax.imshow(shown, cmap=density_cmap(), vmin=0, vmax=vmax if vmax > 0 else 1.0,
                     extent=(-0.5, nb_c * bin_cells - 0.5, nb_r * bin_cells - 0.5, -0.5),
                     interpolation="nearest" if bin_cells == 1 else "bilinear", zorder=9)


def _map_grid(n: int, aspect: float) -> tuple[int, int, float]:
    """(rows, columns, panel width in inches) that make n maps of width/height `aspect` as
    large as the slide allows (less the colour bar, titles and footnote)."""
    width, height = SLIDE_INCHES[0] - 1.3, SLIDE_INCHES[1] - 1.0
    best = (1, n, 0.0)
    for nc in range(1, n + 1):
        nr = math.ceil(n / nc)
        panel = min(width / nc, (height / nr - 0.3) * aspect)   # 0.3 in for a panel title
        if panel > best[2]:
            best = (nr, nc, panel)
    return best


def _event_unit(weight: str | None) -> str:
    return "fighters lost" if weight else "events"


def plot_event_map(results: Results, point_id: int | Sequence[int],
                   types: Sequence[str] = ("engagement",), weight: str | None = None,
                   terrain: Terrain | None = None, title: str | None = None) -> Figure:
    """Where events of `types` happened over all finished runs of a design point (or a list
    of points pooled), as events (or the summed `weight` column, e.g. `losses.government`)
    per run per km^2 over the base scenario's terrain."""
    from sim.analysis.maps import plot_terrain

    if terrain is None:
        first = point_id if isinstance(point_id, (int, np.integer)) else next(iter(point_id))
        terrain = scenario_terrain(results, int(first))
    bin_cells, smooth = _map_bins(terrain)
    dens, n_runs = event_density(results, point_id, types, terrain.shape, weight, bin_cells,
                                 smooth, terrain.grid.cell_km)
    vmax = float(dens.max())
    with mpl.rc_context({**STYLE, "axes.grid": False}):
        fig = new_figure()
        ax = fig.subplots()
        plot_terrain(terrain, ax=ax, legend=True)
        im = _density_layer(ax, dens, bin_cells, vmax)
        cb = fig.colorbar(im, ax=ax, shrink=0.5, pad=0.02, location="bottom", aspect=40)
        cb.set_label(f"{_event_unit(weight)} per run per km²")
        cb.outline.set_visible(False)
        what = title or ", ".join(types)
        pids = [point_id] if isinstance(point_id, (int, np.integer)) else list(point_id)
        design = design_table(results).set_index("point_id")
        pts = ", ".join(f"{p} ({point_label(design.loc[p], results.factors)})" for p in pids)
        _title(fig, f"{what.capitalize()}: design point{'s' if len(pids) > 1 else ''} {pts}")
        _footnote(fig, f"All {n_runs} finished runs of the point pooled; smoothed over "
                       f"{bin_cells * terrain.grid.cell_km:g} km cells "
                       f"({results.manifest.get('name')})")
    return fig


_RASTER_CACHE: dict[tuple[int, float, bool], tuple[Any, np.ndarray]] = {}


def terrain_raster(terrain: Terrain, width_in: float, labels: bool = True) -> np.ndarray:
    """The terrain drawn by `sim.analysis.maps.plot_terrain` (roads, places, zones, scale bar)
    as an RGBA image `width_in` inches wide at twice `DPI`, for small multiples: drawing the
    vector map once and showing it in every panel is several times faster than drawing each."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sim.analysis.maps import plot_terrain

    key = (id(terrain), round(width_in, 3), labels)
    hit = _RASTER_CACHE.get(key)
    if hit is not None and hit[0] is terrain:
        return hit[1]
    rows, cols = terrain.shape
    fig = Figure(figsize=(width_in, width_in * rows / cols), dpi=2 * DPI)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    plot_terrain(terrain, ax=ax, legend=False, labels=labels)
    for t in list(ax.texts):
        if "azimuthal" in t.get_text():
            t.remove()   # the projection note sits outside the map
    ax.set_axis_off()
    canvas.draw()
    img = np.asarray(canvas.buffer_rgba()).copy()
    if len(_RASTER_CACHE) > 8:
        _RASTER_CACHE.clear()
    _RASTER_CACHE[key] = (terrain, img)
    return img


def plot_event_maps(results: Results, points: Sequence[int], types: Sequence[str] = (
        "engagement",), weight: str | None = None, title: str | None = None,
                    terrain: Terrain | None = None) -> Figure:
    """`plot_event_map` for several design points side by side, on one colour scale."""
    if terrain is None:
        terrain = scenario_terrain(results)
    bin_cells, smooth = _map_bins(terrain)
    layers = [event_density(results, p, types, terrain.shape, weight, bin_cells, smooth,
                            terrain.grid.cell_km) for p in points]
    vmax = max((float(d.max()) for d, _ in layers), default=0.0)
    design = design_table(results).set_index("point_id")
    rows, cols = terrain.shape
    nr, nc, panel_in = _map_grid(len(points), cols / rows)
    base = terrain_raster(terrain, panel_in, labels=len(points) <= 6)
    extent = (-0.5, cols - 0.5, rows - 0.5, -0.5)
    with mpl.rc_context({**STYLE, "axes.grid": False, "axes.titlesize": 9.5}):
        fig = new_figure()
        axes = fig.subplots(nr, nc, squeeze=False)
        im = None
        for k, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if k >= len(points):
                continue
            pid = points[k]
            ax.imshow(base, extent=extent, interpolation="nearest", zorder=0)
            dens, _ = layers[k]
            im = _density_layer(ax, dens, bin_cells, vmax)
            ax.set_xlim(-0.5, cols - 0.5)
            ax.set_ylim(rows - 0.5, -0.5)
            total = dens.sum() * (bin_cells * terrain.grid.cell_km) ** 2
            ax.set_title(f"{pid}: {point_label(design.loc[pid], results.factors)}  "
                         f"({total:.3g} per run)", loc="left", fontweight="bold")
        if im is not None:
            cb = fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.85, pad=0.01)
            cb.set_label(f"{_event_unit(weight)} per run per km²")
            cb.outline.set_visible(False)
        what = title or ", ".join(types)
        factors = " · ".join(factor_label(f, unit=False) for f in results.factors)
        _title(fig, f"{what.capitalize()}: where, by design point")
        _footnote(fig, f"All finished runs of each point pooled, per run per km² over "
                       f"{bin_cells * terrain.grid.cell_km:g} km cells, lightly smoothed; "
                       f"panel titles: point: {factors} (total per run)")
    return fig


# --------------------------------------------------------------------------------------------
# Sensitivity
# --------------------------------------------------------------------------------------------


def plot_sensitivity(results: Results, metrics: Sequence[str] | str,
                     table: pd.DataFrame | None = None, level: float = 0.95) -> Figure:
    """Sensitivity of each metric (at most 8) to the factors in one chart, a row group per
    metric and a colour per factor: Sobol' total (bar) and first-order (dot) indices with
    their CIs for Sobol' designs, else standardised regression coefficients with CIs (see
    `sim.analysis.statistics.sensitivity`)."""
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)[:8]
    if table is None:
        table = pd.concat([sensitivity(results, m, level).assign(metric=m) for m in metrics],
                          ignore_index=True)
    sobol = "ST" in table.columns and table["ST"].notna().any()
    term_col = "factor" if sobol else "term"
    terms = list(dict.fromkeys(table[term_col]))
    colour = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(terms)}
    step = 0.8 / max(1, len(terms))
    with mpl.rc_context(STYLE):
        fig = new_figure()
        ax = fig.subplots()
        ax.grid(axis="y", visible=False)
        centres: list[float] = []
        names: list[str] = []
        for i, metric in enumerate(metrics):
            t = table[table["metric"] == metric].set_index(term_col)
            centre = -float(i)
            centres.append(centre)
            if i:
                ax.axhline(centre + 0.5, color="#e4e4e4", lw=0.8)
            for j, term in enumerate(terms):
                if term not in t.index:
                    continue
                r = t.loc[term]
                y = centre + 0.4 - step * (j + 0.5)
                c = colour[term]
                owner = term if sobol else str(r["factor"])
                base = "" if sobol else str(r.get("baseline", "") or "")
                label = _term_label(term, owner, base) if i == 0 else None
                if sobol:
                    ax.barh(y, r["ST"], step * 0.85, xerr=r["ST_conf"], color=c, alpha=0.35,
                            error_kw={"lw": 0.8, "capsize": 2, "ecolor": c})
                    ax.errorbar(r["S1"], y, xerr=r["S1_conf"], fmt="o", color=c, ms=5,
                                capsize=2, lw=1.2, label=label)
                else:
                    ax.errorbar(r["src"], y, xerr=[[r["src"] - r["ci_low"]],
                                                   [r["ci_high"] - r["src"]]],
                                fmt="o", color=c, ms=6, capsize=3, lw=1.5, label=label)
            r2 = float(t["r2"].iloc[0]) if not sobol and len(t) else math.nan
            names.append(metric_title(metric) + (f"\nR² = {r2:.2f}" if math.isfinite(r2)
                                                  else ""))
        ax.axvline(0, color="#333333", lw=0.8)
        ax.set_yticks(centres, names)
        ax.set_ylim(-len(metrics) + 0.5, 0.5)
        if sobol:
            lo = float(np.nanmin(table["S1"] - table["S1_conf"]))
            hi = float(np.nanmax(table["ST"] + table["ST_conf"]))
            # indices live in [0, 1]; whiskers of a small sample can run far beyond
            ax.set_xlim(max(lo, -0.25) - 0.03, min(max(hi, 1.0), 1.25) + 0.03)
            ax.set_xlabel("Sobol' index (share of the variance of the mean over replicates)")
            head = "Sobol' sensitivity indices"
            sub = ("Dot: first-order index S1 (the factor alone); bar: total index ST "
                   "(with its interactions); whiskers: SALib's 95% bootstrap confidence "
                   "intervals, cut at the edges of the axis")
        else:
            lim = max(1.0, float(np.nanmax(np.abs(table[["ci_low", "ci_high"]].to_numpy()))))
            ax.set_xlim(-lim * 1.05, lim * 1.05)
            ax.set_xlabel("standardised regression coefficient (SDs of the metric per SD of "
                          "the factor)")
            head = "Standardised regression coefficients"
            sub = (f"Linear fit of each metric (per run) on the standardised factors "
                   f"(categorical: a level against the first); whiskers: {level:.0%} "
                   f"t-intervals; R²: share of run-to-run variation the fit explains")
        ax.legend(title="factor", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  alignment="left")
        _title(fig, f"{head} ({results.manifest.get('name')})")
        _footnote(fig, sub)
    return fig


def _term_label(term: str, factor: str, baseline: str = "") -> str:
    if term == factor:
        return factor_label(factor)
    level = term.split(" = ", 1)[1] if " = " in term else term
    versus = f" (vs {baseline})" if baseline else ""
    return f"{factor_label(factor, unit=False)}: {level}{versus}"


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


def plot_compare(overall: pd.DataFrame, label_a: str = "A", label_b: str = "B",
                 level: float = 0.95) -> Figure:
    """Forest plot of `sim.analysis.statistics.compare`'s all-run table: each metric's
    difference A - B as a percentage of B's mean, with the CI of the difference on the same
    scale."""
    df = overall[np.isfinite(overall["rel_diff"].to_numpy(dtype=float))]
    with mpl.rc_context(STYLE):
        fig = new_figure()
        ax = fig.subplots()
        y = np.arange(len(df))[::-1]
        scale = 100.0 / df["mean_b"].abs().to_numpy(dtype=float)
        d = df["diff"].to_numpy(dtype=float) * scale
        lo = df["ci_low"].to_numpy(dtype=float) * scale
        hi = df["ci_high"].to_numpy(dtype=float) * scale
        clear = (lo > 0) | (hi < 0)
        ax.errorbar(d, y, xerr=[d - lo, hi - d], fmt="none", ecolor="#555555", capsize=3)
        ax.scatter(d, y, c=[ACCENT if c else "#9a9a9a" for c in clear], s=45, zorder=3)
        ax.axvline(0, color="#333333", lw=0.8)
        ax.set_yticks(y, [metric_title(m) for m in df["metric"]])
        ax.set_xlabel(f"difference {label_a} − {label_b}, % of {label_b}'s mean")
        ax.grid(axis="y", visible=False)
        _title(fig, f"{label_a} against {label_b}")
        _footnote(fig, f"Difference of means over all runs with Welch's {level:.0%} "
                       f"t-interval (scaled by {label_b}'s mean); blue: the interval excludes 0")
    return fig


__all__ = [
    "ACCENT", "DPI", "PALETTE", "SLIDE_INCHES", "STYLE", "density_cmap", "new_figure",
    "plot_compare", "plot_event_map", "plot_event_maps", "plot_interaction",
    "plot_main_effects", "plot_sensitivity", "plot_timeseries", "save_figure",
    "terrain_raster",
]
