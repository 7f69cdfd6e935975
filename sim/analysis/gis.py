"""GIS outputs: the terrain and event maps as GeoTIFFs, events as GeoParquet, places as GeoJSON.

What a GIS (QGIS, ArcGIS, GDAL, rasterio, geopandas) opens directly::

    ground.tif roads.tif water.tif caves.tif zones.tif   the terrain's layers, one band each,
                                                         uint8 codes with a colour table
    density_<layer>.tif     (badia report --gis) events per run per km^2, one band per point
    events.parquet          GeoParquet 1.1: the fixed event columns + a WKB point `geometry`
                            in OGC:CRS84 (WGS84 longitude, latitude), equal to the event's lat/lon
    places.geojson          the map's named places (RFC 7946: WGS84 longitude, latitude)

The rasters are in the grid's own projection, so every cell is one pixel and nothing is
resampled: the azimuthal-equidistant projection about the map centre on the sphere of radius
6371008.8 m that `sim.world.geo.Grid` uses (`+proj=aeqd +lat_0=<centre lat> +lon_0=<centre
lon> +R=6371008.8 +units=m`; `proj4`, `wkt`). Lat/lon in the project are WGS84 degrees put
through the spherical formulas, so the sphere's geographic CRS and WGS84 are the same
coordinates here (PROJ's ballpark transformation between them changes nothing).

Each GeoTIFF carries the projection twice. The GeoKeys describe a user-defined projected CRS
(`GTModelTypeGeoKey` = projected, `ProjCoordTransGeoKey` = CT_AzimuthalEquidistant with the
centre, a user-defined sphere of radius 6371008.8 m), which is what GDAL (and so QGIS, rasterio)
reads; the PCSCitationGeoKey names it. The whole WKT (ESRI dialect, `wkt`) sits in the
GeoAsciiParams as the GTCitationGeoKey "ESRI PE String = <WKT>", the convention GDAL and ArcGIS
use for a WKT in a citation, for pyproj and any reader that prefers a WKT. (GDAL reads a PE
string *instead of* the keys only under a user-defined model type, GDAL's ESRI_PE flavour; with
a standard projected model type it reads the keys, checked with gdalinfo in tests/test_gis.py.)
ModelPixelScale and ModelTiepoint place the top-left corner of pixel (0, 0) at the grid's
north-west corner (`RasterPixelIsArea`). GDAL_METADATA holds band names and what the codes
mean; GDAL_NODATA the no-data code.

Writers: `tifffile` for the TIFF (pure Python; the optional extra `gis`, checked by `require`
with a one-line error naming it) and pyarrow for GeoParquet (WKB points built with numpy). No
GDAL library is needed to write any of these.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sim.errors import UserError
from sim.experiments.tables import (
    EVENTS_TABLE,
    empty_events_table,
    fixed_events_table,
    flat_events_table,
    umask_mode,
)
from sim.world.geo import EARTH_RADIUS_KM, Grid

if TYPE_CHECKING:
    from sim.experiments.results import Results
    from sim.world.raster import Terrain

#: The optional dependency group that brings the GeoTIFF writer (pyproject.toml).
GIS_EXTRA = "gis"
#: The sphere of `sim.world.geo`, in metres.
SPHERE_RADIUS_M = EARTH_RADIUS_KM * 1000.0
#: The terrain rasters `write_terrain` writes, in order.
TERRAIN_LAYERS = ("ground", "roads", "water", "caves", "zones")

# GeoTIFF tags and GeoKey values (GeoTIFF 1.1, OGC 19-008r4)
_TAG_MODEL_PIXEL_SCALE = 33550
_TAG_MODEL_TIEPOINT = 33922
_TAG_GEO_KEY_DIRECTORY = 34735
_TAG_GEO_DOUBLE_PARAMS = 34736
_TAG_GEO_ASCII_PARAMS = 34737
_TAG_GDAL_METADATA = 42112
_TAG_GDAL_NODATA = 42113
_USER_DEFINED = 32767
_MODEL_TYPE_PROJECTED = 1
_RASTER_PIXEL_IS_AREA = 1
_CT_AZIMUTHAL_EQUIDISTANT = 12
_ANGULAR_DEGREE = 9102
_LINEAR_METRE = 9001
#: How GDAL and ArcGIS mark a whole WKT kept in a GeoTIFF citation key.
ESRI_PE_PREFIX = "ESRI PE String = "

#: OGC:CRS84 (WGS84, longitude then latitude) as PROJJSON, the CRS of the GeoParquet geometry
#: (also GeoParquet's default; written out so a reader need not know that).
CRS84_PROJJSON: dict[str, Any] = {
    "$schema": "https://proj.org/schemas/v0.7/projjson.schema.json",
    "type": "GeographicCRS",
    "name": "WGS 84 (CRS84)",
    "datum_ensemble": {
        "name": "World Geodetic System 1984 ensemble",
        "members": [{"name": f"World Geodetic System 1984 ({m})",
                     "id": {"authority": "EPSG", "code": c}}
                    for m, c in (("Transit", 1166), ("G730", 1152), ("G873", 1153),
                                 ("G1150", 1154), ("G1674", 1155), ("G1762", 1156),
                                 ("G2139", 1309), ("G2296", 1383))],
        "ellipsoid": {"name": "WGS 84", "semi_major_axis": 6378137,
                      "inverse_flattening": 298.257223563},
        "accuracy": "2.0",
        "id": {"authority": "EPSG", "code": 6326},
    },
    "coordinate_system": {"subtype": "ellipsoidal", "axis": [
        {"name": "Geodetic longitude", "abbreviation": "Lon", "direction": "east",
         "unit": "degree"},
        {"name": "Geodetic latitude", "abbreviation": "Lat", "direction": "north",
         "unit": "degree"}]},
    "scope": "Not known.",
    "area": "World.",
    "bbox": {"south_latitude": -90, "west_longitude": -180, "north_latitude": 90,
             "east_longitude": 180},
    "id": {"authority": "OGC", "code": "CRS84"},
}


def require(what: str = "GeoTIFF output") -> Any:
    """The `tifffile` module, or a one-line `UserError` naming the extra that installs it."""
    try:
        import tifffile
    except ImportError:
        raise UserError(
            f"{what} needs the optional extra '{GIS_EXTRA}' (the tifffile package): "
            f"pip install 'badia[{GIS_EXTRA}]' (in a checkout: pip install -e '.[{GIS_EXTRA}]')"
        ) from None
    return tifffile


# --------------------------------------------------------------------------------------------
# The projection
# --------------------------------------------------------------------------------------------


def _num(x: float) -> str:
    """A number as the shortest text that reads back to the same float."""
    x = float(x)
    return repr(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def proj4(grid: Grid) -> str:
    """The grid's projection as a PROJ string (the sphere of `sim.world.geo`)."""
    return (f"+proj=aeqd +lat_0={_num(grid.centre_lat)} +lon_0={_num(grid.centre_lon)} "
            f"+x_0=0 +y_0=0 +R={_num(SPHERE_RADIUS_M)} +units=m +no_defs")


