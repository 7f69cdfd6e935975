"""Tactic outcomes for a run's summary, read from its event log and final state: raids that set
out and at night, raids hidden again before first light, towns seized and relief, border
crossings intercepted, insurgent units ever found, sweep progress.

Each name here is one quantity that no daily column already counts: `raids_set_out` counts
`raid_start` events, one per raiding cell that left its hide (each cell of a joint raid on one
post, a raid called off, a raid caught on the way), while the daily `raid_attempted` counts raid
*attacks*, one per fight a raider opened on its target, however many cells joined it;
`towns_seized` counts towns held, while `seizure_succeeded` counts assaults whose fight was won.
Pursuits broken off at a zone edge are the daily `pursuits_broken_off` (their total is in the
summary as `pursuits_broken_off_total`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.rules.seizures import Seizure
    from sim.tactics.garrison import Sweep


def tactic_outcomes(events: list[dict], seizures: list[Seizure], sweeps: list[Sweep],
                    found_fraction: float) -> dict[str, float]:
    """Tactic outcomes for the run summary: raids, seizures, crossings, sweeps
    (``found_fraction``: of insurgent units, those any garrison has seen at least once)."""
    ev = events
    out: dict[str, float] = {}
    starts = [e for e in ev if e["type"] == "raid_start"]
    ends = [e for e in ev if e["type"] == "raid_end"]
    out["raids_set_out"] = len(starts)
    out["raids_set_out_at_night_fraction"] = (
        sum(e["night"] for e in starts) / len(starts) if starts else float("nan")
    )
    out["raids_hidden_before_first_light_fraction"] = (
        sum(e["before_first_light"] for e in ends) / len(ends) if ends else float("nan")
    )
    relief = [e["relief_hours"] for e in ev if e["type"] == "relief"]
    out["towns_seized"] = sum(1 for s in seizures if s.seized)
    out["relief_hours_mean"] = float(np.mean(relief)) if relief else float("nan")
    out["border_crossings_intercepted"] = sum(1 for e in ev if e["type"] == "crossing_intercepted")
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
