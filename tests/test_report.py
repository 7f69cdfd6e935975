"""`badia report`: confidence intervals against scipy and closed forms, a report built from a
small real batch (every figure and table it lists exists, PNGs of the stated size, only
working relative links), bad parts named or left out, and the A-against-B comparison.

The batches are real (`sim.experiments.batch.run_batch` on `tests/data/report/*.yaml`, 12 runs
of 2 days each), run once per module in threads.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image
from scipy import stats

from sim.analysis import figures, labels, report, statistics
from sim.cli import main as badia
from sim.errors import ResultsError
from sim.experiments.batch import run_batch
from sim.experiments.results import Results, load

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "report"
SCHEDULE = "units[kind=patrol].tactic.schedule"
RANGE = "units[kind=strongpoint].night_sensor_range_km"


# --------------------------------------------------------------------------------------------
# Intervals against scipy and closed forms
# --------------------------------------------------------------------------------------------

VALUES = np.array([12.0, 15.0, 9.0, 11.0, 14.0, 10.0, 13.0, 16.0])


@pytest.mark.parametrize("level", [0.95, 0.90, 0.99])
def test_t_interval_matches_scipy(level: float) -> None:
    n = len(VALUES)
    mean, sd = VALUES.mean(), VALUES.std(ddof=1)
    by_hand = stats.t.ppf((1 + level) / 2, n - 1) * sd / math.sqrt(n)
    lo, hi = statistics.t_interval(VALUES, level)
    assert (lo, hi) == pytest.approx((mean - by_hand, mean + by_hand), rel=1e-12)
    ref = stats.t.interval(level, n - 1, loc=mean, scale=stats.sem(VALUES))
    assert (lo, hi) == pytest.approx(ref, rel=1e-12)


def test_t_interval_edge_cases() -> None:
    assert all(math.isnan(v) for v in statistics.t_interval([3.0]))
    assert statistics.t_interval([2.0, 2.0, 2.0]) == (2.0, 2.0)
    # NaNs (runs where the metric is undefined) are dropped, not propagated
    assert statistics.t_interval([*VALUES, np.nan]) == pytest.approx(statistics.t_interval(VALUES))


def test_welch_interval_matches_scipy() -> None:
    a = np.array([3.1, 4.5, 2.8, 5.0, 4.1, 3.7])
    b = np.array([2.0, 2.9, 1.1, 3.5, 2.2, 1.8, 2.6, 3.0, 2.4])
    diff, lo, hi = statistics.welch_interval(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(a.mean() - b.mean())
    assert (lo, hi) == pytest.approx((ci.low, ci.high), rel=1e-10)


# --------------------------------------------------------------------------------------------
# Tables and effects on synthetic results with known answers
# --------------------------------------------------------------------------------------------


def _synthetic(runs_rows: list[dict], design_rows: list[dict], name: str = "synthetic",
               factor_specs: dict | None = None) -> Results:
    design = pd.DataFrame(design_rows)
    runs = pd.DataFrame(runs_rows)
    runs.insert(0, "run_id", range(len(runs)))
    runs["seed"] = runs["run_id"]
    runs["status"] = "ok"
    empty = pd.DataFrame({"run_id": pd.Series(dtype="int64")})
    manifest = {"name": name, "design": {"kind": "full_factorial", "sobol": None},
                "experiment": {"factors": factor_specs or {}, "replicates": 3}}
    return Results(path=Path(name), manifest=manifest, design=design, runs=runs, daily=empty,
                   events=empty, failures=pd.DataFrame())


def _two_by_two(replicates: int = 4, seed: int = 1) -> Results:
    rng = np.random.default_rng(seed)
    design = [{"point_id": i, "a": a, "b": b}
              for i, (a, b) in enumerate([(1.0, "x"), (1.0, "y"), (3.0, "x"), (3.0, "y")])]
    rows = []
    for p in design:
        for r in range(replicates):
            tried = int(rng.integers(5, 15))
            won = int(rng.integers(0, tried + 1))
            rows.append({"point_id": p["point_id"], "replicate": r,
                         "losses__government_total": 10 + 2 * p["a"]
                         + (3 if p["b"] == "y" else 0) + rng.normal(0, 1),
                         "attacks_attempted_total": float(tried),
                         "attacks_succeeded_total": float(won),
                         "attack_success_rate": won / tried})
    return _synthetic(rows, design)


def test_summarise_gives_t_intervals_percentiles_and_the_mean_of_per_run_shares() -> None:
    res = _two_by_two()
    res.runs.loc[0, "attack_success_rate"] = np.nan   # a run with no attack has no share
    table = statistics.summarise(res, ["losses__government_total", "attack_success_rate"])
    assert len(table) == 8 and {"a", "b", "point_id"} <= set(table.columns)
    for pid in range(4):
        runs = res.runs[res.runs["point_id"] == pid]
        row = table[(table["point_id"] == pid)
                    & (table["metric"] == "losses__government_total")].iloc[0]
        x = runs["losses__government_total"].to_numpy()
        ref = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
        assert row["interval"] == "t" and row["n_runs"] == len(x)
        assert (row["mean"], row["ci_low"], row["ci_high"]) == pytest.approx(
            (x.mean(), *ref))
        assert (row["median"], row["p5"], row["p95"]) == pytest.approx(
            tuple(np.percentile(x, [50, 5, 95])))
        # a share: the mean of the per-run shares over the runs that have one, t over runs
        # (not the pooled successes / attempts, which differs when runs differ in attempts)
        share = table[(table["point_id"] == pid)
                      & (table["metric"] == "attack_success_rate")].iloc[0]
        r = runs["attack_success_rate"].dropna().to_numpy()
        assert share["interval"] == "t, mean of per-run shares" and share["n_runs"] == len(r)
        lo, hi = stats.t.interval(0.95, len(r) - 1, loc=r.mean(), scale=stats.sem(r))
        assert (share["mean"], share["ci_low"], share["ci_high"]) == pytest.approx(
            (r.mean(), max(lo, 0.0), min(hi, 1.0)))
        pooled = runs["attacks_succeeded_total"].sum() / runs["attacks_attempted_total"].sum()
        assert share["mean"] != pytest.approx(pooled, abs=1e-9)


def test_intervals_are_clipped_to_the_possible_range() -> None:
    design = [{"point_id": 0, "a": 1.0}]
    rows = [{"point_id": 0, "replicate": r, "raid_succeeded_total": v,
             "coverage_road_night_mean": c}
            for r, (v, c) in enumerate([(0, 1.0), (0, 1.0), (1, 0.9), (0, 1.0)])]
    table = statistics.summarise(_synthetic(rows, design), ["raid_succeeded_total",
                                                        "coverage_road_night_mean"])
    raids, cover = table.iloc[0], table.iloc[1]
    assert statistics.t_interval([0, 0, 1, 0])[0] < 0 and raids["ci_low"] == 0.0
    assert statistics.t_interval([1.0, 1.0, 0.9, 1.0])[1] > 1 and cover["ci_high"] == 1.0


def test_main_effect_averages_point_means_with_a_satterthwaite_interval() -> None:
    res = _two_by_two(replicates=5, seed=3)
    eff = statistics.main_effects(res, "losses__government_total", "a")
    assert list(eff["level"]) == [1.0, 3.0] and list(eff["n_runs"]) == [10, 10]
    for _, row in eff.iterrows():
        groups = [g["losses__government_total"].to_numpy()
                  for _, g in res.runs[res.runs["point_id"].isin(
                      res.design.loc[res.design["a"] == row["level"], "point_id"])]
                  .groupby("point_id")]
        v = np.array([g.var(ddof=1) / len(g) for g in groups])
        df = v.sum() ** 2 / np.sum(v**2 / np.array([len(g) - 1 for g in groups]))
        half = stats.t.ppf(0.975, df) * math.sqrt(v.sum() / len(groups) ** 2)
        mean = np.mean([g.mean() for g in groups])
        assert (row["mean"], row["ci_low"], row["ci_high"]) == pytest.approx(
            (mean, mean - half, mean + half))
    # the effect built into the data: +2 per unit of a, so +4 from 1 to 3 (noise sd 1)
    assert eff["mean"].iloc[1] - eff["mean"].iloc[0] == pytest.approx(4.0, abs=1.5)


def test_standardised_regression_coefficients_match_the_analytic_values() -> None:
    # y = 2 a + 3 [b = y] exactly, plus tiny noise: SRC_i = beta_i sd(x_i) / sd(y)
    res = _two_by_two(replicates=6, seed=5)
    runs = res.with_design(res.runs)
    y = 2 * runs["a"] + 3 * (runs["b"] == "y") + np.random.default_rng(0).normal(0, 1e-3,
                                                                                 len(runs))
    res.runs["losses__government_total"] = y.to_numpy()
    src = statistics.regression_coefficients(res, "losses__government_total").set_index("term")
    sd_y = y.std(ddof=1)
    assert src.loc["a", "src"] == pytest.approx(2 * runs["a"].std(ddof=1) / sd_y, abs=1e-3)
    assert src.loc["b = y", "src"] == pytest.approx(
        3 * (runs["b"] == "y").astype(float).std(ddof=1) / sd_y, abs=1e-3)
    assert src["r2"].iloc[0] == pytest.approx(1.0, abs=1e-5)
    assert (src["ci_low"] <= src["src"]).all() and (src["src"] <= src["ci_high"]).all()


def test_compare_uses_welch_overall_and_matches_points_by_factor_values() -> None:
    a, b = _two_by_two(seed=7), _two_by_two(seed=8)
    b.design = b.design.iloc[::-1].reset_index(drop=True)     # same points, another order
    b.design["point_id"] = [3, 2, 1, 0]
    overall, per_point = statistics.compare(a, b, ["losses__government_total"])
    x, y = a.runs["losses__government_total"], b.runs["losses__government_total"]
    ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
    row = overall.iloc[0]
    assert (row["diff"], row["ci_low"], row["ci_high"]) == pytest.approx(
        (x.mean() - y.mean(), ci.low, ci.high))
    assert per_point is not None and len(per_point) == 4
    first = per_point[(per_point["a"] == 1.0) & (per_point["b"] == "x")].iloc[0]
    pid_b = int(b.design.loc[(b.design["a"] == 1.0) & (b.design["b"] == "x"),
                             "point_id"].iloc[0])
    yb = b.runs.loc[b.runs["point_id"] == pid_b, "losses__government_total"]
    assert first["mean_b"] == pytest.approx(yb.mean())
    # different designs: only the all-run comparison
    c = _two_by_two(seed=9)
    c.design["a"] = c.design["a"] * 2
    assert statistics.compare(a, c, ["losses__government_total"])[1] is None


def test_default_metrics_skip_constant_empty_and_duplicate_columns() -> None:
    res = _two_by_two()
    res.runs["raid_attempted_total"] = res.runs["attacks_attempted_total"]    # a copy
    res.runs["border_crossings_total"] = 0.0                                  # constant
    res.runs["roads_open_fraction_mean"] = np.nan                             # all NaN
    chosen = statistics.default_metrics(res)
    assert chosen[:3] == ["attacks_attempted_total", "attacks_succeeded_total",
                          "attack_success_rate"]
    assert "losses__government_total" in chosen
    assert not {"raid_attempted_total", "border_crossings_total",
                "roads_open_fraction_mean"} & set(chosen)


def test_select_points_keeps_the_extremes_of_the_metric() -> None:
    design = [{"point_id": i, "a": float(i)} for i in range(10)]
    rows = [{"point_id": i, "replicate": r, "engagements_total": float((i * 7) % 10)}
            for i in range(10) for r in range(2)]
    res = _synthetic(rows, design)
    means = {i: (i * 7) % 10 for i in range(10)}
    got = statistics.select_points(res, "engagements_total", k=4)
    ranked = sorted(means, key=means.get)
    assert got == sorted(ranked[:2] + ranked[-2:])
    assert statistics.select_points(res, "engagements_total", k=20) == list(range(10))


def test_list_valued_factor_levels_are_grouped_as_text() -> None:
    routes = [["T3 outpost", "T3 oasis"], ["T3 outpost", "South well"]]
    design = [{"point_id": i, "units[kind=patrol].tactic.route": r}
              for i, r in enumerate(routes)]
    rows = [{"point_id": i, "replicate": r, "engagements_total": float(i * 3 + r)}
            for i in range(2) for r in range(3)]
    res = _synthetic(rows, design)
    eff = statistics.main_effects(res, "engagements_total", "units[kind=patrol].tactic.route")
    assert list(eff["level"]) == ["[T3 outpost, T3 oasis]", "[T3 outpost, South well]"]
    assert list(eff["mean"]) == [1.0, 4.0]


def test_labels_carry_units() -> None:
    assert labels.factor_label(RANGE) == "strongpoint night sensor range (km)"
    assert labels.factor_label(SCHEDULE) == "patrol schedule"
    assert labels.metric_label("losses__government_total", days=7) == (
        "Fighters lost, government (fighters per 7-day run)")
    assert labels.metric_label("coverage_road_night_mean").startswith("Road coverage at night")
    assert labels.level_text(4.0, RANGE) == "4 km"


# --------------------------------------------------------------------------------------------
# Reports from real batches
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("report-batches")
    out = {}
    with ThreadPoolExecutor(2) as pool:
        for name in ("tiny", "tiny_stronger_cells", "tiny_sobol"):
            out[name] = base / name
            got = run_batch(DATA / f"{name}.yaml", out[name], executor=pool, progress=False,
                            log=lambda _line: None)
            assert not got.failed and got.completed == got.total
    return out


@pytest.fixture(scope="module")
def built(batches: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
          ) -> report.Report:
    out = tmp_path_factory.mktemp("report-a") / "rep"
    return report.build_report(batches["tiny"], out)


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("href", "src") and value is not None:
                self.refs.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(index: Path) -> tuple[list[str], str]:
    p = _Refs()
    p.feed(index.read_text(encoding="utf-8"))
    return p.refs, " ".join(" ".join(p.text).split())


def _check_links(index: Path) -> list[str]:
    refs, _ = _parse(index)
    files = []
    for ref in refs:
        if ref.startswith("#"):
            continue
        parts = urlsplit(ref)
        assert not parts.scheme and not parts.netloc and not ref.startswith("/"), ref
        assert (index.parent / parts.path).is_file(), f"{ref} does not exist"
        files.append(parts.path)
    return files


def test_report_lists_every_figure_and_table_and_they_exist(built: report.Report) -> None:
    index = built.index
    assert index.is_file()
    names = [Path(f.path).name for f in built.figures]
    for prefix in ("main_", "interaction_", "daily_", "map_", "sensitivity"):
        assert any(n.startswith(prefix) for n in names), f"no {prefix} figure in {names}"
    for f in built.figures:
        png = built.out / f.path
        assert png.stat().st_size > 10_000, f.path
        with Image.open(png) as im:
            assert im.size == f.size_px == (1200, 675), f.path
    for t in built.tables:
        df = pd.read_csv(built.out / t.path)
        assert len(df) > 0, t.path
    linked = set(_check_links(index))
    assert {f.path for f in built.figures} <= linked
    assert {t.path for t in built.tables} <= linked
    _, text = _parse(index)
    assert "Report test: patrol by day or by night" in text        # the description
    assert "full_factorial: 4 design point(s) x 3 replicate(s) = 12 runs of 2 days" in text
    assert "12 finished" in text


def test_summary_table_has_a_row_per_point_and_metric(batches: dict[str, Path],
                                                      built: report.Report) -> None:
    table = pd.read_csv(built.out / "tables" / "summary_by_point.csv")
    metrics = sorted(set(table["metric"]))
    assert len(table) == 4 * len(metrics)
    assert {"mean", "ci_low", "ci_high", "interval", "median", "p5", "p95", "n_runs",
            SCHEDULE, RANGE} <= set(table.columns)
    res = load(batches["tiny"])
    for metric in metrics:
        assert res.runs[metric].nunique() > 1, f"{metric} is constant but reported"
    assert set(table["n_runs"]) == {3}


def test_plot_functions_return_figures(batches: dict[str, Path]) -> None:
    res = load(batches["tiny"])
    figs = [figures.plot_main_effects(res, "losses__government_total", RANGE),
            figures.plot_interaction(res, "losses__government_total", SCHEDULE, RANGE),
            figures.plot_timeseries(res, "losses__government_total", points=[0, 3]),
            figures.plot_event_map(res, 0),
            figures.plot_sensitivity(res, ["losses__government_total", "engagements_total"])]
    assert all(isinstance(f, Figure) for f in figs)
    assert len(figs[0].axes) == 1                       # one factor asked, one panel


def test_importing_and_drawing_leave_a_notebook_backend_alone(batches: dict[str, Path]) -> None:
    # a notebook's backend (here svg) must survive importing the analysis modules and drawing
    # slides and maps with them; pyplot (its current figure, its open figures) is never used
    code = f"""
