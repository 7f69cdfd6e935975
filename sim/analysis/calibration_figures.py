"""Figures of a calibration (matplotlib `Figure` objects, never pyplot state): the posterior
marginals, the pairs plot, and the posterior-predictive check.

Each takes the `CalibrationRun` that `sim.experiments.calibrate.run_calibration` returns and gives
back a `Figure`; `write_figures` saves all three under `<out>/figures/`.
"""

from __future__ import annotations

import math
import re
import textwrap
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from sim.analysis.figures import ACCENT, STYLE, new_figure, save_figure
from sim.analysis.labels import factor_label
from sim.experiments.calibration_data import run_day_dates, run_days

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sim.experiments.calibrate import CalibrationRun
    from sim.experiments.calibration_spec import ParameterSpec

PRIOR_COLOUR = "#7a7a7a"
PRIOR_RANGE = "#e8e8e8"
BAND_90 = "#c6dbef"
BAND_50 = "#6baed6"
MEDIAN = "#08519c"
INSIDE = "#009E73"
OUTSIDE = "#D55E00"
MARKERS = {"min": ("^", "observed, at least"), "max": ("v", "observed, at most"),
           "approx": ("o", "observed, about")}


def axis_label(p: ParameterSpec) -> str:
    """The parameter path with its unit: `units[kind=cell].strength (fighters)`."""
    unit = p.label_unit
    return f"{p.path} ({unit})" if unit else p.path


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False)) or text


def _wrap_path(text: str, width: int) -> str:
    """Wrap a parameter path (no spaces) after its dots and before its brackets."""
    parts = re.split(r"(?<=[.\]])|(?=\[)|(?<= )", text)
    lines, cur = [], ""
    for part in parts:
        if cur and len(cur) + len(part) > width:
            lines.append(cur)
            cur = part
        else:
            cur += part
    lines.append(cur)
    return "\n".join(line.strip() for line in lines if line.strip())


def _footnote(fig: Figure, text: str) -> None:
    fig.supxlabel(_wrap(text, int(fig.get_figwidth() * 14)), fontsize=8.5, color="#555555")


def _title(fig: Figure, text: str) -> None:
    fig.suptitle(_wrap(text, int(fig.get_figwidth() * 9)), x=0.01, ha="left")


def _generation_text(run: CalibrationRun) -> str:
    fin = run.populations[run.populations["t"] >= 0]
    last = fin.iloc[-1]
    return (f"{len(run.posterior)} particles of generation {int(last['t'])} (epsilon "
            f"{last['epsilon']:.3g})")


def _prior_density(p: ParameterSpec, x: np.ndarray) -> np.ndarray:
    a, b = p.prior.args
    if p.prior.kind == "normal":
        return np.exp(-0.5 * ((x - a) / b) ** 2) / (b * math.sqrt(2 * math.pi))
    inside = (x >= a) & (x <= b)
    if p.prior.kind == "uniform":
        return np.where(inside, 1.0 / (b - a), 0.0)
    return np.where(inside, 1.0 / (np.clip(x, a, b) * math.log(b / a)), 0.0)


def _x_range(p: ParameterSpec, values: np.ndarray) -> tuple[float, float]:
    lo, hi = p.prior.range()
    lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
    if p.integer:
        return lo - 0.6, hi + 0.6
    if _log_axis(p):
        return lo / 1.08, hi * 1.08
    pad = 0.04 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def _log_axis(p: ParameterSpec) -> bool:
    return p.prior.kind == "loguniform" and not p.integer


