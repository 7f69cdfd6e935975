"""Fit scenario parameters to observed counts with ABC-SMC (pyabc), on the batch executors.

    badia calibrate FILE [--out DIR] [--workers N | --scheduler tcp://...] [--resume] [--quiet]

(the command and its figures and report live in `sim.analysis.calibration_report`). The method:
pyabc's `ABCSMC` with the calibration's priors, a multivariate normal perturbation kernel,
median-adaptive epsilon and `BoundedDistance` (one-sided for `min`/`max` observations). Each
particle's summary statistics come from `calibration_model.simulate_candidate`, run on a local
process pool (`sim.experiments.batch.local_executor`) or a Dask cluster's executor, as `badia
batch` does.

Reproducibility: pyabc's parallel samplers accept particles in the order they finish, so the
posterior would depend on timing. `OrderedSampler` does not: in the parent, candidate i of
generation g is proposed with numpy's global generator seeded from
`SeedSequence(seed, spawn_key=(g, i))` (pyabc draws proposals from it), and its runs get seeds
from `SeedSequence(seed, spawn_key=(g, i, replicate))`; workers only simulate; the parent then
evaluates candidates strictly in index order and accepts the first `population` that pass. A
window of candidates is simulated ahead; those past the last accepted one are discarded. So the
history, posterior and every output are the same for the same file and seed whatever the number
of workers or the engine (local or Dask).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyabc
from pyabc.inference_util.inference_util import (
    _simulate_one,
    _simulate_one_from_prior,
    generate_valid_proposal,
)
from pyabc.population import Particle, Sample
from pyabc.sampler import Sampler

from sim.errors import CalibrationError
from sim.experiments.calibration_data import BoundedDistance, LoadedCalibration, load_calibration
from sim.experiments.calibration_model import (
    PPC_KEY,
    CalibrationModel,
    CandidateResult,
    Statistic,
    candidate_seeds,
    run_seed,
    simulate_candidate,
)
from sim.experiments.calibration_spec import ParameterSpec

CALIBRATION_FORMAT = 1
SEEDS = ("candidate i of generation g (g = pyabc's t + 1; 0 is the prior calibration sample): "
         "proposal from numpy's global generator seeded with SeedSequence(seed, spawn_key=(g, "
         "i)).generate_state(4); run r seeded with SeedSequence(seed, spawn_key=(g, i, r))"
         ".generate_state(1, uint64)[0] >> 1; posterior-predictive run j: particle drawn with "
         f"default_rng(SeedSequence(seed, spawn_key=({PPC_KEY},))), run seeded from spawn_key="
         f"({PPC_KEY}, j)")


class CalibrationStopped(RuntimeError):
    """The calibration stopped before its end (a worker died, a model run raised); the finished
    generations are in abc.db and `--resume` continues from them."""


# --------------------------------------------------------------------------------------------
# Priors and the model
# --------------------------------------------------------------------------------------------


def prior_distribution(parameters: list[ParameterSpec]) -> pyabc.Distribution:
    """The joint prior (independent parameters), named by their paths. An integer parameter's
    uniform or loguniform prior [lo, hi] is widened to [lo - 0.5, hi + 0.5], so that after
    rounding each whole number in [lo, hi] is as likely as under the discrete prior."""
    rvs = {}
    for p in parameters:
        a, b = p.prior.args
        if p.integer and p.prior.kind != "normal":
            a, b = a - 0.5, b + 0.5
        if p.prior.kind == "uniform":
            rvs[p.path] = pyabc.RV("uniform", a, b - a)
        elif p.prior.kind == "loguniform":
            rvs[p.path] = pyabc.RV("loguniform", a, b)
        else:
            rvs[p.path] = pyabc.RV("norm", a, b)
    return pyabc.Distribution(rvs)


def calibration_model(cal: LoadedCalibration) -> CalibrationModel:
    """The picklable model function of a calibration."""
    stats = tuple(Statistic(t.key, t.columns, t.stat, t.days, t.scale, t.at_least)
                  for t in cal.targets)
    return CalibrationModel(
        scenario_yaml=cal.scenario_yaml, scenario_source=cal.scenario_source, days=cal.days,
        paths=tuple(p.path for p in cal.spec.parameters),
        integer=tuple(p.integer for p in cal.spec.parameters), stats=stats,
        replicates=cal.spec.budget.replicates)


# --------------------------------------------------------------------------------------------
# The sampler
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _seeded_global_numpy(words: np.ndarray) -> Iterator[None]:
    """Seed numpy's global generator (pyabc's proposals draw from it), then put it back."""
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(words)  # noqa: NPY002 (pyabc draws from the global generator)
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


@dataclass
class GenerationLog:
    """What one generation cost."""

    t: int
    required: int
    accepted: int = 0
    evaluated: int = 0        # candidates evaluated in index order (pyabc's "samples")
    proposed: int = 0         # candidates submitted, look-ahead included
    simulated: int = 0        # candidates whose runs came back, look-ahead included
    invalid: int = 0          # candidates whose values the scenario rejects
    complete: bool = True
    seconds: float = 0.0


class OrderedSampler(Sampler):
    """A pyabc sampler whose result does not depend on the executor, the number of workers or
    the order in which runs finish (see the module docstring).

    Args:
        executor: a `concurrent.futures.Executor` (a process pool, a Dask client's executor).
        slots: parallel workers behind it (sets the look-ahead window, 2 per slot).
        model: the model function sent to workers with each candidate.
        seed: the calibration's root seed.
        progress: show a tqdm bar per generation.
        max_candidates: candidates this sampler may evaluate in all (the run budget); a
            generation that would pass it stops incomplete and is not stored.
    """

    def __init__(self, executor: Executor, slots: int, model: CalibrationModel, seed: int, *,
                 progress: bool = True, max_candidates: float = math.inf,
                 window: int | None = None) -> None:
        super().__init__()
        self.executor = executor
        self.window = window or max(4, 2 * slots)
        self.model = model
        self.seed = seed
        self.progress = progress
        self.max_candidates = max_candidates
        self.evaluated_total = 0
        self.generations: list[GenerationLog] = []
        self.invalid_example: str | None = None

    def sample_until_n_accepted(self, n: int, simulate_one: Callable, t: int, *,
                                max_eval: float = np.inf, all_accepted: bool = False,
                                ana_vars: Any = None) -> Sample:
        """The first `n` candidates in index order that pass, evaluated in the parent."""
        func = getattr(simulate_one, "func", None)
        if func not in (_simulate_one, _simulate_one_from_prior):
            raise TypeError("OrderedSampler needs pyabc 0.13's simulate_one (a partial of "
                            "pyabc.inference_util._simulate_one)")
        prior = func is _simulate_one_from_prior
        kw = simulate_one.keywords
        log = GenerationLog(t=t, required=n)
        self.generations.append(log)
        # the prior sample is never cut short (the budget leaves room for it)
        limit = math.inf if prior else min(max_eval,
                                           self.max_candidates - self.evaluated_total)
        eps = None if prior else float(kw["eps"](t))
        sample = self._create_empty_sample()
        pending: dict[Future[CandidateResult], tuple[int, int, Any]] = {}
        done: dict[int, tuple[int, Any, CandidateResult]] = {}
        proposed = 0
        t0 = time.perf_counter()
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="prior sample" if prior else f"generation {t}",
                   unit="particle", disable=not self.progress, dynamic_ncols=True,
                   mininterval=0.5, leave=True)
        try:
            while log.accepted < n:
                if log.evaluated >= limit:
                    sample.ok = False   # the run budget ends inside this generation
                    log.complete = False
                    break
                while len(pending) < self.window and proposed < limit:
                    m, theta, seeds = self._propose(prior, kw, t, proposed)
                    fut = self.executor.submit(simulate_candidate, self.model, dict(theta),
                                               seeds)
                    pending[fut] = (proposed, m, theta)
                    proposed += 1
                    log.proposed = proposed
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in finished:
                    i, m, theta = pending.pop(fut)
                    try:
                        result = fut.result()
                    except Exception as exc:
                        raise CalibrationStopped(
                            f"candidate {i} of {bar.desc} ({self.model.applied(theta)}) "
                            f"failed: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
                    done[i] = (m, theta, result)
                    log.simulated += 1
                while log.evaluated in done and log.accepted < n:
                    m, theta, result = done.pop(log.evaluated)
                    particle = self._evaluate(prior, kw, t, m, theta, result)
                    log.evaluated += 1
                    if result.stats is None:
                        log.invalid += 1
                        self.invalid_example = self.invalid_example or result.invalid
                        if log.invalid == log.evaluated >= max(50, 2 * n):
                            raise CalibrationStopped(
                                f"the first {log.evaluated} candidates of {bar.desc} all have "
                                f"values the scenario rejects, e.g. {result.invalid}")
                    sample.append(particle)
                    if particle.accepted:
                        log.accepted += 1
                        bar.update(1)
                    rate = log.accepted / log.evaluated
                    bar.set_postfix_str(f"rate {rate:.0%}" + (
                        f", eps {eps:.3g}" if eps is not None else ""), refresh=False)
        finally:
            for fut in pending:
                fut.cancel()
            bar.close()
        log.seconds = time.perf_counter() - t0
        self.evaluated_total += log.evaluated
        self.nr_evaluations_ = log.evaluated
        return sample

    def _propose(self, prior: bool, kw: dict[str, Any], t: int, i: int
                 ) -> tuple[int, Any, tuple[int, ...]]:
        words, seeds = candidate_seeds(self.seed, t + 1, i, self.model.replicates)
        with _seeded_global_numpy(words):
            if prior:
                m = int(kw["model_prior"].rvs())
                theta = kw["parameter_priors"][m].rvs()
            else:
                m, theta = generate_valid_proposal(
                    t=t, m=kw["m"], p=kw["p"], model_prior=kw["model_prior"],
                    parameter_priors=kw["parameter_priors"],
                    model_perturbation_kernel=kw["model_perturbation_kernel"],
                    transitions=kw["transitions"])
        return m, theta, seeds

    @staticmethod
    def _evaluate(prior: bool, kw: dict[str, Any], t: int, m: int, theta: Any,
                  result: CandidateResult) -> Particle:
        """As pyabc's `evaluate_proposal`, on statistics simulated elsewhere."""
        if result.stats is None:
            return Particle(m=m, parameter=theta, weight=0.0, sum_stat={}, distance=np.inf,
                            accepted=False, proposal_id=kw.get("proposal_id", 0))
        if prior:
            return Particle(m=m, parameter=theta, weight=1.0, sum_stat=result.stats,
                            distance=np.inf, accepted=True, proposal_id=0)
        acc = kw["acceptor"](distance_function=kw["distance_function"], eps=kw["eps"],
                             x=result.stats, x_0=kw["x_0"], t=t, par=theta)
        weight = kw["weight_function"](m, theta, acc.weight) if acc.accept else 0.0
        return Particle(m=m, parameter=theta, weight=weight, sum_stat=result.stats,
                        distance=acc.distance, accepted=acc.accept,
                        proposal_id=kw["proposal_id"])


# --------------------------------------------------------------------------------------------
# Running a calibration
# --------------------------------------------------------------------------------------------


@dataclass
class CalibrationRun:
    """What a calibration produced (the files in `out` and the tables behind them)."""

    cal: LoadedCalibration
    out: Path
    populations: pd.DataFrame      # per generation: t, epsilon, accepted, evaluated, ...
    posterior: pd.DataFrame        # posterior.csv
    summary: pd.DataFrame          # posterior_summary.csv
    ppc: pd.DataFrame              # ppc.csv
    ppc_runs: pd.DataFrame         # ppc_runs.csv: one row per posterior-predictive run
    medians: dict[str, float | int]
    calibrated: Path
    engine: str
    elapsed_s: float = 0.0
    resumed: bool = False
    generations_now: int = 0
    submitted_now: int = 0         # model runs submitted in this invocation (look-ahead too)
    stop: str = ""
    notes: list[str] = field(default_factory=list)


def _quiet_pyabc() -> None:
    # pyabc logs every generation at INFO on stderr; the progress bar says the same
    if "ABC_LOG_LEVEL" not in os.environ:
        logging.getLogger("ABC").setLevel(logging.WARNING)


def _manifest(cal: LoadedCalibration) -> dict[str, Any]:
    from sim.experiments.store import code_version, package_versions

    return {
        "format": CALIBRATION_FORMAT, "name": cal.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "fingerprint": cal.fingerprint(), "calibration_file": cal.source,
        "calibration_text": cal.text, "scenario_file": cal.scenario_source,
        "observed_files": list(cal.observed_files),
        "targets": [t.to_json() for t in cal.targets], "left_out": list(cal.left_out),
        "seeds": SEEDS, "code": code_version(),
        "packages": {**package_versions(), "pyabc": pyabc.__version__},
    }


def _open_out(cal: LoadedCalibration, out: Path, resume: bool) -> bool:
    """Check `out` for a new or resumed calibration; True if there is a history to resume."""
    db = out / "abc.db"
    manifest = out / "calibration.json"
    if not resume:
        if db.exists():
            raise CalibrationError(f"{out}: holds a calibration already ({db.name}); use "
                                   f"--resume to continue it, or choose another --out")
        out.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps(_manifest(cal), indent=1, default=str) + "\n")
        return False
    if not db.exists():
        raise CalibrationError(f"{out}: no {db.name} to resume; drop --resume to start afresh")
    try:
        old = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{manifest}: cannot read it ({exc}); cannot check that the "
                               f"history belongs to {cal.source}") from None
    if old.get("fingerprint") != cal.fingerprint():
        raise CalibrationError(
            f"{out}: holds a calibration of another file, scenario or observed data "
            f"({old.get('name')!r} from {old.get('calibration_file')}); choose another --out")
    return True


