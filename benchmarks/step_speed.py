"""Hourly step speed on the theatre, against Mesa's own Epstein civil-violence example.

Runs ``scenarios/badia_theatre.yaml`` (about 300 units) for ``--days`` simulated days after a
warm-up day (terrain cache, route fields), and reports simulated days per second and unit-hours
per second; then runs Mesa's Epstein example (40x40, 100 steps, as in DESIGN.md) in the same
process and reports the ratio of our unit-hours per second to its agent-steps per second.
Both run on one core (this process).

    .venv/bin/python benchmarks/step_speed.py [--days 30] [--seed 1] [--profile]
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def bench_theatre(days: float, seed: int, profile: bool) -> dict:
    from sim.model import DesertModel

    scenario = REPO / "scenarios" / "badia_theatre.yaml"
    warm = DesertModel(scenario, rng=seed + 1000)
    warm.run_for_hours(24)
    model = DesertModel(scenario, rng=seed)
    hours = int(days * 24)
    gc.collect()
    t0 = time.perf_counter()
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        model.run_for_hours(hours)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
    else:
        model.run_for_hours(hours)
    elapsed = time.perf_counter() - t0
    alive_hours = model.force.n * hours  # unit slots stepped (dead units cost nothing)
    return {
        "units": model.force.n,
        "hours": hours,
        "seconds": elapsed,
        "days_per_second": days / elapsed,
        "unit_hours_per_second": alive_hours / elapsed,
    }


def bench_epstein(steps: int = 100) -> dict:
    from mesa.examples import EpsteinCivilViolence
    from mesa.examples.advanced.epstein_civil_violence.model import EpsteinScenario

    model = EpsteinCivilViolence(scenario=EpsteinScenario(rng=42))
    n = len(model.agents)
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(steps):
        model.step()
    elapsed = time.perf_counter() - t0
    return {"agents": n, "steps": steps, "seconds": elapsed,
            "agent_steps_per_second": n * steps / elapsed}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the theatre run")
    args = ap.parse_args()
    ours = bench_theatre(args.days, args.seed, args.profile)
    theirs = bench_epstein()
    print(f"theatre: {ours['units']} units, {ours['hours']} h in {ours['seconds']:.2f} s -> "
          f"{ours['days_per_second']:.1f} simulated days/s, "
          f"{ours['unit_hours_per_second']:,.0f} unit-hours/s")  # fmt: skip
    print(f"epstein: {theirs['agents']} agents x {theirs['steps']} steps in "
          f"{theirs['seconds']:.2f} s -> {theirs['agent_steps_per_second']:,.0f} agent-steps/s")
    ratio = ours["unit_hours_per_second"] / theirs["agent_steps_per_second"]
    print(f"ratio (our unit-hours/s to Epstein agent-steps/s): {ratio:.1f}")
    print("targets: >= 36 simulated days/s on the theatre, ratio >= 10")


if __name__ == "__main__":
    main()
