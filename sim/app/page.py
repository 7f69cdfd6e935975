"""The app's Solara components: :func:`MapView` (the map with its view controls, the clock, the
status line and the latest events), :func:`Plots`, and :func:`Page`, which wraps Mesa's
:func:`~mesa.visualization.SolaraViz` (controls: play / step / reset, play and render
intervals, model parameters) and lays the map and the plots out side by side.

``sim/app/serve.py`` serves :func:`Page` (``badia viz``).
"""

from __future__ import annotations

import solara
from mesa.visualization import SolaraViz
from mesa.visualization.utils import update_counter

from sim.app.map_frame import map_figure
from sim.app.model import initial_model, model_params
from sim.app.plots import plots_figure
from sim.app.status import clock_text, event_lines, status_text
from sim.app.style import DPI
from sim.app.views import UMPIRE, WHOLE_MAP, follow_names, map_regions, viewpoints
from sim.engine.model import DesertModel

# View settings of the map, one per browser session (solara scopes these per connection).
region_choice = solara.reactive(WHOLE_MAP)
viewpoint_choice = solara.reactive(UMPIRE)
recent_hours_choice = solara.reactive(6)
RECENT_HOURS = [1, 3, 6, 12, 24, 48]

_CSS = """
.badia-map img, .badia-plots img { max-width: 100%; height: auto; }
.badia-status { white-space: pre-line; font-size: 13px; }
.badia-clock { font-size: 16px; font-weight: 600; }
.badia-notice { color: #b00020; white-space: pre-line; }
.badia-events { font-size: 12px; white-space: pre-line; font-family: monospace; }
"""


@solara.component
def MapView(model: DesertModel):
    """The map with its view controls, the clock, the status line and the latest events."""
    update_counter.get()
    regions = solara.use_memo(lambda: list(map_regions(model)), [model])
    options = regions + follow_names(model)
    region = region_choice.value if region_choice.value in options else WHOLE_MAP
    views = viewpoints(model)
    viewpoint = viewpoint_choice.value if viewpoint_choice.value in views else UMPIRE
    recent = recent_hours_choice.value
    deps = [id(model), model.hour, region, viewpoint, recent]
    fig = solara.use_memo(lambda: map_figure(model, region, viewpoint, recent), deps)
    with solara.Column(classes=["badia-map"], gap="4px"):
        solara.Text(clock_text(model), classes=["badia-clock"])
        solara.Text(status_text(model), classes=["badia-status"])
        notices = getattr(getattr(model, "viz", None), "notices", [])
        if notices:
            solara.Text("\n".join(notices), classes=["badia-notice"])
        with solara.Row(gap="12px"):
            solara.Select("Region", values=options, value=region, on_value=region_choice.set,
                          style={"max-width": "260px"})  # fmt: skip
            solara.Select("Viewpoint", values=views, value=viewpoint,
                          on_value=viewpoint_choice.set, style={"min-width": "250px"})
            solara.Select("Mark events of the last (hours)", values=RECENT_HOURS, value=recent,
                          on_value=recent_hours_choice.set, style={"max-width": "200px"})
        solara.FigureMatplotlib(fig, dependencies=deps, format="png", dpi=DPI)
        lines = event_lines(model)
        solara.Text("\n".join(lines) if lines else "no events yet", classes=["badia-events"])


@solara.component
def Plots(model: DesertModel):
    """The time-series plots of the run so far."""
    update_counter.get()
    deps = [id(model), model.hour]
    fig = solara.use_memo(lambda: plots_figure(model), deps)
    with solara.Column(classes=["badia-plots"]):
        solara.FigureMatplotlib(fig, dependencies=deps, format="png", dpi=DPI)


@solara.component
def Page():
    """The app: SolaraViz's controls in the sidebar, the map and the plots side by side.

    The model belongs to this browser session. SolaraViz is keyed by the scenario, so choosing
    another scenario (then Reset) rebuilds the parameter sliders for it."""
    first = solara.use_memo(initial_model, [])
    model = solara.use_reactive(first)
    m = model.value
    solara.Style(_CSS)
    SolaraViz(
        model,
        components=[],
        model_params=model_params(m),
        name="badia: insurgent cells against garrison coverage (1 step = 1 hour)",
        play_interval=150,
        render_interval=1,
    ).key(f"viz-{m.viz.key}")
    with solara.Columns([3, 2]):
        MapView(m)
        Plots(m)
