"""The app's Solara components: :func:`MapView` (the map with its view controls, the clock, the
status and the latest events), :func:`Plots`, :func:`Controls` (step, play, reset) and
:func:`Page`, which lays them out around Mesa's :func:`~mesa.visualization.solara_viz.ModelCreator`
(the scenario, seed and parameter inputs).

Why not Mesa's ``SolaraViz``: its controller steps the model inside the click handler and redraws
everything after each step. Here a Step click only adds to a queue that one worker thread per
browser session drains (clicks made during a step are kept, never dropped), and a step changes
only light layers: the terrain of a view is sent once as two images (ground, features) with the
night shading between them as a CSS layer, the units, events and names are a small SVG, and the
plots append the new hour to their paths (:class:`~sim.app.plots.PlotPanel`).

``sim/app/serve.py`` serves :func:`Page` (``badia viz``).
"""

from __future__ import annotations

import base64
import inspect
import threading
import time

import solara
from mesa.visualization.solara_viz import ModelCreator
from mesa.visualization.utils import force_update, update_counter

from sim.app.background import layers, unit_kinds
from sim.app.map_frame import _SVG_DEFS, overlay_svg
from sim.app.model import VizModel, initial_model, model_params
from sim.app.plots import PlotPanel
from sim.app.status import (
    clock_text,
    event_lines,
    light_shown,
    pending_lines,
    scenario_lines,
    status_text,
)
from sim.app.style import (
    ATTACK_COLOUR,
    HIGHWAY_COLOUR,
    NIGHT_COLOUR,
    NIGHT_SHADE,
    ZONE_COLOUR,
    faction_colours,
)
from sim.app.views import (
    UMPIRE,
    WHOLE_MAP,
    follow_names,
    map_regions,
    observer_of,
    resolve_view,
    viewpoints,
)
from sim.engine.model import DesertModel

TITLE = "badia: insurgent cells against garrison coverage (1 step = 1 hour)"
# View settings of the map, one per browser session (solara scopes these per connection).
region_choice = solara.reactive(WHOLE_MAP)
viewpoint_choice = solara.reactive(UMPIRE)
recent_hours_choice = solara.reactive(6)
RECENT_HOURS = [1, 3, 6, 12, 24, 48]
#: Play paces itself to at most this many steps per second (a step that takes longer is not
#: waited for): fast enough to watch a day in a few seconds, slow enough to follow a raid.
PLAY_STEPS_PER_S = {"max": 0.0, "8 / s": 8.0, "4 / s": 4.0, "2 / s": 2.0, "1 / s": 1.0}

_CSS = """
.badia-main { display: grid; grid-template-columns: minmax(0, 1fr); gap: 12px;
  align-items: start; }
@media (min-width: 1500px) {
  .badia-main { grid-template-columns: minmax(0, 1fr) minmax(380px, 0.42fr); }
}
.badia-map-stack { position: relative; width: 100%; margin: 0 auto;
  max-width: calc((100vh - 112px) * var(--badia-aspect)); }
.badia-map-stack .badia-clock { position: absolute; left: 8px; top: 8px; padding: 2px 8px;
  background: rgba(255, 255, 255, 0.85); border-radius: 4px; }
.v-slider__thumb-label-container { display: block !important; }  /* slider values always shown */
.v-input__slider { margin-top: 28px; }
div:has(> b > a[href*="solara.dev"]) { display: none !important; }  /* covers the map */
.badia-layer { position: absolute; inset: 0; }
.badia-layer img { width: 100%; height: 100%; display: block; }
.badia-layer svg { display: block; overflow: hidden; }
.badia-shade { background: NIGHT; transition: opacity 0.2s; pointer-events: none; }
.badia-status { white-space: pre-line; font-size: 13px; }
.badia-clock { font-size: 15px; font-weight: 600; }
.badia-notice { color: #b00020; white-space: pre-line; }
.badia-events { font-size: 12px; white-space: pre-line; font-family: monospace; }
.badia-pending { font-size: 12px; white-space: pre-line; }
.badia-map-legend { font-size: 12px; display: flex; flex-wrap: wrap; gap: 4px 14px;
  margin: 4px 0; }
.badia-map-legend span { display: inline-flex; align-items: center; gap: 4px; }
.badia-chart { margin-bottom: 6px; }
.badia-chart-title { font-size: 13px; font-weight: 600; }
.badia-note { font-weight: normal; color: #555; }
.badia-legend { font-size: 12px; display: flex; flex-wrap: wrap; gap: 2px 12px; }
.badia-key { display: inline-flex; align-items: center; gap: 4px; }
.badia-key i { display: inline-block; width: 18px; height: 0; }
.badia-plot-empty { color: #777; font-size: 12px; }
""".replace("NIGHT", NIGHT_COLOUR)


