"""Map renderer: one ground image, vector features, lat/lon ticks, labels, legend, overlays."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
import yaml

from sim.analysis.maps import GROUND_COLOURS, HIGHWAY_COLOUR, Overlay, plot_terrain, render_map
from sim.scenario.loading import load_scenario
from sim.scenario.map import MapSpec
from sim.world import cache as T
from sim.world.cache import build_terrain
from sim.world.raster import Ground

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DATA = Path(__file__).parent / "data" / "geo"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BADIA_CACHE_DIR", str(tmp_path / "cache"))
    T.clear_memory_cache()
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def box():
    doc = yaml.safe_load((DATA / "box_small.yaml").read_text())
    return build_terrain(MapSpec.model_validate(doc), "box_small.yaml", cache=False)


@pytest.fixture(scope="module")
def outpost():
    s = load_scenario(REPO / "scenarios" / "outpost_night_raid.yaml")
    return build_terrain(s.map, "outpost_night_raid.yaml", cache=False)


def _rgb(path: Path) -> np.ndarray:
    return plt.imread(path)[..., :3]


def _has_colour(img: np.ndarray, colour: str, tol: float = 0.02) -> bool:
    rgb = np.array(matplotlib.colors.to_rgb(colour))
    return bool((np.abs(img - rgb).max(axis=-1) < tol).any())


def test_ground_is_one_image_not_a_patch_per_cell(box):
    ax = plot_terrain(box)
    assert len(ax.images) == 1
    img = ax.images[0].get_array()
    assert img.shape[:2] == box.shape
    assert len(ax.patches) < 50          # scale bar pieces only, never one per cell


def test_ticks_are_latitudes_and_longitudes(box):
    ax = plot_terrain(box)
    xl = [t.get_text() for t in ax.get_xticklabels()]
    yl = [t.get_text() for t in ax.get_yticklabels()]
    assert len(xl) >= 3 and all(s.endswith("°E") for s in xl)
    assert len(yl) >= 3 and all(s.endswith("°N") for s in yl)
    lons = [float(s[:-2]) for s in xl]
    lats = [float(s[:-2]) for s in yl]
    assert lons == sorted(lons) and min(lons) >= 38.0 and max(lons) <= 38.9
    # rows grow southward: down the axis (increasing y) the latitude falls
    by_y = [lat for _, lat in sorted(zip(ax.get_yticks(), lats, strict=True))]
    assert by_y == sorted(lats, reverse=True) and min(lats) >= 34.3 and max(lats) <= 34.9
    # a tick sits where its meridian crosses the bottom row (within half a cell)
    x = ax.get_xticks()[0]
    _, lon = box.grid.latlon_of(box.rows - 1, round(x))
    assert abs(lon - lons[0]) < 0.6 * box.cell_km / 91.0


def test_labels_name_places_not_waypoints_and_legend_lists_features(box):
    ax = plot_terrain(box, title="Small box")
    texts = {t.get_text() for t in ax.texts}
    for name in ("Palmyra", "Arak", "Al-Sukhnah", "T3"):
        assert name in texts
    assert not any("," in t and t.replace(",", "").replace(".", "").isdigit() for t in texts)
    assert any("Test zone" in t for t in texts)
    assert "W E S T" in texts and "E A S T" in texts      # border sides, by the line
    assert ax.get_title(loc="left") == "Small box"
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"highway", "track", "border", "exclusion zone", "oasis", "well", "cave", "river",
            "rugged", "sand", "wadi", "built-up"} <= legend
    assert any(t.endswith("km") for t in texts)          # scale bar


def test_render_writes_png_with_palette_roads_and_overlays(box, tmp_path):
    plain = render_map(box, tmp_path / "plain.png", dpi=80)
    img = _rgb(plain)
    assert img.shape[0] > 300 and img.shape[1] > 500
    assert _has_colour(img, GROUND_COLOURS[Ground.FLAT])
    assert _has_colour(img, GROUND_COLOURS[Ground.RIVER])
    assert _has_colour(img, HIGHWAY_COLOUR)
    marker = "#00ff00"   # a colour the map itself never uses
    assert not _has_colour(img, marker)
    over = render_map(box, tmp_path / "over.png", dpi=80, overlays=[
        Overlay(latlon=[(34.6, 38.2), (34.7, 38.6)], label="engagement",
                style={"marker": "o", "color": marker, "markersize": 9}),
        {"cells": [(10, 10), (20, 40)], "line": True, "label": "route",
         "style": {"color": "#ff00ff", "lw": 2, "marker": None}},
    ])
    img2 = _rgb(over)
    assert _has_colour(img2, marker) and _has_colour(img2, "#ff00ff")


def test_overlay_points_land_on_their_cells(box):
    ax = plot_terrain(box, overlays=[Overlay(latlon=[(34.6, 38.2)], label="hit")])
    line = next(ln for ln in ax.lines if ln.get_label() == "hit")
    row, col = box.grid.cell_of(34.6, 38.2)
    assert abs(line.get_xdata()[0] - col) <= 0.5 and abs(line.get_ydata()[0] - row) <= 0.5
    with pytest.raises(ValueError, match="latlon or cells"):
        plot_terrain(box, overlays=[{"label": "nothing"}])


def test_small_ascii_map_renders(outpost, tmp_path):
    out = render_map(outpost, tmp_path / "outpost.png", dpi=80, title="outpost")
    img = _rgb(out)
    assert _has_colour(img, GROUND_COLOURS[Ground.IRRIGATED])
    assert _has_colour(img, GROUND_COLOURS[Ground.RUGGED])
    ax = plot_terrain(outpost)
    texts = {t.get_text() for t in ax.texts}
    assert {"T3 outpost", "T3 oasis", "South well"} <= texts


def test_bundled_theatre_renders(tmp_path):
    s = load_scenario(REPO / "scenarios" / "badia_theatre.yaml")
    t = build_terrain(s.map, "badia_theatre.yaml")
    out = render_map(t, tmp_path / "theatre.png", dpi=60, title=s.name)
    assert out.stat().st_size > 20_000
    ax = plot_terrain(t)
    texts = {x.get_text() for x in ax.texts}
    assert {"Palmyra", "Deir ez-Zor", "Damascus", "Homs"} <= texts
