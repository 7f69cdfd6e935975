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
import gc
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EPSTEIN_STEPS = 100
SLICES = 20


def make_models(days: float, seed: int):
    from mesa.examples import EpsteinCivilViolence
    from mesa.examples.advanced.epstein_civil_violence.model import EpsteinScenario

    from sim.engine.model import DesertModel

    scenario = REPO / "scenarios" / "badia_theatre.yaml"
    length = [f"days={days}"]
    DesertModel(scenario, rng=seed + 1000, overrides=length).run_for_hours(24)
    ours = DesertModel(scenario, rng=seed, overrides=length)
    theirs = EpsteinCivilViolence(scenario=EpsteinScenario(rng=42))
    return ours, theirs


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(days: float, seed: int) -> dict:
    ours, theirs = make_models(days, seed)
    hours = int(days * 24)
    cuts = [round(k * hours / SLICES) for k in range(SLICES + 1)]
    steps = [round(k * EPSTEIN_STEPS / SLICES) for k in range(SLICES + 1)]
    ours_s = theirs_s = first_month_s = 0.0
    gc.collect()
    for k in range(SLICES):
        for start, end in ((cuts[k], min(cuts[k + 1], 720)), (max(cuts[k], 720), cuts[k + 1])):
            if end > start:
                dt = timed(lambda n=end - start: ours.run_for_hours(n))
                ours_s += dt
                first_month_s += dt if end <= 720 else 0.0
        theirs_s += timed(lambda n=steps[k + 1] - steps[k]: [theirs.step() for _ in range(n)])
    agents = len(theirs.agents)
    return {
        "units": ours.force.n,
        "hours": hours,
        "seconds": ours_s,
        "days_per_second": days / ours_s,
        "unit_hours_per_second": ours.force.n * hours / ours_s,  # every unit slot, every hour
        "first_month_days_per_second": min(days, 30.0) / first_month_s,
        "agents": agents,
        "epstein_seconds": theirs_s,
        "agent_steps_per_second": agents * EPSTEIN_STEPS / theirs_s,
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
    print(f"ratio (our unit-hours/s to Epstein agent-steps/s): {ratio:.1f}")
    print("targets: >= 36 simulated days/s on the theatre, ratio >= 10")


if __name__ == "__main__":
    main()