def _img(png: bytes) -> str:
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _legend_html(model: DesertModel) -> str:
    """The map's key: factions, unit kinds, roads, zones and events (HTML with SVG symbols)."""

    def sym(body: str, w: int = 22) -> str:
        return (f'<svg width="{w}" height="18" viewBox="-11 -9 22 18">{_SVG_DEFS}{body}'
                "</svg>")  # fmt: skip

    items = [(sym(f'<use href="#k-cell" fill="{c}"/>'), f) for f, c in
             faction_colours(model).items()]
    items += [(sym(f'<use href="#k-{k}" fill="#555"/>'), k.replace("_", " "))
              for k in unit_kinds(model)]
    items += [
        (sym('<use href="#k-cell" fill="#555" fill-opacity="0.4" stroke-opacity="0.5"/>'),
         "hidden (faint)"),
        (sym('<use href="#ev-engagement"/>'), "engagement"),
        (sym('<use href="#ev-attack"/>'), "attack"),
        (sym(f'<path d="M-10 0H10" stroke="{ATTACK_COLOUR}" stroke-width="2.2" '
             'stroke-dasharray="6 3"/>'), "attack under way"),
        (sym('<use href="#ev-detection" transform="scale(0.8)"/>'), "detected"),
        (sym('<use href="#ev-loss"/>'), "unit lost"),
    ]  # fmt: skip
    # the map's features, only those this map has
    t = model.terrain
    classes = {d.get("cls") for _, _, d in t.road_graph.edges(data=True)}
    features = []
    if "highway" in classes:
        features.append((sym(f'<path d="M-10 0H10" stroke="#fff6e0" stroke-width="4"/><path '
                             f'd="M-10 0H10" stroke="{HIGHWAY_COLOUR}" stroke-width="2"/>'),
                         "highway"))
    if "track" in classes:
        features.append((sym('<path d="M-10 0H10" stroke="#6e5435" stroke-width="1.4" '
                             'stroke-dasharray="4 2"/>'), "track"))
    if t.zones:
        features.append((sym(f'<rect x="-9" y="-6" width="18" height="12" fill="none" '
                             f'stroke="{ZONE_COLOUR}" stroke-width="1.4"/><path d="M-9 6L-3-6M-3 '
                             f'6L3-6M3 6L9-6" stroke="{ZONE_COLOUR}" stroke-width="0.8"/>'),
                         "exclusion zone"))
    items[len(items) - 6:len(items) - 6] = features
    return "".join(f"<span>{s}{label}</span>" for s, label in items)


@solara.component
def ViewControls(model: DesertModel):
    """Which part of the map, from whose side, and how many hours of events to mark."""
    regions = solara.use_memo(lambda: list(map_regions(model)), [model])
    options = regions + follow_names(model)
    region = region_choice.value if region_choice.value in options else WHOLE_MAP
    views = viewpoints(model)
    viewpoint = viewpoint_choice.value if viewpoint_choice.value in views else UMPIRE
    solara.Select("Region", values=options, value=region, on_value=region_choice.set)
    solara.Select("Viewpoint", values=views, value=viewpoint, on_value=viewpoint_choice.set)
    solara.Select("Mark events of the last (hours)", values=RECENT_HOURS,
                  value=recent_hours_choice.value, on_value=recent_hours_choice.set)