@contextlib.contextmanager
def _executor(workers: int | None, scheduler: str | None, executor: Executor | None
              ) -> Iterator[tuple[Executor, int, str]]:
    if executor is not None:
        yield executor, workers or 2, "the given executor"
        return
    from sim.errors import BatchError
    from sim.experiments.batch import _executor_for

    try:
        with _executor_for(workers, scheduler) as pool:
            yield pool.executor, pool.slots(), pool.what
    except BatchError as exc:
        raise CalibrationError(str(exc)) from None


def run_calibration(calibration: str | Path | LoadedCalibration, out: str | Path | None = None,
                    *, workers: int | None = None, scheduler: str | None = None,
                    executor: Executor | None = None, resume: bool = False,
                    progress: bool = True, log: Callable[[str], None] | None = None
                    ) -> CalibrationRun:
    """Run (or resume) a calibration into `out` (default `results/calibration/<name>`) and write
    abc.db, calibration.json, posterior.csv, posterior_summary.csv, ppc.csv, ppc_runs.csv and
    calibrated.yaml. (Figures and report.md: `sim.analysis.calibration_report`.)

    Raises `CalibrationError` for bad input or an unusable `out`, `CalibrationStopped` when the
    run breaks off (finished generations stay in abc.db: resume with `resume=True`)."""
    say = log or (lambda line: None)
    cal = calibration if isinstance(calibration, LoadedCalibration) else \
        load_calibration(calibration)
    out_path = Path(out) if out is not None else Path("results") / "calibration" / cal.name
    had_history = _open_out(cal, out_path, resume)
    _quiet_pyabc()
    budget = cal.spec.budget
    model = calibration_model(cal)
    db_url = f"sqlite:///{(out_path / 'abc.db').resolve()}"
    t_start = time.perf_counter()
    max_candidates = (budget.max_runs // budget.replicates if budget.max_runs else math.inf)
    with _executor(workers, scheduler, executor) as (pool, slots, what):
        say(f"{cal.name}: {len(cal.spec.parameters)} parameter(s), {len(cal.targets)} "
            f"observation(s); population {budget.population}, up to {budget.generations} "
            f"generation(s); on {what} -> {out_path}")
        sampler = OrderedSampler(pool, slots, model, cal.spec.seed, progress=progress)
        abc = pyabc.ABCSMC(
            models=model, parameter_priors=prior_distribution(cal.spec.parameters),
            distance_function=BoundedDistance.for_targets(cal.targets),
            population_size=budget.population, sampler=sampler,
            transitions=pyabc.MultivariateNormalTransition(),
            eps=pyabc.MedianEpsilon())
        if had_history:
            history = abc.load(db_url, 1, observed_sum_stat=cal.observed_stats())
        else:
            history = abc.new(db_url, cal.observed_stats(),
                              meta_info={"calibration": cal.name, "seed": cal.spec.seed,
                                         "fingerprint": cal.fingerprint()})
        done = _generations_done(history)
        sampler.evaluated_total = int(history.total_nr_simulations or 0)
        sampler.max_candidates = max_candidates
        remaining = budget.generations - done
        stop = _stopped_already(history, cal, max_candidates) if done else ""
        if remaining > 0 and not stop:
            abc.run(minimum_epsilon=budget.min_epsilon, max_nr_populations=remaining,
                    max_total_nr_simulations=max_candidates)
        if _generations_done(history) == 0:
            raise CalibrationStopped(f"{out_path}: the run budget (max_runs "
                                     f"{budget.max_runs}) ended before the first generation")
        posterior, weights, raw = posterior_table(history, model)
        ppc_runs = posterior_predictive_runs(pool, model, raw, weights, cal.spec.seed,
                                             budget.ppc_runs)
    populations = populations_table(history, sampler, budget.replicates)
    summary = posterior_summary(posterior, cal.spec.parameters)
    ppc = ppc_table(cal, ppc_runs)
    medians = dict(zip(summary["parameter"], summary["median"], strict=True))
    medians = {p.path: (int(medians[p.path]) if p.integer else _round_sig(medians[p.path]))
               for p in cal.spec.parameters}
    out_path.mkdir(parents=True, exist_ok=True)
    posterior.to_csv(out_path / "posterior.csv", index=False)
    summary.to_csv(out_path / "posterior_summary.csv", index=False)
    ppc.to_csv(out_path / "ppc.csv", index=False)
    ppc_runs.to_csv(out_path / "ppc_runs.csv", index=False)
    from sim.experiments.calibration_scenario import write_calibrated

    calibrated = write_calibrated(cal, medians, out_path, populations)
    run = CalibrationRun(
        cal=cal, out=out_path, populations=populations, posterior=posterior, summary=summary,
        ppc=ppc, ppc_runs=ppc_runs, medians=medians, calibrated=calibrated, engine=what,
        elapsed_s=time.perf_counter() - t_start, resumed=had_history,
        generations_now=sum(1 for g in sampler.generations if g.t >= 0 and g.complete),
        submitted_now=(sum(g.proposed for g in sampler.generations) * budget.replicates
                       + budget.ppc_runs),
        stop=_stop_reason(history, cal, max_candidates, sampler),
        notes=list(cal.left_out))
    if sampler.invalid_example:
        run.notes.append(f"some candidates had values the scenario rejects (rejected as "
                         f"particles), e.g. {sampler.invalid_example}")
    return run


def _generations_done(history: Any) -> int:
    max_t = history.max_t
    return 0 if max_t is None or max_t < 0 else int(max_t) + 1


def _stopped_already(history: Any, cal: LoadedCalibration, max_candidates: float) -> str:
    pops = history.get_all_populations()
    pops = pops[pops["t"] >= 0]
    if len(pops) and float(pops["epsilon"].iloc[-1]) <= cal.spec.budget.min_epsilon:
        return "min_epsilon reached"
    if (history.total_nr_simulations or 0) >= max_candidates:
        return "max_runs reached"
    return ""


def _stop_reason(history: Any, cal: LoadedCalibration, max_candidates: float,
                 sampler: OrderedSampler) -> str:
    done = _generations_done(history)
    if any(not g.complete for g in sampler.generations):
        return (f"max_runs ({cal.spec.budget.max_runs}) reached inside generation {done}, "
                f"which was dropped")
    return _stopped_already(history, cal, max_candidates) or (
        f"{done} of {cal.spec.budget.generations} generations done"
        if done < cal.spec.budget.generations else "all generations done")


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def populations_table(history: Any, sampler: OrderedSampler, replicates: int) -> pd.DataFrame:
    """Per generation (t = -1: the prior sample that sets the first epsilon): epsilon,
    particles accepted, candidates evaluated, acceptance rate, effective sample size of the
    weights, model runs, wall time (s)."""
    pops = history.get_all_populations().sort_values("t").reset_index(drop=True)
    looked = {g.t: g.proposed - g.evaluated for g in sampler.generations if g.complete}
    rows = []
    for rec in pops.itertuples():
        t = int(rec.t)
        ess = math.nan
        if t >= 0:
            _, w = history.get_distribution(m=0, t=t)
            ess = float(pyabc.effective_sample_size(np.asarray(w, dtype=float)))
        accepted = int(rec.particles) if t >= 0 and not pd.isna(rec.particles) else int(
            rec.samples or 0)
        samples = int(rec.samples or 0)
        rows.append({
            "t": t, "epsilon": float(rec.epsilon) if t >= 0 else math.nan,
            "accepted": accepted, "evaluated": samples,
            "acceptance_rate": accepted / samples if samples and t >= 0 else math.nan,
            "ess": ess,
            "runs": samples * replicates,
            # submitted past the last candidate needed, then dropped (or cancelled unstarted);
            # depends on the number of workers, unlike everything else here
            "look_ahead_runs": looked.get(t, 0) * replicates,
            "wall_time_s": float(rec.wall_time) if rec.wall_time is not None
            and not pd.isna(rec.wall_time) else math.nan,
        })
    return pd.DataFrame(rows)


def posterior_table(history: Any, model: CalibrationModel
                    ) -> tuple[pd.DataFrame, np.ndarray, list[dict[str, float]]]:
    """(posterior.csv: the last generation's particles with the values the scenario gets,
    weight and distance; the weights; the particles' raw parameter values)."""
    pop = history.get_population(t=history.max_t)
    rows, raw = [], []
    for i, p in enumerate(pop.particles):
        theta = {k: float(v) for k, v in p.parameter.items()}
        raw.append(theta)
        rows.append({"particle": i, **model.applied(theta), "weight": float(p.weight),
                     "distance": float(p.distance)})
    df = pd.DataFrame(rows, columns=["particle", *model.paths, "weight", "distance"])
    return df, df["weight"].to_numpy(dtype=float), raw


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative weight reaches q (no interpolation, so a whole-
    number parameter has whole-number quantiles)."""
    order = np.argsort(values, kind="stable")
    cw = np.cumsum(weights[order]) / weights.sum()
    k = int(np.searchsorted(cw, q - 1e-12, side="left"))
    return float(values[order][min(k, len(values) - 1)])


def posterior_summary(posterior: pd.DataFrame, parameters: list[ParameterSpec]
                      ) -> pd.DataFrame:
    """posterior_summary.csv: per parameter the weighted mean, sd, median and 5/50/95%
    quantiles, with the prior and its range."""
    w = posterior["weight"].to_numpy(dtype=float)
    rows = []
    for p in parameters:
        v = posterior[p.path].to_numpy(dtype=float)
        mean = float(np.average(v, weights=w))
        lo, hi = p.prior.range()
        q05, q50, q95 = (weighted_quantile(v, w, q) for q in (0.05, 0.5, 0.95))
        rows.append({
            "parameter": p.path, "unit": p.label_unit, "integer": p.integer,
            "prior": p.prior.describe(), "prior_low": lo, "prior_high": hi,
            "mean": mean, "sd": float(np.sqrt(np.average((v - mean) ** 2, weights=w))),
            "median": q50, "q05": q05, "q50": q50, "q95": q95,
        })
    return pd.DataFrame(rows)


def _round_sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def posterior_predictive_runs(executor: Executor, model: CalibrationModel,
                              raw: list[dict[str, float]], weights: np.ndarray, seed: int,
                              n: int) -> pd.DataFrame:
    """`n` single runs, each of a particle drawn from the posterior (by weight) with a fresh
    seed; one row per run: run, particle, seed, the parameter values and the statistics."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(PPC_KEY,)))
    picks = rng.choice(len(raw), size=n, p=weights / weights.sum())
    single = replace(model, replicates=1)
    futures = []
    for j, k in enumerate(picks):
        s = run_seed(seed, (PPC_KEY, j))
        futures.append((j, int(k), s, executor.submit(simulate_candidate, single, raw[k], (s,))))
    rows = []
    for j, k, s, fut in futures:
        result = fut.result()
        if result.stats is None:   # cannot happen for an accepted particle, but say so
            raise CalibrationStopped(f"posterior-predictive run {j}: {result.invalid}")
        rows.append({"run": j, "particle": k, "seed": s, **model.applied(raw[k]),
                     **result.stats})
    return pd.DataFrame(rows)


def inside_90(observed: float, bound: str, slack: float, q05: float, q95: float) -> bool:
    """Whether the observation is consistent with the model's 90% band, respecting its bound:
    `approx`: q05 <= observed <= q95; `min` (a floor): the band reaches the floor (observed <=
    q95) and does not lie wholly above slack x observed (q05 <= slack x observed); `max` (a
    ceiling): observed >= q05 and q95 >= observed / slack."""
    if bound == "approx":
        return bool(q05 <= observed <= q95)
    if bound == "min":
        return bool(observed <= q95 and (not math.isfinite(slack) or q05 <= slack * observed))
    return bool(q05 <= observed and (not math.isfinite(slack) or q95 >= observed / slack))


def ppc_table(cal: LoadedCalibration, runs: pd.DataFrame) -> pd.DataFrame:
    """ppc.csv: per observation its value and bound against the posterior-predictive 5, 25,
    50, 75 and 95% quantiles of the model value, and `inside_90` (see `inside_90`)."""
    rows = []
    for t in cal.targets:
        v = runs[t.key].to_numpy(dtype=float)
        q = np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95])
        rows.append({
            "quantity": t.quantity, "period": t.period, "region": t.region,
            "observed": t.observed, "bound": t.bound, "slack": t.slack,
            "q05": q[0], "q25": q[1], "q50": q[2], "q75": q[3], "q95": q[4],
            "inside_90": inside_90(t.observed, t.bound, t.slack, q[0], q[4]),
            "first": t.first.isoformat(), "last": t.last.isoformat(), "output": t.output,
            "key": t.key,
        })
    return pd.DataFrame(rows)
