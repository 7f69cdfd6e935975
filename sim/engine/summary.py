"""Tactic outcomes for a run's summary, read from its event log and final state: raids started
and at night, raids hidden again before first light, seizures and relief, pursuits broken off at
a zone edge, crossings intercepted, insurgent units ever found, sweep progress."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.rules.seizures import Seizure
    from sim.tactics.garrison import Sweep


def tactic_outcomes(events: list[dict], seizures: list[Seizure], sweeps: list[Sweep],
                    found_fraction: float) -> dict[str, float]:
    """Tactic outcomes for the run summary: raids, refuge, seizures, sweeps, pursuits
    (``found_fraction``: of insurgent units, those any garrison has seen at least once)."""
    ev = events
    out: dict[str, float] = {}
    starts = [e for e in ev if e["type"] == "raid_start"]
    ends = [e for e in ev if e["type"] == "raid_end"]
    out["raids_started"] = len(starts)
    out["raids_started_at_night_fraction"] = (
        sum(e["night"] for e in starts) / len(starts) if starts else float("nan")
    )
    out["raids_hidden_before_first_light_fraction"] = (
        sum(e["before_first_light"] for e in ends) / len(ends) if ends else float("nan")
    )
    relief = [e["relief_hours"] for e in ev if e["type"] == "relief"]
    out["seizures"] = sum(1 for s in seizures if s.seized)
    out["relief_hours_mean"] = float(np.mean(relief)) if relief else float("nan")
    out["pursuits_broken_off_at_zone"] = sum(
        1 for e in ev if e["type"] == "breakoff" and e.get("reason") == "zone"
    )
    out["crossings_intercepted"] = sum(1 for e in ev if e["type"] == "crossing_intercepted")
    out["insurgent_units_found_fraction"] = found_fraction
    sweepers = sweeps
    if sweepers:
        out["sweep_squares_cleared"] = sum(b.cleared_squares for b in sweepers)
        out["sweep_squares_total"] = sum(len(b.squares) for b in sweepers)
        done = [e for e in ev if e["type"] == "sweep_done"]
        out["sweep_days_to_clear"] = max(e["days"] for e in done) if done else float("nan")
        out["sweep_found_fraction"] = (
            done[-1]["found_fraction"] if len(done) == len(sweepers) else float("nan")
        )
    return out
