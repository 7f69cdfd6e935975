"""GeoTIFF and GeoParquet writing, by hand and without GDAL: the grid's projection as GeoKeys and
WKT, pixel scale and tiepoint, WKB points and GeoParquet metadata.

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

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from sim.errors import UserError
from sim.experiments.tables import atomic_file
from sim.world.geo import EARTH_RADIUS_KM, Grid

#: The optional dependency group that brings the GeoTIFF writer (pyproject.toml).
GIS_EXTRA = "gis"
#: The sphere of `sim.world.geo`, in metres.
SPHERE_RADIUS_M = EARTH_RADIUS_KM * 1000.0

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
    with atomic_file(path) as f:
        tifffile.imwrite(f, out, compression="zlib", extratags=extratags, metadata=None,
                         software="badia", **kwargs)
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
