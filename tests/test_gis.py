"""GIS outputs (`sim.analysis.gis`, `badia run --gis`, `badia report --gis`): GeoTIFFs whose
written projection puts the grid's corners and cells where `sim.world.geo.Grid` does (pyproj;
and gdalinfo when it is installed), GeoParquet events whose points are their lat/lon, the
terrain's layers as they are, and one clear line when the `gis` extra is missing."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from sim.analysis import geotiff, gis
from sim.cli import main
from sim.errors import UserError
from sim.scenario.loading import load_scenario
from sim.world.cache import build_terrain
from sim.world.geo import Grid, haversine_km
from sim.world.raster import Terrain

tifffile = pytest.importorskip("tifffile")
pyproj = pytest.importorskip("pyproj")

ROOT = Path(__file__).resolve().parent.parent
OUTPOST = ROOT / "scenarios" / "outpost_night_raid.yaml"
THEATRE = ROOT / "scenarios" / "badia_theatre.yaml"
GDALINFO = shutil.which("gdalinfo")


def _terrain(path: Path) -> Terrain:
    return build_terrain(load_scenario(path).map, source=str(path))


@pytest.fixture(scope="module", params=[OUTPOST, THEATRE], ids=["outpost", "theatre"])
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Terrain, Path]:
    """A scenario's terrain and the folder `write_terrain` wrote it to."""
    terrain = _terrain(request.param)
    out = tmp_path_factory.mktemp("gis")
    gis.write_terrain(terrain, out, title=request.param.stem)
    return terrain, out


def _tags(path: Path) -> dict[int, Any]:
    with tifffile.TiffFile(path) as tif:
        return {t.code: t.value for t in tif.pages[0].tags.values()}


def _written_crs(path: Path) -> Any:
    """The projection written in the file (the WKT of its ESRI PE String citation)."""
    ascii_params = _tags(path)[34737]
    wkt = ascii_params.split("ESRI PE String = ", 1)[1].split("|", 1)[0]
    return pyproj.CRS.from_wkt(wkt)


