# %% [markdown]
# # A results folder in a notebook
#
# Load a results folder, look at it as tables (pandas; polars and DuckDB on the flat tables
# if they are installed), draw the report's main plots, and open the GIS layers with geopandas.
#
# Open this file in VS Code, JupyterLab with jupytext, PyCharm or Spyder: every `# %%` line
# starts a cell, and figures show inline. Or run it whole as a script, which saves the figures
# as PNGs in RESULTS_DIR/notebook/ instead:
#
#     badia batch experiments/quick.yaml --out results/quick
#     python experiments/analysis_notebook.py results/quick
#
# The GIS part needs the `gis` extra (`pip install -e '.[gis]'`) for the GeoTIFFs and
# geopandas (`pip install geopandas`) for the maps; without them it prints a note and skips.

# %%
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.analysis import figures, statistics
from sim.errors import ResultsError, UserError
from sim.experiments.results import ensure_flat_tables, load

# A notebook kernel's argv is its own ("-f kernel.json"): then the default folder is used.
ARGS = [a for a in sys.argv[1:] if not a.startswith("-")] if "ipykernel" not in sys.modules else []
RESULTS_DIR = Path(ARGS[0]) if ARGS else Path("results/quick")
IN_NOTEBOOK = "ipykernel" in sys.modules
OUT = RESULTS_DIR / "notebook"


def show(fig: Figure, name: str) -> None:
    """Inline in a notebook; a PNG in RESULTS_DIR/notebook/ when run as a script."""
    if IN_NOTEBOOK:
        from IPython.display import display

        display(fig)
    else:
        OUT.mkdir(parents=True, exist_ok=True)
        figures.save_figure(fig, OUT / f"{name}.png")
        print(f"wrote {OUT / name}.png")


try:
    res = load(RESULTS_DIR)
except ResultsError as exc:
    sys.exit(f"analysis_notebook: {exc}")
runs = res.with_design(res.runs)        # one row per run: ids, factor values, summary metrics
metrics = statistics.default_metrics(res)
metric = metrics[0] if metrics else None
print(f"{res.manifest['name']}: {len(res.runs)} runs, {len(res.design)} design points, "
      f"factors {res.factors}; {len(res.events)} events")
with pd.option_context("display.width", 160, "display.max_columns", 12):
    print(runs[[*res.factors, *metrics[:4]]].head())

# %% [markdown]
# ## The flat tables, with no helper
#
# `runs.parquet`, `daily.parquet` and `events.parquet` sit beside the parts once a batch has
# finished (this cell writes them if they are missing). Any Parquet reader opens them.

# %%
ensure_flat_tables(RESULTS_DIR)
if metric and res.factors:
    factor = res.factors[0]
    try:
        import polars as pl
    except ImportError:
        print("note: polars is not installed (pip install polars); skipping its example")
    else:
        print(pl.scan_parquet(RESULTS_DIR / "runs.parquet").group_by(factor)
              .agg(pl.col(metric).mean().alias(f"mean {metric}"), pl.len().alias("runs"))
              .sort(factor).collect())
    try:
        import duckdb
    except ImportError:
        print("note: duckdb is not installed (pip install duckdb); skipping its example")
    else:
        events = (RESULTS_DIR / "events.parquet").as_posix()
        runs_table = (RESULTS_DIR / "runs.parquet").as_posix()
        print(duckdb.sql(
            f'SELECT r."{factor}", e.type, count(*) / count(DISTINCT e.run_id) AS per_run '
            f"FROM read_parquet('{events}') e JOIN read_parquet('{runs_table}') r "
            f"USING (run_id) WHERE e.type IN ('engagement', 'raid', 'ambush') "
            f"GROUP BY ALL ORDER BY ALL"))

# %% [markdown]
# ## The main plots

# %%
if metric:
    table = statistics.summarise(res, [metric])
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table[[*res.factors, "n_runs", "mean", "ci_low", "ci_high", "median"]]
              .to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if res.factors:
        show(figures.plot_main_effects(res, metric), f"main_effects_{metric}")

# %%
if metric and len(res.factors) >= 2:
    show(figures.plot_interaction(res, metric, res.factors[0], res.factors[1]),
         f"interaction_{metric}")

