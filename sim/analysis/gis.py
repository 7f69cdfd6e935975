"""GIS outputs: the terrain and event maps as GeoTIFFs, events as GeoParquet, places as GeoJSON.

The file formats themselves (GeoTIFF GeoKeys and WKT, GeoParquet) are in
:mod:`sim.analysis.geotiff`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sim.analysis.geotiff import (
    CRS84_PROJJSON,
    _num,
    proj4,
    read_geotiff,
    require,
    write_geotiff,
)
from sim.experiments.store import atomic_write_bytes
from sim.experiments.tables import (
    EVENTS_TABLE,
    empty_events_table,
    fixed_events_table,
    flat_events_table,
    write_parquet_atomic,
)

if TYPE_CHECKING:
    from sim.experiments.results import Results
    from sim.world.raster import Terrain

#: The terrain rasters `write_terrain` writes, in order.
TERRAIN_LAYERS = ("ground", "roads", "water", "caves", "zones")


def terrain_layers(terrain: Terrain) -> dict[str, tuple[np.ndarray, dict[int, str], int | None,
                                                        dict[int, str]]]:
    """name -> (uint8 codes, code -> meaning, no-data code, code -> colour) of every terrain
    raster `write_terrain` writes. Codes are the terrain's own (`sim.world.raster`); in `zones`
    code k is zone k - 1 of the map (0: no zone), so every layer but ground has 0 = none."""
    from sim.analysis.maps import (
        CAVE_COLOUR,
        GROUND_COLOURS,
        HIGHWAY_COLOUR,
        TRACK_COLOUR,
        WATER_COLOUR,
        ZONE_COLOUR,
    )
    from sim.world.raster import Ground, Road, Water

    if len(terrain.zones) > 254:
        raise ValueError(f"{len(terrain.zones)} zones do not fit a uint8 raster")
    zone_codes = {i + 1: f"{z.name} (barred: {', '.join(sorted(z.barred)) or 'none'})"
                  for i, z in enumerate(terrain.zones)}
    zone_colours = {i + 1: ZONE_COLOUR for i in range(len(terrain.zones))}
    return {
        "ground": (terrain.ground.astype(np.uint8),
                   {int(g): g.name.lower() for g in Ground}, None,
                   {int(g): c for g, c in GROUND_COLOURS.items()}),
        "roads": (terrain.road.astype(np.uint8),
                  {int(r): r.name.lower() for r in Road if r}, 0,
                  {int(Road.TRACK): TRACK_COLOUR, int(Road.HIGHWAY): HIGHWAY_COLOUR}),
        "water": (terrain.water.astype(np.uint8),
                  {int(w): w.name.lower() for w in Water if w}, 0,
                  {int(w): WATER_COLOUR for w in Water if w}),
        "caves": (terrain.cave.astype(np.uint8), {1: "cave"}, 0, {1: CAVE_COLOUR}),
        "zones": ((terrain.zone.astype(np.int32) + 1).astype(np.uint8), zone_codes, 0,
                  zone_colours),
    }


def write_terrain(terrain: Terrain, out_dir: str | os.PathLike[str], *,
                  title: str = "") -> list[Path]:
    """The terrain's layers as GeoTIFFs (`TERRAIN_LAYERS`) and its places as
    `places.geojson`, in `out_dir`; returns the paths. Needs the `gis` extra."""
    require()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (codes, meanings, nodata, colours) in terrain_layers(terrain).items():
        meta = {"badia_layer": name, "badia_scenario": title,
                "badia_codes": "; ".join(f"{k}={v}" for k, v in sorted(meanings.items())),
                "badia_projection": proj4(terrain.grid),
                "badia_cell_km": _num(terrain.grid.cell_km)}
        written.append(write_geotiff(out / f"{name}.tif", codes, terrain.grid, band_names=[name],
                                     nodata=nodata, metadata=meta, colours=colours))
    written.append(write_places(terrain, out / "places.geojson"))
    return written


def write_places(terrain: Terrain, path: str | os.PathLike[str]) -> Path:
    """The map's named places as GeoJSON points (longitude, latitude; RFC 7946)."""
    features = [{
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [p.lon, p.lat]},
        "properties": {"name": p.name, "kind": p.kind, "row": p.row, "col": p.col,
                       "radius_km": p.radius_km},
    } for p in terrain.places.values()]
    text = json.dumps({"type": "FeatureCollection", "features": features}, indent=1)
    path = Path(path)
    atomic_write_bytes(path, (text + "\n").encode())
    return path


