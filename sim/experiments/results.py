"""Results store: one folder per experiment, one Parquet part per finished run, crash-safe.

Layout of a results folder::

    manifest.json              the experiment, resolved base scenario, design table, versions
    parts/run-000017.parquet   one finished run: its summary row, daily rows and event rows
    failures/run-000023.json   one run that raised: error line, messages, traceback
    runs.parquet               flat tables for pandas, polars, DuckDB (`sim.experiments.tables`),
    daily.parquet              written when a batch finishes; `ensure_flat_tables(DIR)` rebuilds
    events.parquet             them if missing or out of date

Every file is written to a temporary name in the same folder and then `os.replace`d into place,
so a reader (or a resumed batch) never sees half a file, whatever kills the writer. Temporary
files start with `.tmp-` and are ignored (and cleared by the next batch).

A part is a one-row Parquet table::

    run_id, point_id, replicate, seed: int64     status: "ok"
    summary: struct<metric: double, ...>          (absent if no summary metric is kept)
    daily:   list<struct<day, metric, ...>>       (absent if no daily metric is kept)
    events:  list<struct<hour, day, type, row, col, lat, lon, faction, ...>>

`load(DIR)` turns a folder into pandas DataFrames (docs/architecture.md, "Batch and results store").
The flat tables are derived from the parts and never needed to read them back.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import re
import subprocess
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import ResultsError
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

MANIFEST = "manifest.json"
PARTS = "parts"
FAILURES = "failures"
#: Bumped when the folder layout or part schema changes incompatibly.
STORE_FORMAT = 1

#: Event columns every part has (in this order), whatever the event types carry besides.
EVENT_BASE_COLUMNS: dict[str, pa.DataType] = {
    "hour": pa.int64(),
    "day": pa.int64(),
    "type": pa.string(),
    "row": pa.int64(),
    "col": pa.int64(),
    "lat": pa.float64(),
    "lon": pa.float64(),
    "faction": pa.string(),
}
ID_COLUMNS = ("run_id", "point_id", "replicate", "seed")
_PART_RE = re.compile(r"^run-(\d+)\.parquet$")
_FAILURE_RE = re.compile(r"^run-(\d+)\.json$")
#: Packages whose versions go into the manifest (provenance of every number in the store).
_PROVENANCE_PACKAGES = (
    "mesa", "numpy", "scipy", "pandas", "pyarrow", "pydantic", "networkx", "PyYAML", "SALib",
    "dask", "distributed",
)


@dataclass(frozen=True)
class RunIds:
    """Who a run is: its id, design point, replicate index and seed."""

    run_id: int
    point_id: int
    replicate: int
    seed: int


def part_name(run_id: int) -> str:
    """File name of a run's Parquet part, e.g. `run-000017.parquet`."""
    return f"run-{run_id:06d}.parquet"


def failure_name(run_id: int) -> str:
    """File name of a run's failure record, e.g. `run-000017.json`."""
    return f"run-{run_id:06d}.json"


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder and `os.replace`.

    The data is flushed and fsynced before the rename, so after a crash `path` is either absent,
    the old file, or the complete new file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON atomically (see `atomic_write_bytes`)."""
    text = json.dumps(obj, indent=1, sort_keys=False, default=_json_default, allow_nan=True)
    atomic_write_bytes(path, (text + "\n").encode())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (datetime, Path)):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _plain(value: Any) -> Any:
    """numpy scalars/arrays -> Python values, so Arrow infers the same types everywhere."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _flatten_event(event: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys: {"losses": {"gov": 3}} -> {"losses.gov": 3}."""
    flat: dict[str, Any] = {}
    for key, value in event.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten_event(value, prefix=f"{name}."))
        else:
            flat[name] = _plain(value)
    return flat


def _column(values: list[Any], type_: pa.DataType | None = None) -> pa.Array:
    """An Arrow array for one column; values of mixed types fall back to JSON text."""
    if type_ is not None:
        if pa.types.is_integer(type_) and any(
            isinstance(v, float) and not float(v).is_integer() for v in values if v is not None
        ):
            type_ = pa.float64()
        try:
            return pa.array(values, type=type_)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            pass
    try:
        arr = pa.array(values)
        # all-None columns infer as null type, which Parquet stores poorly and merges badly
        return arr if arr.type != pa.null() else pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array(
            [None if v is None else (v if isinstance(v, str) else json.dumps(v, default=str))
             for v in values],
            type=pa.string(),
        )


