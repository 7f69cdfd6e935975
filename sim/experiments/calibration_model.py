"""The calibration's model function, as worker processes run it: parameter values in, summary
statistics out.

`CalibrationModel` is a frozen, picklable dataclass (the resolved base scenario as YAML, the
parameter paths, the statistics to compute) sent to workers with each task; `simulate_candidate`
is the task: it applies the parameter values as overrides, runs the scenario once per seed with
`sim.engine.run.run_scenario` and returns the statistics averaged over the runs. Seeds are handed
out by the parent (`candidate_seeds`), never drawn in a worker, so a candidate's statistics depend
only on its parameter values and its place in the calibration, not on which worker ran it.
Nothing here imports pyabc.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.errors import ScenarioError

#: `SeedSequence` spawn-key head of the posterior-predictive runs (ABC generations use 0, 1, ...)
PPC_KEY = 1_000_000


@dataclass(frozen=True)
class Statistic:
    """What a worker needs to compute one target's model value from a daily table."""

    key: str
    columns: tuple[str, ...]
    stat: str                   # sum | days | longest_run
    days: tuple[int, ...]       # run days (1-based)
    scale: float
    at_least: float


def statistic_value(values: np.ndarray, s: Statistic) -> float:
    """The statistic over the daily values (summed over its columns) of its days, in order."""
    if s.stat == "sum":
        return float(values.sum()) * s.scale
    hit = values >= s.at_least
    if s.stat == "days":
        return float(hit.sum()) * s.scale
    best = run = 0
    for h in hit:
        run = run + 1 if h else 0
        best = max(best, run)
    return float(best)


def daily_statistics(daily: Any, stats: Sequence[Statistic]) -> dict[str, float]:
    """Each statistic from a run's daily table (a column the run did not report counts as 0:
    the daily table only grows columns for things that happened)."""
    pos = {int(d): i for i, d in enumerate(daily["day"].to_numpy())}
    cols: dict[str, np.ndarray] = {}
    out: dict[str, float] = {}
    for s in stats:
        idx = np.array([pos[d] for d in s.days if d in pos], dtype=np.int64)
        total = np.zeros(len(idx))
        for c in s.columns:
            if c not in cols:
                cols[c] = (daily[c].to_numpy(dtype=float) if c in daily.columns
                           else np.zeros(len(daily)))
            total = total + cols[c][idx]
        out[s.key] = statistic_value(total, s)
    return out


@functools.lru_cache(maxsize=4)
def _base_data(scenario_yaml: str) -> dict:
    import yaml

    return yaml.safe_load(scenario_yaml)


@dataclass(frozen=True)
class CalibrationModel:
    """Parameter values -> summary statistics (the mean over `replicates` runs)."""

    scenario_yaml: str                  # the resolved base scenario
    scenario_source: str                # its file, for error messages
    days: float | None                  # run length (None: the scenario's)
    paths: tuple[str, ...]              # parameter paths, in the calibration's order
    integer: tuple[bool, ...]           # whole-number parameters (rounded when applied)
    stats: tuple[Statistic, ...]
    replicates: int = 1

    def applied(self, theta: Mapping[str, float]) -> dict[str, float | int]:
        """The values the scenario gets: integer parameters rounded half up."""
        out: dict[str, float | int] = {}
        for path, whole in zip(self.paths, self.integer, strict=True):
            v = float(theta[path])
            out[path] = math.floor(v + 0.5) if whole else v
        return out

    def scenario(self, theta: Mapping[str, float]) -> Any:
        """The validated scenario with the parameter values applied (ScenarioError if a value
        is not valid there, e.g. a negative strength)."""
        from sim.scenario.loading import parse_scenario
        from sim.scenario.overrides import apply_overrides

        data = apply_overrides(_base_data(self.scenario_yaml), list(self.applied(theta).items()),
                               self.scenario_source)
        return parse_scenario(data, self.scenario_source)

    def simulate(self, theta: Mapping[str, float], seeds: Sequence[int]) -> dict[str, float]:
        """The statistics averaged over one run per seed."""
        return self.simulate_scenario(self.scenario(theta), seeds)

    def simulate_scenario(self, scenario: Any, seeds: Sequence[int]) -> dict[str, float]:
        """The statistics of a ready scenario, averaged over one run per seed."""
        from sim.engine.run import run_scenario

        sums: dict[str, float] = {}
        for seed in seeds:
            result = run_scenario(scenario.model_copy(deep=True), seed=int(seed), days=self.days)
            for k, v in daily_statistics(result.daily, self.stats).items():
                sums[k] = sums.get(k, 0.0) + v
        return {k: v / len(seeds) for k, v in sums.items()}

    def __call__(self, theta: Mapping[str, float]) -> dict[str, float]:
        """The model function as pyabc's own samplers would call it: seeds from numpy's global
        generator (`badia calibrate` hands seeds out itself, see `simulate_candidate`)."""
        # pyabc seeds the global generator in its own workers
        seeds = [int(s) for s in np.random.randint(0, 2**62, size=self.replicates)]  # noqa: NPY002
        return self.simulate(theta, seeds)


@dataclass(frozen=True)
class CandidateResult:
    """A worker's answer: the statistics, or why the parameter values could not be run."""

    stats: dict[str, float] | None
    invalid: str | None = None
    runs: int = 0


def simulate_candidate(model: CalibrationModel, theta: dict[str, float],
                       seeds: tuple[int, ...]) -> CandidateResult:
    """The task run by a worker: one candidate particle, one run per seed. Parameter values the
    scenario rejects come back as `invalid` (the particle is then rejected); any other error
    raises, as a bug would."""
    try:
        scenario = model.scenario(theta)
    except ScenarioError as exc:
        return CandidateResult(None, invalid="; ".join(exc.messages))
    return CandidateResult(model.simulate_scenario(scenario, seeds), runs=len(seeds))


def candidate_seeds(root: int, generation: int, index: int, replicates: int
                    ) -> tuple[np.ndarray, tuple[int, ...]]:
    """(words seeding numpy's global generator while candidate `index` of `generation` is
    proposed, the run seed of each replicate).

    The proposal stream is `SeedSequence(root, spawn_key=(generation, index))`, replicate r's
    run seed comes from `SeedSequence(root, spawn_key=(generation, index, r))` reduced to a
    non-negative 63-bit int. Generation g of pyabc (t = -1 for the prior calibration sample)
    uses generation = t + 1."""
    words = np.random.SeedSequence(root, spawn_key=(generation, index)).generate_state(4)
    return words, tuple(run_seed(root, (generation, index, r)) for r in range(replicates))


def run_seed(root: int, key: tuple[int, ...]) -> int:
    """`SeedSequence(root, spawn_key=key)` as a non-negative 63-bit int."""
    ss = np.random.SeedSequence(root, spawn_key=key)
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
