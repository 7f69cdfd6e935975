"""Helpers the benchmarks share: Mesa's Epstein example as the yardstick, timing a theatre run
interleaved with it, and a process's peak memory. Not a benchmark itself (files starting with
"_" are skipped by `make bench`).

Speed is reported as a ratio to Epstein's agent-steps per second measured in the same process,
a slice of our run then a slice of its steps, so a busy spell on a shared machine slows both
alike instead of skewing the ratio.
"""

from __future__ import annotations

import gc
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
THEATRE = REPO / "scenarios" / "badia_theatre.yaml"
#: Epstein's steps per timed run (40x40 grid, as in DESIGN.md).
EPSTEIN_STEPS = 100
#: Slices the two runs are cut into and alternated.
SLICES = 20


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds `fn()` takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def epstein():
    """Mesa's Epstein civil-violence example with its default scenario (seeded)."""
    from mesa.examples import EpsteinCivilViolence
    from mesa.examples.advanced.epstein_civil_violence.model import EpsteinScenario

    return EpsteinCivilViolence(scenario=EpsteinScenario(rng=42))


def theatre_models(overrides: Sequence[str], seed: int):
    """(warm-up model build seconds, the model to time): a day with another seed first fills
    the terrain cache and the first route searches, as any run after the first in a process."""
    from sim.engine.model import DesertModel

    t0 = time.perf_counter()
    warm = DesertModel(THEATRE, rng=seed + 1000, overrides=list(overrides))
    build_s = time.perf_counter() - t0
    warm.run_for_hours(24)
    return build_s, DesertModel(THEATRE, rng=seed, overrides=list(overrides))


@dataclass(frozen=True)
class Interleaved:
    """Seconds of our run, of its hours before `split_hour`, and of Epstein's steps."""

    ours_s: float
    ours_early_s: float
    theirs_s: float
    agents: int

    @property
    def agent_steps_per_second(self) -> float:
        return self.agents * EPSTEIN_STEPS / self.theirs_s


def interleaved(run_hours: Callable[[int], object], hours: int, theirs,
                split_hour: int = 720) -> Interleaved:
    """Run `hours` of ours (`run_hours(n)` advances it n hours) and `EPSTEIN_STEPS` of
    Epstein's in `SLICES` alternating slices; hours before `split_hour` are also timed apart."""
    cuts = [round(k * hours / SLICES) for k in range(SLICES + 1)]
    steps = [round(k * EPSTEIN_STEPS / SLICES) for k in range(SLICES + 1)]
    ours_s = theirs_s = early_s = 0.0
    gc.collect()
    for k in range(SLICES):
        for start, end in ((cuts[k], min(cuts[k + 1], split_hour)),
                           (max(cuts[k], split_hour), cuts[k + 1])):
            if end > start:
                dt = timed(lambda n=end - start: run_hours(n))
                ours_s += dt
                early_s += dt if end <= split_hour else 0.0
        theirs_s += timed(lambda n=steps[k + 1] - steps[k]: [theirs.step() for _ in range(n)])
    return Interleaved(ours_s, early_s, theirs_s, len(theirs.agents))
