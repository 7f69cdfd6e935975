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


def summary_table(summary: dict[str, float]) -> str:
    """A plain two-column table of the run summary."""
    width = max(len(k) for k in summary) if summary else 10
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ----------"]
    for key, value in summary.items():
        if value != value:  # NaN: nothing to measure (no raids, no seizures...)
            text = "n/a"
        elif abs(value - round(value)) > 1e-9:
            text = f"{value:.3f}"
        else:
            text = f"{value:.0f}"
        lines.append(f"{key:<{width}}  {text}")
    return "\n".join(lines)


