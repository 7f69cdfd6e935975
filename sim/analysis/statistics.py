"""The numbers behind a report: confidence intervals, summary tables, effects, sensitivity,
daily bands, event densities and the comparison of two experiments.

Pure functions over numpy and pandas: they read a `sim.experiments.results.Results` and return
DataFrames or arrays, never draw or write anything (`sim.analysis.figures` draws them,
`sim.analysis.report` writes them). Only finished runs (status "ok") count (`ok_runs`).

Intervals (95 % unless `level` says otherwise; q = (1 + level) / 2)
-----------------------------------------------------------------

* **Mean of a metric over runs** (`t_interval`): Student t,

      mean +- t_{q, n-1} s / sqrt(n)

  with s the sample standard deviation (ddof 1) of the n runs with a value.

* **Share** (`is_share`: `attack_success_rate`, every `*_fraction`, e.g. attacks succeeded
  of attacks attempted): one definition everywhere, in the tables and in every plot: the
  **mean of the per-run shares** over the runs that have one (a run with no trials, e.g. no
  attack, has no share and is left out; `n_runs` says how many are left), with the t-interval
  above over those runs. Runs are the independent replicates; the trials inside one run are
  not (a cell that wins once tends to win again), so pooling them (successes over trials of
  all runs, with a binomial interval) would weigh busy runs more and claim a precision the
  replicates do not have.

* **Difference of two experiments** (`welch_interval`): with v_a = s_a^2 / n_a and
  v_b = s_b^2 / n_b,

      (mean_a - mean_b) +- t_{q, nu} sqrt(v_a + v_b),
      nu = (v_a + v_b)^2 / (v_a^2 / (n_a - 1) + v_b^2 / (n_b - 1))     (Welch-Satterthwaite).

* **Main effect or interaction cell** (`main_effects`, `interaction_table`): the equal-weight
  mean of the k design points' means m_i (each with r_i replicates, variance s_i^2),

      mean = (1/k) sum m_i,   Var = (1/k^2) sum s_i^2 / r_i,
      mean +- t_{q, nu} sqrt(Var),   nu = (sum s_i^2/r_i)^2 / sum (s_i^2/r_i)^2 / (r_i - 1),

  and the plain run-level t-interval when a point has a single replicate or a continuous
  factor is binned (`factor_levels`: quantile bins of the design points).

Every interval is clipped to the range the metric can take (`metric_bounds`: >= 0 when no run
is negative; <= 1 for shares and coverages); a clipped interval of a mean is still a valid,
conservative one.

Sensitivity
-----------

* **Standardised regression coefficients** (`regression_coefficients`): ordinary least squares
  of z(y) on z(x_1) ... z(x_p) plus an intercept, z(.) = (value - mean) / sd, with numeric
  factors as they are and categorical ones as 0/1 indicators against their first level. The
  coefficient b_j is the change in y, in standard deviations, per standard deviation of x_j;
  its interval is b_j +- t_{q, n-p-1} se_j with se_j^2 the diagonal of
  sigma^2 (A^T A)^-1, sigma^2 = RSS / (n - p - 1); R^2 = 1 - RSS / TSS.
* **Sobol' designs** (`sensitivity`): first-order and total indices with SALib's bootstrap
  intervals (`sim.experiments.results.sobol_indices`).

Series and maps
---------------

* `daily_bands`: per design point and day, the mean over replicates of a daily column (its
  running total per run with `cumulative`) with the t-interval above and the 5th/95th
  percentiles.
* `event_density`: events (or a summed weight such as fighters lost) per run per km^2 on bins
  of `bin_cells` x `bin_cells` cells: the count in a bin / (runs x (bin_cells cell_km)^2),
  optionally Gaussian-smoothed (sigma in bins, zero outside the map).

Why one module of this length: every function here shares the same few private helpers (the
finite-value filter, the quantiles, the clipping, the cached merge of runs with the design) and
the maths above is one story, read and checked in one place; split, the helpers would have to
become public names of a module of their own only to be imported back.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sim.errors import ResultsError, did_you_mean

if TYPE_CHECKING:
    from sim.experiments.results import Results
    from sim.world.raster import Terrain

#: How a share is estimated, in the words the tables and plots print (module docstring).
SHARE_DEFINITION = ("mean of the per-run shares (runs with no trials left out), t-interval "
                    "over runs")

#: Default metrics, in the order the report shows them ("*" matches a faction or road name).
DEFAULT_METRIC_PATTERNS: tuple[str, ...] = (
    "attacks_attempted_total", "attacks_succeeded_total", "attack_success_rate",
    "losses__*_total",
    "road_closed_hours_total", "roads_open_fraction_mean",
    "coverage_road_night_mean", "coverage_area_night_mean",
    "coverage_road_day_mean", "coverage_area_day_mean",
    "border_crossings_total", "border_crossings_intercepted", "insurgent_units_found_fraction",
    "raid_attempted_total", "raid_succeeded_total", "ambush_attempted_total",
    "ambush_succeeded_total", "seizure_attempted_total", "seizure_succeeded_total",
    "engagements_total",
)
MAX_DEFAULT_METRICS = 12
#: Design points drawn in time series and event maps unless --points says otherwise.
MAX_SHOWN_POINTS = 6


# --------------------------------------------------------------------------------------------
# Intervals
# --------------------------------------------------------------------------------------------


def _t_quantile(q: float, df: float) -> float:
    # scipy.stats is imported on first use: `badia --help` imports this module (through
    # sim.analysis.report) to build the parser, and scipy.stats costs half a second
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


def n_finished(results: Results) -> int:
    """How many runs finished (status "ok"; every run when the table has no status)."""
    runs = results.runs
    return int((runs["status"] == "ok").sum()) if "status" in runs else len(runs)


def run_days(results: Results) -> float | None:
    """The simulated days of every run: the experiment's `days`, else the base scenario's;
    None if the manifest holds neither."""
    days = (results.manifest.get("experiment") or {}).get("days")
    if days is None:
        import yaml

        try:
            days = yaml.safe_load(results.manifest["base_scenario"]["yaml"]).get("days")
        except (KeyError, TypeError, AttributeError, yaml.YAMLError):
            return None
    return float(days) if days is not None else None


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


def is_share(metric: str) -> bool:
    """Whether a summary metric is a share of counted trials (`SHARE_DEFINITION`)."""
    return metric == "attack_success_rate" or metric.endswith("_fraction")


def metric_bounds(metric: str, values: Any) -> tuple[float, float]:
    """The range a metric can take, for clipping intervals: at least 0 if no run is negative
    (counts, hours, fractions); at most 1 for shares (`is_share`) and coverages that stay within 1.
    A t-interval of a mean near a bound can cross it; the clipped interval is still a valid
    (conservative) interval of the mean."""
    x = _finite(values)
    lo = 0.0 if len(x) and x.min() >= 0 else -math.inf
    share = is_share(metric) or "fraction" in metric or metric.startswith("coverage")
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


def _summary_rows(runs: pd.DataFrame, metric: str, level: float,
                  bounds: tuple[float, float]) -> dict[str, Any]:
    row = _describe(runs[metric].to_numpy(dtype=float), level, bounds)
    row["interval"] = "t, mean of per-run shares" if is_share(metric) else "t"
    return row


def summarise(results: Results, metrics: Sequence[str], level: float = 0.95,
              by_point: bool = True) -> pd.DataFrame:
    """Per design point (or over all runs with `by_point=False`) and metric: the number of
    runs with a value, the mean, its confidence interval, the median and 5th/95th percentiles.

    Columns: [point_id, factor columns,] metric, n_runs, mean, ci_low, ci_high, interval,
    std, median, p5, p95. Every mean is the mean over runs with the t-interval; for a share
    (`is_share`) that is the mean of the per-run shares, and `interval` says so
    ("t, mean of per-run shares"): the same number the figures draw. Intervals are clipped
    to the metric's possible range (`metric_bounds`: at least 0, at most 1 for fractions).
    """
    runs = ok_runs(results)
    rows = []
    for metric in metrics:
        bounds = metric_bounds(metric, runs[metric])
        if by_point:
            for pid, group in runs.groupby("point_id", sort=True):
                rows.append({"point_id": int(pid), "metric": metric,
                             **_summary_rows(group, metric, level, bounds)})
        else:
            rows.append({"metric": metric,
                         **_summary_rows(runs, metric, level, bounds)})
    cols = ["metric", "n_runs", "mean", "ci_low", "ci_high", "interval", "std", "median", "p5",
            "p95"]
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
    (`sim.experiments.results.sobol_indices`); columns factor, S1, S1_conf, ST, ST_conf,
    method="sobol".
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


def event_layers(results: Results) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """The event maps a report draws, as name -> (event types, weight column or None):
    engagements, detections (if the log has any) and fighters lost per faction (engagements
    weighted by their `losses.<faction>` columns)."""
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


def scenario_terrain(results: Results, point_id: int | None = None) -> Terrain:
    """The terrain of the experiment's base scenario (from the manifest), with a design
    point's factor values applied when some factor changes the map."""
    import yaml

    from sim.scenario.loading import parse_scenario
    from sim.scenario.overrides import apply_overrides
    from sim.world.cache import build_terrain

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
        data = apply_overrides(data, [(f, plain_value(row[f])) for f in map_factors], source)
    scenario = parse_scenario(data, source)
    return build_terrain(scenario.map, source=source)


