"""The browser app without a browser: sliders and overrides, the model SolaraViz rebuilds on
Reset, the controls (Mesa's ModelCreator and ModelController rendered with solara.render), the
map component, the figures and the `badia viz` command line."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import ipyvue
import ipyvuetify as vw
import numpy as np
import pytest
import solara
from mesa.visualization.solara_viz import ModelCreator, _check_model_params
from mesa.visualization.utils import force_update

from sim.app.background import background, layers
from sim.app.map_frame import _known, map_figure, overlay_svg
from sim.app.model import VizModel, model_params
from sim.app.page import Controls, Main, Page, Pending
from sim.app.plots import PlotPanel, plots_figure
from sim.app.scenarios import (
    ENV_SCENARIO,
    SliderSpec,
    bundled_scenarios,
    distribute,
    slider_specs,
    start_scenario,
)
from sim.app.snapshot import main as snapshot_main
from sim.app.status import event_lines, light_shown, pending_lines, status_text
from sim.app.style import figure_png
from sim.app.views import (
    VIEW_SUFFIX,
    WHOLE_MAP,
    follow_names,
    map_regions,
    resolve_view,
    whole_view,
)
from sim.engine.model import DesertModel
from sim.rules.state import Posture
from sim.scenario.defaults import resolved_unit
from sim.scenario.loading import load_scenario
from sim.world.clock import LightLevel

REPO = Path(__file__).resolve().parents[1]
OUTPOST = REPO / "scenarios" / "outpost_night_raid.yaml"
THEATRE = REPO / "scenarios" / "badia_theatre.yaml"


@pytest.fixture(scope="module")
def outpost():
    return load_scenario(OUTPOST)


@pytest.fixture(scope="module")
def theatre():
    return load_scenario(THEATRE)


def _specs(scenario) -> dict[str, SliderSpec]:
    return {s.name: s for s in slider_specs(scenario)}


def _count(model, kind: str) -> int:
    return sum(1 for u in model.units if u.kind == kind)


# ------------------------------------------------------------------------------- sliders


def test_sliders_offered_only_where_their_paths_resolve(outpost, theatre):
    small = _specs(outpost)
    # the outpost has patrols, cells and a garrison, but no border and no convoy
    assert set(small) == {"patrols", "cells", "night_sensor_range_km"}
    big = _specs(theatre)
    assert set(big) == {"patrols", "cells", "night_sensor_range_km", "border_security",
                        "escort_strength"}  # fmt: skip
    # defaults are the scenario's own values
    assert big["patrols"].value == sum(u.count for u in theatre.units if u.kind == "patrol")
    assert big["cells"].value == sum(u.count for u in theatre.units if u.kind == "cell")
    assert big["border_security"].value == pytest.approx(theatre.factions["iraq"].border_security)
    escorts = [u.tactic.escort_strength for u in theatre.units if u.kind == "convoy"]
    assert min(escorts) <= big["escort_strength"].value <= max(escorts)
    ranges = [resolved_unit(u).night_sensor_range_km for u in outpost.units
              if outpost.factions[u.faction].role == "garrison"]  # fmt: skip
    assert min(ranges) <= small["night_sensor_range_km"].value <= max(ranges)
    for spec in big.values():
        assert spec.min <= spec.value <= spec.max


@pytest.mark.parametrize(
    ("shares", "total"), [((10, 10, 4, 2), 13), ((1,), 5), ((3, 1), 2), ((5, 5, 5), 100)]
)
def test_distribute_keeps_total_and_proportion(shares, total):
    out = distribute(shares, total)
    assert sum(out) == max(total, len(shares))
    assert min(out) >= 1
    # proportional within one unit of the exact share (after the one-each floor)
    exact = np.array(shares) / sum(shares) * (max(total, len(shares)) - len(shares)) + 1
    assert np.all(np.abs(np.array(out) - exact) < 1.0 + 1e-9)


def test_slider_values_change_the_run(theatre):
    m = VizModel(scenario_file="badia_theatre", patrols=36, border_security=0.9,
                 escort_strength=20)  # fmt: skip
    assert _count(m, "patrol") == 36
    iraq = m.faction_index["iraq"]
    assert m.border_security[iraq] == pytest.approx(0.9)
    assert {u.tactic.escort_strength for u in m.spec.units if u.kind == "convoy"} == {20}
    assert m.viz.changed == {"patrols": 36, "border_security": 0.9, "escort_strength": 20}
    # each patrol entry keeps its share of the total (the biggest entries stay the biggest)
    before = [u.count for u in theatre.units if u.kind == "patrol"]
    after = [u.count for u in m.spec.units if u.kind == "patrol"]
    assert np.argmax(after) == np.argmax(before) and min(after) >= 1


def test_night_sensor_slider_sets_the_garrison_only(outpost):
    m = VizModel(scenario_file="outpost_night_raid", night_sensor_range_km=4.0)
    f = m.force
    garrison = np.array([outpost.factions[u.faction].role == "garrison" for u in m.units])
    assert np.all(f.view("sensor_night_km")[garrison] == 4.0)
    cells = [resolved_unit(u).night_sensor_range_km for u in outpost.units if u.kind == "cell"]
    assert sorted(set(f.view("sensor_night_km")[~garrison])) == sorted(set(cells))


def test_sliders_at_their_defaults_change_nothing(outpost):
    """Reset with untouched sliders must replay the scenario as written."""
    defaults = {s.name: s.value for s in slider_specs(outpost)}
    a = VizModel(scenario_file="outpost_night_raid", **defaults)
    b = DesertModel(OUTPOST)
    assert a.viz.overrides == [] and a.seed == b.seed == outpost.seed
    for _ in range(30):
        a.step()
        b.step()
    assert a.events == b.events
    assert np.array_equal(a.force.view("row"), b.force.view("row"))


def test_slider_values_for_another_scenario_are_ignored(outpost):
    patrols = _specs(outpost)["patrols"].value
    m = VizModel(scenario_file="outpost_night_raid", patrols=patrols + 4,
                 sliders_for="/elsewhere.yaml")  # fmt: skip
    assert _count(m, "patrol") == patrols and m.viz.changed == {}


def test_seed_text_is_used_and_bad_input_becomes_a_notice(outpost):
    assert VizModel(scenario_file="outpost_night_raid", rng="42").seed == 42
    m = VizModel(scenario_file="outpost_night_raid", rng="forty")
    assert m.seed == outpost.seed
    assert any("seed 'forty'" in n for n in m.viz.notices)
    m = VizModel(scenario_path="no/such/file.yaml")
    assert m.viz.notices[0].startswith("'no/such/file.yaml': not a scenario file")
    assert all("\n" not in n for n in m.viz.notices)
    assert m.spec.name == load_scenario(start_scenario()).name


def test_bad_scenario_file_names_file_and_field(tmp_path, monkeypatch):
    monkeypatch.setenv("BADIA_VIZ_ROOT", str(tmp_path))  # as if badia viz started there
    bad = tmp_path / "bad.yaml"
    text, n = re.subn(r"strength: \d+", "strength: -3", OUTPOST.read_text(), count=1)
    assert n == 1
    bad.write_text(text)
    m = VizModel(scenario_path=str(bad))
    assert any(n.startswith(str(bad)) and "strength" in n for n in m.viz.notices)


def test_model_params_fit_the_model_signature():
    """SolaraViz rebuilds the model as type(model)(**params) on Reset (Mesa issue 2722)."""
    m = VizModel(scenario_file="badia_theatre")
    params = model_params(m)
    _check_model_params(m, params)  # raises on unknown names or missing required args
    signature = inspect.signature(VizModel.__init__).parameters
    assert all(p.default is not inspect.Parameter.empty for n, p in signature.items()
               if n != "self")  # fmt: skip
    values = {k: v["value"] if isinstance(v, dict) else v for k, v in params.items()}
    again = VizModel(**values)
    assert again.spec == m.spec and again.seed == m.seed
    assert params["scenario_file"]["values"] == list(bundled_scenarios())


# ------------------------------------------------------------------------------- controls


def _button(rc, label: str):
    return next(b for b in rc.find(vw.Btn).widgets if b.children == [label])


def _wait(predicate, what: str) -> None:
    """Wait (up to a minute) for the app's stepping thread; fails saying ``what`` never came."""
    deadline = time.monotonic() + 60
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_controls_queue_steps_and_reset_applies_a_slider(outpost):
    """The app's controls with Mesa's parameter panel: every Step click is run (three quick
    clicks are three hours, none dropped); a slider moved is shown as pending until Reset
    rebuilds the model with the new value."""
    model = solara.reactive(VizModel(scenario_file="outpost_night_raid"))
    params = solara.reactive({})

    @solara.component
    def Sidebar():
        Controls(model, params)
        ModelCreator(model, model_params(model.value), model_parameters=params)
        Pending(model.value, params)

    _, rc = solara.render(Sidebar(), handle_error=False)
    sliders = {w.label: w for w in rc.find(vw.Slider).widgets}
    patrols = _specs(outpost)["patrols"].value
    assert sliders["Patrols (total)"].v_model == patrols
    for _ in range(3):
        _button(rc, "Step").click()
    _wait(lambda: model.value.hour == 3, "three Step clicks did not make three hours")
    time.sleep(0.3)
    assert model.value.hour == 3
    sliders["Patrols (total)"].v_model = patrols + 2
    pending = rc.find(vw.Html, class_="badia-pending").widget.children[0]
    assert f"Patrols {patrols}" in pending and "pending: Reset applies" in pending
    _button(rc, "Reset").click()
    assert model.value.hour == 0
    assert _count(model.value, "patrol") == patrols + 2
    assert f"Patrols {patrols + 2} (set)" in status_text(model.value)
    pending_lines_now = pending_lines(model.value, params.value)
    assert not any("pending" in line for line in pending_lines_now)