def _plain_log_ticks(axis: Any) -> None:
    """1, 2, 5, 10, ... as plain numbers on a log axis (not 2 x 10^0)."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _integer_prior_mass(p: ParameterSpec, ks: np.ndarray) -> np.ndarray:
    """The prior probability of each whole number (the continuous prior over k -/+ 0.5)."""
    from scipy import stats

    a, b = p.prior.args
    if p.prior.kind == "normal":
        dist = stats.norm(a, b)
    elif p.prior.kind == "uniform":
        dist = stats.uniform(a - 0.5, b - a + 1)
    else:
        dist = stats.loguniform(a - 0.5, b + 0.5)
    return dist.cdf(ks + 0.5) - dist.cdf(ks - 0.5)


def _marginal(ax: Any, p: ParameterSpec, values: np.ndarray, weights: np.ndarray,
              row: pd.Series) -> None:
    lo, hi = p.prior.range()
    x0, x1 = _x_range(p, values)
    ax.axvspan(lo, hi, color=PRIOR_RANGE, zorder=0, label="prior range")
    w = weights / weights.sum()
    if p.integer:
        ks = np.arange(math.floor(x0 + 0.6), math.ceil(x1 - 0.6) + 1)
        mass = np.array([w[values == k].sum() for k in ks])
        ax.bar(ks, mass, width=0.8, color=ACCENT, alpha=0.75, label="posterior", zorder=2)
        ax.hlines(_integer_prior_mass(p, ks), ks - 0.4, ks + 0.4, colors=PRIOR_COLOUR,
                  linestyles="--", label="prior", zorder=3)
        ax.set_ylabel("posterior probability")
    else:
        n_bins = int(np.clip(2 * math.sqrt(len(values)), 8, 30))
        log = _log_axis(p)
        bins = np.geomspace(x0, x1, n_bins + 1) if log else np.linspace(x0, x1, n_bins + 1)
        counts = np.histogram(values, bins=bins, weights=w)[0]
        width = np.diff(np.log10(bins)) if log else np.diff(bins)
        ax.stairs(counts / width, bins, fill=True, color=ACCENT, alpha=0.75, zorder=2,
                  label="posterior")
        if log:
            ax.set_xscale("log")
            _plain_log_ticks(ax.xaxis)
            ax.hlines(1.0 / math.log10(hi / lo), lo, hi, colors=PRIOR_COLOUR,
                      linestyles="--", lw=1.3, zorder=3, label="prior")
            ax.set_ylabel("posterior density per log10 unit")
        else:
            grid = np.linspace(x0, x1, 400)
            ax.plot(grid, _prior_density(p, grid), "--", color=PRIOR_COLOUR, lw=1.3,
                    label="prior", zorder=3)
            ax.set_ylabel("posterior density")
    ax.axvline(row["median"], color=MEDIAN, lw=2, zorder=4, label="median")
    for q in (row["q05"], row["q95"]):
        ax.axvline(q, color=MEDIAN, lw=1.2, ls=":", zorder=4)
    ax.set_xlim(x0, x1)
    ax.set_xlabel(_wrap_path(axis_label(p), 44))
    ax.set_title(_wrap(factor_label(p.path, unit=False).capitalize(), 45), loc="left")


def _axes_with_legend_row(fig: Figure, rows: int, cols: int, row_inches: float
                          ) -> tuple[np.ndarray, Any]:
    """(a rows x cols grid of axes, the axes of a thin row above them for the legend), so
    that the legend never overlaps the title, the panels or the footnote."""
    gs = fig.add_gridspec(rows + 1, cols, height_ratios=[0.45 / row_inches] + [1.0] * rows)
    legend_ax = fig.add_subplot(gs[0, :])
    legend_ax.axis("off")
    axes = np.array([[fig.add_subplot(gs[r + 1, c]) for c in range(cols)] for r in range(rows)])
    return axes, legend_ax


def _marginal_legend() -> list[Any]:
    return [Patch(color=PRIOR_RANGE, label="prior range"),
            Line2D([], [], ls="--", color=PRIOR_COLOUR, label="prior"),
            Patch(color=ACCENT, alpha=0.75, label="posterior"),
            Line2D([], [], color=MEDIAN, lw=2, label="median"),
            Line2D([], [], color=MEDIAN, lw=1.2, ls=":", label="90% interval")]


def plot_marginals(run: CalibrationRun) -> Figure:
    """One panel per parameter: the weighted posterior histogram over the prior (dashed) and
    the prior range (shaded), with the median and the 90% credible interval."""
    params = run.cal.spec.parameters
    n = len(params)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    w = run.posterior["weight"].to_numpy(dtype=float)
    summary = run.summary.set_index("parameter")
    with mpl.rc_context(STYLE):
        fig = new_figure((max(6.0, 4.2 * cols), 1.6 + 3.2 * rows))
        grid, legend_ax = _axes_with_legend_row(fig, rows, cols, 3.2)
        axes = grid.ravel()
        for ax, p in zip(axes, params, strict=False):
            _marginal(ax, p, run.posterior[p.path].to_numpy(dtype=float), w,
                      summary.loc[p.path])
        for ax in axes[n:]:
            ax.set_visible(False)
        legend_ax.legend(handles=_marginal_legend(), loc="center", ncols=5, fontsize=8.5)
        _title(fig, f"Calibration {run.cal.name}: posterior marginals")
        _footnote(fig, f"{_generation_text(run)}; weighted histograms. Prior range shaded "
                       f"(normal priors: mean +/- 1.96 sd). Median and 5-95% quantiles marked.")
    return fig


def plot_pairs(run: CalibrationRun) -> Figure:
    """Every pair of parameters: the particles (area by weight) below the diagonal, the
    marginals on it; axes span the prior ranges."""
    params = run.cal.spec.parameters
    n = len(params)
    w = run.posterior["weight"].to_numpy(dtype=float)
    summary = run.summary.set_index("parameter")
    size = max(3.2, min(4.2, 10.0 / n))
    with mpl.rc_context({**STYLE, "axes.titlesize": 9.5, "axes.labelsize": 9}):
        fig = new_figure((max(6.0, size * n), max(4.5, size * n + 1.0)))
        axes = fig.subplots(n, n, squeeze=False)
        vals = [run.posterior[p.path].to_numpy(dtype=float) for p in params]
        lims = [_x_range(p, v) for p, v in zip(params, vals, strict=True)]
        area = 8 + 120 * w / w.max() if len(w) else w
        for i, pi in enumerate(params):
            for j, pj in enumerate(params):
                ax = axes[i, j]
                if j > i:
                    ax.set_visible(False)
                    continue
                if i == j:
                    _marginal(ax, pi, vals[i], w, summary.loc[pi.path])
                    if i != n - 1:
                        ax.set_xlabel("")
                    ax.set_ylabel("posterior" if n > 1 else ax.get_ylabel())
                    continue
                (xl0, xh0), (yl0, yh0) = pj.prior.range(), pi.prior.range()
                ax.add_patch(Rectangle((xl0, yl0), xh0 - xl0, yh0 - yl0,
                                       color=PRIOR_RANGE, zorder=0))
                ax.scatter(vals[j], vals[i], s=area, color=ACCENT, alpha=0.45, linewidths=0,
                           zorder=2)
                ax.scatter([summary.loc[pj.path, "median"]], [summary.loc[pi.path, "median"]],
                           marker="+", s=160, color=MEDIAN, zorder=3, linewidths=2)
                if _log_axis(pj):
                    ax.set_xscale("log")
                    _plain_log_ticks(ax.xaxis)
                if _log_axis(pi):
                    ax.set_yscale("log")
                    _plain_log_ticks(ax.yaxis)
                ax.set_xlim(*lims[j])
                ax.set_ylim(*lims[i])
                ax.set_xlabel(_wrap_path(axis_label(pj), 40) if i == n - 1 else "")
                ax.set_ylabel(_wrap_path(axis_label(pi), 30) if j == 0 else "")
        if n > 1:
            axes[0, n - 1].set_visible(True)
            axes[0, n - 1].axis("off")
            axes[0, n - 1].legend(handles=[*_marginal_legend(), Line2D(
                [], [], ls="", marker="o", color=ACCENT, alpha=0.6, label="particle (area by "
                "weight)"), Line2D([], [], ls="", marker="+", markersize=12, color=MEDIAN,
                                   markeredgewidth=2, label="posterior medians")],
                loc="upper right", fontsize=9)
        _title(fig, f"Calibration {run.cal.name}: posterior pairs")
        _footnote(fig, f"{_generation_text(run)}. Below the diagonal each dot is a particle "
                       f"(area by weight), + the posterior medians, shaded the prior ranges; "
                       f"on the diagonal the marginals.")
    return fig


def _dates(first: str, last: str) -> tuple[float, float]:
    import matplotlib.dates as mdates

    d0 = date.fromisoformat(first)
    d1 = date.fromisoformat(last) + timedelta(days=1)
    return float(mdates.date2num(d0)), float(mdates.date2num(d1))


def _panel_title(run: CalibrationRun, output: int) -> str:
    out = run.cal.spec.outputs[output]
    cols = " + ".join(out.columns)
    scale = f" x {out.scale:g}" if out.scale != 1 else ""
    where = f" [{'; '.join(out.regions)}]" if out.regions else ""
    return f"{out.quantity}{where}: model {cols}, {out.aggregate}{scale}"


def plot_ppc(run: CalibrationRun) -> Figure:
    """The posterior-predictive check: one panel per output (observed quantity), each
    observation's window on the time axis with the model's 90% (light) and 50% (dark) bands
    and median, and the observed value marked by its bound (^ at least, v at most, o about;
    green inside the 90% band by `inside_90`'s rule, orange outside). A thin line from a
    minimum up to slack x minimum (or down from a maximum) shows what the distance allows."""
    import matplotlib.dates as mdates

    ppc = run.ppc
    outputs = sorted(ppc["output"].unique())
    n = len(outputs)
    # every panel spans the run, so months line up from panel to panel; a warm-up
    # (campaign.measured_from) is never compared, so it is left off
    days = run_day_dates(run.cal.scenario.start, run_days(run.cal.days))
    camp = run.cal.scenario.campaign
    first_day = max(days[0], camp.measured_from) if camp and camp.measured_from else days[0]
    x_lo, x_hi = _dates(min(first_day.isoformat(), ppc["first"].min()),
                        max(days[-1].isoformat(), ppc["last"].max()))
    pad = max(0.5, 0.01 * (x_hi - x_lo))
    x_lo, x_hi = x_lo - pad, x_hi + pad
    with mpl.rc_context(STYLE):
        fig = new_figure((10.0, 1.7 + 2.9 * n))
        grid, legend_ax = _axes_with_legend_row(fig, n, 1, 2.9)
        axes = grid.ravel()
        for ax, oi in zip(axes, outputs, strict=True):
            rows = ppc[ppc["output"] == oi]
            for r in rows.itertuples():
                x0, x1 = _dates(r.first, r.last)
                ax.fill_between([x0, x1], r.q05, r.q95, color=BAND_90, lw=0, zorder=1)
                ax.fill_between([x0, x1], r.q25, r.q75, color=BAND_50, lw=0, zorder=2)
                ax.plot([x0, x1], [r.q50, r.q50], color=MEDIAN, lw=1.8, zorder=3)
                xm = (x0 + x1) / 2
                colour = INSIDE if r.inside_90 else OUTSIDE
                if r.bound != "approx" and math.isfinite(r.slack):
                    lo, hi = ((r.observed, r.observed * r.slack) if r.bound == "min"
                              else (r.observed / r.slack, r.observed))
                    ax.plot([xm, xm], [lo, hi], color=colour, lw=1, alpha=0.8, zorder=4)
                ax.scatter([xm], [r.observed], marker=MARKERS[r.bound][0], s=70, color=colour,
                           edgecolors="black", linewidths=0.6, zorder=5)
            ax.set_title(_wrap(_panel_title(run, int(oi)), 85), loc="left")
            ax.set_ylabel(_wrap(run.cal.spec.outputs[int(oi)].quantity.replace("_", " "), 28))
            top = max(ax.get_ylim()[1], 1.0)
            ax.set_ylim(-0.03 * top, top)    # a band at zero stays visible above the axis
            ax.set_xlim(x_lo, x_hi)
            loc = mdates.AutoDateLocator(minticks=3, maxticks=12)
            ax.xaxis.set_major_locator(loc)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
        handles = [
            Patch(color=BAND_90, label="model 90% band"),
            Patch(color=BAND_50, label="model 50% band"),
            Line2D([], [], color=MEDIAN, lw=1.8, label="model median"),
            *[Line2D([], [], ls="", marker=m, color="#bbbbbb", markeredgecolor="black",
                               markersize=8, label=text) for m, text in MARKERS.values()],
            Line2D([], [], ls="", marker="s", color=INSIDE, label="inside 90%"),
            Line2D([], [], ls="", marker="s", color=OUTSIDE, label="outside 90%"),
        ]
        legend_ax.legend(handles=handles, loc="center", ncols=4, fontsize=8.5)
        n_in = int(ppc["inside_90"].sum())
        _title(fig, f"Calibration {run.cal.name}: posterior-predictive check, {n_in} of "
                    f"{len(ppc)} observations inside the 90% band")
        _footnote(fig, f"{len(run.ppc_runs)} runs, each of a particle drawn from the "
                       f"posterior by weight with a fresh seed; bands span each observation's "
                       f"window of days. Lines from a minimum up to slack x minimum (or down "
                       f"from a maximum) show the range the distance does not penalise.")
    return fig


def write_figures(run: CalibrationRun) -> list[Path]:
    """Save marginals.png, pairs.png and ppc.png under `<out>/figures/`."""
    folder = run.out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in (("marginals", plot_marginals), ("pairs", plot_pairs),
                       ("ppc", plot_ppc)):
        path = folder / f"{name}.png"
        save_figure(make(run), path)
        written.append(path)
    return written
