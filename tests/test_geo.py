"""Great-circle distance and the grid projection against analytic and published references."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.errors import OutsideGridError
from sim.world.geo import EARTH_RADIUS_KM, Grid, haversine_km

DATA = Path(__file__).parent / "data" / "geo"


def _places() -> dict[str, tuple[float, float]]:
    with open(DATA / "badia_places.csv", newline="") as f:
        return {r["name"]: (float(r["lat"]), float(r["lon"])) for r in csv.DictReader(f)}


def _reference() -> dict:
    return yaml.safe_load((DATA / "reference_distances.yaml").read_text())


REF = _reference()
PLACES = _places()
BOX = REF["theatre_box"]


@pytest.fixture(scope="module")
def theatre() -> Grid:
    return Grid.from_box(BOX["south"], BOX["west"], BOX["north"], BOX["east"], 1.0)


def _random_points(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    s, w, nn, e = BOX["south"], BOX["west"], BOX["north"], BOX["east"]
    rng = np.random.default_rng(seed)
    return rng.uniform(s, nn, n), rng.uniform(w, e, n)


# ---------------------------------------------------------------- haversine
def test_haversine_one_degree_of_meridian_is_r_times_pi_over_180():
    assert haversine_km(34.0, 38.0, 35.0, 38.0) == pytest.approx(EARTH_RADIUS_KM * math.pi / 180)
    # a quarter of the equator
    assert haversine_km(0.0, 0.0, 0.0, 90.0) == pytest.approx(EARTH_RADIUS_KM * math.pi / 2)


@pytest.mark.parametrize("cell_km", [1.0, 0.25, 0.3])
def test_one_cells_latlon_is_latlon_of_bit_for_bit(theatre, cell_km):
    """The event log's scalar path gives what latlon_of gives, for a cell alone and among all
    of a row (the log's coordinates must not depend on which path computed them)."""
    g = Grid.from_box(BOX["south"], BOX["west"], BOX["north"], BOX["east"], cell_km)
    rng = np.random.default_rng(3)
    cells = [(0, 0), (g.rows - 1, g.cols - 1), (g.rows // 2, g.cols // 2)]
    cells += [(int(r), int(c)) for r, c in zip(rng.integers(g.rows, size=400),
                                               rng.integers(g.cols, size=400), strict=True)]
    for r, c in cells:
        want = g.latlon_of(r, c)
        got = g.cell_latlon(r, c)
        assert type(got[0]) is float and got == want
        lat, lon = g.latlon_of(np.full(g.cols, r), np.arange(g.cols))
        assert (lat[c], lon[c]) == got
    for r, c in ((-1, 0), (0, g.cols), (g.rows, 0)):
        with pytest.raises(OutsideGridError):
            g.cell_latlon(r, c)


@pytest.mark.parametrize("a,b,km", REF["reference_distances_km"])
def test_haversine_reproduces_published_reference_distances(a, b, km):
    (lat1, lon1), (lat2, lon2) = PLACES[a], PLACES[b]
    assert abs(haversine_km(lat1, lon1, lat2, lon2) - km) <= 0.1


def test_haversine_is_vectorised_and_symmetric():
    lat, lon = _random_points(50, 1)
    d = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    assert d.shape == (50, 50)
    np.testing.assert_allclose(d, d.T)
    np.testing.assert_allclose(np.diag(d), 0.0, atol=1e-9)


# ---------------------------------------------------------------- projection
def test_projection_forward_inverse_round_trip_within_1e9_degrees(theatre):
    lat, lon = _random_points(5000, 2)
    x, y = theatre.xy_km(lat, lon)
    lat2, lon2 = theatre.latlon_of_xy(x, y)
    assert np.max(np.abs(lat2 - lat)) < 1e-9
    assert np.max(np.abs(lon2 - lon)) < 1e-9


def test_projection_preserves_distance_from_the_centre(theatre):
    lat, lon = _random_points(2000, 3)
    x, y = theatre.xy_km(lat, lon)
    gc = haversine_km(theatre.centre_lat, theatre.centre_lon, lat, lon)
    np.testing.assert_allclose(np.hypot(x, y), gc, rtol=1e-9, atol=1e-9)


def test_projection_axes_point_north_and_east(theatre):
    x0, y0 = theatre.xy_km(theatre.centre_lat, theatre.centre_lon)
    assert abs(x0) < 1e-9 and abs(y0) < 1e-9
    x, y = theatre.xy_km(theatre.centre_lat + 0.5, theatre.centre_lon)
    assert abs(x) < 1e-9 and y == pytest.approx(haversine_km(34.0, 38.7, 34.5, 38.7))
    x, _ = theatre.xy_km(theatre.centre_lat, theatre.centre_lon + 0.5)
    assert x > 0


# ---------------------------------------------------------------- grid
def test_from_box_covers_the_box_and_is_tight(theatre):
    s, w, n, e = BOX["south"], BOX["west"], BOX["north"], BOX["east"]
    t = np.linspace(0, 1, 401)
    edge_lat = np.concatenate([np.full_like(t, s), np.full_like(t, n), s + (n - s) * t,
                               s + (n - s) * t])
    edge_lon = np.concatenate([w + (e - w) * t, w + (e - w) * t, np.full_like(t, w),
                               np.full_like(t, e)])
    assert theatre.contains(edge_lat, edge_lon).all()
    # one row or column fewer would no longer cover the box
    smaller_rows = Grid(theatre.centre_lat, theatre.centre_lon, 1.0, theatre.rows - 2,
                        theatre.cols)
    smaller_cols = Grid(theatre.centre_lat, theatre.centre_lon, 1.0, theatre.rows,
                        theatre.cols - 2)
    assert not smaller_rows.contains(edge_lat, edge_lon).all()
    assert not smaller_cols.contains(edge_lat, edge_lon).all()
    gs, gw, gn, ge = theatre.box
    assert gs <= s and gw <= w and gn >= n and ge >= e
    # the grid box is the box plus at most a few km
    assert (n - s) < (gn - gs) < (n - s) + 0.2 and (e - w) < (ge - gw) < (e - w) + 0.3


def test_row_zero_is_north_and_col_zero_is_west(theatre):
    lat_n, _ = theatre.latlon_of(0, theatre.cols // 2)
    lat_s, _ = theatre.latlon_of(theatre.rows - 1, theatre.cols // 2)
    _, lon_w = theatre.latlon_of(theatre.rows // 2, 0)
    _, lon_e = theatre.latlon_of(theatre.rows // 2, theatre.cols - 1)
    assert lat_n > lat_s and lon_w < lon_e


def test_latlon_to_cell_to_latlon_within_half_a_cell_diagonal(theatre):
    lat, lon = _random_points(20000, 4)
    row, col = theatre.cell_of(lat, lon)
    clat, clon = theatre.latlon_of(row, col)
    d = haversine_km(lat, lon, clat, clon)
    # AE scale distortion across the theatre is < 0.05 %, hence the small factor
    assert d.max() <= theatre.cell_km * math.sqrt(2) / 2 * 1.0005


def test_cell_to_latlon_to_cell_is_exact_for_every_cell(theatre):
    rr, cc = np.indices(theatre.shape)
    lat, lon = theatre.latlon_of(rr.ravel(), cc.ravel())
    row, col = theatre.cell_of(lat, lon)
    np.testing.assert_array_equal(row, rr.ravel())
    np.testing.assert_array_equal(col, cc.ravel())


@pytest.mark.parametrize("a,b,km", REF["reference_distances_km"])
def test_grid_distance_between_places_matches_great_circle(theatre, a, b, km):
    (lat1, lon1), (lat2, lon2) = PLACES[a], PLACES[b]
    ca = theatre.cell_of(lat1, lon1)
    cb = theatre.cell_of(lat2, lon2)
    assert abs(theatre.distance_km(ca, cb) - km) <= 0.01 * km + theatre.cell_km


def test_cell_of_outside_raises_or_flags(theatre):
    with pytest.raises(OutsideGridError, match="outside the map"):
        theatre.cell_of(30.0, 38.0)
    row, col = theatre.cell_of(np.array([30.0, 34.0]), np.array([38.0, 38.0]), strict=False)
    assert row[0] == -1 and col[0] == -1 and row[1] >= 0 and col[1] >= 0
    assert theatre.contains(np.array([30.0, 34.0]), np.array([38.0, 38.0])).tolist() == [
        False, True]
    with pytest.raises(OutsideGridError):
        theatre.latlon_of(theatre.rows, 0)


def test_scalar_input_gives_python_scalars(theatre):
    row, col = theatre.cell_of(34.5, 38.5)
    assert isinstance(row, int) and isinstance(col, int)
    lat, lon = theatre.latlon_of(row, col)
    assert isinstance(lat, float) and isinstance(lon, float)
    assert theatre.flat(row, col) == row * theatre.cols + col
    assert theatre.unflat(theatre.flat(row, col)) == (row, col)


def test_small_tactical_grid_of_quarter_km_cells():
    g = Grid(34.52, 38.70, 0.25, 40, 60)
    assert g.shape == (40, 60)
    # the centre point sits on the corner shared by the four central cells
    assert g.cell_of(34.52 + 1e-6, 38.70 + 1e-6) == (19, 30)
    # neighbouring cell centres are one cell apart on the ground
    lat, lon = g.latlon_of(np.array([10, 10]), np.array([5, 6]))
    assert haversine_km(lat[0], lon[0], lat[1], lon[1]) == pytest.approx(0.25, rel=1e-3)


def test_invalid_grids_are_rejected():
    with pytest.raises(ValueError, match="cell_km"):
        Grid(34.0, 38.0, 0.0, 10, 10)
    with pytest.raises(ValueError, match="south < north"):
        Grid.from_box(35.0, 36.0, 34.0, 37.0, 1.0)