def _html(rc, cls: str) -> str:
    return next(w.unsafe_innerHTML for w in rc.find(ipyvue.VueTemplate).widgets
                if cls in (getattr(w, "attributes", None) or {}).get("class", ""))  # fmt: skip


def test_map_view_redraws_only_the_overlay_after_a_step():
    model = VizModel(scenario_file="outpost_night_raid")
    _, rc = solara.render(Main(model), handle_error=False)

    def clock() -> str:
        return rc.find(vw.Html, class_="badia-clock").widget.children[0]

    grounds = [w for w in rc.find(ipyvue.VueTemplate).widgets
               if "<img" in (getattr(w, "unsafe_innerHTML", None) or "")]  # fmt: skip
    assert len(grounds) == 2  # the ground and the features, PNG
    terrain = [w.unsafe_innerHTML for w in grounds]
    assert all("data:image/png;base64," in t for t in terrain)
    first, first_clock = _html(rc, "badia-overlay-layer"), clock()
    assert 'data-hour="0"' in first
    model.step()
    force_update()
    after = _html(rc, "badia-overlay-layer")
    assert 'data-hour="1"' in after and after != first
    assert clock() != first_clock and "hour 1 of" in clock()
    assert [w.unsafe_innerHTML for w in grounds] == terrain  # the terrain is not sent again


