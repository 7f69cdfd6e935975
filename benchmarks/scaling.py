"""How a theatre run's cost grows with its units, its cells and its length.

Three sweeps from the theatre (``scenarios/badia_theatre.yaml``, 325 units, 1 km cells), each
varying one thing: the units (every unit entry's count times x1, x2, x4, x10), the cell size
(1, 0.5, 0.25 km: 1x, 4x, 16x the cells; `--set map.cell_km=...`) and the run's length (30, 90,
365 days). Each row runs in a fresh process (so its peak memory is its own): it builds the model
(timed; the terrain comes from the disk cache after a row's first repeat), runs a warm-up day
with another seed as `step_speed.py` does, then times the run interleaved with Mesa's Epstein
example (`_common.interleaved`). Rows are repeated round-robin (`--repeats`, 3 by default) and
printed as min/median/max of:

- unit-hours/s (every unit slot, every hour) and its ratio to Epstein's agent-steps/s,
- ms per simulated hour,
- peak RSS of the row's process (MB) and the model build (s),

and per sweep the fitted growth exponent b of ms per simulated hour ~ x^b (least squares on
the logs of the medians; x = units, cells or days: b = 1 is linear, b = 0 flat).

    .venv/bin/python benchmarks/scaling.py            # the three sweeps, 3 repeats (minutes)
    .venv/bin/python benchmarks/scaling.py --quick    # smaller sweeps, 1 repeat
    .venv/bin/python benchmarks/scaling.py --units 1 10 --cells --days   # only x1 and x10

The cell sweep runs `--cell-days` days (3 by default): a finer theatre's first days, when the
route searches to every base and patrol point happen, are its dearest.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import yaml
from _common import THEATRE, epstein, interleaved, peak_rss_mb, theatre_models

BASE = {"units": 1, "cell_km": 1.0, "days": 30.0}


def unit_overrides(factor: int) -> list[str]:
    """`--set` overrides multiplying every unit entry's count by `factor`."""
    if factor == 1:
        return []
    units = yaml.safe_load(THEATRE.read_text())["units"]
    return [f"units[{i}].count={int(u.get('count', 1)) * factor}" for i, u in enumerate(units)]


def run_row(units: int, cell_km: float, days: float, seed: int) -> dict:
    """One row in this process: build, warm up, time interleaved with Epstein."""
    overrides = [f"days={days}", f"map.cell_km={cell_km}", *unit_overrides(units)]
    build_s, ours = theatre_models(overrides, seed)
    hours = int(days * 24)
    t = interleaved(ours.run_for_hours, hours, epstein())
    uh_s = ours.force.n * hours / t.ours_s
    return {"units": units, "cell_km": cell_km, "days": days, "n_units": ours.force.n,
            "cells": ours.terrain.grid.size, "build_s": build_s,
            "unit_hours_per_s": uh_s, "ratio": uh_s / t.agent_steps_per_second,
            "ms_per_hour": 1000.0 * t.ours_s / hours, "peak_rss_mb": peak_rss_mb()}


def row_in_subprocess(units: int, cell_km: float, days: float, seed: int) -> dict:
    cmd = [sys.executable, __file__, "--row", str(units), str(cell_km), str(days),
           "--seed", str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=Path.cwd())
    return json.loads(out.stdout.strip().splitlines()[-1])


def growth_exponent(xs: list[float], ys: list[float]) -> float:
    """b of y ~ a * x^b, least squares on log y = log a + b log x."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum(
        (a - mx) ** 2 for a in lx)


def spread(values: list[float], fmt: str) -> str:
    """min/median/max, or the value alone for one repeat."""
    if len(values) == 1:
        return format(values[0], fmt)
    return "/".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="units x1 x2 x4, 1 and 0.5 km, 10 and 30 days; one repeat")
    ap.add_argument("--units", type=int, nargs="*", default=None, help="unit factors")
    ap.add_argument("--cells", type=float, nargs="*", default=None, help="cell sizes, km")
    ap.add_argument("--days", type=float, nargs="*", default=None, help="run lengths, days")
    ap.add_argument("--cell-days", type=float, default=None, help="days of the cell sweep")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--row", nargs=3, metavar=("UNITS", "CELL_KM", "DAYS"),
                    help=argparse.SUPPRESS)     # one row, printed as JSON (the sweep's child)
    args = ap.parse_args()
    if args.row:
        u, c, d = args.row
        print(json.dumps(run_row(int(u), float(c), float(d), args.seed)))
        return
    q = args.quick
    units = args.units if args.units is not None else ([1, 2, 4] if q else [1, 2, 4, 10])
    cells = args.cells if args.cells is not None else ([1.0, 0.5] if q else [1.0, 0.5, 0.25])
    days = args.days if args.days is not None else ([10.0, 30.0] if q else [30.0, 90.0, 365.0])
    cell_days = args.cell_days if args.cell_days is not None else (2.0 if q else 3.0)
    repeats = args.repeats if args.repeats is not None else (1 if q else 3)
    sweeps = {
        "units": [(u, BASE["cell_km"], BASE["days"]) for u in units],
        "cells": [(BASE["units"], c, cell_days) for c in cells],
        "days": [(BASE["units"], BASE["cell_km"], d) for d in days],
    }
    rows = list(dict.fromkeys(r for sweep in sweeps.values() for r in sweep))
    results: dict[tuple, list[dict]] = {r: [] for r in rows}
    for rep in range(repeats):       # round-robin: each repeat meets the machine's other load
        for r in rows:
            results[r].append(row_in_subprocess(*r, seed=args.seed))
            print(f"  repeat {rep + 1}/{repeats}: units x{r[0]}, {r[1]} km, {r[2]:g} days",
                  file=sys.stderr)
    print(f"{'row':<22} {'units':>6} {'cells':>9} {'unit-h/s':>26} {'ratio':>16} "
          f"{'ms/hour':>20} {'peak MB':>16} {'build s':>16}")
    for name, sweep in sweeps.items():
        print(f"-- {name}")
        xs, ys = [], []
        for r in sweep:
            res = results[r]
            first = res[0]
            label = f"x{r[0]} {r[1]:g} km {r[2]:g} d"
            print(f"{label:<22} {first['n_units']:>6} {first['cells']:>9} "
                  f"{spread([x['unit_hours_per_s'] for x in res], ',.0f'):>26} "
                  f"{spread([x['ratio'] for x in res], '.2f'):>16} "
                  f"{spread([x['ms_per_hour'] for x in res], '.2f'):>20} "
                  f"{spread([x['peak_rss_mb'] for x in res], '.0f'):>16} "
                  f"{spread([x['build_s'] for x in res], '.2f'):>16}")
            xs.append({"units": first["n_units"], "cells": first["cells"], "days": r[2]}[name])
            ys.append(statistics.median(x["ms_per_hour"] for x in res))
        if len(xs) > 1:
            print(f"   growth exponent of ms per simulated hour in {name}: "
                  f"{growth_exponent(xs, ys):.2f}")


if __name__ == "__main__":
    main()
