"""Results, reading: `load(DIR)` turns a results folder (written by :mod:`sim.experiments.store`)
into pandas DataFrames; the flat tables beside the parts (`sim.experiments.tables`); Sobol'
indices of a Sobol' design's results.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import ResultsError
from sim.experiments.store import (
    _FAILURE_RE,
    _PART_RE,
    EVENT_BASE_COLUMNS,
    FAILURES,
    ID_COLUMNS,
    PARTS,
    RunIds,
    _one_line,
    part_name,
    read_manifest,
)
from sim.experiments.tables import (
    DAILY_TABLE,
    EVENT_SCHEMA,
    EVENTS_TABLE,
    FLAT_FORMAT,
    FLAT_TABLES,
    RUN_ID_COLUMNS,
    RUNS_TABLE,
    empty_events_table,
    factor_column_names,
    flat_events_table,
    parts_state,
    table_meta,
    typed_column,
    write_parquet_atomic,
)

# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass
class Results:
    """A results folder as pandas DataFrames (docs/architecture.md, "Batch and results store").

    - `design`: point_id + one column per factor path
    - `runs`: run_id, point_id, replicate, seed, status ("ok" | "failed") + summary metrics
    - `daily`: run_id, point_id, replicate, day + daily metrics
    - `events`: run_id, point_id, replicate, hour, day, type, row, col, lat, lon, faction, ...
    - `failures`: run_id, point_id, replicate, seed, error_type, error, traceback
    - `left_out`: run_id, part, reason — runs missing from the tables (only with skip_bad=True)
    """

    path: Path
    manifest: dict[str, Any]
    design: pd.DataFrame
    runs: pd.DataFrame
    daily: pd.DataFrame
    events: pd.DataFrame
    failures: pd.DataFrame
    left_out: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        {"run_id": pd.Series(dtype="int64"), "part": pd.Series(dtype=str),
         "reason": pd.Series(dtype=str)}))

    @property
    def factors(self) -> list[str]:
        """The factor paths, in design-column order."""
        return [c for c in self.design.columns if c != "point_id"]

    def with_design(self, table: pd.DataFrame) -> pd.DataFrame:
        """`table` (runs, daily or events) with the factor columns of its design point added."""
        return table.merge(self.design, on="point_id", how="left", validate="many_to_one")


def design_frame(manifest: Mapping[str, Any]) -> pd.DataFrame:
    """The design table stored in a manifest: point_id + one column per factor path."""
    design = manifest["design"]
    columns = ["point_id", *design["factors"]]
    rows = [[i, *[point[f] for f in design["factors"]]] for i, point in enumerate(design["points"])]
    df = pd.DataFrame(rows, columns=columns)
    df["point_id"] = df["point_id"].astype("int64")
    return df


def _expected_runs(manifest: Mapping[str, Any]) -> dict[int, RunIds]:
    runs = manifest["runs"]
    return {r[0]: RunIds(*r) for r in runs["rows"]}


def _read_part(path: Path, expected: RunIds | None) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(runs row, daily rows, event rows) of one part, ids attached; ResultsError if bad."""
    try:
        # ParquetFile.read is several times faster than read_table for many small files
        with pq.ParquetFile(path, page_checksum_verification=True) as pf:
            table = pf.read()
        row = table.slice(0, 1)
        ids = {name: row.column(name)[0].as_py() for name in ID_COLUMNS}
    except Exception as exc:   # pyarrow raises several kinds for a bad file
        raise ResultsError(f"{path}: unreadable Parquet part ({_one_line(exc)})") from None
    if table.num_rows != 1 or (expected is not None and RunIds(**ids) != expected):
        raise ResultsError(f"{path}: part does not hold the run its name says (got {ids})")
    run_cols = {k: pa.array([v], type=pa.int64()) for k, v in ids.items()}
    run_cols["status"] = pa.array(["ok"], type=pa.string())
    if "summary" in table.column_names:
        struct = table.column("summary").combine_chunks()
        for i, f in enumerate(struct.type):
            run_cols[f.name] = struct.field(i)
    runs = pa.Table.from_pydict(run_cols)

    def nested(name: str) -> pa.Table:
        if name not in table.column_names:
            return pa.table({})
        items = table.column(name).combine_chunks().flatten()
        inner = pa.Table.from_struct_array(items)
        n = inner.num_rows
        id_cols = [pa.array([ids[k]] * n, type=pa.int64()) for k in ("run_id", "point_id",
                                                                       "replicate")]
        return pa.Table.from_arrays(
            [*id_cols, *inner.columns], names=["run_id", "point_id", "replicate",
                                               *inner.column_names])

    return runs, nested("daily"), nested("events")


