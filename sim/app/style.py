"""What the app's figures share: resolution, colours, unit markers, night shading, PNG output.

Colours are Okabe-Ito's (safe for the common kinds of colour blindness), and each thing the map
shows differs from the others in shape as well as colour: factions are filled unit markers,
roads lines (highways solid dark, tracks dashed brown), exclusion zones a hatched outline, and
events outlined symbols (engagement X, attack star, detection ring, loss x)."""

from __future__ import annotations

import io

from matplotlib.figure import Figure

from sim.world.clock import LightLevel

DPI = 100

KIND_MARKERS = {"cell": "o", "strongpoint": "s", "patrol": "D", "convoy": ">", "escort": "d",
                "qrf": "*", "border_post": "P", "zone_guard": "h"}  # fmt: skip
#: Marker areas relative to a cell marker (matplotlib's ``s``: points squared).
KIND_SIZES = {"cell": 1.0, "strongpoint": 0.8, "patrol": 0.75, "convoy": 0.9, "escort": 0.5,
              "qrf": 2.0, "border_post": 0.9, "zone_guard": 0.9}  # fmt: skip
#: Opacity of the dark layer laid over the ground, by light.
NIGHT_SHADE = {LightLevel.NIGHT: 0.5, LightLevel.TWILIGHT: 0.22, LightLevel.DAY: 0.0}
NIGHT_COLOUR = "#0b1736"

# Okabe-Ito
BLACK, ORANGE, SKY_BLUE, GREEN = "#000000", "#E69F00", "#56B4E9", "#009E73"
YELLOW, BLUE, VERMILLION, PURPLE = "#F0E442", "#0072B2", "#D55E00", "#CC79A7"

#: Faction colours in the app, by role: insurgents vermillion, garrisons blue, then bluish
#: green, then reddish purple, civilians grey. (A scenario's own colours are matplotlib's
#: defaults, red and green among them; the app does not use them.)
INSURGENT_COLOURS = (VERMILLION, "#8B3A00")
GARRISON_COLOURS = (BLUE, GREEN, PURPLE, "#004D7A")
CIVILIAN_COLOUR = "#8C8C8C"

ENGAGEMENT_COLOUR = YELLOW  # an X with a black edge
ATTACK_COLOUR = ORANGE  # a star with a black edge; attacks under way dashed
DETECTION_COLOUR = SKY_BLUE  # a ring
LOSS_COLOUR = BLACK  # an x

#: Map features of :mod:`sim.analysis.maps` drawn in other colours in the app, so that no
#: feature shares its colour with a faction or an event (maps.py's red highways and zones
#: would read as insurgents).
HIGHWAY_COLOUR = "#3A3A3A"
ZONE_COLOUR = "#7A1F5C"


def faction_colours(model) -> dict[str, str]:
    """The app's colour of each faction of ``model`` (by role, in the scenario's order)."""
    out: dict[str, str] = {}
    counters = {"insurgent": 0, "garrison": 0}
    for name in model.faction_names:
        role = model.spec.factions[name].role
        if role == "insurgent":
            out[name] = INSURGENT_COLOURS[min(counters["insurgent"], 1)]
            counters["insurgent"] += 1
        elif role == "civilian":
            out[name] = CIVILIAN_COLOUR
        else:
            palette = GARRISON_COLOURS
            out[name] = palette[counters["garrison"] % len(palette)]
            counters["garrison"] += 1
    return out


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes, at the figure's own dpi (as the app sends it to the browser)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()
