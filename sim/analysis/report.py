"""`badia report RESULTS_DIR`: one HTML report of a results folder, with its figures and tables.

The report is a self-contained folder (default `RESULTS_DIR/report`)::

    index.html          experiment, design, run counts, tables and figures (inline CSS only)
    figures/*.png       main effects, interactions, daily series, event maps, sensitivity
    tables/*.csv        the same numbers as the HTML tables, for a spreadsheet
    gis/                (--gis) events as GeoParquet, terrain and event-density GeoTIFFs
                        (`sim.analysis.gis.write_results_gis`)

It also writes the results folder's flat tables (runs/daily/events.parquet,
`sim.experiments.tables`) if they are missing or out of date.

This module decides what goes in the report and writes it: the numbers come from
`sim.analysis.statistics` (where the confidence intervals are described), the slides from
`sim.analysis.figures`, and the page is rendered by jinja2 from the templates in
`sim/analysis/templates/` (autoescaped: every name, path and error message is text, never
markup). In a notebook, use those modules directly.

One module, a little over 600 lines: the page's sections are built here from the statistics
and figures modules and handed to the jinja2 templates; each section is a short function.
"""

from __future__ import annotations

import argparse
import functools
import math
import re
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from sim.analysis.figures import (
    DPI,
    SLIDE_INCHES,
    plot_compare,
    plot_event_maps,
    plot_interaction,
    plot_main_effects,
    plot_sensitivity,
    plot_timeseries,
    save_figure,
)
from sim.analysis.labels import factor_label, fmt, level_text, metric_title, point_label
from sim.analysis.statistics import (
    MAX_SHOWN_POINTS,
    check_metrics,
    compare,
    daily_bands,
    daily_column,
    default_metrics,
    design_table,
    event_layers,
    factor_importance,
    interaction_table,
    is_sobol,
    main_effects,
    metric_columns,
    n_finished,
    ok_runs,
    plain_value,
    run_days,
    scenario_terrain,
    select_points,
    sensitivity,
    summarise,
)
from sim.errors import ResultsError, ScenarioError, UserError
from sim.experiments.results import Results, ensure_flat_tables, load

#: Above this many design points the HTML shows all-run tables only (the CSV has every point).
MAX_HTML_POINTS = 30
#: Metrics with a heatmap per factor pair (the first kept ones).
HEADLINE_METRICS = 3
#: Daily metrics drawn as time series (the first kept ones with a daily column).
MAX_SERIES = 4
#: Factor pairs with heatmaps (from the most influential factors when there are more).
MAX_PAIRS = 3
#: Where the page's templates are (shipped as package data).
TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class ReportFile:
    """One figure or table of a report: its path relative to the report folder, a title, a
    caption, and (figures) the pixel size."""

    path: str
    title: str
    caption: str = ""
    size_px: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        """The file's name (the text of a link to it)."""
        return Path(self.path).name


@dataclass
class Report:
    """What `build_report` wrote."""

    out: Path
    index: Path
    figures: list[ReportFile] = field(default_factory=list)
    tables: list[ReportFile] = field(default_factory=list)
    gis: list[ReportFile] = field(default_factory=list)
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class Section:
    """One section of the page: its anchor and heading, the template that renders it
    (`templates/section_<template>`) and that template's values (`v` in the template)."""

    anchor: str
    heading: str
    template: str
    values: dict[str, Any] = field(default_factory=dict)


