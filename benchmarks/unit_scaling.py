"""The theatre with its units multiplied: unit-hours/s and detection's cost as the force grows.

Runs ``scenarios/badia_theatre.yaml`` over ``--days`` (30) with every unit entry's ``count``
multiplied by each of ``--times`` (1 and 10 by default): the same kinds, tactics and places,
just more of each, so the units spread over the same ground and detection's candidate pairs
grow as the density does. Each run is timed interleaved with Mesa's Epstein example in the same
process (a slice of ours, a slice of theirs, as ``step_speed.py`` does), after a warm-up day
with another seed. Printed per row: units, unit-hours/s, its ratio to Epstein's agent-steps/s,
ms per simulated hour, the time spent in the detection phase (``DesertModel._detect``) per hour
and the peak RSS;
then the fitted growth exponent of detection's time against the unit count (``log(t_k / t_1)
/ log(n_k / n_1)``) and each row's unit-hours/s as a fraction of the first row's, both taken
through Epstein (the rows run at different times; each is timed interleaved with Epstein).

    .venv/bin/python benchmarks/unit_scaling.py [--days 30] [--times 1 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import gc
import math
import resource
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EPSTEIN_STEPS = 100
SLICES = 10


def multiplied(days: float, times: int):
    """The theatre scenario, ``days`` long, with every unit entry's ``count`` times ``times``."""
    from sim.scenario.loading import load_scenario

    sc = load_scenario(REPO / "scenarios" / "badia_theatre.yaml", overrides=[f"days={days}"])
    units = [u.model_copy(update={"count": u.count * times}) for u in sc.units]
    return sc.model_copy(update={"units": units})


class DetectionTimer:
    """Wraps ``DesertModel._detect`` (the hour's detection phase: candidate pairs, draws,
    knowledge and alerts) to add up its time."""

    def __init__(self):
        from sim.engine.model import DesertModel

        self.cls = DesertModel
        self.inner = DesertModel._detect
        self.seconds = 0.0

    def __enter__(self):
        inner = self.inner

        def timed_detect(model):
            t0 = time.perf_counter()
            try:
                return inner(model)
            finally:
                self.seconds += time.perf_counter() - t0

        self.cls._detect = timed_detect
        return self

    def __exit__(self, *exc):
        self.cls._detect = self.inner


def bench(days: float, times: int, seed: int) -> dict:
    from mesa.examples import EpsteinCivilViolence
    from mesa.examples.advanced.epstein_civil_violence.model import EpsteinScenario

    from sim.engine.model import DesertModel

    scenario = multiplied(days, times)
    DesertModel(scenario, rng=seed + 1000).run_for_hours(24)
    ours = DesertModel(scenario, rng=seed)
    theirs = EpsteinCivilViolence(scenario=EpsteinScenario(rng=42))
    hours = int(days * 24)
    cuts = [round(k * hours / SLICES) for k in range(SLICES + 1)]
    steps = [round(k * EPSTEIN_STEPS / SLICES) for k in range(SLICES + 1)]
    ours_s = theirs_s = 0.0
    gc.collect()
    with DetectionTimer() as det:
        for k in range(SLICES):
            t0 = time.perf_counter()
            ours.run_for_hours(cuts[k + 1] - cuts[k])
            t1 = time.perf_counter()
            for _ in range(steps[k + 1] - steps[k]):
                theirs.step()
            t2 = time.perf_counter()
            ours_s += t1 - t0
            theirs_s += t2 - t1
    uhs = ours.force.n * hours / ours_s
    eps = len(theirs.agents) * EPSTEIN_STEPS / theirs_s
    return {
        "times": times,
        "units": ours.force.n,
        "unit_hours_per_second": uhs,
        "ratio": uhs / eps,
        "ms_per_hour": 1000 * ours_s / hours,
        "detection_ms_per_hour": 1000 * det.seconds / hours,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _in_epstein_steps(row: dict) -> float:
    """Detection's time per simulated hour, in Epstein agent-steps (timed alongside)."""
    agent_steps_per_second = row["unit_hours_per_second"] / row["ratio"]
    return row["detection_ms_per_hour"] / 1000 * agent_steps_per_second


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--times", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rows = [bench(args.days, k, args.seed) for k in args.times]
    print(f"theatre x units over {args.days:g} days (ratio: unit-hours/s over Epstein "
          "agent-steps/s, timed interleaved)")
    print(f"{'x':>4} {'units':>6} {'unit-h/s':>10} {'ratio':>6} {'ms/h':>7} {'detect ms/h':>11} "
          f"{'peak RSS MB':>11}")
    for r in rows:
        print(f"{r['times']:>4} {r['units']:>6} {r['unit_hours_per_second']:>10,.0f} "
              f"{r['ratio']:>6.1f} {r['ms_per_hour']:>7.3f} {r['detection_ms_per_hour']:>11.3f} "
              f"{r['peak_rss_mb']:>11.0f}")
    # rows run one after another, so a busy spell on a shared machine can hit one and not the
    # other: compare them through Epstein, timed interleaved with each (detection's time in
    # Epstein agent-steps, unit-hours/s as the ratio)
    first = rows[0]
    for r in rows[1:]:
        growth = math.log(_in_epstein_steps(r) / _in_epstein_steps(first)) / math.log(
            r["units"] / first["units"]
        )
        share = r["ratio"] / first["ratio"]
        print(f"x{r['times']}: detection time grows as n^{growth:.2f}; unit-hours/s "
              f"{share:.2f} of x{first['times']} (both against Epstein)")
    print("targets: detection no faster than n^1.2; unit-hours/s at x10 >= 0.8 of x1")


if __name__ == "__main__":
    main()