@solara.component
def MapView(model: DesertModel, hour: int = 0):
    """The map (ground, night shading, features, and the overlay of units, events and names),
    the clock on it, and its key below."""
    region = region_choice.value
    views = viewpoints(model)
    viewpoint = viewpoint_choice.value if viewpoint_choice.value in views else UMPIRE
    view = resolve_view(model, region)
    lay = solara.use_memo(lambda: layers(model, view), [id(model), view])
    ground = solara.use_memo(lambda: _img(lay.ground_png), [lay])
    features = solara.use_memo(lambda: _img(lay.features_png), [lay])
    legend = solara.use_memo(lambda: _legend_html(model), [id(model)])
    svg = overlay_svg(model, lay, viewpoint, recent_hours_choice.value)
    shade = NIGHT_SHADE[light_shown(model)]
    aspect = lay.width_px / lay.height_px
    with solara.Column(classes=["badia-map"], gap="4px"):
        with solara.Div(classes=["badia-map-stack"],
                        style=f"aspect-ratio: {aspect:.5f}; --badia-aspect: {aspect:.5f}"):
            solara.HTML(unsafe_innerHTML=ground, classes=["badia-layer"])
            solara.HTML(unsafe_innerHTML="", classes=["badia-layer", "badia-shade"],
                        style=f"opacity: {shade}")  # fmt: skip
            solara.HTML(unsafe_innerHTML=features, classes=["badia-layer"])
            solara.HTML(unsafe_innerHTML=svg, classes=["badia-layer", "badia-overlay-layer"])
            solara.Text(clock_text(model), classes=["badia-clock"])
        solara.HTML(unsafe_innerHTML=legend, classes=["badia-map-legend"])


@solara.component
def Status(model: DesertModel, hour: int = 0):
    """Scenario, seed, units alive, parameters, the scenario's progress, and input notices."""
    solara.Text("\n".join([status_text(model), *scenario_lines(model)]),
                classes=["badia-status"])  # fmt: skip
    notices = getattr(getattr(model, "viz", None), "notices", [])
    if notices:
        solara.Text("\n".join(notices), classes=["badia-notice"])


@solara.component
def Events(model: DesertModel, hour: int = 0):
    """The latest events, as the chosen viewpoint knows them."""
    views = viewpoints(model)
    viewpoint = viewpoint_choice.value if viewpoint_choice.value in views else UMPIRE
    lines = event_lines(model, observer=observer_of(model, viewpoint))
    side = "" if viewpoint == UMPIRE else f" ({viewpoint})"
    with solara.Column(gap="2px"):
        solara.Text(f"Latest events{side}", classes=["badia-events-title"],
                    style={"font-weight": "600", "font-size": "13px"})
        solara.Text("\n".join(lines) if lines else "no events yet", classes=["badia-events"])


@solara.component
def Plots(model: DesertModel, hour: int = 0):
    """The time-series plots of the run so far (appended to, step by step)."""
    panel = solara.use_memo(lambda: PlotPanel(model), [id(model)])
    solara.HTML(unsafe_innerHTML=panel.html(), classes=["badia-plots"])


