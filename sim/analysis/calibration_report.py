"""`badia calibrate`: fit scenario parameters to observed counts (ABC-SMC) and report.

    badia calibrate FILE [--out DIR] [--workers N | --scheduler tcp://...] [--resume] [--quiet]

Runs `sim.experiments.calibrate.run_calibration` (abc.db, posterior.csv, posterior_summary.csv,
ppc.csv, ppc_runs.csv, calibrated.yaml), then draws figures/marginals.png, figures/pairs.png and
figures/ppc.png and writes report.md. The calibration file format and the method are in
docs/calibration.md.

Exit status:
    0  done
    1  bad input: an invalid calibration file or observed data, a results folder that cannot be
       used (another calibration's, or nothing to --resume)
    4  stopped early (a worker died, a model run raised, the run budget ended before the first
       generation); finished generations are kept: rerun with --resume
    130 interrupted (Ctrl-C); rerun with --resume
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sim.analysis.labels import fmt
from sim.errors import ScenarioError

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_STOPPED = 4
EXIT_INTERRUPTED = 130


def calibrate(calibration: str | Path, out: str | Path | None = None, *,
              workers: int | None = None, scheduler: str | None = None,
              executor: Any = None, resume: bool = False, progress: bool = True,
              log: Callable[[str], None] | None = None) -> Any:
    """Run a calibration, then write its figures and report.md; returns the
    `CalibrationRun` (see `sim.experiments.calibrate.run_calibration` for the arguments)."""
    from sim.analysis.calibration_figures import write_figures
    from sim.experiments.calibrate import run_calibration

    run = run_calibration(calibration, out, workers=workers, scheduler=scheduler,
                          executor=executor, resume=resume, progress=progress, log=log)
    write_figures(run)
    write_report(run)
    return run


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def _num(x: Any) -> str:
    try:
        if isinstance(x, float) and math.isnan(x):
            return "-"
    except TypeError:
        pass
    return fmt(x)


def write_report(run: Any) -> Path:
    """Write `<out>/report.md`: the run, generations (epsilon, acceptance, runs, wall time), the
    posterior, the posterior-predictive check, observations left out, files, seeds."""
    cal, spec, budget = run.cal, run.cal.spec, run.cal.spec.budget
    pops = run.populations
    gens = pops[pops["t"] >= 0]
    total_runs = int(pops["runs"].sum())
    lines = [f"# Calibration {cal.name}", ""]
    if spec.description:
        lines += [spec.description.strip(), ""]
    lines += [
        f"- calibration file: `{cal.source}`; scenario: `{cal.scenario_source}` "
        f"({cal.days:g} days from {cal.scenario.start:%Y-%m-%d %H:%M}); observed: "
        + ", ".join(f"`{f}`" for f in cal.observed_files) + f" (use: {spec.observed.use})",
        f"- parameters: {len(spec.parameters)}; observations fitted: {len(cal.targets)}",
        f"- seed {spec.seed}; population {budget.population}; generations {len(gens)} of "
        f"{budget.generations}; replicates per particle {budget.replicates}; min_epsilon "
        f"{budget.min_epsilon:g}; max_runs {budget.max_runs or 'none'}",
        f"- stopped: {run.stop}",
        f"- model runs: {total_runs} evaluated by ABC-SMC (prior sample included) and "
        f"{len(run.ppc_runs)} posterior-predictive; this invocation submitted "
        f"{run.submitted_now} (with the look-ahead window's, which are dropped or cancelled)",
        f"- wall time of this invocation: {run.elapsed_s:.1f} s on {run.engine}"
        + (" (resumed)" if run.resumed else "") + "; ABC-SMC wall time of all generations: "
        f"{pops['wall_time_s'].sum():.1f} s",
        "",
        "## Generations",
        "",
        "t = -1 is the prior sample that sets the first epsilon (pyabc's calibration sample). "
        "ESS: the effective sample size of the generation's weights (1 / sum of squared "
        "normalised weights); far below the population, a few particles carry the posterior.",
        "",
    ]
    lines += _table(
        ["t", "epsilon", "accepted", "evaluated", "acceptance rate", "ESS", "runs",
         "wall time (s)"],
        [[int(r.t), _num(r.epsilon), int(r.accepted), int(r.evaluated),
          "-" if math.isnan(r.acceptance_rate) else f"{r.acceptance_rate:.1%}", _num(r.ess),
          int(r.runs), f"{r.wall_time_s:.1f}"] for r in pops.itertuples()])
    lines += ["", f"## Posterior (generation {int(gens['t'].iloc[-1])}, {len(run.posterior)} "
                  f"particles)", ""]
    lines += _table(
        ["parameter", "unit", "prior", "prior range", "mean", "median", "90% interval"],
        [[f"`{r.parameter}`", r.unit or "-", r.prior, f"{_num(r.prior_low)} .. "
          f"{_num(r.prior_high)}", _num(r.mean), _num(r.median),
          f"{_num(r.q05)} .. {_num(r.q95)}"] for r in run.summary.itertuples()])
    lines += ["", f"Scenario with the medians: `calibrated.yaml` (`badia run "
                  f"{run.calibrated}`).", "",
              "![posterior marginals](figures/marginals.png)", "",
              "![posterior pairs](figures/pairs.png)", ""]
    ppc = run.ppc
    lines += ["## Posterior-predictive check", "",
              f"{int(ppc['inside_90'].sum())} of {len(ppc)} observations inside the model's "
              f"90% band ({len(run.ppc_runs)} runs drawn from the posterior with fresh seeds). "
              f"For a minimum: inside if the band reaches it (observed <= q95) and does not lie "
              f"wholly above slack x observed; for a maximum the mirror; for approx q05 <= "
              f"observed <= q95.", ""]
    lines += _table(
        ["quantity", "period", "region", "observed", "bound", "median", "50% band",
         "90% band", "inside 90%"],
        [[r.quantity, r.period, r.region, _num(r.observed), r.bound, _num(r.q50),
          f"{_num(r.q25)} .. {_num(r.q75)}", f"{_num(r.q05)} .. {_num(r.q95)}",
          "yes" if r.inside_90 else "**no**"] for r in ppc.itertuples()])
    lines += ["", "![posterior-predictive check](figures/ppc.png)", ""]
    if run.notes:
        lines += ["## Observations left out, and notes", ""]
        lines += [f"- {n}" for n in run.notes] + [""]
    lines += [
        "## Files", "",
        "- `abc.db`: pyabc's history (SQLite; `pyabc.History('sqlite:///abc.db')`); holds the "
        "continuous parameter values (integer parameters are rounded when applied)",
        "- `calibration.json`: the calibration file, targets, seeds and versions",
        "- `posterior.csv`: the last generation's particles (values as applied), weights and "
        "distances",
        "- `posterior_summary.csv`: per parameter mean, sd, median, 5/50/95% quantiles, prior",
        "- `ppc.csv`, `ppc_runs.csv`: the posterior-predictive check and its runs",
        "- `calibrated.yaml`: the base scenario with the posterior medians",
        "- `figures/marginals.png`, `figures/pairs.png`, `figures/ppc.png`", "",
        "## Reproducibility", "",
        "The same calibration file, scenario, observed data, seed and code give the same "
        "history, posterior and outputs whatever the number of workers or the engine (local "
        "or Dask). Seeds: " + _seeds_text(), "",
    ]
    path = Path(run.out) / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _seeds_text() -> str:
    from sim.experiments.calibrate import SEEDS

    return SEEDS


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `badia calibrate`'s arguments to `parser`."""
    parser.add_argument("calibration", type=Path, help="calibration file (YAML, see "
                                                       "docs/calibration.md)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="output folder (default: results/calibration/<name>)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local worker processes (default: all cores)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on a Dask cluster, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--resume", action="store_true",
                        help="continue the calibration in DIR (its abc.db) up to the budget")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run_calibrate_command(args: argparse.Namespace) -> int:
    """`badia calibrate`: run, draw, report; returns the exit status."""
    from sim.experiments.calibrate import CalibrationStopped

    if args.workers is not None and args.workers < 1:
        print(f"badia calibrate: --workers must be at least 1, got {args.workers}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.workers is not None and args.scheduler:
        print("badia calibrate: give --workers or --scheduler, not both", file=sys.stderr)
        return EXIT_BAD_INPUT
    quiet = getattr(args, "quiet", False)
    try:
        run = calibrate(args.calibration, args.out, workers=args.workers,
                        scheduler=args.scheduler, resume=args.resume, progress=not quiet,
                        log=None if quiet else (lambda line: print(line, file=sys.stderr)))
    except ScenarioError as exc:       # CalibrationError included
        for line in exc.messages:
            print(line, file=sys.stderr)
        return EXIT_BAD_INPUT
    except CalibrationStopped as exc:
        print(f"badia calibrate: stopped early: {exc}; finished generations are kept, rerun "
              f"with --resume to continue", file=sys.stderr)
        return EXIT_STOPPED
    except KeyboardInterrupt:
        print("badia calibrate: interrupted; finished generations are kept, rerun with "
              "--resume to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    gens = run.populations[run.populations["t"] >= 0]
    medians = ", ".join(f"{p}={fmt(v)}" for p, v in run.medians.items())
    print(f"{run.out}: {len(gens)} generation(s), final epsilon "
          f"{gens['epsilon'].iloc[-1]:.3g} ({run.stop}); posterior medians {medians}; "
          f"{int(run.ppc['inside_90'].sum())} of {len(run.ppc)} observations inside the 90% "
          f"band; see {run.out / 'report.md'}")
    return EXIT_OK