def crs_name(grid: Grid) -> str:
    """A name for the grid's projected CRS (no '|' or '"', which GeoTIFF and WKT reserve)."""
    return (f"badia grid: azimuthal equidistant about {_num(grid.centre_lat)}N "
            f"{_num(grid.centre_lon)}E, sphere R={_num(SPHERE_RADIUS_M)} m")


def wkt(grid: Grid) -> str:
    """The grid's projection as WKT 1 in the ESRI dialect, the dialect of a GeoTIFF's "ESRI PE
    String" (GDAL, PROJ/pyproj, QGIS and ArcGIS read it)."""
    r = _num(SPHERE_RADIUS_M)
    return (
        f'PROJCS["{crs_name(grid)}",'
        f'GEOGCS["GCS_Sphere_R{r}",DATUM["D_Sphere_R{r}",SPHEROID["Sphere_R{r}",{r},0.0]],'
        f'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],'
        f'PROJECTION["Azimuthal_Equidistant"],'
        f'PARAMETER["False_Easting",0.0],PARAMETER["False_Northing",0.0],'
        f'PARAMETER["Central_Meridian",{_num(grid.centre_lon)}],'
        f'PARAMETER["Latitude_Of_Origin",{_num(grid.centre_lat)}],'
        f'UNIT["Meter",1.0]]'
    )