def _concat(tables: list[pa.Table], empty_columns: Sequence[str]) -> pd.DataFrame:
    tables = [t for t in tables if t.num_columns]
    if not tables:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in empty_columns})
    merged = pa.concat_tables(tables, promote_options="permissive")
    return merged.to_pandas()


def _read_failures(path: Path, expected: Mapping[int, RunIds]) -> list[dict[str, Any]]:
    records = []
    folder = path / FAILURES
    if not folder.is_dir():
        return records
    for p in sorted(folder.iterdir()):
        m = _FAILURE_RE.match(p.name)
        if not m:
            continue
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            raise ResultsError(f"{p}: unreadable failure record ({_one_line(exc)})") from None
        run_id = int(m.group(1))
        ids = expected.get(run_id)
        records.append({
            "run_id": run_id,
            "point_id": ids.point_id if ids else rec.get("point_id"),
            "replicate": ids.replicate if ids else rec.get("replicate"),
            "seed": ids.seed if ids else rec.get("seed"),
            "error_type": rec.get("error_type"),
            "error": rec.get("error"),
            "traceback": rec.get("traceback"),
        })
    return records


@dataclass
class _Parts:
    """What `_read_parts` found: per finished run its (runs row, daily rows, event rows) as
    Arrow tables, in run_id order; the failure records; the runs left out."""

    manifest: dict[str, Any]
    expected: dict[int, RunIds]
    tables: list[tuple[RunIds, pa.Table, pa.Table, pa.Table]]
    failures: list[dict[str, Any]]
    left_out: list[dict[str, Any]]


def _read_parts(path: Path, skip_bad: bool) -> _Parts:
    """Read every part and failure record of a results folder (see `load` for the rules)."""
    manifest = read_manifest(path)
    expected = _expected_runs(manifest)
    parts_dir = path / PARTS
    found: dict[int, Path] = {}
    if parts_dir.is_dir():
        for p in parts_dir.iterdir():
            if m := _PART_RE.match(p.name):
                found[int(m.group(1))] = p
    failures = _read_failures(path, expected)
    failed = {f["run_id"] for f in failures}

    tables: list[tuple[RunIds, pa.Table, pa.Table, pa.Table]] = []
    left_out: list[dict[str, Any]] = []
    missing = [r for r in sorted(expected) if r not in found and r not in failed]
    if missing and not skip_bad:
        raise ResultsError(
            f"{parts_dir / part_name(missing[0])}: missing; {len(missing)} of {len(expected)} "
            f"runs have no part and no failure record (rerun `badia batch` on this folder to "
            f"finish, or load(..., skip_bad=True))")
    for run_id in missing:
        left_out.append({"run_id": run_id, "part": f"{PARTS}/{part_name(run_id)}",
                         "reason": "missing (the batch has not finished it)"})

    def read(run_id: int) -> tuple[pa.Table, pa.Table, pa.Table] | ResultsError:
        try:
            return _read_part(found[run_id], expected[run_id])
        except ResultsError as exc:
            return exc

    present = [r for r in sorted(expected) if r in found]
    # pyarrow releases the GIL while decoding, so a few threads read many parts faster
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for run_id, got in zip(present, pool.map(read, present), strict=True):
            if isinstance(got, ResultsError):
                if not skip_bad:
                    raise got
                left_out.append({"run_id": run_id, "part": f"{PARTS}/{part_name(run_id)}",
                                 "reason": str(got)})
                continue
            tables.append((expected[run_id], *got))
    left_out.sort(key=lambda r: r["run_id"])
    return _Parts(manifest, expected, tables, failures, left_out)