def build_report(results_dir: str | Path, out: str | Path | None = None, *,
                 metrics: Sequence[str] | None = None, against: str | Path | None = None,
                 skip_bad: bool = False, points: Sequence[int] | None = None,
                 level: float = 0.95, gis: bool = False) -> Report:
    """Write the HTML report of a results folder (see the module docstring) and return what
    it wrote. Raises ResultsError for an unreadable folder, an unknown metric or point;
    `gis=True` without the `gis` extra raises UserError before anything is written."""
    t0 = time.perf_counter()
    if gis:
        from sim.analysis.geotiff import require

        require("--gis")
    results = _load(results_dir, skip_bad)
    flat_note = _flat_tables(results)
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
    if flat_note:
        rep.notes.append(flat_note)
    ctx = _Ctx(results, other, metrics, rep, fig_dir, tab_dir, level,
               list(dict.fromkeys(int(p) for p in points)) if points else None)
    sections = ctx.build()
    if gis:
        _write_gis(results, out_dir / "gis", rep)
    # the page goes last, whole (temporary name, then rename): it exists only complete
    tmp = out_dir / ".index.html.tmp"
    tmp.write_text(_render_page(ctx, sections), encoding="utf-8")
    tmp.replace(index)
    rep.elapsed_s = time.perf_counter() - t0
    return rep


def _flat_tables(results: Results) -> str | None:
    """Write the results folder's flat tables if missing or stale; a note if it did, or why
    it could not (runs left out, a read-only folder); the report goes on either way."""
    if not results.left_out.empty:
        return (f"flat tables of {results.path} not rebuilt: {len(results.left_out)} run(s) "
                f"left out")
    try:
        if ensure_flat_tables(results.path):
            return f"wrote {results.path}/{{runs,daily,events}}.parquet (flat tables)"
    except (ResultsError, OSError) as exc:
        return f"flat tables of {results.path} not written: {exc}"
    return None


def _write_gis(results: Results, gis_dir: Path, rep: Report) -> None:
    """`--gis`: the GIS layers in `gis_dir`, listed among the report's files."""
    from sim.analysis.gis import layer_title, write_results_gis

    for old in (gis_dir.glob("*") if gis_dir.is_dir() else ()):
        if old.suffix in (".tif", ".parquet", ".geojson"):
            old.unlink()   # the previous report's layers; nothing else is touched
    try:
        written, notes = write_results_gis(results, gis_dir)
    except ScenarioError as exc:
        written, notes = [], [f"no GIS layers: {exc.messages[0] if exc.messages else exc}"]
    rep.notes += [f"--gis: {n}" for n in notes]
    rep.gis += [ReportFile(f"gis/{p.name}", layer_title(p)) for p in written]


def _load(path: str | Path, skip_bad: bool) -> Results:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the left-out runs are listed in the report
        return load(path, skip_bad=skip_bad)


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")[:60] or "x"


def _name(r: Results) -> str:
    return str(r.manifest.get("name") or r.path.name)


def _points_text(r: Results, pts: Sequence[int]) -> list[str]:
    """Design points as "3 (night · 4 km)", for a sentence."""
    design = design_table(r).set_index("point_id")
    return [f"{p} ({point_label(design.loc[p], r.factors)})" for p in pts]


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.to_dict("records")