def test_page_renders_map_and_plots(monkeypatch):
    monkeypatch.delenv(ENV_SCENARIO, raising=False)
    # (the sidebar's controls are portals that only a served page shows: see test_app_e2e.py)
    _, rc = solara.render(Page(), handle_error=False)
    assert "<svg" in _html(rc, "badia-overlay-layer")
    plots = _html(rc, "badia-plots")
    assert plots.count('class="badia-chart"') >= 4 and "day of the run" in plots


# ------------------------------------------------------------------------------- figures


@pytest.fixture(scope="module")
def theatre_at_night():
    m = VizModel(scenario_file="badia_theatre")
    while not (light_shown(m) == LightLevel.NIGHT and any(
            u.attack_target is not None for u in m.units)):  # fmt: skip
        m.step()
        assert m.hour < 72, "no night raid in the first three days"
    return m


def _layer(fig, prefix: str) -> list:
    return [c for c in fig.axes[0].collections if (c.get_gid() or "").startswith(prefix)]


def _count_points(fig, prefix: str) -> int:
    return sum(len(c.get_offsets()) for c in _layer(fig, prefix))


def test_map_figure_draws_units_and_marks(theatre_at_night):
    m = theatre_at_night
    fig = map_figure(m, recent_hours=6)
    # the background is the cached raster; the overlay is drawn on top of it
    assert len(fig.images) == 1
    alive = m.force.view("alive")
    assert _count_points(fig, "units:") == int(alive.sum())
    # each kind has its own marker
    assert {c.get_gid() for c in _layer(fig, "units:")} == {
        f"units:{k}" for k in {u.kind for u in m.units if u.alive}}
    attacking = sum(1 for u in m.units if u.attack_target is not None and u.alive
                    and m.force.alive[u.attack_target])  # fmt: skip
    assert len(_layer(fig, "attacks")[0].get_segments()) == attacking
    # hidden units are drawn faint
    hidden = (m.force.view("posture") == int(Posture.HIDDEN)) & alive
    assert hidden.any()
    alphas = np.concatenate([c.get_facecolors()[:, 3] for c in _layer(fig, "units:")])
    assert (alphas < 0.5).sum() == int(hidden.sum())
    # engagements of the last 6 hours are marked where they happened
    recent = [e for e in m.events if e["type"] == "engagement" and e["hour"] >= m.hour - 6]
    assert _count_points(fig, "engagements") == len(recent)
    older = map_figure(m, recent_hours=1)
    assert _count_points(older, "engagements") <= len(recent)


