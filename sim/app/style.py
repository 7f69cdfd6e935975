"""What the app's figures share: resolution, colours, unit markers, night shading, PNG output."""

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
ENGAGEMENT_COLOUR = "#e8141b"
ATTACK_COLOUR = "#ff8c00"
DETECTION_COLOUR = "#fff44f"


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes, at the figure's own dpi (as the app sends it to the browser)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()
