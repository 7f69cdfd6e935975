"""The replay page (``badia viz --replay RUN_DIR``): a finished run with a time slider,
play / pause and a "go to" field, drawn from the run's files by :mod:`sim.app.replay`.

The map, its view controls and the event list are the live app's own functions applied to a
:class:`~sim.app.replay.ReplayFrame`; the plots are the run's daily metrics with a cursor at
the hour shown. Nothing is simulated: moving the slider rebuilds the frame from stored arrays.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import solara
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sim.app.map_frame import map_figure
from sim.app.replay import Replay, open_replay
from sim.app.status import event_lines, light_shown
from sim.app.style import DPI
from sim.app.views import UMPIRE, WHOLE_MAP, follow_names, map_regions, viewpoints
from sim.engine.metrics import slug
from sim.errors import ReplayError
from sim.rules.state import Posture

ENV_REPLAY = "BADIA_VIZ_REPLAY"
RECENT_HOURS = [1, 3, 6, 12, 24, 48]
#: Replay speeds offered, in simulated hours per second of play.
SPEEDS_HOURS_PER_S = [1, 2, 4, 8, 24]

_CSS = """
.badia-map img, .badia-plots img { max-width: 100%; height: auto; }
.badia-clock { font-size: 18px; font-weight: 600; }
.badia-status { white-space: pre-line; font-size: 13px; }
.badia-notice { color: #b00020; white-space: pre-line; }
.badia-unit { font-size: 13px; font-family: monospace; }
.badia-events { font-size: 12px; white-space: pre-line; font-family: monospace; }
"""

_REPLAYS: dict[str, Replay] = {}


def load_replay() -> Replay:
    """The run named by ``$BADIA_VIZ_REPLAY``, read once per server process (every browser
    session shows the same files, each at its own hour)."""
    path = os.environ.get(ENV_REPLAY, "")
    if not path:
        raise ReplayError(f"${ENV_REPLAY} is not set: start the replay with badia viz --replay")
    hit = _REPLAYS.get(path)
    if hit is None:
        hit = _REPLAYS[path] = open_replay(Path(path))
    return hit


def daily_figure(replay: Replay, hour: int) -> Figure:
    """The run's daily metrics (attacks, losses and units alive by faction) over its whole
    length, with a cursor at ``hour``."""
    fig = Figure(figsize=(4.6, 5.6), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 1, sharex=True)
    fig.subplots_adjust(left=0.14, right=0.97, top=0.95, bottom=0.09, hspace=0.45)
    df = replay.daily
    spec = replay.scenario
    days = df["day"].to_numpy(dtype=float) if "day" in df else np.arange(1, len(df) + 1.0)
    a0, a1, a2 = axes
    a0.set_title("Attacks, cumulative (count)", fontsize=8, loc="left")
    a1.set_title("Fighters lost, cumulative (count)", fontsize=8, loc="left")
    a2.set_title("Units alive at the end of the day (count, log scale)", fontsize=8, loc="left")
    a2.set_yscale("log")  # a garrison of hundreds and a handful of cells on one axis
    if "attacks_attempted" in df:
        a0.plot(days, df["attacks_attempted"].cumsum(), color="black", lw=1.4, label="attempted")
        a0.plot(days, df["attacks_succeeded"].cumsum(), color="black", lw=1.0, ls=":",
                label="succeeded")
        a0.legend(fontsize=6, loc="center right", frameon=False)
    for name, fac in spec.factions.items():
        lost, alive = f"losses__{slug(name)}", f"units_alive__{slug(name)}"
        if lost in df:
            a1.plot(days, df[lost].cumsum(), color=fac.colour, lw=1.3, label=name)
        if alive in df:
            a2.plot(days, df[alive].clip(lower=0.8), color=fac.colour, lw=1.4, label=name)
    for a in (a1, a2):
        if a.lines:
            a.legend(fontsize=6, loc="lower right", frameon=False, ncol=2)
    at_day = hour / 24.0
    for a in axes:
        a.axvline(at_day, color="#b00020", lw=1.2)  # the hour shown
        a.tick_params(labelsize=7)
        a.grid(alpha=0.3, lw=0.5)
    a2.set_xlabel("day of the run (red line: the hour shown)", fontsize=7)
    return fig


@solara.component
def Player(replay: Replay, hour: solara.Reactive[int]):
    """Play / pause, speed, the time slider and the "go to" field."""
    playing = solara.use_reactive(False)
    speed = solara.use_reactive(4)
    goto_text = solara.use_reactive("")
    goto_error = solara.use_reactive("")
    step = replay.every_hours

    def play() -> None:
        # a thread per press of Play, stopped by Pause or the run's end; each tick asks for
        # the next recorded hour (frames that take longer than a tick are skipped, not queued)
        while playing.value:
            time.sleep(max(step / max(speed.value, 1), 0.05))
            if not playing.value:
                break
            nxt = min(hour.value + step, replay.last_hour)
            hour.set(nxt)
            if nxt >= replay.last_hour:
                playing.set(False)

    solara.use_thread(play, dependencies=[playing.value])

    def goto(text: str) -> None:
        goto_text.set(text)
        if not text.strip():
            return
        try:
            hour.set(replay.parse_when(text))
            goto_error.set("")
        except ValueError as exc:
            goto_error.set(str(exc))

    with solara.Row(gap="12px", style={"align-items": "center", "flex-wrap": "wrap"}):
        if playing.value:
            solara.Button("Pause", icon_name="mdi-pause", on_click=lambda: playing.set(False))
        else:
            solara.Button("Play", icon_name="mdi-play", on_click=lambda: (
                hour.set(0) if hour.value >= replay.last_hour else None, playing.set(True)))
        solara.Select("Speed (hours per second)", values=SPEEDS_HOURS_PER_S, value=speed.value,
                      on_value=speed.set, style={"max-width": "190px"})  # fmt: skip
        solara.InputText("Go to (e.g. day 12, 02:00)", value=goto_text.value, on_value=goto,
                         continuous_update=False, style={"max-width": "240px"})  # fmt: skip
    solara.SliderInt(f"Time (hours, every {step} h)", value=hour.value, min=0,
                     max=replay.last_hour, step=step, on_value=hour.set,
                     thumb_label=False)  # fmt: skip
    if goto_error.value:
        solara.Text(goto_error.value, classes=["badia-notice"])


def unit_text(replay: Replay, frame, name: str) -> str:
    """Where a unit is at the frame's hour: cell, lat/lon, strength, posture (or lost)."""
    unit = next((u for u in frame.units if u.name == name), None)
    if unit is None:
        return ""
    if not unit.alive:
        return f"{name} ({unit.faction} {unit.kind}): not in the field at this hour"
    f = frame.force
    lat, lon = replay.base.terrain.grid.latlon_of(unit.row, unit.col)
    posture = Posture(int(f.posture[unit.idx])).name.lower()
    return (f"{name} ({unit.faction} {unit.kind}): row {unit.row}, col {unit.col} "
            f"({float(lat):.4f}, {float(lon):.4f}) · strength {f.strength[unit.idx]:g} · "
            f"{posture}")  # fmt: skip


@solara.component
def UnitLine(replay: Replay, frame):
    """A unit chosen by name and where it is at the hour shown."""
    def unit_names() -> list[str]:  # insurgent units first: they are the ones followed
        roles = {f: s.role for f, s in replay.scenario.factions.items()}
        return [name for name, fac, _ in sorted(replay.unit_meta,
                                                key=lambda u: roles[u[1]] != "insurgent")]

    names = solara.use_memo(unit_names, [])
    chosen = solara.use_reactive(names[0] if names else "")
    with solara.Column(gap="0px"):  # the line under the select: it is long, and must not wrap
        solara.Select("Unit", values=names, value=chosen.value, on_value=chosen.set,
                      style={"max-width": "320px"})
        solara.Text(unit_text(replay, frame, chosen.value), classes=["badia-unit"])


@solara.component
def ReplayView(replay: Replay):
    """The whole replay: controls, clock, map with its view controls, events, daily plots."""
    hour = solara.use_reactive(0)
    region = solara.use_reactive(WHOLE_MAP)
    viewpoint = solara.use_reactive(UMPIRE)
    recent = solara.use_reactive(6)
    h = replay.recorded(hour.value)
    frame = solara.use_memo(lambda: replay.frame(h), [h])
    options = solara.use_memo(lambda: list(map_regions(frame)), []) + follow_names(frame)
    shown_region = region.value if region.value in options else WHOLE_MAP
    views = viewpoints(frame)
    shown_view = viewpoint.value if viewpoint.value in views else UMPIRE
    deps = [h, shown_region, shown_view, recent.value]
    fig = solara.use_memo(lambda: map_figure(frame, shown_region, shown_view, recent.value),
                          deps)  # fmt: skip
    day = h // 24
    plots = solara.use_memo(lambda: daily_figure(replay, day * 24), [day])
    spec = replay.scenario
    tick = replay.base.clock.at(h).local
    clock = (f"{replay.when_text(h)} · {tick:%a %d %b %Y} · {light_shown(frame).name.lower()} · "
             f"hour {h} of {replay.last_hour}")  # fmt: skip
    with solara.Column(gap="6px", style={"padding": "12px"}):
        solara.Text(f"badia replay: {spec.name} · seed {spec.seed} · {replay.folder}",
                    classes=["badia-status"])
        Player(replay, hour)
        solara.Text(clock, classes=["badia-clock"])
        with solara.Columns([3, 2]):
            with solara.Column(classes=["badia-map"], gap="4px"):
                with solara.Row(gap="12px"):
                    solara.Select("Region", values=options, value=shown_region,
                                  on_value=region.set, style={"max-width": "260px"})
                    solara.Select("Viewpoint", values=views, value=shown_view,
                                  on_value=viewpoint.set, style={"min-width": "250px"})
                    solara.Select("Mark events of the last (hours)", values=RECENT_HOURS,
                                  value=recent.value, on_value=recent.set,
                                  style={"max-width": "200px"})  # fmt: skip
                solara.FigureMatplotlib(fig, dependencies=deps, format="png", dpi=DPI)
                UnitLine(replay, frame)
                lines = event_lines(frame)
                solara.Text("\n".join(lines) if lines else "no events yet",
                            classes=["badia-events"])
            with solara.Column(classes=["badia-plots"]):
                solara.FigureMatplotlib(plots, dependencies=[day], format="png", dpi=DPI)


@solara.component
def Page():
    """The replay app: the run named by ``$BADIA_VIZ_REPLAY`` (checked by ``badia viz``)."""
    solara.Style(_CSS)
    try:
        replay = load_replay()
    except ReplayError as exc:  # the folder changed after badia viz checked it
        solara.Text(str(exc), classes=["badia-notice"])
        return
    ReplayView(replay)
