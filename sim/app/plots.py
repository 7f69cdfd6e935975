"""The plots panel: time series of the run so far, by hour, from the model's DataCollector."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from sim.app.style import DPI, NIGHT_COLOUR
from sim.engine.metrics import slug
from sim.engine.model import DesertModel
from sim.world.clock import LightLevel


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
        n_segments = len(model.roads.segments)
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
