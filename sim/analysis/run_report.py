"""`badia run`: one scenario, one seed; its data files, summary table and a map of what happened."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from sim.analysis.labels import describe_metric
from sim.engine.tracks import MAX_EVERY_HOURS, TrackConfig, TrackRecorder
from sim.errors import UserError
from sim.experiments.single import summary_table, write_run
from sim.scenario.loading import load_scenario
from sim.scenario.schema import MAX_DAYS


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
        # the campaign's attacks without a fight where they land (drawn only when they happen)
        "mine_strike": ("mine or IED strike", {"marker": "*", "color": "#8c2d04",
                                               "markersize": 9}),
        "air_strike": ("air strike", {"marker": "v", "color": "#006d2c", "markersize": 5}),
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


def check_days(days: float | None) -> int | None:
    """`badia run --days`: a whole, positive number of days, at most `MAX_DAYS`.

    Fractions are refused rather than run: daily.parquet has one row per *finished* day, so a
    run of 0.5 days would write events and no daily row. Raises `UserError` (one line)."""
    if days is None:
        return None
    if not math.isfinite(days) or days <= 0:
        raise UserError(f"--days: expected a positive whole number of days, got {days:g}")
    if days != int(days):
        raise UserError(f"--days: expected a whole number of days, got {days:g} (daily.parquet "
                        "has one row per finished day; a partial day would have no row)")
    if days > MAX_DAYS:
        raise UserError(f"--days: {days:g} days is more than the limit of {MAX_DAYS:g} days "
                        "(ten years)")
    return int(days)


def check_seed(seed: int | None) -> int | None:
    """`badia run --seed`: a non-negative integer below 2^63 (numpy's seed range we use)."""
    if seed is not None and not 0 <= seed < 2**63:
        raise UserError(f"--seed: expected a whole number from 0 to 2^63 - 1, got {seed}")
    return seed


def check_track_every(hours: int | None) -> TrackConfig | None:
    """`badia run --track-every-hours`: 0 records no tracks, else 1..MAX_EVERY_HOURS."""
    if hours is None or hours == 0:
        return None
    try:
        return TrackConfig(every_hours=hours)
    except ValueError:
        raise UserError(f"--track-every-hours: expected 0 (no tracks) or a whole number from 1 "
                        f"to {MAX_EVERY_HOURS}, got {hours}") from None


def run_command(args) -> int:
    """Entry point of `badia run`."""
    from sim.engine.model import DesertModel

    days = check_days(args.days)
    check_seed(args.seed)
    gis = getattr(args, "gis", False)
    if gis:
        from sim.analysis.geotiff import require

        require("--gis")   # fail before the run, not after it
    scenario = load_scenario(args.scenario, overrides=args.set)
    if days is not None:
        scenario = scenario.model_copy(update={"days": float(days)})
    track_config = check_track_every(getattr(args, "track_every_hours", 1))
    t0 = time.perf_counter()
    model = DesertModel(scenario, rng=args.seed)
    hours = model.spec.hours
    recorder = None if track_config is None else TrackRecorder(model, track_config)
    model.run_for_hours(hours, progress=not args.quiet,
                        after_step=None if recorder is None else recorder.observe)
    result = model.result()
    elapsed = time.perf_counter() - t0
    out = args.out or Path("out") / Path(args.scenario).stem
    write_run(result, Path(out))
    written = ["daily.parquet", "events.jsonl", "scenario.yaml"]
    if not getattr(args, "no_map", False):
        run_map(result, model.terrain, Path(out) / "map.png")
        written.append("map.png")
    if recorder is not None:
        written += [p.name for p in recorder.write(Path(out))]
    print(summary_table(result.summary, describe=_describe))
    print(f"\n{hours / 24:.1f} days simulated in {elapsed:.1f} s; wrote {out}/"
          f"{{{', '.join(written)}}}")
    if recorder is not None:
        print(f"replay it: badia viz --replay {out}")
    if gis:
        from sim.analysis.gis import write_run_gis

        files = write_run_gis(result, model.terrain, Path(out) / "gis")
        print(f"wrote {Path(out) / 'gis'}/{{{', '.join(f.name for f in files)}}}")
    return 0


def _describe(metric: str) -> str:
    """A summary metric in words, with its unit (`sim.analysis.labels`)."""
    title, unit = describe_metric(metric)
    return f"{title} ({unit.replace('{run}', 'run')})" if unit else title