def plain_value(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# --------------------------------------------------------------------------------------------
# Comparing two experiments
# --------------------------------------------------------------------------------------------


def designs_match(a: Results, b: Results) -> bool:
    """True if both experiments have the same factors and the same set of design points."""
    if sorted(a.factors) != sorted(b.factors) or not a.factors:
        return False

    def points(r: Results) -> set[tuple[str, ...]]:
        return {tuple(repr(plain_value(row[f])) for f in sorted(r.factors))
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
            key = {f: plain_value(point[f]) for f in factors}
            in_a = ra["point_id"] == point["point_id"]
            mb = np.ones(len(rb), dtype=bool)
            for f in factors:
                mb &= rb[f].map(lambda v, t=key[f]: repr(plain_value(v)) == repr(t)).to_numpy()
            rows.append({**key, **row(ra.loc[in_a, m], rb.loc[mb, m], m)})
    per_point = pd.DataFrame(rows, columns=[*factors, *overall.columns])
    return overall, per_point



__all__ = [
    "DEFAULT_METRIC_PATTERNS",
    "MAX_DEFAULT_METRICS",
    "MAX_SHOWN_POINTS",
    "SHARE_DEFINITION",
    "check_metrics",
    "compare",
    "daily_bands",
    "daily_column",
    "default_metrics",
    "design_table",
    "designs_match",
    "event_density",
    "event_layers",
    "factor_importance",
    "factor_levels",
    "interaction_table",
    "is_continuous_factor",
    "is_numeric_factor",
    "is_share",
    "is_sobol",
    "main_effects",
    "metric_bounds",
    "metric_columns",
    "n_finished",
    "ok_runs",
    "plain_value",
    "regression_coefficients",
    "run_days",
    "scenario_terrain",
    "select_points",
    "sensitivity",
    "summarise",
    "t_interval",
    "welch_interval",
]