def test_faction_viewpoint_hides_the_other_side(theatre_at_night):
    m = theatre_at_night
    gov = m.faction_index["government"]
    fig = map_figure(m, viewpoint="government" + VIEW_SUFFIX)
    fac = m.force.view("faction")
    alive = m.force.view("alive")
    known, _, _ = _known(m, gov)
    assert _count_points(fig, "units:") == int((alive & ~m.hostile[gov, fac]).sum())
    assert _count_points(fig, "known") == len(known)
    # the government does not know where every insurgent is
    assert len(known) < int((alive & m.hostile[gov, fac]).sum())


def test_overlay_shows_what_the_viewpoint_knows(theatre_at_night):
    """The browser's overlay: the umpire sees every living unit, a faction its own side and
    the enemies it knows of (rings where last seen), and the place names are drawn last."""
    m = theatre_at_night
    lay = layers(m, whole_view(m.terrain))
    alive = m.force.view("alive")
    umpire = overlay_svg(m, lay)
    assert f'data-hour="{m.hour}"' in umpire
    assert umpire.count('<use href="#k-') == int(alive.sum())
    gov = m.faction_index["government"]
    fac = m.force.view("faction")
    own = overlay_svg(m, lay, "government" + VIEW_SUFFIX)
    assert own.count('<use href="#k-') == int((alive & ~m.hostile[gov, fac]).sum())
    known, _, _ = _known(m, gov)
    assert own.split('<g class="known"')[1].split("</g>")[0].count("<circle") == len(known)
    # names above markers: the labels group comes after the units and events
    assert umpire.index('class="labels"') > umpire.index('class="events"') > umpire.index(
        'class="units"')
    assert "Palmyra" in umpire.split('class="labels"')[1]
    sizes = [float(x) for x in re.findall(r'font-size="([\d.]+)"', umpire)]
    assert sizes and min(sizes) >= 10


def test_event_list_of_a_viewpoint_names_only_units_that_side_knows(theatre_at_night):
    m = theatre_at_night
    gov = m.faction_index["government"]
    insurgents = {u.name for u in m.units if u.faction == "insurgents"}
    known, _, _ = _known(m, gov)
    known_names = {m.units[i].name for i in known.tolist()}
    umpire = event_lines(m, limit=200)
    assert any(name in line for line in umpire for name in insurgents - known_names)
    lines = event_lines(m, limit=200, observer=gov)
    assert lines
    for line in lines:
        named = {n for n in insurgents if n in line}
        # (a name that is a prefix of a known one, "raiders-1" of "raiders-10", is not a leak)
        leaked = {n for n in named - known_names if not any(n in k for k in known_names)}
        assert not leaked, line


def test_plot_panel_appends_each_hour_and_has_the_scenario_panels():
    m = VizModel(scenario_file="cave_sweep")
    panel = PlotPanel(m)
    assert "no data yet" in panel.html()
    for _ in range(30):
        m.step()
    html = panel.html()
    assert 'data-hour="30"' in html
    alive = next(c for c in panel.charts if c.key == "alive")

    def last_x(series) -> str:
        return re.split(r"[ML]", series.path())[-1].split(",")[0]

    assert all(last_x(s) == "30" for s in alive.series)  # x in hours
    before = [list(s.parts) for s in alive.series]
    m.step()
    panel.html()
    # the new hour is appended to what was there, not redrawn
    assert all(s.parts[: len(b)] == b for s, b in zip(alive.series, before, strict=True))
    assert all(last_x(s) == "31" for s in alive.series)
    # the cave sweep has no roads: sweep progress instead, with its real number of squares
    assert "Road segments" not in html and "Sweep progress" in html
    squares = sum(len(u.behaviour.squares) for u in m.units if hasattr(u.behaviour, "squares"))
    assert squares > 0 and f"of {squares} squares" in html
    for label in ("day of the run", "count", "units (log scale)", "% of the area"):
        assert label in html
    border = PlotPanel(VizModel(scenario_file="border_crossing")).html()
    assert "Border crossings" in border


