"""Analysis of a results folder: tables with confidence intervals, figures, one HTML report.

`badia report RESULTS_DIR` writes a self-contained folder (default `RESULTS_DIR/report`)::

    index.html          experiment, design, run counts, tables and figures (inline CSS only)
    figures/*.png       main effects, interactions, daily series, event maps, sensitivity
    tables/*.csv        the same numbers as the HTML tables, for a spreadsheet

The statistics are small pure functions over numpy/pandas (`t_interval`, `wilson_interval`,
`welch_interval`, `summarise`, `main_effects`, `regression_coefficients`, `compare`); the
figures live in `sim.analysis.figures` and are re-exported here (`plot_main_effects` ...), each returning
a matplotlib Figure so an analyst can build their own in a notebook.

Confidence intervals (95 % unless asked otherwise):

- a mean over runs: Student t, mean +- t(n-1) s / sqrt(n);
- a share of counted trials (`PROPORTION_COUNTS`, e.g. attacks succeeded per attack attempted):
  Wilson score interval on the counts pooled over the runs. The trials of one run are not
  independent (a cell that wins once tends to win again), so this interval is a lower bound on
  the uncertainty; the t-interval on per-run rates is used when the counts are inconsistent;
- a main effect or interaction cell: the equal-weight mean of the design points' means, with a
  Welch-Satterthwaite t-interval from the replicate variances (run-level t when points have a
  single replicate or a continuous factor is binned);
- a difference of two experiments: Welch's t-interval on the difference of means.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.figures import (
    DPI,
    SLIDE_INCHES,
    factor_label,
    level_text,
    metric_label,
    metric_title,
    plot_compare,
    plot_event_map,
    plot_event_maps,
    plot_interaction,
    plot_main_effects,
    plot_sensitivity,
    plot_timeseries,
    point_label,
    save_figure,
)
from sim.errors import ResultsError, ScenarioError, did_you_mean
from sim.experiments.results import Results, load

#: Summary metrics that are shares of counted trials: metric -> (successes column, trials
#: column). A successes column of None means successes = metric x trials (a fraction of a
#: counted set, e.g. raids started at night of raids started).
PROPORTION_COUNTS: dict[str, tuple[str | None, str]] = {
    "attack_success_rate": ("attacks_succeeded_total", "attacks_attempted_total"),
    "raids_started_at_night_fraction": (None, "raids_started"),
}

#: Default metrics, in the order the report shows them ("*" matches a faction or road name).
DEFAULT_METRIC_PATTERNS: tuple[str, ...] = (
    "attacks_attempted_total", "attacks_succeeded_total", "attack_success_rate",
    "losses__*_total",
    "road_closed_hours_total", "roads_open_fraction_mean",
    "coverage_road_night_mean", "coverage_area_night_mean",
    "coverage_road_day_mean", "coverage_area_day_mean",
    "border_crossings_total", "crossings_intercepted", "insurgent_units_found_fraction",
    "raid_attempted_total", "raid_succeeded_total", "ambush_attempted_total",
    "ambush_succeeded_total", "seizure_attempted_total", "seizure_succeeded_total",
    "engagements_total",
)
MAX_DEFAULT_METRICS = 12
#: Design points drawn in time series and event maps unless --points says otherwise.
MAX_SHOWN_POINTS = 6
#: Above this many design points the HTML shows all-run tables only (the CSV has every point).
MAX_HTML_POINTS = 30
#: Metrics with a heatmap per factor pair (the first kept ones).
HEADLINE_METRICS = 3
#: Daily metrics drawn as time series (the first kept ones with a daily column).
MAX_SERIES = 4
#: Factor pairs with heatmaps (from the most influential factors when there are more).
MAX_PAIRS = 3


# --------------------------------------------------------------------------------------------
# Intervals
# --------------------------------------------------------------------------------------------


def _t_quantile(q: float, df: float) -> float:
    # scipy.stats is imported on first use: `badia --help` and every other subcommand
    # import this module to build the parser, and scipy.stats costs half a second
    from scipy.stats import t

    return float(t.ppf(q, df))


def _normal_quantile(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def _finite(values: Any) -> np.ndarray:
    a = np.asarray(values, dtype=float).ravel()
    return a[np.isfinite(a)]


def t_interval(values: Any, level: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean of `values` (NaNs dropped).

    mean +- t_{(1+level)/2, n-1} * s / sqrt(n), with s the sample standard deviation.
    (nan, nan) with fewer than two values; a zero-width interval if they are all equal.
    """
    x = _finite(values)
    n = len(x)
    if n < 2:
        return (math.nan, math.nan)
    mean = float(x.mean())
    half = _t_quantile(0.5 + level / 2, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return (mean - half, mean + half)


def wilson_interval(successes: Any, n: Any, level: float = 0.95) -> tuple[Any, Any]:
    """Wilson score interval of a proportion: `successes` of `n` trials (scalars or arrays).

    centre = (p + z^2/2n) / (1 + z^2/n), half = z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n),
    with p = successes/n and z the normal quantile at (1+level)/2. NaN where n == 0.
    """
    k = np.asarray(successes, dtype=float)
    m = np.asarray(n, dtype=float)
    if np.any(k < 0) or np.any(k > m):
        raise ValueError("wilson_interval: successes must lie in 0..n")
    z = _normal_quantile(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / m
        denom = 1.0 + z * z / m
        centre = (p + z * z / (2 * m)) / denom
        half = z * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / denom
        lo = np.where(m > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
        hi = np.where(m > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    if lo.ndim == 0:
        return (float(lo), float(hi))
    return (lo, hi)


def welch_interval(a: Any, b: Any, level: float = 0.95) -> tuple[float, float, float]:
    """(difference of means a - b, lower, upper): Welch's t-interval (unequal variances).

    The degrees of freedom are Welch-Satterthwaite's; NaN bounds if either sample has fewer
    than two values; a zero-width interval if both samples are constant.
    """
    x, y = _finite(a), _finite(b)
    if len(x) == 0 or len(y) == 0:
        return (math.nan, math.nan, math.nan)
    diff = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return (diff, math.nan, math.nan)
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se2 = va + vb
    if se2 == 0:
        return (diff, diff, diff)
    df = se2**2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))
    half = _t_quantile(0.5 + level / 2, df) * math.sqrt(se2)
    return (diff, diff - half, diff + half)


# --------------------------------------------------------------------------------------------
# Which runs, which metrics
# --------------------------------------------------------------------------------------------


#: id(results) -> (results.runs, results.design, ok runs with design): a report asks for the
#: same table hundreds of times; the frames' identities tell when a Results was changed.
_OK_CACHE: dict[int, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]] = {}


def _hashable(value: Any) -> Any:
    """A factor level that pandas can group by: lists and mappings become their text."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(_hashable(v)) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def design_table(results: Results) -> pd.DataFrame:
    """`results.design` with list- or mapping-valued levels (a route, say) as text, so every
    factor column can be grouped and compared."""
    design = results.design
    if all(not isinstance(v, (list, tuple, dict)) for f in results.factors for v in design[f]):
        return design
    out = design.copy()
    for f in results.factors:
        out[f] = out[f].map(_hashable)
    return out


def ok_runs(results: Results) -> pd.DataFrame:
    """The finished runs (status "ok") with their design point's factor columns."""
    hit = _OK_CACHE.get(id(results))
    if hit is not None and hit[0] is results.runs and hit[1] is results.design:
        return hit[2]
    runs = results.runs
    if "status" in runs.columns:
        runs = runs[runs["status"] == "ok"]
    df = runs.reset_index(drop=True).merge(design_table(results), on="point_id", how="left",
                                           validate="many_to_one")
    if len(_OK_CACHE) > 16:
        _OK_CACHE.clear()
    _OK_CACHE[id(results)] = (results.runs, results.design, df)
    return df


def metric_columns(results: Results) -> list[str]:
    """Every numeric summary metric column of `results.runs`."""
    skip = {"run_id", "point_id", "replicate", "seed", "status", "days"}
    return [c for c in results.runs.columns
            if c not in skip and pd.api.types.is_numeric_dtype(results.runs[c])]


def _varies(values: pd.Series) -> bool:
    v = values.dropna()
    return len(v) > 1 and v.nunique() > 1


def default_metrics(results: Results) -> list[str]:
    """A sensible set of summary metrics: those of `DEFAULT_METRIC_PATTERNS` that exist, are
    not all NaN, vary across runs and are not an exact copy of one listed before them."""
    import fnmatch

    runs = ok_runs(results)
    available = metric_columns(results)
    chosen: list[str] = []
    for pattern in DEFAULT_METRIC_PATTERNS:
        for name in sorted(fnmatch.filter(available, pattern)):
            if name in chosen or not _varies(runs[name]):
                continue
            col = runs[name].to_numpy(dtype=float)
            if any(np.array_equal(col, runs[c].to_numpy(dtype=float), equal_nan=True)
                   for c in chosen):
                continue   # e.g. raids attempted == attacks attempted when raids are all
            chosen.append(name)
    return chosen[:MAX_DEFAULT_METRICS]


def check_metrics(results: Results, metrics: Sequence[str]) -> list[str]:
    """`metrics` if every one is a summary metric of `results`, else ResultsError naming the
    first unknown one (with a did-you-mean)."""
    available = metric_columns(results)
    for m in metrics:
        if m not in available:
            raise ResultsError(f"{results.path}: no summary metric {m!r} in the runs"
                               f"{did_you_mean(m, available)}")
    return list(metrics)


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalChoice:
    """How a metric's confidence interval is computed: "t" or "wilson" (with the count
    columns), and why."""

    kind: str
    successes: str | None = None
    trials: str | None = None
    note: str = ""


def interval_choice(runs: pd.DataFrame, metric: str) -> IntervalChoice:
    """Wilson for a metric of `PROPORTION_COUNTS` whose counts are consistent in every run
    (whole numbers, 0 <= successes <= trials); otherwise the t-interval, with the reason."""
    if metric not in PROPORTION_COUNTS:
        return IntervalChoice("t")
    succ_col, trials_col = PROPORTION_COUNTS[metric]
    need = [c for c in (succ_col, trials_col) if c is not None]
    missing = [c for c in need if c not in runs.columns]
    if missing:
        return IntervalChoice("t", note=f"counts not stored ({missing[0]})")
    k, n = _counts(runs, metric, succ_col, trials_col)
    ok = n > 0
    whole = np.all(np.abs(k[ok] - np.round(k[ok])) < 1e-6) and np.all(
        np.abs(n[ok] - np.round(n[ok])) < 1e-6)
    bad = int(np.sum((k[ok] < 0) | (k[ok] > n[ok] + 1e-9)))
    if bad:
        return IntervalChoice("t", note=f"not a proportion: {succ_col} exceeds {trials_col} "
                                        f"in {bad} run(s)")
    if not whole:
        return IntervalChoice("t", note="counts are not whole numbers")
    return IntervalChoice("wilson", succ_col, trials_col)


def _counts(runs: pd.DataFrame, metric: str, succ_col: str | None, trials_col: str
            ) -> tuple[np.ndarray, np.ndarray]:
    n = runs[trials_col].to_numpy(dtype=float)
    n = np.where(np.isfinite(n), n, 0.0)
    if succ_col is None:
        k = np.round(runs[metric].to_numpy(dtype=float) * n, 6)
    else:
        k = runs[succ_col].to_numpy(dtype=float)
    k = np.where(n > 0, np.where(np.isfinite(k), k, 0.0), 0.0)
    return k, n


def metric_bounds(metric: str, values: Any) -> tuple[float, float]:
    """The range a metric can take, for clipping intervals: at least 0 if no run is negative
    (counts, hours, fractions); at most 1 for fractions and coverages that stay within 1.
    A t-interval of a mean near a bound can cross it; the clipped interval is still a valid
    (conservative) interval of the mean."""
    x = _finite(values)
    lo = 0.0 if len(x) and x.min() >= 0 else -math.inf
    share = "fraction" in metric or metric.startswith("coverage")
    hi = 1.0 if share and len(x) and x.max() <= 1 else math.inf
    return lo, hi


def _clip(lo: float, hi: float, bounds: tuple[float, float]) -> tuple[float, float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return lo, hi
    return max(lo, bounds[0]), min(hi, bounds[1])


def _describe(values: np.ndarray, level: float,
              bounds: tuple[float, float] = (-math.inf, math.inf)) -> dict[str, float]:
    x = _finite(values)
    if len(x) == 0:
        return {"n_runs": 0, "mean": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "std": math.nan, "median": math.nan, "p5": math.nan, "p95": math.nan}
    lo, hi = _clip(*t_interval(x, level), bounds)
    p5, med, p95 = np.percentile(x, [5, 50, 95])
    return {"n_runs": len(x), "mean": float(x.mean()), "ci_low": lo, "ci_high": hi,
            "std": float(x.std(ddof=1)) if len(x) > 1 else math.nan,
            "median": float(med), "p5": float(p5), "p95": float(p95)}


def _summary_rows(runs: pd.DataFrame, metric: str, choice: IntervalChoice, level: float,
                  bounds: tuple[float, float]) -> dict[str, Any]:
    row = _describe(runs[metric].to_numpy(dtype=float), level, bounds)
    row.update(interval="t", successes=math.nan, trials=math.nan)
    if choice.kind == "wilson":
        k, n = _counts(runs, metric, choice.successes, choice.trials)
        ks, ns = float(k.sum()), float(n.sum())
        row.update(successes=ks, trials=ns, interval="wilson")
        if ns > 0:
            lo, hi = wilson_interval(ks, ns, level)
            row.update(mean=ks / ns, ci_low=lo, ci_high=hi)
    if choice.note:
        row["interval"] = f"{row['interval']} ({choice.note})"
    return row


def summarise(results: Results, metrics: Sequence[str], level: float = 0.95,
              by_point: bool = True) -> pd.DataFrame:
    """Per design point (or over all runs with `by_point=False`) and metric: the number of
    runs with a value, the mean, its confidence interval, the median and 5th/95th percentiles.

    Columns: [point_id, factor columns,] metric, n_runs, mean, ci_low, ci_high, interval,
    successes, trials, std, median, p5, p95. `interval` says which interval was used: "t"
    (mean of the runs) or "wilson" (for shares of counted trials, `PROPORTION_COUNTS`: then
    `mean` is the pooled share successes/trials and the interval is Wilson's on those
    counts); a note in brackets says why a share fell back to "t". Intervals are clipped
    to the metric's possible range (`metric_bounds`: at least 0, at most 1 for fractions).
    """
    runs = ok_runs(results)
    rows = []
    for metric in metrics:
        choice = interval_choice(runs, metric)
        bounds = metric_bounds(metric, runs[metric])
        if by_point:
            for pid, group in runs.groupby("point_id", sort=True):
                rows.append({"point_id": int(pid), "metric": metric,
                             **_summary_rows(group, metric, choice, level, bounds)})
        else:
            rows.append({"metric": metric,
                         **_summary_rows(runs, metric, choice, level, bounds)})
    cols = ["metric", "n_runs", "mean", "ci_low", "ci_high", "interval", "successes", "trials",
            "std", "median", "p5", "p95"]
    if not by_point:
        return pd.DataFrame(rows, columns=cols)
    df = pd.DataFrame(rows, columns=["point_id", *cols])
    df = df.merge(design_table(results), on="point_id", how="left")
    return df[["point_id", *results.factors, *cols]]


# --------------------------------------------------------------------------------------------
# Effects
# --------------------------------------------------------------------------------------------


def is_numeric_factor(values: pd.Series) -> bool:
    """True if every value of a factor column is a number (not a bool)."""
    return all(isinstance(v, (int, float, np.integer, np.floating))
               and not isinstance(v, (bool, np.bool_)) for v in values.dropna())


def is_continuous_factor(results: Results, factor: str, max_levels: int = 8) -> bool:
    """True if a factor is best read on bins: a continuous `range` in the experiment, or
    more than `max_levels` distinct numbers (a long integer range, many levels)."""
    spec = ((results.manifest.get("experiment") or {}).get("factors") or {}).get(factor) or {}
    col = design_table(results)[factor]
    if not is_numeric_factor(col):
        return False
    if spec.get("range") is not None and not spec.get("integer"):
        return col.nunique() > 2
    return col.nunique() > max_levels


def factor_levels(results: Results, factor: str, max_levels: int = 8, bins: int = 5
                  ) -> tuple[pd.Series, list[Any], bool]:
    """(level of each design point, the ordered levels, binned?) for `factor`.

    A continuous factor (`is_continuous_factor`) is cut into `bins` quantile bins of the
    design points, each labelled by the mean of its values.
    """
    col = design_table(results).set_index("point_id")[factor]
    distinct = list(pd.unique(col))
    if is_continuous_factor(results, factor, max_levels):
        bins = min(bins, len(distinct))
        codes = pd.qcut(col.astype(float).rank(method="first"), q=bins, labels=False)
        centres = col.astype(float).groupby(codes).mean()
        level = codes.map(lambda c: float(centres[c]))
        return level, [float(centres[c]) for c in sorted(centres.index)], True
    if is_numeric_factor(col):
        distinct = sorted(distinct, key=float)
    return col, distinct, False


def _grouped_effect(runs: pd.DataFrame, metric: str, by: list[str], binned: bool,
                    level: float) -> pd.DataFrame:
    """Mean and CI of `metric` per group of `by` (see `main_effects` for the method)."""
    d = runs[[*by, "point_id", metric]].copy()
    d[metric] = d[metric].astype(float)
    d = d[np.isfinite(d[metric].to_numpy())]
    # one row per (group, design point): the point's mean, variance and replicate count
    pts = d.groupby([*by, "point_id"], sort=False, dropna=False)[metric].agg(
        ["mean", "var", "count"]).reset_index()
    whole = d.groupby(by, sort=False, dropna=False)[metric].agg(["mean", "var", "count"])
    bounds = metric_bounds(metric, d[metric])
    rows = []
    for key, g in pts.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        n_runs = int(g["count"].sum())
        if not binned and (g["count"] >= 2).all():
            means, var_mean = g["mean"].to_numpy(), (g["var"] / g["count"]).to_numpy()
            k = len(g)
            mean, var = float(means.mean()), float(var_mean.sum()) / k**2
            if var > 0:
                df = var_mean.sum() ** 2 / np.sum(var_mean**2 / (g["count"].to_numpy() - 1))
                half = _t_quantile(0.5 + level / 2, df) * math.sqrt(var)
            else:
                half = 0.0
            lo, hi = mean - half, mean + half
            method = "point means, Welch-Satterthwaite t"
        else:
            st = whole.loc[key if len(by) > 1 else key[0]]
            mean = float(st["mean"])
            if n_runs >= 2:
                sd = math.sqrt(float(st["var"]))
                half = _t_quantile(0.5 + level / 2, n_runs - 1) * sd / math.sqrt(n_runs)
                lo, hi = mean - half, mean + half
            else:
                lo = hi = math.nan
            method = "runs, t"
        lo, hi = _clip(lo, hi, bounds)
        rows.append({**dict(zip(by, key, strict=True)), "mean": mean, "ci_low": lo,
                     "ci_high": hi, "n_points": len(g), "n_runs": n_runs, "ci_method": method})
    return pd.DataFrame(rows, columns=[*by, "mean", "ci_low", "ci_high", "n_points", "n_runs",
                                       "ci_method"])


def main_effects(results: Results, metric: str, factor: str, level: float = 0.95
                 ) -> pd.DataFrame:
    """Main effect of `factor` on `metric`: for each level, the mean over the other factors'
    levels (equal weight per design point) and its confidence interval across replicates.

    Columns: level, mean, ci_low, ci_high, n_points, n_runs, ci_method, binned.
    """
    check_metrics(results, [metric])
    if factor not in results.factors:
        raise ResultsError(f"{results.path}: no factor {factor!r}"
                           f"{did_you_mean(factor, results.factors)}")
    point_level, levels, binned = factor_levels(results, factor)
    runs = ok_runs(results)
    runs = runs.assign(level=runs["point_id"].map(point_level))
    df = _grouped_effect(runs, metric, ["level"], binned, level)
    order = {lv: i for i, lv in enumerate(levels)}
    df = df.assign(_o=df["level"].map(order)).sort_values("_o").drop(columns="_o")
    return df.assign(binned=binned).reset_index(drop=True)


def interaction_table(results: Results, metric: str, factor_x: str, factor_y: str,
                      level: float = 0.95) -> pd.DataFrame:
    """Mean of `metric` for each pair of levels of two factors (averaged over the others),
    with CIs as in `main_effects`. Columns: x, y, mean, ci_low, ci_high, n_points, n_runs,
    ci_method; numeric factors with many values are binned into 4 quantile bins."""
    check_metrics(results, [metric])
    px, lx, bx = factor_levels(results, factor_x, bins=4)
    py, ly, by_ = factor_levels(results, factor_y, bins=4)
    runs = ok_runs(results)
    runs = runs.assign(x=runs["point_id"].map(px), y=runs["point_id"].map(py))
    df = _grouped_effect(runs, metric, ["x", "y"], bx or by_, level)
    df.attrs["x_levels"], df.attrs["y_levels"] = lx, ly
    df.attrs["x_binned"], df.attrs["y_binned"] = bx, by_
    return df


def _design_matrix(results: Results, runs: pd.DataFrame
                   ) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """Columns of the regressors: numeric factors as they are, categorical ones as 0/1
    indicators against their first level. Returns (X, term names, factor of each term,
    baseline level of each term ("" for numeric factors))."""
    cols, terms, owners, bases = [], [], [], []
    for f in results.factors:
        values = runs[f]
        if is_numeric_factor(values):
            cols.append(values.to_numpy(dtype=float))
            terms.append(f)
            owners.append(f)
            bases.append("")
        else:
            levels = list(pd.unique(design_table(results)[f]))
            for lv in levels[1:]:
                cols.append((values.astype(str) == str(lv)).to_numpy(dtype=float))
                terms.append(f"{f} = {lv}")
                owners.append(f)
                bases.append(str(levels[0]))
    x = np.column_stack(cols) if cols else np.empty((len(runs), 0))
    return x, terms, owners, bases


def regression_coefficients(results: Results, metric: str, level: float = 0.95
                            ) -> pd.DataFrame:
    """Standardised regression coefficients of `metric` (per run) on the factors.

    An ordinary least-squares fit of the standardised metric on standardised regressors
    (numeric factors, and 0/1 indicators for the levels of categorical ones). A coefficient
    is the change in the metric, in standard deviations, per standard deviation of the
    factor; the t-interval uses the fit's residual variance. Columns: term, factor,
    baseline (the level an indicator is against), src, ci_low, ci_high, r2, n_runs. Empty if
    the metric is constant or there are too few runs.
    """
    check_metrics(results, [metric])
    runs = ok_runs(results)
    runs = runs[np.isfinite(runs[metric].to_numpy(dtype=float))]
    x, terms, owners, bases = _design_matrix(results, runs)
    y = runs[metric].to_numpy(dtype=float)
    cols = ["term", "factor", "baseline", "src", "ci_low", "ci_high", "r2", "n_runs"]
    keep = x.std(axis=0) > 0 if x.shape[1] else np.array([], dtype=bool)
    x = x[:, keep]
    terms = [t for t, k in zip(terms, keep, strict=True) if k]
    owners = [o for o, k in zip(owners, keep, strict=True) if k]
    bases = [o for o, k in zip(bases, keep, strict=True) if k]
    n, p = x.shape
    if p == 0 or n <= p + 1 or y.std() == 0:
        return pd.DataFrame(columns=cols)
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    zy = (y - y.mean()) / y.std(ddof=1)
    a = np.column_stack([np.ones(n), z])
    beta, *_ = np.linalg.lstsq(a, zy, rcond=None)
    resid = zy - a @ beta
    dof = n - p - 1
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.pinv(a.T @ a)
    se = np.sqrt(np.diag(cov))[1:]
    tq = _t_quantile(0.5 + level / 2, dof)
    r2 = 1.0 - float(resid @ resid) / float(((zy - zy.mean()) ** 2).sum())
    b = beta[1:]
    return pd.DataFrame({"term": terms, "factor": owners, "baseline": bases, "src": b,
                         "ci_low": b - tq * se,
                         "ci_high": b + tq * se, "r2": r2, "n_runs": n}, columns=cols)


def is_sobol(results: Results) -> bool:
    """True if the experiment used a Sobol' (Saltelli) design."""
    return bool(results.manifest.get("design", {}).get("sobol"))


def sensitivity(results: Results, metric: str, level: float = 0.95) -> pd.DataFrame:
    """Sensitivity of `metric` to each factor.

    Sobol' designs: first-order and total indices with SALib's confidence intervals
    (`sim.experiments.results.sobol_indices`); columns factor, S1, S1_conf, ST, ST_conf, method="sobol".
    Other designs: `regression_coefficients` with method="src".
    """
    if is_sobol(results):
        from sim.experiments.results import sobol_indices

        df = sobol_indices(results, metric)
        return df.assign(method="sobol")
    return regression_coefficients(results, metric, level).assign(method="src")


def factor_importance(results: Results, metric: str) -> list[str]:
    """The factors ordered by their influence on `metric` (total Sobol' index, else the
    largest |SRC| of their terms); ties and failures keep the design order."""
    try:
        df = sensitivity(results, metric)
    except (ResultsError, ValueError, np.linalg.LinAlgError):
        return list(results.factors)
    if df.empty:
        return list(results.factors)
    if "ST" in df.columns:
        score = df.set_index("factor")["ST"]
    else:
        score = df.assign(a=df["src"].abs()).groupby("factor")["a"].max()
    score = score.reindex(results.factors).fillna(-1.0)
    return sorted(results.factors, key=lambda f: (-score[f], results.factors.index(f)))


# --------------------------------------------------------------------------------------------
# Daily series and events
# --------------------------------------------------------------------------------------------


def daily_column(results: Results, metric: str) -> tuple[str, bool] | None:
    """(daily column, cumulative?) behind a summary metric: `x_total` -> cumulative `x`;
    `x_mean` and `x_end` -> the daily `x`; None if the daily rows do not hold it."""
    for suffix, cumulative in (("_total", True), ("_mean", False), ("_end", False)):
        if metric.endswith(suffix):
            name = metric[: -len(suffix)]
            if name in results.daily.columns:
                return name, cumulative
    if metric in results.daily.columns and metric not in ("day", "run_id", "point_id"):
        return metric, False
    return None


def daily_bands(results: Results, column: str, points: Sequence[int] | None = None,
                cumulative: bool = False, level: float = 0.95) -> pd.DataFrame:
    """Per design point and day: mean over replicates of a daily column (its running total
    with `cumulative`), the CI of that mean, and the 5th/95th percentiles.

    Columns: point_id, day, mean, ci_low, ci_high, p5, p95, n_runs. Only finished runs.
    """
    if column not in results.daily.columns:
        raise ResultsError(f"{results.path}: no daily column {column!r}"
                           f"{did_you_mean(column, results.daily.columns)}")
    ok = set(ok_runs(results)["run_id"])
    d = results.daily[results.daily["run_id"].isin(ok)]
    if points is not None:
        d = d[d["point_id"].isin(list(points))]
    d = d.sort_values(["run_id", "day"])[["run_id", "point_id", "day", column]].copy()
    if cumulative:
        d[column] = d.groupby("run_id")[column].cumsum()
    rows = []
    bounds = metric_bounds(column, d[column])
    for (pid, day), g in d.groupby(["point_id", "day"], sort=True):
        desc = _describe(g[column].to_numpy(dtype=float), level, bounds)
        rows.append({"point_id": int(pid), "day": int(day), "mean": desc["mean"],
                     "ci_low": desc["ci_low"], "ci_high": desc["ci_high"], "p5": desc["p5"],
                     "p95": desc["p95"], "n_runs": desc["n_runs"]})
    return pd.DataFrame(rows, columns=["point_id", "day", "mean", "ci_low", "ci_high", "p5",
                                       "p95", "n_runs"])


def select_points(results: Results, metric: str | None, k: int = MAX_SHOWN_POINTS) -> list[int]:
    """All design points if there are at most `k`; else the k//2 with the lowest and the
    k - k//2 with the highest mean of `metric` (the extremes are what a briefing shows)."""
    pids = sorted(int(p) for p in results.design["point_id"])
    if len(pids) <= k:
        return pids
    if metric is None:
        return pids[:k]
    means = ok_runs(results).groupby("point_id")[metric].mean().dropna().sort_values()
    if len(means) <= k:
        return sorted(int(p) for p in means.index)
    low = list(means.index[: k // 2])
    high = list(means.index[len(means) - (k - k // 2):])
    return sorted(int(p) for p in low + high)


#: Event maps: name -> (event types, weight column prefix or None).
def event_layers(results: Results) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """The event maps a report draws: engagements, detections (if the log has any) and
    fighters lost per faction (engagements weighted by their `losses.<faction>` columns)."""
    ev = results.events
    types = set(ev["type"].dropna().unique()) if "type" in ev.columns else set()
    layers: dict[str, tuple[tuple[str, ...], str | None]] = {}
    if "engagement" in types:
        layers["engagements"] = (("engagement",), None)
    detect = tuple(t for t in ("detection", "cordon_sighting", "crossing_intercepted")
                   if t in types)
    if detect:
        layers["detections"] = (detect, None)
    for col in sorted(c for c in ev.columns if c.startswith("losses.")):
        if pd.to_numeric(ev[col], errors="coerce").fillna(0).sum() > 0:
            layers[f"fighters lost, {col.split('.', 1)[1]}"] = (("engagement",), col)
    if not any(w for _, w in layers.values()) and "loss" in types:
        layers["units destroyed"] = (("loss",), None)
    return layers


def event_density(results: Results, point_id: int | Sequence[int], types: Sequence[str],
                  shape: tuple[int, int], weight: str | None = None, bin_cells: int = 1,
                  smooth_bins: float = 0.0, cell_km: float = 1.0) -> tuple[np.ndarray, int]:
    """Where events of `types` happened over all finished runs of a design point (or
    several): a (rows/bin, cols/bin) array of events (or summed `weight`) per run per km^2,
    optionally Gaussian-smoothed by `smooth_bins`; and the number of runs."""
    from scipy import ndimage

    pids = [point_id] if isinstance(point_id, (int, np.integer)) else list(point_id)
    ok = ok_runs(results)
    run_ids = set(ok.loc[ok["point_id"].isin(pids), "run_id"])
    n_runs = len(run_ids)
    rows, cols = shape
    nb_r, nb_c = -(-rows // bin_cells), -(-cols // bin_cells)
    grid = np.zeros((nb_r, nb_c), dtype=float)
    ev = results.events
    if n_runs == 0 or ev.empty:
        return grid, n_runs
    sel = ev[ev["run_id"].isin(run_ids) & ev["type"].isin(list(types))]
    r = sel["row"].to_numpy(dtype=float)
    c = sel["col"].to_numpy(dtype=float)
    w = (pd.to_numeric(sel[weight], errors="coerce").fillna(0.0).to_numpy(dtype=float)
         if weight else np.ones(len(sel)))
    inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
    np.add.at(grid, ((r[inside] // bin_cells).astype(int), (c[inside] // bin_cells).astype(int)),
              w[inside])
    if smooth_bins > 0:
        grid = ndimage.gaussian_filter(grid, smooth_bins, mode="constant")
    return grid / (n_runs * (bin_cells * cell_km) ** 2), n_runs


def scenario_terrain(results: Results, point_id: int | None = None):
    """The terrain of the experiment's base scenario (from the manifest), with a design
    point's factor values applied when some factor changes the map."""
    import yaml

    from sim.scenario.loading import parse_scenario
    from sim.scenario.overrides import apply_overrides
    from sim.world.terrain import build_terrain

    base = results.manifest.get("base_scenario") or {}
    source = str(base.get("file") or f"{results.path}/manifest.json")
    try:
        data = yaml.safe_load(base["yaml"])
    except (KeyError, TypeError, yaml.YAMLError) as exc:
        raise ResultsError(f"{results.path}/manifest.json: base_scenario: no readable "
                           f"scenario ({exc})") from None
    map_factors = [f for f in results.factors if f.startswith("map")]
    if point_id is not None and map_factors:
        row = results.design.set_index("point_id").loc[point_id]
        data = apply_overrides(data, [(f, _plain(row[f])) for f in map_factors], source)
    scenario = parse_scenario(data, source)
    return build_terrain(scenario.map, source=source)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# --------------------------------------------------------------------------------------------
# Comparing two experiments
# --------------------------------------------------------------------------------------------


def designs_match(a: Results, b: Results) -> bool:
    """True if both experiments have the same factors and the same set of design points."""
    if sorted(a.factors) != sorted(b.factors) or not a.factors:
        return False

    def points(r: Results) -> set[tuple[str, ...]]:
        return {tuple(repr(_plain(row[f])) for f in sorted(r.factors))
                for _, row in design_table(r).iterrows()}

    return points(a) == points(b)


def compare(a: Results, b: Results, metrics: Sequence[str] | None = None,
            level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Experiment `a` against `b`, metric by metric: means, the difference a - b and its
    Welch t-interval, over all finished runs; and per matching design point when both
    designs have the same factors and points (else None).

    Columns: [factor columns,] metric, n_a, mean_a, n_b, mean_b, diff, ci_low, ci_high,
    rel_diff (diff / |mean_b|).
    """
    shared = [m for m in (metrics or default_metrics(a)) if m in metric_columns(b)]
    ra, rb = ok_runs(a), ok_runs(b)

    def row(xa: pd.Series, xb: pd.Series, metric: str) -> dict[str, Any]:
        va, vb = _finite(xa), _finite(xb)
        diff, lo, hi = welch_interval(va, vb, level)
        mb = float(vb.mean()) if len(vb) else math.nan
        return {"metric": metric, "n_a": len(va),
                "mean_a": float(va.mean()) if len(va) else math.nan, "n_b": len(vb),
                "mean_b": mb, "diff": diff, "ci_low": lo, "ci_high": hi,
                "rel_diff": diff / abs(mb) if mb else math.nan}

    overall = pd.DataFrame([row(ra[m], rb[m], m) for m in shared],
                           columns=["metric", "n_a", "mean_a", "n_b", "mean_b", "diff",
                                    "ci_low", "ci_high", "rel_diff"])
    if not designs_match(a, b):
        return overall, None
    factors = list(a.factors)
    rows = []
    for m in shared:
        for _, point in design_table(a).iterrows():
            key = {f: _plain(point[f]) for f in factors}
            in_a = ra["point_id"] == point["point_id"]
            mb = np.ones(len(rb), dtype=bool)
            for f in factors:
                mb &= rb[f].map(lambda v, t=key[f]: repr(_plain(v)) == repr(t)).to_numpy()
            rows.append({**key, **row(ra.loc[in_a, m], rb.loc[mb, m], m)})
    per_point = pd.DataFrame(rows, columns=[*factors, *overall.columns])
    return overall, per_point


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------



@dataclass
class ReportFile:
    """One figure or table of a report: its path relative to the report folder, a title, a
    caption, and (figures) the pixel size."""

    path: str
    title: str
    caption: str = ""
    size_px: tuple[int, int] | None = None


@dataclass
class Report:
    """What `build_report` wrote."""

    out: Path
    index: Path
    figures: list[ReportFile] = field(default_factory=list)
    tables: list[ReportFile] = field(default_factory=list)
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def _days(results: Results) -> float | None:
    days = (results.manifest.get("experiment") or {}).get("days")
    if days is None:
        import yaml

        try:
            days = yaml.safe_load(results.manifest["base_scenario"]["yaml"]).get("days")
        except (KeyError, TypeError, AttributeError, yaml.YAMLError):
            return None
    return float(days) if days is not None else None


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")[:60] or "x"


def build_report(results_dir: str | Path, out: str | Path | None = None, *,
                 metrics: Sequence[str] | None = None, against: str | Path | None = None,
                 skip_bad: bool = False, points: Sequence[int] | None = None,
                 level: float = 0.95) -> Report:
    """Write the HTML report of a results folder (see the module docstring) and return what
    it wrote. Raises ResultsError for an unreadable folder, an unknown metric or point."""
    t0 = time.perf_counter()
    results = _load(results_dir, skip_bad)
    other = _load(against, skip_bad) if against is not None else None
    metrics = check_metrics(results, metrics) if metrics else default_metrics(results)
    pids = set(int(p) for p in results.design["point_id"])
    if points:
        bad = [p for p in points if p not in pids]
        if bad:
            raise ResultsError(f"--points: no design point {bad[0]} in {results.path} "
                               f"(points are 0..{max(pids)})")
    out_dir = Path(out) if out is not None else Path(results_dir) / "report"
    fig_dir, tab_dir = out_dir / "figures", out_dir / "tables"
    index = out_dir / "index.html"
    try:
        previous = index.exists()
        if previous:
            index.unlink()   # no page may point at files of two different reports
        for d in (fig_dir, tab_dir):
            d.mkdir(parents=True, exist_ok=True)
            if previous:
                for old in d.glob("*.png" if d is fig_dir else "*.csv"):
                    old.unlink()   # the previous report's files; nothing else is touched
    except OSError as exc:
        raise ResultsError(f"{out_dir}: cannot write the report ({exc.strerror or exc})"
                           ) from None
    rep = Report(out=out_dir, index=index)
    ctx = _Ctx(results, other, metrics, rep, fig_dir, tab_dir, level,
               list(dict.fromkeys(int(p) for p in points)) if points else None)
    sections = ctx.build()
    # the page goes last, whole (temporary name, then rename): it exists only complete
    tmp = out_dir / ".index.html.tmp"
    tmp.write_text(_page(ctx, sections), encoding="utf-8")
    tmp.replace(index)
    rep.elapsed_s = time.perf_counter() - t0
    return rep


def _load(path: str | Path, skip_bad: bool) -> Results:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the left-out runs are listed in the report
        return load(path, skip_bad=skip_bad)


@dataclass
class _Ctx:
    results: Results
    other: Results | None
    metrics: list[str]
    rep: Report
    fig_dir: Path
    tab_dir: Path
    level: float
    points: list[int] | None

    # ---------------------------------------------------------------- output helpers
    def figure(self, fig: Any, name: str, title: str, caption: str = "") -> ReportFile:
        path = self.fig_dir / f"{name}.png"
        size = save_figure(fig, path)
        f = ReportFile(f"figures/{path.name}", title, caption, size)
        self.rep.figures.append(f)
        return f

    def table(self, df: pd.DataFrame, name: str, title: str) -> ReportFile:
        path = self.tab_dir / f"{name}.csv"
        df.to_csv(path, index=False)
        t = ReportFile(f"tables/{path.name}", title)
        self.rep.tables.append(t)
        return t

    # ---------------------------------------------------------------- sections
    def build(self) -> list[tuple[str, str, str]]:
        """[(anchor, heading, html)] of every section."""
        r = self.results
        sections = []
        if not self.metrics:
            why = ("No summary metric varies across the finished runs" if metric_columns(r)
                   else "The runs kept no summary metrics (experiment <code>keep.summary"
                        "</code>)")
            sections.append(("tables", "Summary tables", f"<p class=note>{why}, so there is "
                             f"nothing to tabulate or plot.</p>"))
        else:
            sections.append(("tables", "Summary tables", self.tables_section()))
            if r.factors:
                sections.append(("main-effects", "Main effects", self.main_effects_section()))
            if len(r.factors) >= 2:
                sections.append(("interactions", "Interactions", self.interactions_section()))
            sections.append(("timeseries", "Daily time series", self.timeseries_section()))
            sections.append(("maps", "Event maps", self.maps_section()))
            if r.factors:
                sections.append(("sensitivity", "Sensitivity", self.sensitivity_section()))
        if self.other is not None:
            sections.append(("compare", "Comparison", self.compare_section()))
        return sections

    def shown_points(self) -> list[int]:
        if self.points:
            return self.points
        return select_points(self.results, self.metrics[0] if self.metrics else None)

    def tables_section(self) -> str:
        r = self.results
        overall = summarise(r, self.metrics, self.level, by_point=False)
        per_point = summarise(r, self.metrics, self.level, by_point=True)
        t_all = self.table(overall, "summary_all_runs", "All runs")
        t_pts = self.table(per_point, "summary_by_point", "By design point")
        pct = f"{self.level:.0%}"
        parts = [
            f"<p>Per metric: runs with a value (n), mean with its {pct} confidence interval, "
            f"median and the 5th-95th percentile range over runs. <b>t</b>: Student t-interval "
            f"of the mean of the runs. <b>Wilson</b>: the metric is a share of counted trials; "
            f"the estimate is the pooled share (successes / trials over the runs) with the "
            f"Wilson score interval on those counts. Intervals are clipped at 0 (and at 1 for "
            f"fractions and coverages). CSV: {_link(t_all)}, {_link(t_pts)}.</p>",
            "<h3>All runs</h3>", _overall_html(overall, self.level),
        ]
        if len(r.design) > MAX_HTML_POINTS:
            parts.append(f"<p class=note>{len(r.design)} design points: the per-point table "
                         f"is in {_link(t_pts)}.</p>")
            return "\n".join(parts)
        for metric in self.metrics:
            rows = per_point[per_point["metric"] == metric]
            parts.append(f"<h3 id='t-{_slug(metric)}'>{_e(metric_title(metric))} "
                         f"<code>{_e(metric)}</code></h3>")
            parts.append(_point_table_html(rows, r.factors, self.level))
        return "\n".join(parts)

    def main_effects_section(self) -> str:
        r = self.results
        frames, figs = [], []
        for metric in self.metrics:
            effects = {f: main_effects(r, metric, f, self.level) for f in r.factors}
            frames += [e.assign(metric=metric, factor=f) for f, e in effects.items()]
            fig = plot_main_effects(r, metric, None, level=self.level, effects=effects)
            figs.append(self.figure(fig, f"main_{_slug(metric)}",
                                    f"Main effects on {metric_title(metric).lower()}"))
        table = pd.concat(frames, ignore_index=True)
        table["level"] = table["level"].map(_plain)
        t = self.table(table[["metric", "factor", "level", "mean", "ci_low", "ci_high",
                              "n_points", "n_runs", "ci_method", "binned"]],
                       "main_effects", "Main effects")
        return (f"<p>Each panel: the mean of the metric at each level of one factor, averaged "
                f"over the other factors' levels (each design point weighs the same), with "
                f"its {self.level:.0%} confidence interval across replicates "
                f"(Welch-Satterthwaite t on the points' replicate variances; a plain t over "
                f"runs when a continuous factor is binned). Numbers: {_link(t)}.</p>"
                + _figs_html(figs))

    def interactions_section(self) -> str:
        r = self.results
        order = factor_importance(r, self.metrics[0])
        top = order[: max(2, min(3, len(order)))]
        pairs = [(top[i], top[j]) for i in range(len(top)) for j in range(i + 1, len(top))]
        pairs = pairs[:MAX_PAIRS]
        figs, frames = [], []
        for fx, fy in pairs:
            for metric in self.metrics[:HEADLINE_METRICS]:
                tab = interaction_table(r, metric, fx, fy, self.level)
                frames.append(tab.assign(metric=metric, factor_x=fx, factor_y=fy))
                fig = plot_interaction(r, metric, fx, fy, level=self.level)
                figs.append(self.figure(
                    fig, f"interaction_{_slug(metric)}_{_slug(factor_label(fx))}_"
                         f"{_slug(factor_label(fy))}",
                    f"{metric_title(metric)}: {factor_label(fx)} x {factor_label(fy)}"))
        table = pd.concat(frames, ignore_index=True)
        for c in ("x", "y"):
            table[c] = table[c].map(_plain)
        t = self.table(table[["metric", "factor_x", "x", "factor_y", "y", "mean", "ci_low",
                              "ci_high", "n_points", "n_runs"]], "interactions",
                       "Two-factor means")
        note = "" if len(r.factors) <= 3 else (
            f" Pairs of the {len(top)} factors with the most influence on "
            f"{_e(metric_title(self.metrics[0]).lower())}.")
        return (f"<p>Mean of the metric for each combination of two factors' levels, "
                f"averaged over the other factors; the small number is the half-width of the "
                f"{self.level:.0%} CI. Non-parallel rows/columns mean the factors "
                f"interact.{note} Numbers: {_link(t)}.</p>"
                + _figs_html(figs))

    def timeseries_section(self) -> str:
        r = self.results
        if r.daily.empty or len(r.daily.columns) <= 4:
            return ("<p class=note>The runs kept no daily metrics (experiment "
                    "<code>keep.daily</code>), so there are no time series.</p>")
        pts = self.shown_points()
        series = []
        for metric in self.metrics:
            col = daily_column(r, metric)
            if col and col[0] not in [c for c, _ in series]:
                series.append(col)
        series = series[:MAX_SERIES]
        if not series:
            return "<p class=note>None of the report's metrics has a daily column.</p>"
        figs, frames = [], []
        for col, cumulative in series:
            frames.append(daily_bands(r, col, pts, cumulative, self.level).assign(
                column=col, cumulative=cumulative))
            fig = plot_timeseries(r, col, pts, cumulative=cumulative, level=self.level)
            figs.append(self.figure(fig, f"daily_{_slug(col)}",
                                    f"{'Cumulative ' if cumulative else ''}{col} by day"))
        t = self.table(pd.concat(frames, ignore_index=True), "daily", "Daily means")
        return (f"<p>Mean over replicates by day (running totals for counts), with the "
                f"{self.level:.0%} CI of that mean as a band, for design points "
                f"{_points_text(r, pts)}. Numbers: {_link(t)}.</p>"
                + _figs_html(figs))

    def maps_section(self) -> str:
        r = self.results
        if r.events.empty:
            return ("<p class=note>The runs kept no events (experiment "
                    "<code>keep.events</code>), so there are no event maps.</p>")
        layers = event_layers(r)
        if not layers:
            return ("<p class=note>The event log holds no engagements, detections or "
                    "losses.</p>")
        try:
            terrain = scenario_terrain(r)
        except ScenarioError as exc:
            return (f"<p class=note>The base scenario in the manifest could not be rebuilt, "
                    f"so there are no maps: {_e(exc.messages[0])}</p>")
        pts = self.shown_points()
        map_factors = [f for f in r.factors if f.startswith("map")]
        if map_factors:
            return ("<p class=note>A factor changes the map itself ("
                    f"<code>{_e(map_factors[0])}</code>), so the design points do not share "
                    "one map; draw a point's map with <code>sim.analysis.report.plot_event_map</code>."
                    "</p>")
        figs = []
        for name, (types, weight) in layers.items():
            fig = plot_event_maps(r, pts, types=types, weight=weight, title=name.capitalize(),
                                  terrain=terrain)
            figs.append(self.figure(fig, f"map_{_slug(name)}", f"Where: {name}"))
        detect_note = "" if "detections" in layers else (
            " The event log has no detection events (detections are counted per day in the "
            "<code>detections_*</code> metrics), so there is no detection map.")
        return (f"<p>Over all finished runs of each design point: where events happened, as "
                f"events (or fighters lost) per run per km², smoothed slightly and drawn over "
                f"the base scenario's terrain; one colour scale per figure. Design points "
                f"{_points_text(r, pts)}.{detect_note}</p>" + "".join(_fig_html(f) for f in figs))

    def sensitivity_section(self) -> str:
        r = self.results
        frames = []
        problems = []
        for metric in self.metrics:
            try:
                frames.append(sensitivity(r, metric, self.level).assign(metric=metric))
            except (ResultsError, ValueError) as exc:
                problems.append(f"{metric}: {exc}")
        frames = [f for f in frames if not f.empty]
        if not frames:
            detail = f" ({_e(problems[0])})" if problems else ""
            return f"<p class=note>No sensitivity could be estimated{detail}.</p>"
        table = pd.concat(frames, ignore_index=True)
        t = self.table(table, "sensitivity", "Sensitivity")
        shown = [m for m in self.metrics if m in set(table["metric"])][:6]
        fig = plot_sensitivity(r, shown, table=table)
        f = self.figure(fig, "sensitivity", "Sensitivity of the headline metrics")
        if is_sobol(r):
            text = ("First-order (S1) and total (ST) Sobol' indices of each metric's mean "
                    "over replicates, with SALib's 95% confidence intervals (bootstrap). "
                    "S1: share of the variance due to the factor alone; ST: including its "
                    "interactions.")
        else:
            text = (f"Standardised regression coefficients: a linear fit of each metric (per "
                    f"run) on the factors, both standardised; a coefficient is the change in "
                    f"the metric in standard deviations per standard deviation of the factor "
                    f"(categorical factors: indicator of a level against the first level), "
                    f"with its {self.level:.0%} t-interval. R² says how much of the run-to-run "
                    f"variation the linear fit explains.")
        more = "" if not problems else f" Not estimated: {_e('; '.join(problems[:3]))}."
        return f"<p>{text} Numbers (every metric): {_link(t)}.{more}</p>" + _fig_html(f)

    def compare_section(self) -> str:
        a, b = self.results, self.other
        assert b is not None
        overall, per_point = compare(a, b, self.metrics, self.level)
        if overall.empty:
            return (f"<p class=note>{_e(_name(a))} and {_e(_name(b))} share none of the "
                    f"report's metrics.</p>")
        t1 = self.table(overall, "compare_all_runs", "Comparison, all runs")
        parts = [f"<p><b>A</b> = {_e(_name(a))} (<code>{_e(str(a.path))}</code>, "
                 f"{_n_ok(a)} runs), <b>B</b> = {_e(_name(b))} (<code>{_e(str(b.path))}"
                 f"</code>, {_n_ok(b)} runs). Difference A - B with Welch's "
                 f"{self.level:.0%} t-interval; an interval that excludes 0 is a difference "
                 f"the replicates can tell apart. CSV: {_link(t1)}"]
        if per_point is not None:
            t2 = self.table(per_point, "compare_by_point", "Comparison by design point")
            parts[0] += f", {_link(t2)}"
        parts[0] += ".</p>"
        fig = plot_compare(overall, label_a=_name(a), label_b=_name(b))
        f = self.figure(fig, "compare", f"{_name(a)} against {_name(b)}")
        parts += ["<h3>All runs</h3>", _compare_html(overall, [], self.level), _fig_html(f)]
        if per_point is not None:
            parts.append("<h3>By design point</h3><p>The two experiments have the same "
                         "design, so each point of A is compared with the same point of B.</p>")
            if len(per_point) <= 40 * len(overall) and len(a.design) <= MAX_HTML_POINTS:
                parts.append(_compare_html(per_point, a.factors, self.level))
        else:
            parts.append("<p class=note>The designs differ (factors or points), so only the "
                         "all-run comparison is shown.</p>")
        return "\n".join(parts)


def _name(r: Results) -> str:
    return str(r.manifest.get("name") or r.path.name)


def _n_ok(r: Results) -> int:
    return int((r.runs["status"] == "ok").sum()) if "status" in r.runs else len(r.runs)


def _points_text(r: Results, pts: Sequence[int]) -> str:
    design = design_table(r).set_index("point_id")
    return ", ".join(f"{p} ({_e(point_label(design.loc[p], r.factors))})" for p in pts)


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:0;color:#222;background:#fafaf7;line-height:1.45}
main{max-width:1240px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:1.7em;margin:0 0 4px}h2{margin-top:2.2em;border-bottom:2px solid #c9b98f;
 padding-bottom:4px}h3{margin:1.6em 0 .4em;font-size:1.05em}
.desc{font-size:1.05em;color:#333;max-width:900px}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;font-size:.92em;
 background:#fff;border:1px solid #ddd;padding:10px 14px;border-radius:4px;max-width:1000px}
.meta dt{font-weight:600;color:#555}.meta dd{margin:0}
nav{font-size:.92em;margin:14px 0}nav a{margin-right:14px}
table{border-collapse:collapse;font-size:.86em;background:#fff;margin:6px 0 10px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#efe9da}td.l,th.l{text-align:left}
tr:nth-child(even) td{background:#fbfaf6}
.note{color:#7a4b00;background:#fff6e0;border-left:4px solid #e0a800;padding:6px 10px}
.warn{color:#7a1010;background:#fdeaea;border-left:4px solid #c0392b;padding:6px 10px}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:0 20px}
figure{margin:18px 0 28px}figure img{max-width:100%;height:auto;border:1px solid #ddd;
 background:#fff}figcaption{font-size:.9em;color:#444}
code{font-size:.92em;background:#f0ede4;padding:0 3px;border-radius:2px}
.small{font-size:.85em;color:#666}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _link(f: ReportFile) -> str:
    return f"<a href='{_e(f.path)}'>{_e(Path(f.path).name)}</a>"


def _figs_html(figs: Sequence[ReportFile]) -> str:
    """Figures two abreast (each links to its full-size PNG)."""
    return f"<div class=figs>{''.join(_fig_html(f) for f in figs)}</div>"


def _fig_html(f: ReportFile) -> str:
    w, h = f.size_px or (0, 0)
    return (f"<figure><a href='{_e(f.path)}'><img src='{_e(f.path)}' width='{w}' "
            f"height='{h}' alt='{_e(f.title)}'></a><figcaption>{_e(f.title)} "
            f"<span class=small>({w} x {h} px)</span>{' ' + _e(f.caption) if f.caption else ''}"
            f"</figcaption></figure>")


def fmt(x: Any) -> str:
    """A number for a table: 3 significant digits (whole numbers as they are), '' for NaN."""
    if x is None:
        return ""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return ""
    if v == round(v) and abs(v) < 1e6:
        return f"{v:.0f}"
    if abs(v) >= 100:
        return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.1f}"
    return f"{v:.3g}"


def _ci_text(row: pd.Series) -> str:
    if not math.isfinite(float(row["ci_low"])):
        return "n/a"
    return f"{fmt(row['ci_low'])} – {fmt(row['ci_high'])}"


def _interval_text(row: pd.Series) -> str:
    kind = str(row["interval"])
    if kind.startswith("wilson"):
        return f"Wilson ({fmt(row['successes'])}/{fmt(row['trials'])})"
    return "t *" if "(" in kind else "t"


def _interval_notes(df: pd.DataFrame) -> str:
    """Footnotes for the metrics whose interval carries a note (e.g. a share that is not)."""
    notes = {}
    for _, row in df.iterrows():
        kind = str(row["interval"])
        if "(" in kind:
            notes[row["metric"]] = kind[kind.index("(") + 1: kind.rindex(")")]
    return "".join(f"<p class=small>* <code>{_e(m)}</code>: {_e(n)}; the t-interval of the "
                   f"mean of the runs is used.</p>" for m, n in notes.items())


def _overall_html(df: pd.DataFrame, level: float) -> str:
    head = ("<tr><th class=l>metric</th><th>n</th><th>mean</th>"
            f"<th>{level:.0%} CI</th><th class=l>interval</th><th>median</th>"
            "<th>5th–95th pct</th></tr>")
    body = []
    for _, row in df.iterrows():
        body.append(
            f"<tr><td class=l>{_e(metric_title(row['metric']))} <code>{_e(row['metric'])}"
            f"</code></td><td>{int(row['n_runs'])}</td><td>{fmt(row['mean'])}</td>"
            f"<td>{_ci_text(row)}</td><td class=l>{_e(_interval_text(row))}</td>"
            f"<td>{fmt(row['median'])}</td><td>{fmt(row['p5'])} – {fmt(row['p95'])}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>{_interval_notes(df)}"


def _point_table_html(df: pd.DataFrame, factors: Sequence[str], level: float) -> str:
    head = ("<tr><th>point</th>" + "".join(f"<th class=l>{_e(factor_label(f))}</th>"
                                            for f in factors)
            + f"<th>n</th><th>mean</th><th>{level:.0%} CI</th><th class=l>interval</th>"
              "<th>median</th><th>5th–95th pct</th></tr>")
    body = []
    for _, row in df.iterrows():
        cells = "".join(f"<td class=l>{_e(level_text(row[f], f))}</td>" for f in factors)
        body.append(
            f"<tr><td>{int(row['point_id'])}</td>{cells}<td>{int(row['n_runs'])}</td>"
            f"<td>{fmt(row['mean'])}</td><td>{_ci_text(row)}</td>"
            f"<td class=l>{_e(_interval_text(row))}</td><td>{fmt(row['median'])}</td>"
            f"<td>{fmt(row['p5'])} – {fmt(row['p95'])}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>{_interval_notes(df)}"


def _compare_html(df: pd.DataFrame, factors: Sequence[str], level: float) -> str:
    head = ("<tr><th class=l>metric</th>" + "".join(f"<th class=l>{_e(factor_label(f))}</th>"
                                                     for f in factors)
            + "<th>n A</th><th>mean A</th><th>n B</th><th>mean B</th><th>A − B</th>"
              f"<th>{level:.0%} CI of A − B</th><th>A − B, % of B</th></tr>")
    body = []
    for _, row in df.iterrows():
        cells = "".join(f"<td class=l>{_e(level_text(row[f], f))}</td>" for f in factors)
        rel = row["rel_diff"]
        rel_text = f"{100 * rel:+.0f}%" if math.isfinite(float(rel)) else ""
        body.append(
            f"<tr><td class=l><code>{_e(row['metric'])}</code></td>{cells}"
            f"<td>{int(row['n_a'])}</td><td>{fmt(row['mean_a'])}</td><td>{int(row['n_b'])}</td>"
            f"<td>{fmt(row['mean_b'])}</td><td>{fmt(row['diff'])}</td><td>{_ci_text(row)}</td>"
            f"<td>{rel_text}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _factor_spec_text(spec: Any) -> str:
    if not isinstance(spec, dict):
        return str(spec)
    if spec.get("levels") is not None:
        return "levels " + ", ".join(str(v) for v in spec["levels"])
    rng = spec.get("range") or {}
    kind = "whole numbers" if spec.get("integer") else "continuous"
    return f"{kind} {rng.get('min')} to {rng.get('max')}"


def _page(ctx: _Ctx, sections: list[tuple[str, str, str]]) -> str:
    r = ctx.results
    m = r.manifest
    exp = m.get("experiment") or {}
    design = m.get("design") or {}
    n_total = len((m.get("runs") or {}).get("rows") or [])
    n_ok = _n_ok(r)
    n_failed = int((r.runs["status"] == "failed").sum()) if "status" in r.runs else 0
    n_left = len(r.left_out)
    reps = exp.get("replicates")
    days = _days(r)
    code = m.get("code") or {}
    commit = code.get("git_commit")
    version = f"sim {code.get('sim', '?')}" + (
        f", commit {commit[:10]}{' (uncommitted changes)' if code.get('git_dirty') else ''}"
        if commit else "")
    factor_rows = "".join(
        f"<li><b>{_e(factor_label(f))}</b> <code>{_e(f)}</code>: "
        f"{_e(_factor_spec_text((exp.get('factors') or {}).get(f)))}</li>" for f in r.factors)
    dl = [
        ("Experiment file", f"<code>{_e(m.get('experiment_file', ''))}</code>"),
        ("Base scenario", f"<code>{_e((m.get('base_scenario') or {}).get('file', ''))}</code>"),
        ("Design", f"{_e(design.get('kind', '?'))}: {len(r.design)} design point(s) x "
                   f"{_e(reps)} replicate(s) = {n_total} runs"
                   + (f" of {days:g} days" if days else "")),
        ("Factors", f"<ul style='margin:0;padding-left:18px'>{factor_rows}</ul>"
                    if factor_rows else "none"),
        ("Runs in this report", f"{n_ok} finished" + (f", {n_failed} failed" if n_failed else "")
                                + (f", {n_left} left out" if n_left else "")),
        ("Results folder", f"<code>{_e(str(r.path))}</code> (created {_e(m.get('created', '?'))})"),
        ("Code", _e(version)),
        ("Metrics", ", ".join(f"<code>{_e(x)}</code>" for x in ctx.metrics) or "none"),
    ]
    meta = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in dl)
    warn = []
    if n_left:
        rows = "".join(f"<tr><td>{int(x.run_id)}</td><td class=l><code>{_e(x.part)}</code></td>"
                       f"<td class=l>{_e(x.reason)}</td></tr>"
                       for x in r.left_out.itertuples())
        warn.append(f"<div class=warn><b>{n_left} run(s) left out</b> (--skip-bad): their "
                    f"Parquet parts are missing or unreadable, so every table and figure below "
                    f"is computed without them.</div><table><tr><th>run</th><th class=l>part"
                    f"</th><th class=l>reason</th></tr>{rows}</table>")
    if n_failed:
        rows = "".join(f"<tr><td>{int(x.run_id)}</td><td>{int(x.point_id)}</td>"
                       f"<td class=l>{_e(x.error)}</td></tr>"
                       for x in r.failures.head(20).itertuples())
        warn.append(f"<div class=warn><b>{n_failed} run(s) failed</b> and are not in the "
                    f"statistics (records under <code>failures/</code>).</div><table><tr>"
                    f"<th>run</th><th>point</th><th class=l>error</th></tr>{rows}</table>")
    if ctx.other is not None and len(ctx.other.left_out):
        warn.append(f"<div class=warn><b>{len(ctx.other.left_out)} run(s) of "
                    f"{_e(_name(ctx.other))} left out</b> (--skip-bad): "
                    + _e(", ".join(ctx.other.left_out["part"].astype(str).tolist()[:10]))
                    + "</div>")
    design_html = ""
    if len(r.design) <= MAX_HTML_POINTS and r.factors:
        head = "<tr><th>point</th>" + "".join(f"<th class=l>{_e(factor_label(f))}</th>"
                                              for f in r.factors) + "<th>finished runs</th></tr>"
        counts = ok_runs(r).groupby("point_id").size()
        body = "".join(
            f"<tr><td>{int(row['point_id'])}</td>"
            + "".join(f"<td class=l>{_e(level_text(row[f], f))}</td>" for f in r.factors)
            + f"<td>{int(counts.get(row['point_id'], 0))}</td></tr>"
            for _, row in design_table(r).iterrows())
        design_html = f"<h3>Design points</h3><table>{head}{body}</table>"
    nav = "".join(f"<a href='#{a}'>{_e(h)}</a>" for a, h, _ in sections)
    body = "".join(f"<section id='{a}'><h2>{_e(h)}</h2>{s}</section>" for a, h, s in sections)
    files = "".join(f"<li>{_link(t)}: {_e(t.title)}</li>" for t in ctx.rep.tables)
    title = f"badia report: {_name(r)}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body><main>
<h1>{_e(title)}</h1>
<p class=desc>{_e(exp.get('description') or '')}</p>
<dl class=meta>{meta}</dl>
{''.join(warn)}
{design_html}
<nav>{nav}<a href='#files'>Files</a></nav>
{body}
<section id='files'><h2>Files</h2><ul>{files}</ul>
<p class=small>Figures are {SLIDE_INCHES[0]:g} x {SLIDE_INCHES[1]:g} in at {DPI} dpi PNGs in
<code>figures/</code>. Written by <code>badia report</code> in {time.strftime('%Y-%m-%d %H:%M')}.
</p></section>
</main></body></html>
"""


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `badia report`'s arguments to `parser`."""
    parser.add_argument("results", type=Path, metavar="RESULTS_DIR",
                        help="a results folder written by `badia batch`")
    parser.add_argument("--out", type=Path, metavar="REPORT_DIR",
                        help="report folder (default: RESULTS_DIR/report)")
    parser.add_argument("--metric", action="append", default=[], metavar="M",
                        help="a summary metric to report (repeatable; default: the usual "
                             "ones that vary)")
    parser.add_argument("--against", type=Path, metavar="B_DIR",
                        help="compare with another results folder (A - B with CIs)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out runs whose parts are missing or unreadable (the "
                             "report lists them) instead of stopping")
    parser.add_argument("--points", type=int, nargs="+", metavar="P",
                        help="design points for the time series and maps (default: all, or "
                             f"the {MAX_SHOWN_POINTS} with extreme values of the first metric)")


def run_report_command(args: argparse.Namespace) -> int:
    """`badia report`: build the report, print where it is; returns the exit status."""
    try:
        rep = build_report(args.results, args.out, metrics=args.metric or None,
                           against=args.against, skip_bad=args.skip_bad, points=args.points)
    except ResultsError as exc:
        print(f"badia report: {exc}", file=sys.stderr)
        return 1
    except ScenarioError as exc:
        print(f"badia report: {exc.messages[0] if exc.messages else exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"badia report: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {rep.index} ({len(rep.figures)} figures, {len(rep.tables)} tables) in "
          f"{rep.elapsed_s:.1f} s")
    return 0


def main(argv: Iterable[str] | None = None) -> int:
    """`python -m sim.analysis.report RESULTS_DIR ...` (the same as `badia report`)."""
    parser = argparse.ArgumentParser(prog="badia report", description=__doc__.split("\n")[0])
    add_report_arguments(parser)
    return run_report_command(parser.parse_args(None if argv is None else list(argv)))


__all__ = [
    "PROPORTION_COUNTS",
    "IntervalChoice",
    "Report",
    "ReportFile",
    "add_report_arguments",
    "build_report",
    "check_metrics",
    "compare",
    "daily_bands",
    "default_metrics",
    "event_density",
    "event_layers",
    "factor_importance",
    "factor_label",
    "interaction_table",
    "interval_choice",
    "level_text",
    "main_effects",
    "metric_bounds",
    "metric_label",
    "ok_runs",
    "plot_compare",
    "plot_event_map",
    "plot_event_maps",
    "plot_interaction",
    "plot_main_effects",
    "plot_sensitivity",
    "plot_timeseries",
    "regression_coefficients",
    "run_report_command",
    "save_figure",
    "scenario_terrain",
    "select_points",
    "sensitivity",
    "summarise",
    "t_interval",
    "welch_interval",
    "wilson_interval",
]


if __name__ == "__main__":
    sys.exit(main())
