"""An analyst's starting point: load a results folder, print a table, make two figures.

    badia batch experiments/quick.yaml --out results/quick
    python experiments/analysis_example.py results/quick            # -> results/quick/analysis/

Copy it (or paste the body into a notebook) and change the metric, the factor and the figures.
Every `sim.analysis.figures.plot_*` function returns a matplotlib Figure, so you can restyle it,
add to it, or `fig.savefig(...)` it anywhere; `sim.analysis.statistics.summarise` and
`main_effects` return pandas DataFrames with the numbers behind them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from sim.analysis import figures, statistics
from sim.errors import ResultsError
from sim.experiments.results import load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, nargs="?", default=Path("results/quick"),
                        help="a results folder from `badia batch` (default: results/quick)")
    parser.add_argument("--out", type=Path, help="where the PNGs go (default: RESULTS/analysis)")
    parser.add_argument("--metric", default="losses__government_total",
                        help="the summary metric to look at")
    args = parser.parse_args(argv)
    try:
        res = load(args.results)
        statistics.check_metrics(res, [args.metric])
    except ResultsError as exc:
        print(f"analysis_example: {exc}", file=sys.stderr)
        return 1
    out = args.out or args.results / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    metric = args.metric

    # 1. A table: the metric per design point with 95% confidence intervals
    table = statistics.summarise(res, [metric])
    cols = [*res.factors, "n_runs", "mean", "ci_low", "ci_high", "median", "interval"]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(f"{metric} by design point ({res.manifest['name']}):")
        print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))

    # 2. Main effects of every factor on the metric, as a slide
    fig = figures.plot_main_effects(res, metric)
    figures.save_figure(fig, out / f"main_effects_{metric}.png")

    # 3. Where the government lost fighters, at the design point where it lost most
    worst = int(table.sort_values("mean", ascending=False)["point_id"].iloc[0])
    faction = metric.removeprefix("losses__").removesuffix("_total")
    weight = f"losses.{faction}" if f"losses.{faction}" in res.events.columns else None
    fig = figures.plot_event_map(res, worst, types=("engagement",), weight=weight,
                                title=f"fighters lost, {faction}" if weight else "engagements")
    figures.save_figure(fig, out / f"event_map_point_{worst}.png")
    print(f"wrote {out}/main_effects_{metric}.png and {out}/event_map_point_{worst}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