def _summary_table(df: pd.DataFrame) -> dict[str, Any]:
    return {"rows": _rows(df)}


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
    def build(self) -> list[Section]:
        """Every section of the page, in order (writing their figures and tables)."""
        r = self.results
        sections = []
        if not self.metrics:
            sections.append(Section("tables", "Summary tables", "no_metrics.html",
                                    {"kept_summary": bool(metric_columns(r))}))
        else:
            sections.append(self.tables_section())
            if r.factors:
                sections.append(self.main_effects_section())
            if len(r.factors) >= 2:
                sections.append(self.interactions_section())
            sections.append(self.timeseries_section())
            sections.append(self.maps_section())
            if r.factors:
                sections.append(self.sensitivity_section())
        if self.other is not None:
            sections.append(self.compare_section())
        return sections

    def shown_points(self) -> list[int]:
        if self.points:
            return self.points
        return select_points(self.results, self.metrics[0] if self.metrics else None)

    def tables_section(self) -> Section:
        r = self.results
        overall = summarise(r, self.metrics, self.level, by_point=False)
        per_point = summarise(r, self.metrics, self.level, by_point=True)
        values: dict[str, Any] = {
            "t_all": self.table(overall, "summary_all_runs", "All runs"),
            "t_pts": self.table(per_point, "summary_by_point", "By design point"),
            "overall": _summary_table(overall),
            "n_points": len(r.design),
            "by_point": None,
        }
        if len(r.design) <= MAX_HTML_POINTS:
            values["by_point"] = [
                {"metric": metric, "anchor": f"t-{_slug(metric)}",
                 "table": _summary_table(per_point[per_point["metric"] == metric])}
                for metric in self.metrics]
        return Section("tables", "Summary tables", "tables.html", values)

    def main_effects_section(self) -> Section:
        r = self.results
        frames, figs = [], []
        for metric in self.metrics:
            effects = {f: main_effects(r, metric, f, self.level) for f in r.factors}
            frames += [e.assign(metric=metric, factor=f) for f, e in effects.items()]
            fig = plot_main_effects(r, metric, None, level=self.level, effects=effects)
            figs.append(self.figure(fig, f"main_{_slug(metric)}",
                                    f"Main effects on {metric_title(metric).lower()}"))
        table = pd.concat(frames, ignore_index=True)
        table["level"] = table["level"].map(plain_value)
        t = self.table(table[["metric", "factor", "level", "mean", "ci_low", "ci_high",
                              "n_points", "n_runs", "ci_method", "binned"]],
                       "main_effects", "Main effects")
        return Section("main-effects", "Main effects", "main_effects.html",
                       {"table": t, "figs": figs})

    def interactions_section(self) -> Section:
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
            table[c] = table[c].map(plain_value)
        t = self.table(table[["metric", "factor_x", "x", "factor_y", "y", "mean", "ci_low",
                              "ci_high", "n_points", "n_runs"]], "interactions",
                       "Two-factor means")
        return Section("interactions", "Interactions", "interactions.html", {
            "table": t, "figs": figs,
            # with more than three factors, the pairs are of the most influential ones
            "n_top": len(top) if len(r.factors) > 3 else 0, "first_metric": self.metrics[0]})

    def timeseries_section(self) -> Section:
        r = self.results
        section = Section("timeseries", "Daily time series", "timeseries.html")
        if r.daily.empty or len(r.daily.columns) <= 4:
            section.values["missing"] = "daily"
            return section
        pts = self.shown_points()
        series = []
        for metric in self.metrics:
            col = daily_column(r, metric)
            if col and col[0] not in [c for c, _ in series]:
                series.append(col)
        series = series[:MAX_SERIES]
        if not series:
            section.values["missing"] = "column"
            return section
        figs, frames = [], []
        for col, cumulative in series:
            frames.append(daily_bands(r, col, pts, cumulative, self.level).assign(
                column=col, cumulative=cumulative))
            fig = plot_timeseries(r, col, pts, cumulative=cumulative, level=self.level)
            figs.append(self.figure(fig, f"daily_{_slug(col)}",
                                    f"{'Cumulative ' if cumulative else ''}{col} by day"))
        t = self.table(pd.concat(frames, ignore_index=True), "daily", "Daily means")
        section.values.update(table=t, figs=figs, points=_points_text(r, pts))
        return section

    def maps_section(self) -> Section:
        r = self.results
        section = Section("maps", "Event maps", "maps.html")
        if r.events.empty:
            section.values["missing"] = "events"
            return section
        layers = event_layers(r)
        if not layers:
            section.values["missing"] = "layers"
            return section
        try:
            terrain = scenario_terrain(r)
        except ScenarioError as exc:
            section.values.update(missing="terrain", error=exc.messages[0])
            return section
        pts = self.shown_points()
        map_factors = [f for f in r.factors if f.startswith("map")]
        if map_factors:
            section.values.update(missing="shared_map", map_factor=map_factors[0])
            return section
        figs = []
        for name, (types, weight) in layers.items():
            fig = plot_event_maps(r, pts, types=types, weight=weight, title=name.capitalize(),
                                  terrain=terrain)
            figs.append(self.figure(fig, f"map_{_slug(name)}", f"Where: {name}"))
        section.values.update(figs=figs, points=_points_text(r, pts),
                              detections="detections" in layers)
        return section

    def sensitivity_section(self) -> Section:
        r = self.results
        section = Section("sensitivity", "Sensitivity", "sensitivity.html")
        frames = []
        problems = []
        for metric in self.metrics:
            try:
                frames.append(sensitivity(r, metric, self.level).assign(metric=metric))
            except (ResultsError, ValueError) as exc:
                problems.append(f"{metric}: {exc}")
        frames = [f for f in frames if not f.empty]
        section.values["problems"] = problems
        if not frames:
            return section
        table = pd.concat(frames, ignore_index=True)
        t = self.table(table, "sensitivity", "Sensitivity")
        shown = [m for m in self.metrics if m in set(table["metric"])][:6]
        fig = plot_sensitivity(r, shown, table=table)
        f = self.figure(fig, "sensitivity", "Sensitivity of the headline metrics")
        section.values.update(table=t, fig=f, sobol=is_sobol(r))
        return section

    def compare_section(self) -> Section:
        a, b = self.results, self.other
        assert b is not None
        section = Section("compare", "Comparison", "compare.html",
                          {"name_a": _name(a), "name_b": _name(b)})
        overall, per_point = compare(a, b, self.metrics, self.level)
        if overall.empty:
            return section
        section.values.update(
            path_a=str(a.path), path_b=str(b.path), n_a=n_finished(a), n_b=n_finished(b),
            t_all=self.table(overall, "compare_all_runs", "Comparison, all runs"),
            overall=_rows(overall), same_design=per_point is not None, per_point=None)
        if per_point is not None:
            section.values["t_pts"] = self.table(per_point, "compare_by_point",
                                                 "Comparison by design point")
        fig = plot_compare(overall, label_a=_name(a), label_b=_name(b))
        section.values["fig"] = self.figure(fig, "compare", f"{_name(a)} against {_name(b)}")
        if (per_point is not None and len(per_point) <= 40 * len(overall)
                and len(a.design) <= MAX_HTML_POINTS):
            section.values["per_point"] = _rows(per_point)
        return section


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------