# %%
daily = statistics.daily_column(res, metric) if metric else None
if daily:
    column, cumulative = daily
    points = statistics.select_points(res, metric)
    show(figures.plot_timeseries(res, column, points, cumulative=cumulative),
         f"daily_{column}")

# %%
if "engagement" in set(res.events.get("type", ())):
    points = statistics.select_points(res, metric)
    show(figures.plot_event_maps(res, points, types=("engagement",), title="engagements"),
         "event_map_engagements")

# %% [markdown]
# ## GIS layers with geopandas
#
# The events as GeoParquet (WGS84 points), the terrain and the engagement densities as
# GeoTIFFs in the grid's azimuthal-equidistant projection (see README, "Outputs for GIS").
# `badia report RESULTS_DIR --gis` writes them to RESULTS_DIR/report/gis/; this cell uses those,
# or writes its own to RESULTS_DIR/notebook/gis/.

# %%
gis_dir = None
try:
    from sim.analysis import geotiff, gis

    geotiff.require("the GIS part of this notebook")
except UserError as exc:
    print(f"note: {exc}; skipping the GIS part")
else:
    gis_dir = RESULTS_DIR / "report" / "gis"
    if not (gis_dir / "ground.tif").is_file():
        gis_dir = OUT / "gis"
        written, notes = gis.write_results_gis(res, gis_dir)
        print(f"wrote {len(written)} GIS layers to {gis_dir}", *notes, sep="\n")

# %%
try:
    import geopandas as gpd
except ImportError:
    gpd = None
    print("note: geopandas is not installed (pip install geopandas); skipping the GIS maps")
if gpd is not None and gis_dir is not None and (gis_dir / "ground.tif").is_file():
    ground = geotiff.read_geotiff(gis_dir / "ground.tif")
    events = gpd.read_parquet(gis_dir / "events.parquet")          # EPSG/OGC:CRS84 points
    places = gpd.read_file(gis_dir / "places.geojson")
    print(events[["run_id", "type", "faction", "unit", "geometry"]].head())
    # into the rasters' own projection (the WKT written in each GeoTIFF), so everything lines up
    events_map = events.to_crs(ground.wkt)
    places_map = places.to_crs(ground.wkt)
    # the map's aspect, with room for the colour bar beside it and the labels below
    fig = Figure(figsize=(11, 9.4 * ground.pixels.rows / ground.pixels.cols + 0.9),
                 layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(ground.rgb(), extent=ground.pixels.extent, interpolation="nearest")
    for name in ("roads", "water", "zones"):
        layer = geotiff.read_geotiff(gis_dir / f"{name}.tif")
        ax.imshow(layer.rgb(), extent=layer.pixels.extent, interpolation="nearest",
                  alpha=0.35 if name == "zones" else 0.9)
    dens_path = gis_dir / "density_engagements.tif"
    if dens_path.is_file():
        dens = geotiff.read_geotiff(dens_path)
        pooled = dens.data.mean(axis=0)                    # over the design points
        shown = np.ma.masked_less_equal(pooled, 0)
        im = ax.imshow(shown, extent=dens.pixels.extent, cmap=figures.density_cmap(),
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.7, pad=0.01,
                     label="engagements per run per km² (mean over design points)")
    engaged = events_map[events_map["type"] == "engagement"]
    ax.scatter(engaged.geometry.x, engaged.geometry.y, s=9, marker="x", color="#d62728",
               linewidths=0.8, label=f"engagements ({len(engaged)})")
    ax.scatter(places_map.geometry.x, places_map.geometry.y, s=22, color="black", zorder=5,
               label="places")
    for name, pt in zip(places_map["name"], places_map.geometry, strict=True):
        ax.annotate(name, (pt.x, pt.y), xytext=(4, 3), textcoords="offset points",
                    fontsize=7.5)
    ax.set_xlabel("metres east of the map centre (azimuthal equidistant)")
    ax.set_ylabel("metres north of the map centre")
    ax.set_title(f"{res.manifest['name']}: the GeoTIFFs, GeoParquet events and GeoJSON places "
                 f"in the grid's projection", loc="left", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    show(fig, "gis_overlay")