def events_table(events: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The event log as an Arrow table: the base columns first, then every other key in the
    order first seen; nested dicts are flattened to dotted column names."""
    flat = [_flatten_event(e) for e in events]
    names = list(EVENT_BASE_COLUMNS)
    seen = set(names)
    for e in flat:
        for k in e:
            if k not in seen:
                seen.add(k)
                names.append(k)
    arrays = [_column([e.get(n) for e in flat], EVENT_BASE_COLUMNS.get(n)) for n in names]
    return pa.Table.from_arrays(arrays, names=names)


def daily_table(daily: pd.DataFrame) -> pa.Table:
    """Daily metrics as an Arrow table (column `day` first, as int64)."""
    df = daily.reset_index(drop=True)
    arrays, names = [], []
    for name in df.columns:
        values = df[name].to_numpy()
        arr = pa.array(values) if values.dtype.kind in "biuf" else _column(
            [_plain(v) for v in values])
        if name == "day":
            arr = arr.cast(pa.int64())
        arrays.append(arr)
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def _summary_value(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, (bool, int, float)):
        return float(value)        # a fixed float64 schema for every part (contract: floats)
    return value


def encode_part(
    ids: RunIds,
    summary: Mapping[str, Any],
    daily: pd.DataFrame | None,
    events: Sequence[Mapping[str, Any]] | None,
) -> bytes:
    """One finished run as the bytes of a Parquet part (see the module docstring for the schema).

    Runs in the worker, so only compressed bytes travel back to the parent process.
    """
    columns: dict[str, pa.Array] = {
        name: pa.array([getattr(ids, name)], type=pa.int64()) for name in ID_COLUMNS
    }
    columns["status"] = pa.array(["ok"], type=pa.string())
    if summary:
        fields = [_column([_summary_value(v)]) for v in summary.values()]
        columns["summary"] = pa.StructArray.from_arrays(fields, names=[str(k) for k in summary])
    if daily is not None and len(daily.columns) > 0:
        columns["daily"] = _as_list_of_structs(daily_table(daily))
    columns["events"] = _as_list_of_structs(events_table(events or []))
    table = pa.Table.from_pydict(columns)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _as_list_of_structs(table: pa.Table) -> pa.Array:
    struct = pa.StructArray.from_arrays(
        [c.combine_chunks() for c in table.columns], names=table.column_names)
    return pa.ListArray.from_arrays(pa.array([0, table.num_rows], type=pa.int32()), struct)


# --------------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------------


def code_version() -> dict[str, Any]:
    """`sim.__version__`, and the git commit (and whether the tree was dirty) if available."""
    import sim

    info: dict[str, Any] = {"sim": sim.__version__, "git_commit": None, "git_dirty": None}
    repo = Path(sim.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        info["git_commit"] = commit or None
        info["git_dirty"] = bool(dirty)
    except (OSError, subprocess.SubprocessError):
        pass   # not a git checkout (an installed wheel): the version string has to do
    return info


def package_versions() -> dict[str, str | None]:
    """Versions of Python and of the packages that shape the numbers in a results store."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PROVENANCE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# --------------------------------------------------------------------------------------------
# The store (used by the batch runner)
# --------------------------------------------------------------------------------------------


class ResultsStore:
    """A results folder being written: manifest, parts and failure records.

    Create one with `ResultsStore.create(path, manifest)` or open one with
    `ResultsStore.open(path)`. Only the batch parent process writes to it.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = Path(path)
        self.manifest = manifest
        self.parts_dir = self.path / PARTS
        self.failures_dir = self.path / FAILURES

    @classmethod
    def create(cls, path: Path, manifest: dict[str, Any]) -> ResultsStore:
        """Make a new store at `path` (which must be absent or an empty folder)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if any(path.iterdir()):
            raise ResultsError(f"{path}: folder is not empty; refusing to write a new store there")
        (path / PARTS).mkdir()
        (path / FAILURES).mkdir()
        # the manifest goes last: a folder with a manifest always has its subfolders
        atomic_write_json(path / MANIFEST, manifest)
        return cls(path, manifest)

    @classmethod
    def open(cls, path: Path) -> ResultsStore:
        """Open an existing store (ResultsError if `path` has no readable manifest)."""
        return cls(Path(path), read_manifest(path))

    def clear_temporary(self) -> int:
        """Remove `.tmp-*` files left by a writer that was killed; returns how many."""
        n = 0
        for folder in (self.path, self.parts_dir, self.failures_dir):
            for tmp in folder.glob(".tmp-*"):
                with contextlib.suppress(OSError):
                    tmp.unlink()
                    n += 1
        return n

    def part_path(self, run_id: int) -> Path:
        """Where run `run_id`'s part lives."""
        return self.parts_dir / part_name(run_id)

    def finished_run_ids(self) -> tuple[set[int], list[Path]]:
        """Run ids with a readable part, and the parts found unreadable (moved aside to
        `<part>.bad-<timestamp>`, never deleted, so the run is done again)."""
        done: set[int] = set()
        bad: list[Path] = []
        for p in self.parts_dir.iterdir():
            m = _PART_RE.match(p.name)
            if not m:
                continue
            try:
                pq.read_metadata(p)
            except Exception:   # any unreadable footer means a bad part
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
                aside = p.with_name(f"{p.name}.bad-{stamp}")
                os.replace(p, aside)
                bad.append(aside)
                continue
            done.add(int(m.group(1)))
        return done, bad

    def failed_run_ids(self) -> set[int]:
        """Run ids with a failure record."""
        return {int(m.group(1)) for p in self.failures_dir.iterdir()
                if (m := _FAILURE_RE.match(p.name))}

    def write_part(self, run_id: int, data: bytes) -> None:
        """Store a finished run's part atomically and drop any stale failure record of it."""
        atomic_write_bytes(self.part_path(run_id), data)
        with contextlib.suppress(FileNotFoundError):
            (self.failures_dir / failure_name(run_id)).unlink()

    def write_failure(self, run_id: int, record: Mapping[str, Any]) -> None:
        """Store a failed run's record (error, messages, traceback) atomically."""
        atomic_write_json(self.failures_dir / failure_name(run_id), dict(record))


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the results folder `path` (ResultsError if missing or unreadable)."""
    path = Path(path)
    mf = path / MANIFEST
    if not path.is_dir():
        raise ResultsError(f"{path}: no such results folder")
    try:
        manifest = json.loads(mf.read_text())
    except FileNotFoundError:
        raise ResultsError(
            f"{mf}: missing; {path} is not a badia results folder") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{mf}: unreadable manifest ({_one_line(exc)})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != STORE_FORMAT:
        raise ResultsError(
            f"{mf}: not a badia results manifest of format {STORE_FORMAT}")
    return manifest


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
        with pq.ParquetFile(path) as pf:
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

