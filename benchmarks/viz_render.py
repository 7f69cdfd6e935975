"""Browser map benchmark: time to draw one frame of the theatre map after a step.

Usage:  .venv/bin/python benchmarks/viz_render.py [--scenario scenarios/badia_theatre.yaml]
                                                 [--steps 20] [--region "whole map"]

A frame is what the app sends to the browser after each step: `sim.app.map_frame.map_figure` (the
cached terrain raster plus the overlay: units, recent events, detections, clock) saved as PNG. The
first frame of a view also draws and caches the terrain and is reported apart ("first frame"); the
figure reported is the mean over the next `--steps` steps (model stepping not included).
Target: under 300 ms per frame on the theatre. The plots panel is timed the same way.

The browser app draws neither of these per step: it sends a view's terrain once
(`sim.app.background.layers`, timed as "layers") and then per step only the overlay SVG
(`sim.app.map_frame.overlay_svg`) and the plots appended by `sim.app.plots.PlotPanel`; those
are timed too ("app overlay", "app plots"). The whole Step in a browser: benchmarks/app_step.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BUDGET_MS = 300.0


def _ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(REPO / "scenarios" / "badia_theatre.yaml"))
    parser.add_argument("--steps", type=int, default=20, help="frames timed after the first")
    parser.add_argument("--region", action="append", help="map region(s) (default: whole map "
                        "and Palmyra)")  # fmt: skip
    args = parser.parse_args(argv)

    from sim.app.map_frame import map_figure
    from sim.app.model import VizModel
    from sim.app.plots import plots_figure
    from sim.app.style import figure_png
    from sim.app.views import WHOLE_MAP, map_regions

    t0 = time.perf_counter()
    model = VizModel(scenario_path=args.scenario)
    init_s = time.perf_counter() - t0
    rows, cols = model.terrain.shape
    print(f"{model.spec.name}: {rows} x {cols} cells, {len(model.units)} units "
          f"(model built in {init_s:.2f} s)")  # fmt: skip
    regions = args.region or [WHOLE_MAP, "Palmyra"]
    regions = [r for r in regions if r in map_regions(model)] or [WHOLE_MAP]
    worst = 0.0
    for region in regions:
        first = _ms(lambda r=region: figure_png(map_figure(model, r)))
        frames, steps = [], []
        for _ in range(args.steps):
            steps.append(_ms(model.step))
            frames.append(_ms(lambda r=region: figure_png(map_figure(model, r))))
        mean = statistics.fmean(frames)
        worst = max(worst, mean)
        print(f"  map '{region}': first frame {first:.0f} ms (draws the terrain); next "
              f"{args.steps} frames mean {mean:.0f} ms, median {statistics.median(frames):.0f}, "
              f"max {max(frames):.0f} ms  (model step mean {statistics.fmean(steps):.0f} ms)")
    from sim.app.background import layers
    from sim.app.map_frame import overlay_svg
    from sim.app.plots import PlotPanel
    from sim.app.views import resolve_view

    view = resolve_view(model, WHOLE_MAP)
    lay_ms = _ms(lambda: layers(model, view))
    lay = layers(model, view)
    panel = PlotPanel(model)
    panel.html()
    overlay, app_plots = [], []
    for _ in range(args.steps):
        model.step()
        overlay.append(_ms(lambda: overlay_svg(model, lay)))
        app_plots.append(_ms(panel.html))
    print(f"  app (whole map): layers {lay_ms:.0f} ms once per view; per step overlay "
          f"median {statistics.median(overlay):.1f} ms (max {max(overlay):.1f}), plots "
          f"median {statistics.median(app_plots):.1f} ms (max {max(app_plots):.1f})")
    plots = [_ms(lambda: figure_png(plots_figure(model))) for _ in range(5)]
    print(f"  plots panel: mean {statistics.fmean(plots):.0f} ms over 5 draws "
          f"(at hour {model.hour})")  # fmt: skip
    ok = worst < BUDGET_MS
    print(f"map frame budget {BUDGET_MS:.0f} ms: {'met' if ok else 'MISSED'} "
          f"(slowest region mean {worst:.0f} ms)")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