def load(path: str | os.PathLike[str], skip_bad: bool = False) -> Results:
    """Read a results folder into pandas DataFrames (see `Results`).

    Every run of the design must have a readable part or a failure record; otherwise
    `ResultsError` names the first bad or missing part. With `skip_bad=True` such runs are left
    out instead, listed in `Results.left_out`, and a warning says how many.
    """
    path = Path(path)
    got = _read_parts(path, skip_bad)
    manifest, failures, left_out = got.manifest, got.failures, got.left_out
    run_tables = [t[1] for t in got.tables]
    daily_tables = [t[2] for t in got.tables]
    event_tables = [t[3] for t in got.tables]

    runs_df = _concat(run_tables, [*ID_COLUMNS])
    if "status" not in runs_df.columns:
        runs_df["status"] = pd.Series(dtype=str)
    ok_ids = set(runs_df["run_id"].tolist())
    failed_rows = [
        {"run_id": f["run_id"], "point_id": f["point_id"], "replicate": f["replicate"],
         "seed": f["seed"], "status": "failed"}
        for f in failures if f["run_id"] not in ok_ids
    ]
    if failed_rows:
        failed_df = pd.DataFrame(failed_rows).astype({c: "int64" for c in ID_COLUMNS})
        runs_df = pd.concat([runs_df, failed_df], ignore_index=True) if len(runs_df) else failed_df
    runs_df = runs_df.sort_values("run_id", kind="stable").reset_index(drop=True)
    daily_df = _concat(daily_tables, ["run_id", "point_id", "replicate", "day"])
    events_df = _concat(event_tables, ["run_id", "point_id", "replicate", *EVENT_BASE_COLUMNS])
    failures_df = pd.DataFrame(
        failures, columns=["run_id", "point_id", "replicate", "seed", "error_type", "error",
                           "traceback"])
    left_df = pd.DataFrame(left_out, columns=["run_id", "part", "reason"])
    if left_out:
        warnings.warn(
            f"{path}: left out {len(left_out)} run(s) with a bad or missing part "
            f"(first: {left_out[0]['part']}); see Results.left_out",
            stacklevel=2,
        )
    return Results(path=path, manifest=manifest, design=design_frame(manifest), runs=runs_df,
                   daily=daily_df, events=events_df, failures=failures_df, left_out=left_df)


# --------------------------------------------------------------------------------------------
# Flat tables (sim.experiments.tables): runs.parquet, daily.parquet, events.parquet
# --------------------------------------------------------------------------------------------


def _store_state(path: Path, manifest: Mapping[str, Any]) -> str:
    """The digest of the parts and failure records now in `path` (see `tables.parts_state`)."""
    def listing(folder: Path, pattern: re.Pattern[str]) -> list[Path]:
        if not folder.is_dir():
            return []
        return [p for p in folder.iterdir() if pattern.match(p.name)]

    return parts_state(listing(path / PARTS, _PART_RE), listing(path / FAILURES, _FAILURE_RE),
                       str(manifest.get("fingerprint") or ""))


def flat_tables_current(path: str | os.PathLike[str]) -> bool:
    """True if `path` has all three flat tables and they were made from the parts and failure
    records it holds now."""
    path = Path(path)
    try:
        state = _store_state(path, read_manifest(path))
    except (ResultsError, OSError):
        return False
    for name in FLAT_TABLES:
        meta = table_meta(path / name)
        if not meta or meta.get("format") != FLAT_FORMAT or meta.get("state") != state:
            return False
    return True


def remove_flat_tables(path: str | os.PathLike[str]) -> None:
    """Delete the flat tables of `path` (a batch about to change the parts does this first, so
    a table that exists matches the parts)."""
    for name in FLAT_TABLES:
        with contextlib.suppress(FileNotFoundError):
            (Path(path) / name).unlink()


def _flat_runs(got: _Parts) -> tuple[pa.Table, dict[str, str]]:
    tables = [t[1] for t in got.tables]
    ok_ids = {t[0].run_id for t in got.tables}
    failed = [f for f in got.failures if f["run_id"] not in ok_ids]
    if failed:
        tables.append(pa.table({
            **{c: pa.array([int(f[c]) for f in failed], type=pa.int64()) for c in ID_COLUMNS},
            "status": pa.array(["failed"] * len(failed), type=pa.string())}))
    if tables:
        runs = pa.concat_tables(tables, promote_options="permissive").sort_by("run_id")
    else:
        runs = pa.table({**{c: pa.array([], type=pa.int64()) for c in ID_COLUMNS},
                         "status": pa.array([], type=pa.string())})
    design = got.manifest["design"]
    factors = list(design["factors"])
    names = factor_column_names(factors, runs.column_names)
    point_ids = runs.column("point_id").to_pylist()
    points = design["points"]
    lead = [*ID_COLUMNS, "status"]
    columns = [runs.column(c) for c in lead]
    for f in factors:
        columns.append(typed_column([points[p][f] for p in point_ids]))
    metrics = [c for c in runs.column_names if c not in lead]
    columns += [runs.column(c) for c in metrics]
    return pa.Table.from_arrays(columns, names=[*lead, *names.values(), *metrics]), names