# --------------------------------------------------------------------------------------------
# Events as GeoParquet
# --------------------------------------------------------------------------------------------


def points_wkb(lon: np.ndarray, lat: np.ndarray) -> pa.Array:
    """ISO WKB points (little-endian, 21 bytes each) as an Arrow binary array; null where a
    coordinate is missing or not finite."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    n = len(lon)
    rec = np.empty(n, dtype=np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"),
                                      ("y", "<f8")]))
    rec["order"] = 1          # little-endian
    rec["type"] = 1           # Point
    rec["x"] = lon
    rec["y"] = lat
    offsets = np.arange(n + 1, dtype=np.int32) * rec.dtype.itemsize
    arr = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets.tobytes()),
                                                 pa.py_buffer(rec.tobytes())])
    valid = np.isfinite(lon) & np.isfinite(lat)
    if not valid.all():
        arr = pc.if_else(pa.array(valid), arr, pa.scalar(None, type=pa.binary()))
    return arr


def geoparquet_metadata(lon: np.ndarray, lat: np.ndarray) -> dict[str, Any]:
    """The GeoParquet 1.1 `geo` metadata of a table whose `geometry` holds these points."""
    ok = np.isfinite(lon) & np.isfinite(lat)
    bbox = ([float(lon[ok].min()), float(lat[ok].min()), float(lon[ok].max()),
             float(lat[ok].max())] if ok.any() else [])
    column: dict[str, Any] = {"encoding": "WKB", "geometry_types": ["Point"],
                              "crs": CRS84_PROJJSON, "edges": "planar"}
    if bbox:
        column["bbox"] = bbox
    return {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}


def write_events_geoparquet(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """An events table (with `lat` and `lon` columns, e.g. `tables.fixed_events_table`) as
    GeoParquet: the same columns and a WKB point `geometry` (OGC:CRS84) equal to each event's
    lon/lat. Needs only pyarrow."""
    path = Path(path)
    lon = table.column("lon").to_numpy(zero_copy_only=False).astype(np.float64)
    lat = table.column("lat").to_numpy(zero_copy_only=False).astype(np.float64)
    geo = table.append_column("geometry", points_wkb(lon, lat))
    write_parquet_atomic(geo, path, geoparquet_metadata(lon, lat), key=b"geo")
    return path


# --------------------------------------------------------------------------------------------
# badia run --gis, badia report --gis
# --------------------------------------------------------------------------------------------


def write_run_gis(result: Any, terrain: Terrain, out_dir: str | os.PathLike[str]) -> list[Path]:
    """`badia run --gis`: the run's events as GeoParquet and the terrain's layers, in
    `out_dir`. Needs the `gis` extra."""
    require()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = write_terrain(terrain, out, title=result.scenario.name)
    written.append(write_events_geoparquet(fixed_events_table(result.events),
                                           out / "events.parquet"))
    return written


def results_events(results: Results) -> pa.Table:
    """The events of a results folder with the fixed schema (`tables.EVENT_SCHEMA`, after
    run_id, point_id, replicate): its `events.parquet` if that is up to date, else rebuilt
    from the loaded events (e.g. when runs were left out)."""
    from sim.experiments.results import flat_tables_current

    if flat_tables_current(results.path) and results.left_out.empty:
        return pq.read_table(results.path / EVENTS_TABLE)
    if results.events.empty:
        return empty_events_table()
    # pandas made NaN of the fields an event lacks: null again here, so `data` leaves them out
    return flat_events_table(pa.Table.from_pandas(results.events, preserve_index=False))


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")[:60] or "x"


def write_density_maps(results: Results, terrain: Terrain, out_dir: str | os.PathLike[str],
                       points: Iterable[int] | None = None) -> list[Path]:
    """The numbers behind the report's event maps as GeoTIFFs, `density_<layer>.tif`: one
    float32 band per design point (all points unless `points`), events (or the weight, e.g.
    fighters lost) per run per km^2 in the report's bins of cells, not smoothed (the report's
    figures smooth lightly for display). Needs the `gis` extra."""
    from sim.analysis.figures import _map_bins
    from sim.analysis.labels import point_label
    from sim.analysis.statistics import design_table, event_density, event_layers

    require()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pids = [int(p) for p in (points if points is not None else results.design["point_id"])]
    design = design_table(results).set_index("point_id")
    bin_cells, _ = _map_bins(terrain)
    written = []
    for name, (types, weight) in event_layers(results).items():
        bands, names, runs = [], [], []
        for p in pids:
            dens, n_runs = event_density(results, p, types, terrain.shape, weight, bin_cells,
                                         0.0, terrain.grid.cell_km)
            bands.append(dens.astype(np.float32))
            label = point_label(design.loc[p], results.factors) if results.factors else ""
            names.append(f"point {p}" + (f": {label}" if label else ""))
            runs.append(n_runs)
        unit = "fighters lost" if weight else "events"
        meta = {"badia_layer": name, "badia_event_types": ", ".join(types),
                "badia_weight": weight or "", "badia_unit": f"{unit} per run per km2",
                "badia_bin_km": _num(bin_cells * terrain.grid.cell_km),
                "badia_points": ", ".join(str(p) for p in pids),
                "badia_runs_per_point": ", ".join(str(n) for n in runs),
                "badia_experiment": str(results.manifest.get("name") or ""),
                "badia_projection": proj4(terrain.grid)}
        written.append(write_geotiff(out / f"density_{_slug(name)}.tif", np.stack(bands),
                                     terrain.grid, bin_cells=bin_cells, band_names=names,
                                     metadata=meta))
    return written


def write_results_gis(results: Results, out_dir: str | os.PathLike[str],
                      terrain: Terrain | None = None) -> tuple[list[Path], list[str]]:
    """`badia report --gis`: every event of the results as GeoParquet, and (when no factor
    changes the map) the base scenario's terrain layers and the event density maps, in
    `out_dir`. Returns (paths written, notes). Needs the `gis` extra."""
    from sim.analysis.statistics import scenario_terrain

    require()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_events_geoparquet(results_events(results), out / "events.parquet")]
    notes = []
    map_factors = [f for f in results.factors if f.startswith("map")]
    if map_factors:
        notes.append(f"no terrain or density GeoTIFFs: factor {map_factors[0]} changes the map "
                     f"from point to point")
        return written, notes
    terrain = terrain if terrain is not None else scenario_terrain(results)
    written += write_terrain(terrain, out, title=str(results.manifest.get("name") or ""))
    written += write_density_maps(results, terrain, out)
    return written, notes


def layer_title(path: Path) -> str:
    """What a file `write_results_gis` wrote holds, for the report's list of files."""
    name = path.name
    if name == "events.parquet":
        return "GeoParquet: every event of every run, WGS84 points"
    if name == "places.geojson":
        return "GeoJSON: the map's named places"
    if name.startswith("density_"):
        meta = read_geotiff(path).metadata
        what = meta.get("badia_layer") or name[8:-4].replace("_", " ")
        return f"GeoTIFF: {what} per run per km², one band per design point"
    return f"GeoTIFF: the terrain's {path.stem} layer"


__all__ = [
    "TERRAIN_LAYERS",
    "geoparquet_metadata",
    "layer_title",
    "points_wkb",
    "results_events",
    "terrain_layers",
    "write_density_maps",
    "write_events_geoparquet",
    "write_places",
    "write_results_gis",
    "write_run_gis",
    "write_terrain",
]