def test_night_darkens_the_ground_not_the_labels(theatre_at_night):
    m = theatre_at_night
    view = resolve_view(m, WHOLE_MAP)
    day = background(m, view, light=LightLevel.DAY).rgba[..., :3].astype(float)
    night = background(m, view, light=LightLevel.NIGHT).rgba[..., :3].astype(float)
    assert night.mean() < 0.8 * day.mean()
    # the figure margins (title, legend) are not shaded
    assert np.array_equal(night[-10:], day[-10:])


def test_regions_zoom_and_frames_are_fast_enough(theatre_at_night):
    m = theatre_at_night
    regions = map_regions(m)
    assert {"whole map", "Al-Tanf zone", "Palmyra", "Euphrates valley"} <= set(regions)
    whole = regions["whole map"]
    palmyra = regions["Palmyra"]
    assert palmyra.width_cells < whole.width_cells / 3
    p = m.terrain.places["Palmyra"]
    assert palmyra.r0 < p.row < palmyra.r1 and palmyra.c0 < p.col < palmyra.c1
    follow = follow_names(m)
    assert follow and resolve_view(m, follow[0]).width_cells < whole.width_cells
    assert resolve_view(m, "no such region") == whole
    png = figure_png(map_figure(m, "Palmyra"))
    assert png[:4] == b"\x89PNG"


def test_plots_follow_the_datacollector():
    m = VizModel(scenario_file="outpost_night_raid")
    for _ in range(30):
        m.step()
    fig = plots_figure(m)
    df = m.datacollector.get_model_vars_dataframe()
    assert len(df) == 30
    alive = fig.axes[1].get_lines()
    assert len(alive) == len(m.faction_names)
    assert all(len(line.get_xdata()) == 30 for line in alive)
    day, night = fig.axes[3].get_lines()[:2]
    light = m.light_by_hour[(np.arange(30) // m.config.coverage_every_hours)
                            * m.config.coverage_every_hours]  # fmt: skip
    assert np.isnan(day.get_ydata()[light == LightLevel.NIGHT]).all()
    assert np.isnan(night.get_ydata()[light != LightLevel.NIGHT]).all()


# ------------------------------------------------------------------------------- command line


def test_viz_command_serves_this_app_on_localhost():
    import argparse

    from sim.app.serve import APP_FILE, add_viz_arguments, viz_command

    parser = argparse.ArgumentParser()
    add_viz_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.scenario) == ("127.0.0.1", 8765, None)
    cmd, env = viz_command(OUTPOST, args.host, args.port)
    assert cmd[:5] == [sys.executable, "-m", "solara", "run", str(APP_FILE)]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and "--production" in cmd
    assert env["BADIA_VIZ_SCENARIO"] == str(OUTPOST.resolve())


def test_viz_with_a_bad_scenario_prints_one_line(tmp_path, capsys):
    from sim.cli import main

    assert main(["viz", str(tmp_path / "missing.yaml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.yaml" in err[0]


def test_importing_the_app_module_stays_cheap():
    """`badia` imports sim.app.serve for its arguments: it must not load solara or build a model."""
    code = ("import sys, sim.app.serve; "
            "print('solara' in sys.modules, 'sim.app.page' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)  # fmt: skip
    assert out.stdout.split() == ["False", "False"]
    import sim.app.serve

    assert sim.app.serve.page is Page


def test_frame_to_file_for_documentation(tmp_path, capsys):
    out = tmp_path / "frame.png"
    plots = tmp_path / "plots.png"
    assert snapshot_main([str(OUTPOST), "--hours", "3", "-o", str(out), "--plots", str(plots)]) == 0
    assert out.read_bytes()[:4] == plots.read_bytes()[:4] == b"\x89PNG"
    assert "hour 3 of" in capsys.readouterr().out
    assert snapshot_main([str(tmp_path / "missing.yaml"), "-o", str(out)]) == 1
    assert "missing.yaml" in capsys.readouterr().err
