"""A frame of the app to a file (for documentation images), without a browser:
``python -m sim.app.snapshot SCENARIO -o frame.png [--plots plots.png]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim.app.map_frame import map_figure
from sim.app.model import VizModel
from sim.app.plots import plots_figure
from sim.app.status import clock_text, light_shown
from sim.app.style import DPI, figure_png
from sim.app.views import UMPIRE, WHOLE_MAP
from sim.engine.model import DEFAULT_SCENARIO
from sim.world.clock import LightLevel

PROG = "python -m sim.app.snapshot"


def main(argv: list[str] | None = None) -> int:
    """Run a scenario to an hour and write the app's map frame (and plots) as PNG."""
    parser = argparse.ArgumentParser(prog=PROG, description=main.__doc__)
    parser.add_argument("scenario", type=Path, nargs="?", default=DEFAULT_SCENARIO)
    parser.add_argument("--seed", default="", help="seed (default: the scenario's)")
    parser.add_argument("--hours", type=int, default=0, help="hours to simulate first")
    parser.add_argument("--until-night-raid", action="store_true",
                        help="then go on to the first night hour with an attack under way")
    parser.add_argument("--region", default=WHOLE_MAP)
    parser.add_argument("--viewpoint", default=UMPIRE)
    parser.add_argument("--dpi", type=int, default=DPI)
    parser.add_argument("-o", "--output", type=Path, default=Path("frame.png"))
    parser.add_argument("--plots", type=Path, help="also write the plots panel here")
    args = parser.parse_args(argv)  # fmt: skip

    model = VizModel(scenario_path=str(args.scenario), rng=args.seed)
    for line in model.viz.notices:
        print(f"{PROG}: {line}", file=sys.stderr)
    if model.viz.notices:
        return 1
    model.run_for_hours(args.hours)
    if args.until_night_raid:
        while model.running and not (
            light_shown(model) == LightLevel.NIGHT
            and any(u.attack_target is not None and u.alive for u in model.units)
        ):
            model.step()
        if not model.running:
            print(f"{PROG}: no night raid before the end of the run", file=sys.stderr)
            return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(figure_png(map_figure(model, args.region, args.viewpoint,
                                                  dpi=args.dpi)))  # fmt: skip
    print(f"wrote {args.output} ({clock_text(model)})")
    if args.plots:
        args.plots.write_bytes(figure_png(plots_figure(model)))
        print(f"wrote {args.plots}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