def _ci_text(row: dict[str, Any]) -> str:
    if not math.isfinite(float(row["ci_low"])):
        return "n/a"
    return f"{fmt(row['ci_low'])} – {fmt(row['ci_high'])}"


def _interval_text(row: dict[str, Any]) -> str:
    return str(row["interval"])


def _signed_percent(share: Any) -> str:
    return f"{100 * float(share):+.0f}%" if math.isfinite(float(share)) else ""


def _factor_spec_text(spec: Any) -> str:
    if not isinstance(spec, dict):
        return str(spec)
    if spec.get("levels") is not None:
        return "levels " + ", ".join(str(v) for v in spec["levels"])
    rng = spec.get("range") or {}
    kind = "whole numbers" if spec.get("integer") else "continuous"
    return f"{kind} {rng.get('min')} to {rng.get('max')}"


@functools.cache
def _environment() -> jinja2.Environment:
    """The jinja2 environment of the report's templates (autoescaped HTML), with the filters
    they use for numbers and labels."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters.update(
        fmt=fmt, ci=_ci_text, interval=_interval_text, signed_percent=_signed_percent,
        percent=lambda x: f"{x:.0%}", g=lambda x: f"{x:g}", metric_title=metric_title,
        factor_label=factor_label, level_text=level_text, spec_text=_factor_spec_text)
    return env


def _render_page(ctx: _Ctx, sections: list[Section]) -> str:
    """The report's index.html: the header (experiment, design, runs, warnings) and
    `sections`, rendered from templates/page.html."""
    r = ctx.results
    m = r.manifest
    exp = m.get("experiment") or {}
    code = m.get("code") or {}
    commit = code.get("git_commit")
    version = f"sim {code.get('sim', '?')}" + (
        f", commit {commit[:10]}{' (uncommitted changes)' if code.get('git_dirty') else ''}"
        if commit else "")
    design_rows = None
    if len(r.design) <= MAX_HTML_POINTS and r.factors:
        counts = ok_runs(r).groupby("point_id").size()
        design_rows = [{"point_id": int(row["point_id"]), "levels": [row[f] for f in r.factors],
                        "runs": int(counts.get(row["point_id"], 0))}
                       for _, row in design_table(r).iterrows()]
    other_left = (ctx.other.left_out["part"].astype(str).tolist()
                  if ctx.other is not None else [])
    return _environment().get_template("page.html").render(
        title=f"badia report: {_name(r)}",
        description=exp.get("description") or "",
        experiment_file=m.get("experiment_file", ""),
        base_scenario=(m.get("base_scenario") or {}).get("file", ""),
        design_kind=(m.get("design") or {}).get("kind", "?"),
        n_points=len(r.design),
        replicates=exp.get("replicates"),
        n_total=len((m.get("runs") or {}).get("rows") or []),
        days=run_days(r),
        factors=[(f, (exp.get("factors") or {}).get(f)) for f in r.factors],
        n_ok=n_finished(r),
        n_failed=int((r.runs["status"] == "failed").sum()) if "status" in r.runs else 0,
        left_out=list(r.left_out.itertuples()),
        failures=list(r.failures.head(20).itertuples()),
        other_name=_name(ctx.other) if ctx.other is not None else "",
        other_left_out=other_left,
        results_path=str(r.path),
        created=m.get("created", "?"),
        version=version,
        metrics=ctx.metrics,
        design_factors=r.factors,
        design_rows=design_rows,
        sections=sections,
        files=[*ctx.rep.tables, *ctx.rep.gis],
        level=ctx.level,
        slide_inches=SLIDE_INCHES,
        dpi=DPI,
        written=time.strftime("%Y-%m-%d %H:%M"),
    )


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
    parser.add_argument("--gis", action="store_true",
                        help="also write REPORT_DIR/gis/: every event as GeoParquet, the "
                             "terrain and the event maps as GeoTIFFs (needs the 'gis' extra)")
    parser.add_argument("--points", type=int, nargs="+", metavar="P",
                        help="design points for the time series and maps (default: all, or "
                             f"the {MAX_SHOWN_POINTS} with extreme values of the first metric)")


def run_report_command(args: argparse.Namespace) -> int:
    """`badia report`: build the report, print where it is; returns the exit status."""
    try:
        rep = build_report(args.results, args.out, metrics=args.metric or None,
                           against=args.against, skip_bad=args.skip_bad, points=args.points,
                           gis=getattr(args, "gis", False))
    except (ResultsError, UserError) as exc:
        print(f"badia report: {exc}", file=sys.stderr)
        return 1
    except ScenarioError as exc:
        print(f"badia report: {exc.messages[0] if exc.messages else exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"badia report: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for note in rep.notes:
        print(f"note: {note}", file=sys.stderr)
    gis_text = f", {len(rep.gis)} GIS layers in {rep.out / 'gis'}" if rep.gis else ""
    print(f"wrote {rep.index} ({len(rep.figures)} figures, {len(rep.tables)} tables{gis_text}) "
          f"in {rep.elapsed_s:.1f} s")
    return 0


def main(argv: Iterable[str] | None = None) -> int:
    """`python -m sim.analysis.report RESULTS_DIR ...` (the same as `badia report`)."""
    parser = argparse.ArgumentParser(prog="badia report", description=__doc__.split("\n")[0])
    add_report_arguments(parser)
    return run_report_command(parser.parse_args(None if argv is None else list(argv)))


__all__ = [
    "MAX_HTML_POINTS",
    "Report",
    "ReportFile",
    "Section",
    "add_report_arguments",
    "build_report",
    "main",
    "run_report_command",
]


if __name__ == "__main__":
    sys.exit(main())
