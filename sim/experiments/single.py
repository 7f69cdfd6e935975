"""One run's outputs: the data files `badia run` writes and its summary table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def events_jsonl(events: list[dict]) -> str:
    """The event log as JSON Lines, keys sorted: the bytes of `events.jsonl`."""
    return "".join(json.dumps(e, sort_keys=True, default=_json_default) + "\n" for e in events)


def write_run(result, out: Path) -> None:
    """Write a run's data files: daily.parquet, events.jsonl and the resolved scenario.yaml
    (which replays the run)."""
    out.mkdir(parents=True, exist_ok=True)
    result.daily.to_parquet(out / "daily.parquet", index=False)
    (out / "events.jsonl").write_text(events_jsonl(result.events), encoding="utf-8")
    (out / "scenario.yaml").write_text(result.scenario.to_yaml(), encoding="utf-8")


def run_files(result) -> dict[str, bytes]:
    """The data files of :func:`write_run` as names and bytes (a batch's replay files)."""
    import io

    buf = io.BytesIO()
    result.daily.to_parquet(buf, index=False)
    return {"daily.parquet": buf.getvalue(),
            "events.jsonl": events_jsonl(result.events).encode("utf-8"),
            "scenario.yaml": result.scenario.to_yaml().encode("utf-8")}


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


#: The run summary's groups, in print order: (heading, name prefixes); a name goes to the first
#: group with a prefix it starts with, anything else to "other".
SUMMARY_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("run", ("days",)),
    ("attacks", ("attack", "raid", "ambush", "seizure", "towns_seized", "relief", "mine_strike",
                 "fake_checkpoint", "prey", "engagements")),
    ("losses and strength", ("losses__", "units_alive__", "fighters_alive__", "recruits")),
    ("detection and coverage", ("detections_", "coverage_", "insurgent_units_found")),
    ("roads", ("road_", "roads_")),
    ("borders and zones", ("border_", "zone_", "pursuits_")),
    ("campaign", ("air_strike", "mines_", "resupply", "seizure_end", "relief_events")),
    ("sweeps", ("sweep_",)),
)


def summary_group(name: str) -> str:
    """The heading a summary metric is printed under (`SUMMARY_GROUPS`)."""
    for heading, prefixes in SUMMARY_GROUPS:
        if name.startswith(prefixes):
            return heading
    return "other"


def summary_table(summary: dict[str, float], describe=None) -> str:
    """The run summary as a table grouped by `SUMMARY_GROUPS`; `describe(name)`, if given,
    returns a label printed beside each value."""
    width = max(len(k) for k in summary) if summary else 10
    lines = [f"{'metric':<{width}}  {'value':>10}" + ("  what" if describe else ""),
             f"{'-' * width}  {'-' * 10}" + ("  ----" if describe else "")]
    groups: dict[str, list[str]] = {}
    for key in summary:
        groups.setdefault(summary_group(key), []).append(key)
    order = [h for h, _ in SUMMARY_GROUPS] + ["other"]
    for heading in (h for h in order if h in groups):
        lines.append(f"[{heading}]")
        for key in groups[heading]:
            value = summary[key]
            if value != value:  # NaN: nothing to measure (no raids, no seizures...)
                text = "n/a"
            elif abs(value - round(value)) > 1e-9:
                text = f"{value:.3f}"
            else:
                text = f"{value:.0f}"
            label = f"  {describe(key)}" if describe else ""
            lines.append(f"{key:<{width}}  {text:>10}{label}")
    return "\n".join(lines)
