"""Hourly step speed on the theatre, against Mesa's own Epstein civil-violence example.

Runs ``scenarios/badia_theatre.yaml`` (325 units), lengthened to ``--days`` simulated days (a
year by default, as in the target "a year in 10 s"), after a warm-up day with another seed
(terrain cache, the first route fields), and reports simulated days per second and unit-hours
per second. In the same process it runs Mesa's Epstein example (40x40, 100 steps, as in
DESIGN.md) and reports the ratio of our unit-hours per second to its agent-steps per second.

The two are timed interleaved, a slice of our run then a slice of Epstein's steps, so a busy
spell on a shared machine slows both alike instead of skewing the ratio. Both run on one core
(this process). The timed run includes everything a real run does: route searches to new
destinations, event logging and the daily metrics. Also printed: the first 30 days alone, the
busiest stretch (most fighting, most first-time route searches).

    .venv/bin/python benchmarks/step_speed.py [--days 365] [--seed 1] [--profile]
"""

from __future__ import annotations

import argparse

from _common import EPSTEIN_STEPS, epstein, interleaved, theatre_models


def make_models(days: float, seed: int):
    _, ours = theatre_models([f"days={days}"], seed)
    return ours, epstein()


def bench(days: float, seed: int) -> dict:
    ours, theirs = make_models(days, seed)
    hours = int(days * 24)
    t = interleaved(ours.run_for_hours, hours, theirs)
    return {
        "units": ours.force.n,
        "hours": hours,
        "seconds": t.ours_s,
        "days_per_second": days / t.ours_s,
        "unit_hours_per_second": ours.force.n * hours / t.ours_s,  # every unit slot, every hour
        "first_month_days_per_second": min(days, 30.0) / t.ours_early_s,
        "first_month_unit_hours_per_second": ours.force.n * min(hours, 720) / t.ours_early_s,
        "agents": t.agents,
        "epstein_seconds": t.theirs_s,
        "agent_steps_per_second": t.agent_steps_per_second,
    }


def profile(days: float, seed: int) -> None:
    import cProfile
    import pstats

    ours, _ = make_models(days, seed)
    prof = cProfile.Profile()
    prof.enable()
    ours.run_for_hours(int(days * 24))
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=365.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the theatre run")
    args = ap.parse_args()
    if args.profile:
        profile(args.days, args.seed)
        return
    r = bench(args.days, args.seed)
    print(f"theatre: {r['units']} units, {r['hours']} h in {r['seconds']:.2f} s -> "
          f"{r['days_per_second']:.1f} simulated days/s, "
          f"{r['unit_hours_per_second']:,.0f} unit-hours/s "
          f"(first 30 days: {r['first_month_days_per_second']:.1f} days/s)")  # fmt: skip
    print(f"epstein: {r['agents']} agents x {EPSTEIN_STEPS} steps in {r['epstein_seconds']:.2f} s "
          f"-> {r['agent_steps_per_second']:,.0f} agent-steps/s")
    ratio = r["unit_hours_per_second"] / r["agent_steps_per_second"]
    early = r["first_month_unit_hours_per_second"] / r["agent_steps_per_second"]
    print(f"ratio (our unit-hours/s to Epstein agent-steps/s): {ratio:.1f} "
          f"(first 30 days: {early:.1f})")
    print("targets (issue 13): ratio >= 30 over a year, >= 20 over the first 30 days")


if __name__ == "__main__":
    main()
