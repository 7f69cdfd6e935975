"""The plots panel: time series of the run so far, by hour.

:class:`PlotPanel` (the browser app) keeps every series as SVG path commands in data units and
appends only the hours simulated since the last call, so a step costs the new points, not the
whole run; the axes (ranges, ticks) are a transform and a few labels around the paths.
:func:`plots_figure` draws the same panel with matplotlib (PNG files).

Panels: attacks and losses, units alive (log scale), and where the scenario has them road
segments open, sweep progress (squares cleared) and border crossings; then garrison coverage
of the roads by day and by night."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator, NullFormatter, ScalarFormatter

from sim.app.style import BLACK, BLUE, DPI, NIGHT_COLOUR, ORANGE, SKY_BLUE, faction_colours
from sim.engine.metrics import slug
from sim.engine.model import DesertModel
from sim.world.clock import LightLevel

DAY_COLOUR = ORANGE
NIGHT_LINE_COLOUR = BLUE


@dataclass
class Series:
    """One line: its label, colour and dash, and its path in data units (x hours, y value).

    A run of equal values is kept as its two ends (most series are flat most of the time), so
    the path stays short over a long run; the curve drawn is the same."""

    label: str
    colour: str
    dash: str = ""
    parts: list[str] = field(default_factory=list)
    pen_up: bool = True
    last: float = 0.0  # the last value, for the legend
    last_y: float = math.nan
    flat_x: float | None = None  # the end of a run of equal values, not written yet

    def add(self, x: float, y: float, value: float | None = None) -> None:
        """Append the point (x, y); ``value`` is what the legend shows (default ``y``)."""
        if not math.isfinite(y):
            self._flush()
            self.pen_up = True
            return
        self.last = y if value is None else value
        if not self.pen_up and y == self.last_y:
            self.flat_x = x
            return
        self._flush()
        self.parts.append(f"{'M' if self.pen_up else 'L'}{x:g},{y:.4g}")
        self.pen_up = False
        self.last_y = y

    def _flush(self) -> None:
        if self.flat_x is not None:
            self.parts.append(f"L{self.flat_x:g},{self.last_y:.4g}")
            self.flat_x = None

    def path(self) -> str:
        tail = f"L{self.flat_x:g},{self.last_y:.4g}" if self.flat_x is not None else ""
        return "".join(self.parts) + tail


@dataclass
class Chart:
    """One panel: title, y-axis label (with unit), its series and the y range seen so far."""

    key: str
    title: str
    ylabel: str
    series: list[Series]
    log: bool = False
    ymax: float = 1.0
    ymin_fixed: float | None = 0.0
    ymax_fixed: float | None = None
    note: str = ""


def _sweeps(model: DesertModel) -> list:
    return [u.behaviour for u in model.units
            if type(u.behaviour).__name__ == "Sweep" and hasattr(u.behaviour, "squares")]


def _has_crossers(model: DesertModel) -> bool:
    return any(getattr(u.tactic, "kind", None) == "border_crossing" for u in model.spec.units)


def _nice(span: float, n: int = 4) -> float:
    raw = max(span, 1e-9) / n
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _lin_ticks(lo: float, hi: float, n: int = 4, integer: bool = False) -> list[float]:
    step = _nice(hi - lo, n)
    if integer:
        step = max(1.0, round(step))
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e5 else f"{v:.0e}"


class PlotPanel:
    """The plots of one model, kept between steps (see the module's docstring)."""

    W, H = 460, 136  # SVG units of one chart (CSS px at its natural width)
    LEFT, RIGHT, TOP, BOTTOM = 50, 12, 8, 30

    def __init__(self, model: DesertModel) -> None:
        self.model = model
        self.rows = 0
        self.event_pos = 0
        colours = faction_colours(model)
        self.factions = [slug(f) for f in model.faction_names]
        self.colour_of = {slug(f): colours[f] for f in model.faction_names}
        roles = {f: s.role for f, s in model.spec.factions.items()}
        self.insurgent = {f for f, r in roles.items() if r == "insurgent"}
        self.charts: list[Chart] = [
            Chart("attacks", "Attacks and losses, cumulative", "count", [
                Series("attacks", BLACK), Series("succeeded", BLACK, "4 3"),
                *(Series(f"lost: {f}", self.colour_of[f]) for f in self.factions)]),
            Chart("alive", "Units alive", "units (log scale)",
                  [Series(f, self.colour_of[f]) for f in self.factions], log=True),
        ]
        self.n_segments = len(model.roads.segments)
        if self.n_segments:
            self.charts.append(Chart("roads", "Road segments open", "segments",
                                     [Series("open", "#3A3A3A")], ymax_fixed=self.n_segments,
                                     note=f"of {self.n_segments} segments"))
        self.sweeps = _sweeps(model)
        self.n_squares = sum(len(s.squares) for s in self.sweeps)
        self.cleared = 0
        if self.sweeps:
            self.charts.append(Chart("sweep", "Sweep progress", "squares cleared",
                                     [Series("cleared", BLUE)], ymax_fixed=self.n_squares,
                                     note=f"of {self.n_squares} squares"))
        self.crossings = [0, 0]
        if _has_crossers(model):
            self.charts.append(Chart("crossings", "Border crossings by insurgents, cumulative",
                                     "crossings", [Series("crossed", colours_insurgent(self)),
                                                   Series("intercepted", BLUE, "4 3")]))
        # coverage of the roads, or of the area where there are no roads (a sweep's ridge)
        self.coverage = "coverage road" if self.n_segments else "coverage area"
        self.charts.append(Chart("coverage", "Garrison coverage of the " + (
            "roads" if self.n_segments else "area"), "% of road cells" if self.n_segments
            else "% of the area", [Series("day", DAY_COLOUR), Series("night", NIGHT_LINE_COLOUR)],
            ymax_fixed=100.0))  # fmt: skip

    def _update(self) -> None:
        m = self.model
        data = m.datacollector.model_vars
        n = len(data.get("attacks attempted", ()))
        every = m.config.coverage_every_hours
        by_key = {c.key: c for c in self.charts}
        events = m.events
        for i in range(self.rows, n):
            hour = i + 1
            x = float(hour)
            # events of the hour just ended (collected rows are one per hour)
            while self.event_pos < len(events) and events[self.event_pos]["hour"] < hour:
                e = events[self.event_pos]
                self.event_pos += 1
                if e["type"] == "square_cleared":
                    self.cleared += 1
                elif e["type"] == "crossing" and e.get("faction") in self.insurgent:
                    self.crossings[0] += 1
                elif e["type"] == "crossing_intercepted":
                    self.crossings[1] += 1
            c = by_key["attacks"]
            values = [data["attacks attempted"][i], data["attacks succeeded"][i],
                      *(data[f"losses {f}"][i] for f in self.factions)]
            for s, v in zip(c.series, values, strict=True):
                s.add(x, float(v))
                c.ymax = max(c.ymax, float(v))
            c = by_key["alive"]
            for s, f in zip(c.series, self.factions, strict=True):
                v = float(data[f"units alive {f}"][i])
                s.add(x, math.log10(max(v, 0.8)), v)
                c.ymax = max(c.ymax, v)
            if "roads" in by_key:
                by_key["roads"].series[0].add(x, float(data["road segments open"][i]))
            if "sweep" in by_key:
                by_key["sweep"].series[0].add(x, float(self.cleared))
            if "crossings" in by_key:
                c = by_key["crossings"]
                for s, v in zip(c.series, self.crossings, strict=True):
                    s.add(x, float(v))
                    c.ymax = max(c.ymax, float(v))
            night = m.light_by_hour[(i // every) * every] == LightLevel.NIGHT
            road = 100.0 * float(data[self.coverage][i])
            day_s, night_s = by_key["coverage"].series
            day_s.add(x, math.nan if night else road)
            night_s.add(x, road if night else math.nan)
        self.rows = n

    def html(self) -> str:
        """The panel as HTML (one block per chart: title, legend, SVG); ``data-hour`` on it."""
        self._update()
        days = max(self.rows / 24.0, 1.0)
        out = [f'<div class="badia-plot-panel" data-hour="{self.model.hour}">']
        for c in self.charts:
            out.append(self._chart(c, days))
        if not self.rows:
            out.append('<div class="badia-plot-empty">no data yet: press Step</div>')
        out.append("</div>")
        return "".join(out)

    def _chart(self, c: Chart, days: float) -> str:
        W, H, L, R, T, B = self.W, self.H, self.LEFT, self.RIGHT, self.TOP, self.BOTTOM
        pw, ph = W - L - R, H - T - B
        if c.log:
            lo, hi = math.log10(0.8), math.log10(max(c.ymax, 2.0) * 1.15)
            ticks = [v * 10**e for e in range(0, int(hi) + 1) for v in (1, 2, 5)
                     if v * 10**e <= 10**hi]  # fmt: skip
            if len(ticks) > 6:
                ticks = [t for t in ticks if str(int(t))[0] in "15"]
            tick_pos = [(math.log10(t), _fmt(t)) for t in ticks]
        else:
            lo = c.ymin_fixed or 0.0
            top = c.ymax_fixed if c.ymax_fixed is not None else max(c.ymax, 1.0)
            ticks = _lin_ticks(lo, top, 4, integer=c.key != "coverage")
            hi = max(top, ticks[-1]) * 1.04 if c.ymax_fixed is None else top * 1.04
            tick_pos = [(t, _fmt(t)) for t in ticks]
        sx, sy = pw / days, ph / (hi - lo)
        sx_hours = sx / 24.0  # the paths are in hours
        tx, ty = L, T + ph + lo * sy
        legend = "".join(
            f'<span class="badia-key"><i style="border-top:2px {"dashed" if s.dash else "solid"}'
            f' {s.colour}"></i>{s.label}{f" ({_fmt(round(s.last))})" if c.key == "alive" else ""}'
            "</span>" for s in c.series if c.key != "attacks" or not s.label.startswith("lost")
            or s.last > 0)  # fmt: skip
        note = f' <span class="badia-note">{c.note}</span>' if c.note else ""
        g = [f'<div class="badia-chart" data-chart="{c.key}"><div class="badia-chart-title">'
             f"{c.title}{note}</div><div class=\"badia-legend\">{legend}</div>"
             f'<svg viewBox="0 0 {W} {H}" width="100%" preserveAspectRatio="xMinYMin meet" '
             f'font-size="11" font-family="DejaVu Sans, Arial, sans-serif">',
             f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>']
        for v, text in tick_pos:
            y = T + ph - (v - lo) * sy
            g.append(f'<line x1="{L}" x2="{L + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>'
                     f'<text x="{L - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#333">{text}'
                     "</text>")  # fmt: skip
        for d in _lin_ticks(0.0, days, 5, integer=days >= 3):
            x = L + d * sx
            g.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{T + ph}" y2="{T + ph + 4}" '
                     f'stroke="#666"/><text x="{x:.1f}" y="{T + ph + 15}" text-anchor="middle" '
                     f'fill="#333">{_fmt(round(d, 2))}</text>')  # fmt: skip
        g.append(f'<text x="{L + pw / 2}" y="{H - 2}" text-anchor="middle" fill="#333">'
                 "day of the run</text>"
                 f'<text transform="translate(11 {T + ph / 2}) rotate(-90)" text-anchor="middle" '
                 f'fill="#333" font-size="10">{c.ylabel}</text>')  # fmt: skip
        if c.ymax_fixed is not None and c.key != "coverage":
            y = T + ph - (c.ymax_fixed - lo) * sy
            g.append(f'<line x1="{L}" x2="{L + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999" '
                     'stroke-dasharray="3 3"/>')  # fmt: skip
        g.append(f'<svg x="{L}" y="{T}" width="{pw}" height="{ph}" overflow="hidden">'
                 f'<g transform="matrix({sx_hours:.6g} 0 0 {-sy:.6g} {tx - L:.6g} {ty - T:.6g})" '
                 'fill="none">')  # fmt: skip
        for s in c.series:
            if s.parts:
                dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
                g.append(f'<path d="{s.path()}" stroke="{s.colour}" stroke-width="1.6" '
                         f'vector-effect="non-scaling-stroke"{dash}/>')  # fmt: skip
        g.append("</g></svg></svg></div>")
        return "".join(g)


def colours_insurgent(panel: PlotPanel) -> str:
    for f in panel.factions:
        if f in {slug(x) for x in panel.insurgent}:
            return panel.colour_of[f]
    return SKY_BLUE


def plots_figure(model: DesertModel) -> Figure:
    """Time series from the DataCollector, by hour: attacks and losses by faction, units alive
    by faction, road segments open, and garrison coverage of the roads by day and by night."""
    fig = Figure(figsize=(4.6, 6.9), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    axes = fig.subplots(4, 1, sharex=True)
    fig.subplots_adjust(left=0.16, right=0.97, top=0.95, bottom=0.07, hspace=0.62)
    df = model.datacollector.get_model_vars_dataframe()
    days = (np.arange(len(df)) + 1) / 24.0
    colours = {slug(f): c for f, c in faction_colours(model).items()}
    a0, a1, a2, a3 = axes
    a0.set_title("Attacks and losses (cumulative)", fontsize=8, loc="left")
    a1.set_title("Units alive", fontsize=8, loc="left")
    a2.set_title("Road segments open", fontsize=8, loc="left")
    a3.set_title("Garrison coverage of roads", fontsize=8, loc="left")
    for a, label in zip(axes, ("count", "units (log)", "segments", "% of road cells"),
                        strict=True):
        a.set_ylabel(label, fontsize=7)
    legend_kw = {"fontsize": 6, "frameon": False, "loc": "lower left",
                 "bbox_to_anchor": (0.0, 1.0), "borderaxespad": 0.0}  # fmt: skip
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
        n_segments = len(model.roads.segments)
        a2.plot(days, df["road segments open"], color="#3A3A3A", lw=1.4,
                label=f"of {n_segments} segments")
        a2.axhline(n_segments, color="#999999", lw=0.8, ls="--")
        a2.set_ylim(0, max(n_segments, 1) * 1.05)
        a2.yaxis.set_major_locator(MaxNLocator(4, integer=True))
        every = model.config.coverage_every_hours
        sample_hour = (np.arange(len(df)) // every) * every
        night = model.light_by_hour[sample_hour] == LightLevel.NIGHT
        road = 100.0 * df["coverage road"].to_numpy(dtype=float)
        a3.plot(days, np.where(~night, road, np.nan), color=DAY_COLOUR, lw=1.5, label="day")
        a3.plot(days, np.where(night, road, np.nan), color=NIGHT_COLOUR, lw=1.5, label="night")
        a3.set_ylim(0, 102)
        a1.set_yscale("log")
        top = max(float(df[[c for c in df if c.startswith("units alive")]].max().max()), 2.0)
        a1.yaxis.set_major_locator(FixedLocator(
            [v * 10**e for e in range(0, int(np.log10(top)) + 1) for v in (1, 2, 5)]))
        a1.yaxis.set_major_formatter(ScalarFormatter())
        a1.yaxis.set_minor_formatter(NullFormatter())
        a1.set_ylim(0.8, top * 1.3)
        for a in axes:
            if a.get_legend_handles_labels()[0]:
                a.legend(ncol=4, **legend_kw)
    else:
        a0.text(0.5, 0.5, "no data yet: press Step", transform=a0.transAxes, ha="center",
                va="center", fontsize=8, color="#777777")
    for a in axes:
        a.tick_params(labelsize=7)
        a.grid(alpha=0.3, lw=0.5)
        a.title.set_y(1.18)
    a3.set_xlabel("day of the run", fontsize=7)
    return fig
