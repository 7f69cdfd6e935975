"""`badia run`: one scenario, one seed; its data files, summary table and a map of what happened."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sim.experiments.single import summary_table, write_run
from sim.scenario.loading import load_scenario


def event_overlays(events: list[dict]) -> list[dict]:
    """Map overlays for a run: engagements, detections of note and losses."""
    from sim.analysis.maps import Overlay

    styles = {
        "engagement": ("engagement", {"marker": "x", "color": "#d62728", "markersize": 7}),
        "detection": ("detection", {"marker": ".", "color": "#1f77b4", "markersize": 3}),
        "loss": ("unit destroyed", {"marker": "X", "color": "black", "markersize": 8}),
        "raid_start": ("raid launched", {"marker": ">", "color": "#9467bd", "markersize": 5}),
        "crossing": ("insurgent border crossing",
                     {"marker": "d", "color": "#17becf", "markersize": 5}),
        "breakoff": ("pursuit broken off", {"marker": "s", "color": "#ff7f0e", "markersize": 6}),
    }
    out = []
    for kind, (label, style) in styles.items():
        # garrison traffic through border posts is not what the crossing marker is for
        pts = [(e["lat"], e["lon"]) for e in events
               if e["type"] == kind and (kind != "crossing" or e.get("insurgent"))]
        if pts:
            out.append(Overlay(latlon=np.array(pts), label=f"{label} ({len(pts)})",
                               style={"linestyle": "none", "alpha": 0.8, **style}))
    return out


def run_map(result, terrain, path: Path) -> None:
    """The run's briefing map: terrain with its engagements, losses, raids and crossings."""
    from sim.analysis.maps import render_map

    title = f"{result.scenario.name} (seed {result.scenario.seed})"
    render_map(terrain, path, title=title, overlays=event_overlays(result.events))


def run_command(args) -> int:
    """Entry point of `badia run`."""
    from sim.engine.model import DesertModel

    scenario = load_scenario(args.scenario, overrides=args.set)
    if args.days is not None:
        scenario = scenario.model_copy(update={"days": float(args.days)})
    t0 = time.perf_counter()
    model = DesertModel(scenario, rng=args.seed)
    hours = model.spec.hours
    model.run_for_hours(hours, progress=not args.quiet)
    result = model.result()
    elapsed = time.perf_counter() - t0
    out = args.out or Path("out") / Path(args.scenario).stem
    write_run(result, Path(out))
    run_map(result, model.terrain, Path(out) / "map.png")
    print(summary_table(result.summary))
    print(f"\n{hours / 24:.1f} days simulated in {elapsed:.1f} s; wrote {out}/"
          "{daily.parquet, events.jsonl, scenario.yaml, map.png}")
    return 0