@dataclass(frozen=True)
class PixelGrid:
    """Where a raster's pixels lie in the projection: the top-left corner of pixel (0, 0) at
    (`x0_m`, `y0_m`), square pixels `pixel_m` wide, `rows` x `cols` of them, row 0 north."""

    x0_m: float
    y0_m: float
    pixel_m: float
    rows: int
    cols: int

    @classmethod
    def of(cls, grid: Grid, bin_cells: int = 1) -> PixelGrid:
        """The grid's cells (`bin_cells` = 1), or bins of `bin_cells` x `bin_cells` cells from
        its north-west corner (the last row and column of bins may reach past the grid)."""
        return cls(x0_m=-grid.width_km * 500.0, y0_m=grid.height_km * 500.0,
                   pixel_m=grid.cell_km * 1000.0 * bin_cells,
                   rows=-(-grid.rows // bin_cells), cols=-(-grid.cols // bin_cells))

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) in metres: matplotlib's `imshow(extent=...)`."""
        return (self.x0_m, self.x0_m + self.cols * self.pixel_m,
                self.y0_m - self.rows * self.pixel_m, self.y0_m)

    @property
    def geotransform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL's geotransform (x0, pixel width, 0, y0, 0, -pixel height)."""
        return (self.x0_m, self.pixel_m, 0.0, self.y0_m, 0.0, -self.pixel_m)


def _geokeys(grid: Grid) -> tuple[list[int], list[float], str]:
    """(GeoKeyDirectory, GeoDoubleParams, GeoAsciiParams) of the grid's projected CRS."""
    doubles: list[float] = []
    ascii_parts: list[str] = []
    offset = 0
    keys: list[tuple[int, int, int, int]] = []

    def short(key: int, value: int) -> None:
        keys.append((key, 0, 1, value))

    def double(key: int, value: float) -> None:
        keys.append((key, _TAG_GEO_DOUBLE_PARAMS, 1, len(doubles)))
        doubles.append(float(value))

    def text(key: int, value: str) -> None:
        nonlocal offset
        value = value.replace("|", "/") + "|"
        keys.append((key, _TAG_GEO_ASCII_PARAMS, len(value), offset))
        ascii_parts.append(value)
        offset += len(value)

    sphere = f"Sphere R={_num(SPHERE_RADIUS_M)} m"
    short(1024, _MODEL_TYPE_PROJECTED)            # GTModelTypeGeoKey
    short(1025, _RASTER_PIXEL_IS_AREA)            # GTRasterTypeGeoKey
    text(1026, ESRI_PE_PREFIX + wkt(grid))        # GTCitationGeoKey: the whole WKT
    short(2048, _USER_DEFINED)                    # GeographicTypeGeoKey
    text(2049, f"GCS Name = {sphere}|Datum = {sphere}|Ellipsoid = {sphere}|Primem = Greenwich"
               .replace("|", "\x00"))             # GeogCitationGeoKey ('|' kept, see below)
    short(2050, _USER_DEFINED)                    # GeogGeodeticDatumGeoKey
    short(2054, _ANGULAR_DEGREE)                  # GeogAngularUnitsGeoKey
    short(2056, _USER_DEFINED)                    # GeogEllipsoidGeoKey
    double(2057, SPHERE_RADIUS_M)                 # GeogSemiMajorAxisGeoKey
    double(2058, SPHERE_RADIUS_M)                 # GeogSemiMinorAxisGeoKey
    double(2061, 0.0)                             # GeogPrimeMeridianLongGeoKey
    short(3072, _USER_DEFINED)                    # ProjectedCSTypeGeoKey
    text(3073, crs_name(grid))                    # PCSCitationGeoKey: its name
    short(3074, _USER_DEFINED)                    # ProjectionGeoKey
    short(3075, _CT_AZIMUTHAL_EQUIDISTANT)        # ProjCoordTransGeoKey
    short(3076, _LINEAR_METRE)                    # ProjLinearUnitsGeoKey
    double(3082, 0.0)                             # ProjFalseEastingGeoKey
    double(3083, 0.0)                             # ProjFalseNorthingGeoKey
    double(3088, grid.centre_lon)                 # ProjCenterLongGeoKey
    double(3089, grid.centre_lat)                 # ProjCenterLatGeoKey
    # GDAL's GeogCitation holds '|'-separated fields inside one key's text: the separators
    # were kept out of the '|' escaping above and are restored here
    ascii_text = "".join(ascii_parts).replace("\x00", "|")
    directory = [1, 1, 0, len(keys)]
    for k in sorted(keys):
        directory.extend(k)
    return directory, doubles, ascii_text


# --------------------------------------------------------------------------------------------
# GeoTIFF
# --------------------------------------------------------------------------------------------


def _xml_text(value: Any) -> str:
    # TIFF text is 7-bit ASCII: other characters go in as XML character references
    return escape(str(value), {'"': "&quot;"}).encode("ascii", "xmlcharrefreplace").decode()


def _gdal_metadata(items: Mapping[str, Any], band_names: Sequence[str]) -> str:
    lines = ["<GDALMetadata>"]
    for k, v in items.items():
        lines.append(f'  <Item name="{_xml_text(k)}">{_xml_text(v)}</Item>')
    for i, name in enumerate(band_names):
        lines.append(f'  <Item name="DESCRIPTION" sample="{i}" role="description">'
                     f"{_xml_text(name)}</Item>")
    lines.append("</GDALMetadata>")
    return "\n".join(lines)


def _atomic_path(path: Path) -> tuple[int, str]:
    """A temporary file beside `path` (renamed into place when complete), with the mode a
    new file gets here rather than mkstemp's 0o600: these files are for other programs."""
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    os.chmod(tmp, umask_mode())
    return fd, tmp


def write_geotiff(path: str | os.PathLike[str], data: np.ndarray, grid: Grid, *,
                  bin_cells: int = 1, band_names: Sequence[str] = (),
                  nodata: float | None = None, metadata: Mapping[str, Any] | None = None,
                  colours: Mapping[int, str] | None = None) -> Path:
    """Write `data` ((rows, cols), or (bands, rows, cols)) as a GeoTIFF in the grid's
    projection, its pixels the grid's cells (or `bin_cells` x `bin_cells` bins of them).

    `band_names` become GDAL band descriptions, `metadata` GDAL metadata items, `nodata` the
    GDAL no-data value, `colours` (code -> colour, uint8 single-band data) a colour table.
    Written to a temporary name and renamed into place. Needs the `gis` extra."""
    tifffile = require()
    path = Path(path)
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise ValueError(f"expected (rows, cols) or (bands, rows, cols), got shape {arr.shape}")
    px = PixelGrid.of(grid, bin_cells)
    if arr.shape[1:] != (px.rows, px.cols):
        raise ValueError(f"data is {arr.shape[1]} x {arr.shape[2]} pixels; the grid at "
                         f"{bin_cells} cell(s) per pixel is {px.rows} x {px.cols}")
    directory, doubles, ascii_text = _geokeys(grid)
    extratags: list[tuple[int, str, int, Any, bool]] = [
        (_TAG_MODEL_PIXEL_SCALE, "d", 3, (px.pixel_m, px.pixel_m, 0.0), True),
        (_TAG_MODEL_TIEPOINT, "d", 6, (0.0, 0.0, 0.0, px.x0_m, px.y0_m, 0.0), True),
        (_TAG_GEO_KEY_DIRECTORY, "H", len(directory), tuple(directory), True),
        (_TAG_GEO_DOUBLE_PARAMS, "d", len(doubles), tuple(doubles), True),
        (_TAG_GEO_ASCII_PARAMS, "s", 0, ascii_text, True),
        (_TAG_GDAL_METADATA, "s", 0, _gdal_metadata(metadata or {}, band_names), True),
    ]
    if nodata is not None:
        extratags.append((_TAG_GDAL_NODATA, "s", 0, _num(nodata), True))
    kwargs: dict[str, Any] = {}
    if colours is not None:
        if arr.shape[0] != 1 or arr.dtype != np.uint8:
            raise ValueError("a colour table needs single-band uint8 data")
        cmap = np.zeros((3, 256), dtype=np.uint16)
        for code, colour in colours.items():
            cmap[:, int(code)] = _rgb16(colour)
        kwargs.update(photometric="palette", colormap=cmap)
    else:
        kwargs.update(photometric="minisblack",
                      planarconfig="separate" if arr.shape[0] > 1 else None)
    out = arr if arr.shape[0] > 1 else arr[0]
    fd, tmp = _atomic_path(path)
    os.close(fd)
    try:
        tifffile.imwrite(tmp, out, compression="zlib", extratags=extratags, metadata=None,
                         software="badia", **kwargs)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _rgb16(colour: str) -> tuple[int, int, int]:
    from matplotlib.colors import to_rgb

    return tuple(round(c * 65535) for c in to_rgb(colour))   # type: ignore[return-value]


@dataclass
class GeoRaster:
    """A GeoTIFF read back (`read_geotiff`): its bands, where they lie, and what they mean."""

    data: np.ndarray                 # (bands, rows, cols)
    pixels: PixelGrid
    wkt: str | None                  # the WKT of an "ESRI PE String" citation, if any
    band_names: list[str]
    metadata: dict[str, str]
    nodata: float | None
    colours: np.ndarray | None = None    # (256, 3) RGB in 0..1 of a colour table, if any

    def rgb(self, band: int = 0) -> np.ndarray:
        """A band with a colour table as an RGBA image (no-data transparent), for `imshow`."""
        if self.colours is None:
            raise ValueError("this raster has no colour table")
        codes = self.data[band].astype(np.intp)
        img = np.ones((*codes.shape, 4))
        img[..., :3] = self.colours[codes]
        if self.nodata is not None:
            img[codes == self.nodata, 3] = 0.0
        return img


def read_geotiff(path: str | os.PathLike[str]) -> GeoRaster:
    """Read a GeoTIFF written by `write_geotiff` (or any north-up GeoTIFF with a tiepoint and
    a pixel scale) with tifffile: no GDAL needed. Needs the `gis` extra."""
    tifffile = require("reading a GeoTIFF")
    import xml.etree.ElementTree as ET

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        data = page.asarray()
        tags = {t.code: t.value for t in page.tags.values()}
        cmap = page.colormap
    colours = None if cmap is None else np.asarray(cmap, dtype=float).T / 65535.0
    if data.ndim == 2:
        data = data[np.newaxis]
    scale = tags.get(_TAG_MODEL_PIXEL_SCALE)
    tie = tags.get(_TAG_MODEL_TIEPOINT)
    if scale is None or tie is None:
        raise UserError(f"{path}: not a GeoTIFF (no pixel scale or tiepoint)")
    if not math.isclose(scale[0], scale[1]):
        raise UserError(f"{path}: pixels are not square ({scale[0]} x {scale[1]})")
    px = PixelGrid(x0_m=tie[3] - tie[0] * scale[0], y0_m=tie[4] + tie[1] * scale[1],
                   pixel_m=float(scale[0]), rows=data.shape[1], cols=data.shape[2])
    ascii_text = tags.get(_TAG_GEO_ASCII_PARAMS) or ""
    found = None
    if ESRI_PE_PREFIX in ascii_text:
        found = ascii_text.split(ESRI_PE_PREFIX, 1)[1].split("|", 1)[0]
    names: list[str] = []
    meta: dict[str, str] = {}
    if tags.get(_TAG_GDAL_METADATA):
        root = ET.fromstring(tags[_TAG_GDAL_METADATA])
        for item in root.iter("Item"):
            if item.get("role") == "description":
                names.append(item.text or "")
            elif item.get("sample") is None:
                meta[item.get("name", "")] = item.text or ""
    nodata = tags.get(_TAG_GDAL_NODATA)
    return GeoRaster(data=data, pixels=px, wkt=found, band_names=names, metadata=meta,
                     nodata=float(nodata) if nodata not in (None, "") else None,
                     colours=colours)


# --------------------------------------------------------------------------------------------
# The terrain
# --------------------------------------------------------------------------------------------


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
    return _write_bytes(Path(path), (text + "\n").encode())


def _write_bytes(path: Path, data: bytes) -> Path:
    fd, tmp = _atomic_path(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
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
    meta = dict(geo.schema.metadata or {})
    meta[b"geo"] = json.dumps(geoparquet_metadata(lon, lat)).encode()
    geo = geo.replace_schema_metadata(meta)
    fd, tmp = _atomic_path(path)
    try:
        with os.fdopen(fd, "wb") as f:
            pq.write_table(geo, f, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
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
    "CRS84_PROJJSON",
    "ESRI_PE_PREFIX",
    "GIS_EXTRA",
    "SPHERE_RADIUS_M",
    "TERRAIN_LAYERS",
    "GeoRaster",
    "PixelGrid",
    "crs_name",
    "geoparquet_metadata",
    "layer_title",
    "points_wkb",
    "proj4",
    "read_geotiff",
    "require",
    "results_events",
    "terrain_layers",
    "wkt",
    "write_density_maps",
    "write_events_geoparquet",
    "write_geotiff",
    "write_places",
    "write_results_gis",
    "write_run_gis",
    "write_terrain",
]