def _corners(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """The raster's four outer corners in projected metres (from its tiepoint and pixel
    scale) and the pixel size."""
    tags = _tags(path)
    sx, sy, _ = tags[33550]
    _, _, _, x0, y0, _ = tags[33922]
    rows, cols = tags[257], tags[256]
    xs = np.array([x0, x0 + cols * sx, x0, x0 + cols * sx])
    ys = np.array([y0, y0, y0 - rows * sy, y0 - rows * sy])
    return xs, ys, sx


def _grid_corners(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    hw, hh = grid.width_km / 2, grid.height_km / 2
    lat, lon = grid.latlon_of_xy(np.array([-hw, hw, -hw, hw]), np.array([hh, hh, -hh, -hh]))
    return np.asarray(lat), np.asarray(lon)


# --------------------------------------------------------------------------------------------
# The projection, with pyproj
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", gis.TERRAIN_LAYERS)
def test_geotiff_corners_transformed_back_are_the_grids_corners(
        written: tuple[Terrain, Path], layer: str) -> None:
    terrain, out = written
    grid = terrain.grid
    path = out / f"{layer}.tif"
    crs = _written_crs(path)
    xs, ys, pixel = _corners(path)
    assert pixel == pytest.approx(grid.cell_km * 1000)
    want_lat, want_lon = _grid_corners(grid)
    for target in (crs.geodetic_crs, pyproj.CRS("EPSG:4326")):
        to_geo = pyproj.Transformer.from_crs(crs, target, always_xy=True)
        lon, lat = to_geo.transform(xs, ys)
        err_km = haversine_km(lat, lon, want_lat, want_lon)
        assert err_km.max() < grid.cell_km / 2
        assert err_km.max() < 1e-6          # in fact the same maths: well under a millimetre


def test_the_written_projection_is_the_grids_sphere_aeqd(written: tuple[Terrain, Path]) -> None:
    terrain, out = written
    grid = terrain.grid
    crs = _written_crs(out / "ground.tif")
    expected = pyproj.CRS(f"+proj=aeqd +lat_0={grid.centre_lat} +lon_0={grid.centre_lon} "
                          f"+R=6371008.8 +units=m")
    assert crs.equals(expected, ignore_axis_order=True)
    assert pyproj.CRS(geotiff.proj4(grid)).equals(expected)
    assert crs.ellipsoid.semi_major_metre == crs.ellipsoid.semi_minor_metre == 6371008.8


def test_every_cell_of_the_grid_is_its_pixel_under_the_written_projection(
        written: tuple[Terrain, Path]) -> None:
    terrain, out = written
    grid = terrain.grid
    path = out / "ground.tif"
    crs = _written_crs(path)
    xs, ys, pixel = _corners(path)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, grid.rows, 500)
    cols = rng.integers(0, grid.cols, 500)
    # cell centres and points a third of a cell off them, both ways
    lat, lon = grid.latlon_of(rows, cols)
    to_map = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    for dx, dy in ((0, 0), (0.33, -0.33), (-0.33, 0.33)):
        x, y = to_map.transform(lon, lat)
        px_col = np.floor((np.asarray(x) + dx * pixel - xs[0]) / pixel).astype(int)
        px_row = np.floor((ys[0] - np.asarray(y) + dy * pixel) / pixel).astype(int)
        assert (px_row == rows).all() and (px_col == cols).all()


def test_an_ellipsoidal_aeqd_would_miss_the_theatre_by_more_than_half_a_cell() -> None:
    """Why the GeoTIFFs use the sphere: the grid's projection is spherical."""
    grid = _terrain(THEATRE).grid
    hw, hh = grid.width_km * 500, grid.height_km * 500
    wgs84 = pyproj.CRS(f"+proj=aeqd +lat_0={grid.centre_lat} +lon_0={grid.centre_lon} "
                       f"+datum=WGS84 +units=m")
    lon, lat = pyproj.Transformer.from_crs(wgs84, "EPSG:4326", always_xy=True).transform(
        np.array([-hw, hw, -hw, hw]), np.array([hh, hh, -hh, -hh]))
    want_lat, want_lon = _grid_corners(grid)
    assert haversine_km(lat, lon, want_lat, want_lon).max() > grid.cell_km / 2


# --------------------------------------------------------------------------------------------
# gdalinfo (Debian's gdal-bin; scripts/test-prereqs installs it)
# --------------------------------------------------------------------------------------------


def _gdalinfo(path: Path) -> dict[str, Any]:
    run = subprocess.run([GDALINFO, "-json", str(path)], capture_output=True, text=True,
                         timeout=60, check=True)
    return json.loads(run.stdout)


@pytest.mark.skipif(GDALINFO is None, reason="gdalinfo not installed (apt-get install gdal-bin)")
def test_gdalinfo_reads_the_projection_and_the_corner_coordinates(
        written: tuple[Terrain, Path]) -> None:
    terrain, out = written
    grid = terrain.grid
    info = _gdalinfo(out / "ground.tif")
    assert info["size"] == [grid.cols, grid.rows]
    wkt = info["coordinateSystem"]["wkt"]
    # GDAL names the method "Modified Azimuthal Equidistant" (EPSG 9832): on a sphere the
    # same maths, as the corners below show
    assert "Azimuthal Equidistant" in wkt and "6371008.8,0" in wkt
    params = {p.name: p.value for p in pyproj.CRS.from_wkt(wkt).coordinate_operation.params}
    assert params["Latitude of natural origin"] == grid.centre_lat
    assert params["Longitude of natural origin"] == grid.centre_lon
    hw, hh = grid.width_km * 500, grid.height_km * 500
    cc = info["cornerCoordinates"]
    assert cc["upperLeft"] == pytest.approx([-hw, hh])
    assert cc["lowerRight"] == pytest.approx([hw, -hh])
    # gdalinfo's own transformation of the corners to WGS84
    lon, lat = np.array(info["wgs84Extent"]["coordinates"][0][:4]).T
    want_lat, want_lon = _grid_corners(grid)
    # wgs84Extent goes upper left, lower left, lower right, upper right
    order = [0, 2, 3, 1]
    assert haversine_km(lat, lon, want_lat[order], want_lon[order]).max() < grid.cell_km / 2
    band = info["bands"][0]
    assert band["description"] == "ground" and band["colorInterpretation"] == "Palette"
    assert _gdalinfo(out / "zones.tif")["bands"][0]["noDataValue"] == 0


@pytest.mark.skipif(shutil.which("gdallocationinfo") is None,
                    reason="gdallocationinfo not installed (apt-get install gdal-bin)")
def test_gdal_finds_every_place_on_its_own_cell(written: tuple[Terrain, Path]) -> None:
    """GDAL's own transformation of a place's WGS84 lon/lat lands on the place's cell."""
    terrain, out = written
    features = json.loads((out / "places.geojson").read_text())["features"]
    args = []
    for f in features:
        args += [f"{f['geometry']['coordinates'][0]!r} {f['geometry']['coordinates'][1]!r}"]
    run = subprocess.run(["gdallocationinfo", "-wgs84", "-valonly", "-xml",
                          str(out / "ground.tif")], input="\n".join(args) + "\n",
                         capture_output=True, text=True, timeout=60, check=True)
    found = [(int(ln), int(px)) for px, ln in
             re.findall(r'pixel="(\d+)" line="(\d+)"', run.stdout)]
    assert found == [(f["properties"]["row"], f["properties"]["col"]) for f in features]
    assert len(found) == len(terrain.places) > 3


# --------------------------------------------------------------------------------------------
# The layers' contents
# --------------------------------------------------------------------------------------------


def test_the_terrain_layers_hold_the_terrains_codes(written: tuple[Terrain, Path]) -> None:
    terrain, out = written
    layers = {name: geotiff.read_geotiff(out / f"{name}.tif") for name in gis.TERRAIN_LAYERS}
    assert (layers["ground"].data[0] == terrain.ground).all()
    assert (layers["roads"].data[0] == terrain.road).all()
    assert (layers["water"].data[0] == terrain.water).all()
    assert (layers["caves"].data[0] == terrain.cave).all()
    assert (layers["zones"].data[0].astype(int) - 1 == terrain.zone).all()
    assert layers["ground"].nodata is None and layers["roads"].nodata == 0
    assert layers["ground"].metadata["badia_codes"].startswith("0=flat; 1=sand")
    assert layers["ground"].pixels == geotiff.PixelGrid.of(terrain.grid)
    if terrain.zones:
        assert terrain.zones[0].name in layers["zones"].metadata["badia_codes"]
    places = json.loads((out / "places.geojson").read_text())
    assert len(places["features"]) == len(terrain.places)
    first = places["features"][0]
    place = terrain.places[first["properties"]["name"]]
    assert first["geometry"]["coordinates"] == [place.lon, place.lat]


def test_a_colour_table_needs_single_band_uint8(tmp_path: Path) -> None:
    grid = Grid(34.0, 38.0, 1.0, 2, 3)
    with pytest.raises(ValueError, match="uint8"):
        geotiff.write_geotiff(tmp_path / "x.tif", np.zeros((2, 3), np.float32), grid,
                          colours={1: "red"})
    with pytest.raises(ValueError, match="pixels"):
        geotiff.write_geotiff(tmp_path / "x.tif", np.zeros((3, 3), np.float32), grid)
    geotiff.write_geotiff(tmp_path / "b.tif", np.ones((2, 1, 2), np.float32), grid, bin_cells=2,
                      band_names=["a", "b"])
    back = geotiff.read_geotiff(tmp_path / "b.tif")
    assert back.data.shape == (2, 1, 2) and back.band_names == ["a", "b"]
    assert back.pixels.pixel_m == 2000 and back.pixels.extent == (-1500, 2500, -1000, 1000)


# --------------------------------------------------------------------------------------------
# Events as GeoParquet
# --------------------------------------------------------------------------------------------


def _points(path: Path) -> list[tuple[float, float] | None]:
    out = []
    for wkb in pq.read_table(path).column("geometry").to_pylist():
        if wkb is None:
            out.append(None)
            continue
        order, kind, x, y = struct.unpack("<BIdd", wkb)
        assert (order, kind) == (1, 1)
        out.append((x, y))
    return out


@pytest.fixture(scope="module")
def run_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`badia run --gis` of the outpost night raid, 2 days."""
    out = tmp_path_factory.mktemp("run") / "out"
    assert main(["run", str(OUTPOST), "--days", "2", "--seed", "4", "--out", str(out),
                 "--quiet", "--gis"]) == 0
    return out


def test_badia_run_gis_writes_the_layers_and_the_events(run_out: Path) -> None:
    names = sorted(p.name for p in (run_out / "gis").iterdir())
    assert names == sorted([f"{n}.tif" for n in gis.TERRAIN_LAYERS]
                           + ["events.parquet", "places.geojson"])


def test_an_events_geoparquet_point_equals_its_lat_lon(run_out: Path) -> None:
    path = run_out / "gis" / "events.parquet"
    table = pq.read_table(path)
    events = [json.loads(line) for line in
              (run_out / "events.jsonl").read_text().splitlines()]
    assert table.num_rows == len(events) > 5
    assert _points(path) == [(e["lon"], e["lat"]) for e in events]
    assert table.column("lat").to_pylist() == [e["lat"] for e in events]
    assert table.column("type").to_pylist() == [e["type"] for e in events]
    geo = json.loads(table.schema.metadata[b"geo"])
    col = geo["columns"]["geometry"]
    assert geo["primary_column"] == "geometry" and geo["version"] == "1.1.0"
    assert col["encoding"] == "WKB" and col["geometry_types"] == ["Point"]
    assert pyproj.CRS.from_json_dict(col["crs"]).equals(pyproj.CRS("OGC:CRS84"))
    lons = [e["lon"] for e in events]
    lats = [e["lat"] for e in events]
    assert col["bbox"] == [min(lons), min(lats), max(lons), max(lats)]


def test_geopandas_opens_the_events_as_points(run_out: Path) -> None:
    import geopandas as gpd

    frame = gpd.read_parquet(run_out / "gis" / "events.parquet")
    assert frame.crs.equals(pyproj.CRS("OGC:CRS84"))
    assert (frame.geometry.x == frame["lon"]).all() and (frame.geometry.y == frame["lat"]).all()


def test_missing_coordinates_are_null_points() -> None:
    arr = gis.points_wkb(np.array([38.5, np.nan]), np.array([34.5, 34.6]))
    assert arr.null_count == 1 and struct.unpack("<BIdd", arr[0].as_py())[2:] == (38.5, 34.5)


# --------------------------------------------------------------------------------------------
# badia report --gis
# --------------------------------------------------------------------------------------------


def test_badia_report_gis_writes_events_terrain_and_density_maps(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim.experiments.batch import run_batch
    from sim.experiments.results import load

    exp = tmp_path / "e.yaml"
    exp.write_text(f"name: e\nscenario: {OUTPOST}\nfactors:\n"
                   f"  units[kind=patrol].tactic.schedule: {{levels: [day, night]}}\n"
                   f"replicates: 2\ndays: 2\nseed: 8\n")
    out = tmp_path / "res"
    with ThreadPoolExecutor(2) as pool:
        run_batch(exp, out, executor=pool, progress=False)
    (out / "runs.parquet").unlink()             # the report rebuilds a missing flat table
    assert main(["report", str(out), "--gis"]) == 0
    captured = capsys.readouterr()
    assert "GIS layers" in captured.out and "flat tables" in captured.err
    assert (out / "runs.parquet").is_file()
    gdir = out / "report" / "gis"
    names = {p.name for p in gdir.iterdir()}
    assert {"events.parquet", "places.geojson", "density_engagements.tif",
            *(f"{n}.tif" for n in gis.TERRAIN_LAYERS)} <= names
    assert "gis/density_engagements.tif" in (out / "report" / "index.html").read_text()

    res = load(out)
    dens = geotiff.read_geotiff(gdir / "density_engagements.tif")
    assert dens.band_names == ["point 0: day", "point 1: night"]
    assert dens.data.dtype == np.float32 and dens.data.shape[0] == 2
    area_km2 = (dens.pixels.pixel_m / 1000) ** 2
    eng = res.events[res.events["type"] == "engagement"]
    for p in (0, 1):
        per_run = (eng["point_id"] == p).sum() / 2
        assert float(dens.data[p].sum()) * area_km2 == pytest.approx(per_run, rel=1e-5)
    assert dens.wkt is not None and pyproj.CRS.from_wkt(dens.wkt).equals(
        pyproj.CRS(geotiff.proj4(_terrain(OUTPOST).grid)))
    events = pq.read_table(gdir / "events.parquet")
    assert events.num_rows == len(res.events)
    assert _points(gdir / "events.parquet") == list(zip(
        events.column("lon").to_pylist(), events.column("lat").to_pylist(), strict=True))
    if GDALINFO:
        info = _gdalinfo(gdir / "density_engagements.tif")
        assert [b["description"] for b in info["bands"]] == dens.band_names


# --------------------------------------------------------------------------------------------
# Without the extra
# --------------------------------------------------------------------------------------------


def test_without_the_extra_gis_fails_with_one_line_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "tifffile", None)     # import tifffile -> ImportError
    with pytest.raises(UserError, match=r"optional extra 'gis'"):
        geotiff.require()
    out = tmp_path / "out"
    assert main(["run", str(OUTPOST), "--days", "1", "--out", str(out), "--gis",
                 "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "badia[gis]" in err[0] and "Traceback" not in err[0]
    assert not out.exists()                      # refused before running anything
    assert main(["report", str(tmp_path / "nowhere"), "--gis"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'gis'" in err[0]