import sys, matplotlib
matplotlib.use("svg")
from sim.analysis import figures, maps, report, statistics
from sim.experiments.results import load
res = load({str(batches["tiny"])!r})
figures.plot_event_map(res, 0)
maps.plot_terrain(statistics.scenario_terrain(res))
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["svg", "False"]


def test_sobol_report_shows_indices_with_confidence_intervals(
        batches: dict[str, Path], tmp_path: Path) -> None:
    rep = report.build_report(batches["tiny_sobol"], tmp_path / "rep",
                              metrics=["losses__government_total", "engagements_total"])
    table = pd.read_csv(tmp_path / "rep" / "tables" / "sensitivity.csv")
    assert {"S1", "S1_conf", "ST", "ST_conf"} <= set(table.columns)
    assert set(table["method"]) == {"sobol"} and len(table) == 4
    _, text = _parse(rep.index)
    assert "no time series" in text and "no event maps" in text     # keep: daily/events none
    _check_links(rep.index)


def test_cli_writes_into_the_results_folder_by_default(batches: dict[str, Path],
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / "tiny"
    shutil.copytree(batches["tiny"], copy)
    assert badia(["report", str(copy), "--metric", "engagements_total",
                  "--points", "1", "2"]) == 0
    assert (copy / "report" / "index.html").is_file()
    assert f"wrote {copy / 'report' / 'index.html'}" in capsys.readouterr().out
    figures = sorted(p.name for p in (copy / "report" / "figures").iterdir())
    assert "main_engagements_total.png" in figures and "daily_engagements.png" in figures
    daily = pd.read_csv(copy / "report" / "tables" / "daily.csv")
    assert set(daily["point_id"]) == {1, 2}


def test_text_from_the_results_folder_is_escaped_not_markup(batches: dict[str, Path],
                                                           tmp_path: Path) -> None:
    copy = tmp_path / "tiny"
    shutil.copytree(batches["tiny"], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    odd = "<script>alert('x')</script> & <b>co</b>"
    manifest["experiment"]["description"] = odd
    manifest["name"] = "tiny <i>"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    rep = report.build_report(copy, tmp_path / "rep", metrics=["engagements_total"])
    page = rep.index.read_text(encoding="utf-8")
    assert "<script>" not in page and "<i>" not in page and "<b>co" not in page
    assert "&lt;script&gt;" in page
    _, text = _parse(rep.index)
    assert odd in text and "badia report: tiny <i>" in text
    _check_links(rep.index)


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_bad_part_is_named_in_one_line_or_left_out_with_skip_bad(
        batches: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture,
        damage: str) -> None:
    copy = tmp_path / "tiny"
    shutil.copytree(batches["tiny"], copy)
    part = copy / "parts" / "run-000005.parquet"
    if damage == "corrupt":
        part.write_bytes(part.read_bytes()[:200])
    else:
        part.unlink()
    capsys.readouterr()
    few = ["--metric", "losses__government_total", "--metric", "engagements_total"]
    assert badia(["report", str(copy), "--out", str(tmp_path / "r1"), *few]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "run-000005.parquet" in err
    assert "Traceback" not in err and not (tmp_path / "r1" / "index.html").exists()

    assert badia(["report", str(copy), "--out", str(tmp_path / "r2"), "--skip-bad", *few]) == 0
    _, text = _parse(tmp_path / "r2" / "index.html")
    assert "1 run(s) left out" in text and "parts/run-000005.parquet" in text
    assert "11 finished" in text
    _check_links(tmp_path / "r2" / "index.html")


def test_bad_arguments_are_one_line_errors(batches: dict[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    out = str(tmp_path / "r")
    assert badia(["report", str(batches["tiny"]), "--out", out, "--metric",
                  "losses__goverment_total"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "losses__goverment_total" in err and "did you mean 'losses__government_total'" in err
    assert badia(["report", str(batches["tiny"]), "--out", out, "--points", "9"]) == 1
    assert "no design point 9" in capsys.readouterr().err
    assert badia(["report", str(tmp_path / "nowhere")]) == 1
    assert "no such results folder" in capsys.readouterr().err


def test_compare_mode_puts_two_experiments_side_by_side(batches: dict[str, Path],
                                                       tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    assert badia(["report", str(batches["tiny"]), "--out", str(out), "--against",
                  str(batches["tiny_stronger_cells"]), "--metric", "losses__government_total",
                  "--metric", "attack_success_rate", "--metric", "engagements_total"]) == 0
    overall = pd.read_csv(out / "tables" / "compare_all_runs.csv")
    per_point = pd.read_csv(out / "tables" / "compare_by_point.csv")
    a, b = load(batches["tiny"]), load(batches["tiny_stronger_cells"])
    row = overall.set_index("metric").loc["losses__government_total"]
    x, y = a.runs["losses__government_total"], b.runs["losses__government_total"]
    ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
    assert (row["mean_a"], row["mean_b"], row["diff"], row["ci_low"], row["ci_high"]) == (
        pytest.approx((x.mean(), y.mean(), x.mean() - y.mean(), ci.low, ci.high)))
    assert len(per_point) == 4 * len(overall)             # same design: point by point
    assert {SCHEDULE, RANGE, "n_a", "n_b", "diff", "ci_low", "ci_high"} <= set(per_point)
    refs = _check_links(out / "index.html")
    assert "figures/compare.png" in refs
    _, text = _parse(out / "index.html")
    assert "report-tiny-stronger-cells" in text and "A − B" in text


def test_example_script_makes_two_figures(batches: dict[str, Path], tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "analysis_example.py"),
         str(batches["tiny"]), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == 2 and all(p.stat().st_size > 10_000 for p in pngs)
    assert "losses__government_total" in proc.stdout     # the table it prints


def test_load_errors_surface_as_results_errors(tmp_path: Path) -> None:
    with pytest.raises(ResultsError):
        report.build_report(tmp_path / "absent")


# --------------------------------------------------------------------------------------------
# One number per metric: the tables and the plots of the quick experiment agree
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Results:
    out = tmp_path_factory.mktemp("quick") / "quick"
    got = run_batch(ROOT / "experiments" / "quick.yaml", out, workers=2, progress=False,
                    log=lambda _line: None)
    assert not got.failed and got.completed == got.total == 60
    return load(out)


@pytest.mark.slow
def test_the_quick_reports_tables_and_plots_give_the_same_numbers(quick: Results) -> None:
    metrics = statistics.default_metrics(quick)
    assert "attack_success_rate" in metrics
    overall = statistics.summarise(quick, metrics, by_point=False).set_index("metric")
    per_point = statistics.summarise(quick, metrics)
    design = statistics.design_table(quick).set_index("point_id")
    for metric in metrics:
        # main effects: the dashed line is the table's mean over all runs, the grey dots the
        # table's design point means
        fig = figures.plot_main_effects(quick, metric)
        ax = fig.axes[0]
        dashed = next(line for line in ax.get_lines() if line.get_linestyle() == "--")
        assert dashed.get_ydata()[0] == pytest.approx(overall.loc[metric, "mean"], rel=1e-12)
        dots = np.sort(ax.collections[0].get_offsets()[:, 1])
        rows = per_point[per_point["metric"] == metric]
        np.testing.assert_allclose(dots, np.sort(rows["mean"].to_numpy()), rtol=1e-12)
        # the heatmap: each cell (one design point) holds the table's mean, and its "±" the
        # half-width of the table's interval
        fig = figures.plot_interaction(quick, metric, SCHEDULE, RANGE)
        ax = fig.axes[0]
        grid = np.asarray(ax.images[0].get_array())
        xs = sorted(design[SCHEDULE].unique())
        ys = sorted(design[RANGE].unique())
        texts = [t.get_text() for t in ax.texts]
        for _, row in rows.iterrows():
            i, j = ys.index(row[RANGE]), xs.index(row[SCHEDULE])
            assert grid[i, j] == pytest.approx(row["mean"], rel=1e-12)
            assert labels.fmt(row["mean"]) in texts
            assert f"± {labels.fmt((row['ci_high'] - row['ci_low']) / 2)}" in texts
    # the share is named the same way in the table and in the figures' footnotes
    assert overall.loc["attack_success_rate", "interval"] == "t, mean of per-run shares"
    fig = figures.plot_interaction(quick, "attack_success_rate", SCHEDULE, RANGE)
    assert any(statistics.SHARE_DEFINITION in t.get_text() for t in fig.texts)


def test_heatmap_colours_do_not_span_differences_smaller_than_their_intervals() -> None:
    grid = np.array([[0.50, 0.52], [0.51, 0.53]])
    lo, hi, widened = figures.colour_limits(grid, np.full_like(grid, 0.10), (0.0, 1.0))
    assert widened and hi - lo == pytest.approx(0.20) and lo <= 0.50 and hi >= 0.53
    # kept inside the metric's range
    lo, hi, widened = figures.colour_limits(grid - 0.49, np.full_like(grid, 0.10), (0.0, 1.0))
    assert widened and lo == 0.0 and hi == pytest.approx(0.20)
    # differences larger than the intervals keep the cells' own range
    lo, hi, widened = figures.colour_limits(grid * 10, np.full_like(grid, 0.01))
    assert not widened and (lo, hi) == pytest.approx((5.0, 5.3))