class Stepper:
    """One browser session's stepping: queued Step clicks and play, run by one worker thread.

    A click adds to ``queued`` and returns at once; the worker steps the model one hour at a
    time and redraws after each, until the queue is empty and play is off."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.queued = 0
        self.playing = False
        self.rate = 0.0

    def step(self) -> None:
        with self.cond:
            self.queued += 1
            self.cond.notify()

    def play(self, on: bool) -> None:
        with self.cond:
            self.playing = on
            self.cond.notify()

    def clear(self) -> None:
        with self.cond:
            self.queued = 0
            self.playing = False

    def run(self, model: solara.Reactive, playing: solara.Reactive, cancel: threading.Event
            ) -> None:
        """The worker: wait for work, step, redraw; stop when ``cancel`` is set."""
        while not cancel.is_set():
            with self.cond:
                if not (self.queued or self.playing):
                    self.cond.wait(timeout=0.25)
                    continue
                from_queue = self.queued > 0
                if from_queue:
                    self.queued -= 1
            t0 = time.perf_counter()
            m = model.value
            if m.running:
                m.step()
            if not m.running:
                self.clear()
                playing.set(False)
            force_update()
            if self.playing and not from_queue and self.rate > 0:
                time.sleep(max(0.0, 1.0 / self.rate - (time.perf_counter() - t0)))


@solara.component
def Controls(model: solara.Reactive, params: solara.Reactive):
    """Reset, play / pause and Step, and the pace of play."""
    stepper = solara.use_memo(Stepper, [])
    playing = solara.use_reactive(False)
    pace = solara.use_reactive("max")
    solara.use_thread(lambda cancel: stepper.run(model, playing, cancel), dependencies=[],
                      intrusive_cancel=False)  # fmt: skip
    running = model.value.running
    stepper.rate = PLAY_STEPS_PER_S[pace.value]

    def reset() -> None:
        stepper.clear()
        playing.set(False)
        wanted = inspect.signature(VizModel.__init__).parameters
        kwargs = {k: v for k, v in params.value.items() if k in wanted}
        model.set(VizModel(**kwargs))
        force_update()

    def play_pause() -> None:
        playing.set(not playing.value)
        stepper.play(playing.value)

    with solara.Row(justify="space-between"):
        solara.Button(label="Reset", color="primary", on_click=reset)
        solara.Button(label="❚❚" if playing.value else "▶", color="primary",
                      on_click=play_pause, disabled=not running)  # fmt: skip
        solara.Button(label="Step", color="primary", on_click=stepper.step,
                      disabled=playing.value or not running)  # fmt: skip
    solara.Select("Play pace (hours per second, at most)", values=list(PLAY_STEPS_PER_S),
                  value=pace)  # fmt: skip


@solara.component
def Pending(model: DesertModel, params: solara.Reactive):
    """Each slider's value in the run shown, and the changes waiting for Reset."""
    lines = pending_lines(model, params.value)
    if lines:
        solara.Text("\n".join(lines), classes=["badia-pending"])


@solara.component
def Page():
    """The app: the controls and inputs in the sidebar, the map and the plots beside it.

    The model belongs to this browser session. The inputs are keyed by the scenario, so
    choosing another scenario (then Reset) rebuilds the parameter sliders for it."""
    first = solara.use_memo(initial_model, [])
    model = solara.use_reactive(first)
    params = solara.use_reactive({})
    m = model.value
    solara.Style(_CSS)
    with solara.AppBar():
        solara.AppBarTitle(TITLE)
    with solara.Sidebar(), solara.Column():
        with solara.Card("Controls"):
            Controls(model, params)
        with solara.Card("View"):
            ViewControls(m)
        with solara.Card("Model Parameters"):
            ModelCreator(model, model_params(m), model_parameters=params).key(f"mc-{m.viz.key}")
            Pending(m, params)
    Main(m)


@solara.component
def Main(model: DesertModel):
    """The map beside the status, plots and events, redrawn after each step.

    Only this component follows the step counter, so a step re-renders the tree once (one
    subscriber per panel would re-render it once per panel)."""
    update_counter.get()
    hour = model.hour  # the panels' argument that changes with each step (so they redraw)
    with solara.Div(classes=["badia-main"]):
        MapView(model, hour)
        with solara.Column(gap="8px"):
            Status(model, hour)
            Plots(model, hour)
            Events(model, hour)