def _flat_daily(got: _Parts) -> pa.Table:
    tables = [t[2] for t in got.tables if t[2].num_columns]
    if not tables:
        return pa.table({c: pa.array([], type=pa.int64()) for c in (*RUN_ID_COLUMNS, "day")})
    return pa.concat_tables(tables, promote_options="permissive")


def _flat_events(got: _Parts) -> pa.Table:
    # a part's event rows come with the run's ids in front (`_read_part`)
    tables = [t[3] for t in got.tables if t[3].num_rows]
    if not tables:
        return empty_events_table()
    return flat_events_table(pa.concat_tables(tables, promote_options="permissive"))


def write_flat_tables(path: str | os.PathLike[str]) -> list[Path]:
    """Write `runs.parquet`, `daily.parquet` and `events.parquet` beside the parts of the
    results folder `path` (layout: `sim.experiments.tables`), each atomically, and return
    their paths. Every run of the design must have a readable part or a failure record
    (`ResultsError` otherwise, as for `load`)."""
    path = Path(path)
    manifest = read_manifest(path)
    state = _store_state(path, manifest)   # before reading: a later change makes them stale
    got = _read_parts(path, skip_bad=False)
    runs, factor_names = _flat_runs(got)
    meta = {"format": FLAT_FORMAT, "state": state, "experiment": manifest.get("name"),
            "factors": factor_names, "event_schema": EVENT_SCHEMA.names}
    written = []
    for name, table in ((RUNS_TABLE, runs), (DAILY_TABLE, _flat_daily(got)),
                        (EVENTS_TABLE, _flat_events(got))):
        write_parquet_atomic(table, path / name, {**meta, "table": name.split(".")[0]})
        written.append(path / name)
    return written


def ensure_flat_tables(path: str | os.PathLike[str]) -> bool:
    """Write the flat tables of `path` if they are missing or out of date; True if written."""
    if flat_tables_current(path):
        return False
    write_flat_tables(path)
    return True


# --------------------------------------------------------------------------------------------
# Analysis helpers
# --------------------------------------------------------------------------------------------


def sobol_indices(results: Results, metric: str, num_resamples: int = 200,
                  seed: int = 0) -> pd.DataFrame:
    """Sobol sensitivity indices of a summary `metric` for an experiment with a `sobol` design.

    The metric is averaged over replicates per design point (so the indices are of the mean
    response), then passed to `SALib.analyze.sobol.analyze` in the design's sample order.
    Returns one row per factor: S1, S1_conf, ST, ST_conf.
    """
    from SALib.analyze import sobol as salib_sobol

    sobol = results.manifest["design"].get("sobol")
    if not sobol:
        raise ResultsError(f"{results.path}: not a sobol experiment (design is "
                           f"{results.manifest['design']['kind']})")
    if metric not in results.runs.columns:
        raise ResultsError(f"{results.path}: no summary metric {metric!r} in runs")
    ok = results.runs[results.runs["status"] == "ok"]
    means = ok.groupby("point_id")[metric].mean()
    n_points = len(results.manifest["design"]["points"])
    if len(means) != n_points or means.isna().any():
        raise ResultsError(
            f"{results.path}: Sobol indices need every design point ({len(means)} of {n_points} "
            f"have a finished run with {metric!r})")
    problem = sobol["problem"]
    y = means.reindex(range(n_points)).to_numpy(dtype=float)
    if not np.all(np.isfinite(y)):
        raise ResultsError(f"{results.path}: {metric!r} has non-finite values")
    res = salib_sobol.analyze(problem, y, calc_second_order=sobol["calc_second_order"],
                              num_resamples=num_resamples, seed=seed)
    return pd.DataFrame({
        "factor": problem["names"], "S1": res["S1"], "S1_conf": res["S1_conf"],
        "ST": res["ST"], "ST_conf": res["ST_conf"],
    })

