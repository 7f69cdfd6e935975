"""Results store, writing: the folder's layout, crash-safe writes, the Parquet part of a run,
the manifest and the store a batch writes into. Reading a folder back is
:mod:`sim.experiments.results`.


Layout of a results folder::

    manifest.json              the experiment, resolved base scenario, design table, versions
    parts/run-000017.parquet   one finished run: its summary row, daily rows and event rows
    failures/run-000023.json   one run that raised: error line, messages, traceback
    runs.parquet               flat tables for pandas, polars, DuckDB (`sim.experiments.tables`),
    daily.parquet              written when a batch finishes; `ensure_flat_tables(DIR)` rebuilds
    events.parquet             them if missing or out of date

Every file is written to a temporary name in the same folder and then `os.replace`d into place,
so a reader (or a resumed batch) never sees half a file, whatever kills the writer. Temporary
files start with `.tmp-` and are ignored (and cleared by the next batch). Written files get the
mode an ordinary new file gets (0o666 less the umask), not `mkstemp`'s 0o600.

A batch holds an exclusive `fcntl.flock` on `DIR/.lock` while it writes (`lock_folder`), so
two batches never write one folder at once. Parts carry Parquet page checksums; a resumed batch
reads every part in full (`verify_part`) and moves a bad one aside as `<part>.bad-<time>`.

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
import errno
import fcntl
import io
import json
import os
import platform
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import BatchError, ResultsError
from sim.experiments.tables import atomic_file

MANIFEST = "manifest.json"
PARTS = "parts"
#: Replay files of the runs of a batch that keeps tracks (`keep: {tracks: true}`).
REPLAYS = "replays"
FAILURES = "failures"
#: The lock file a batch holds while it writes the folder (see `lock_folder`).
LOCK = ".lock"
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


def replay_folder(results: Path, run_id: int) -> Path:
    """Where a batch keeps the replay files of run ``run_id``: ``replays/run-NNNNNN/``."""
    return Path(results) / REPLAYS / f"run-{run_id:06d}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (`atomic_file`): after a crash `path` is either
    absent, the old file, or the complete new file."""
    with atomic_file(path) as f:
        f.write(data)


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
    # page checksums: a resumed batch (and `load`) detects garbled data pages, not just a bad
    # footer
    pq.write_table(table, buf, compression="zstd", write_page_checksum=True)
    return buf.getvalue()


def verify_part(path: Path, run_id: int | None = None) -> None:
    """Read the part at `path` in full, checking its page checksums (parts written before they
    had checksums are still decoded in full); raise if it is unreadable, not one row, or (given
    `run_id`) holds another run."""
    with pq.ParquetFile(path, page_checksum_verification=True) as pf:
        table = pf.read()
    if table.num_rows != 1:
        raise ValueError(f"{table.num_rows} rows, expected 1")
    if run_id is not None and table.column("run_id")[0].as_py() != run_id:
        raise ValueError(f"holds run {table.column('run_id')[0].as_py()}, not {run_id}")


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
        if any(p.name != LOCK for p in path.iterdir()):
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

    def finished_run_ids(self) -> tuple[set[int], list[tuple[Path, str]]]:
        """Run ids with a sound part, and the parts found bad, as (where it was moved, why):
        each part is read in full with its page checksums verified (`verify_part`); a bad one
        is moved aside to `<part>.bad-<timestamp>`, never deleted, so the run is done again."""
        done: set[int] = set()
        bad: list[tuple[Path, str]] = []
        for p in sorted(self.parts_dir.iterdir()):
            m = _PART_RE.match(p.name)
            if not m:
                continue
            try:
                verify_part(p, int(m.group(1)))
            except Exception as exc:   # pyarrow raises several kinds for a bad file
                bad.append((set_aside(p), _one_line(exc)))
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

    def write_replay(self, run_id: int, files: Mapping[str, bytes]) -> None:
        """Store a run's replay files (``badia viz --replay DIR --run ID``), each atomically;
        called before its part, so a stored part means its replay is complete."""
        folder = replay_folder(self.path, run_id)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            atomic_write_bytes(folder / name, data)

    def write_failure(self, run_id: int, record: Mapping[str, Any]) -> None:
        """Store a failed run's record (error, messages, traceback) atomically."""
        atomic_write_json(self.failures_dir / failure_name(run_id), dict(record))


@contextlib.contextmanager
def lock_folder(path: Path) -> Any:
    """Hold an exclusive, non-blocking `fcntl.flock` on `path/.lock` (the folder is made if
    missing) for the duration of the block; `BatchError` naming the folder if another process
    holds it. The lock goes with the process: a killed batch never leaves a stale lock."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # opened non-inheritable (PEP 446), so worker processes never hold it
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)   # open() applies the umask
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise BatchError(
                    f"{path}: another batch is writing to this results folder (it holds "
                    f"{path / LOCK}); wait for it to finish or choose another --out") from None
            raise
        yield
    finally:
        os.close(fd)   # releases the lock


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the results folder `path` (ResultsError if missing, unreadable, or with
    a field of the wrong type: one line naming the file and the field)."""
    path = Path(path)
    mf = path / MANIFEST
    if not path.is_dir():
        raise ResultsError(f"{path}: no such results folder")
    try:
        manifest = json.loads(mf.read_text())
    except FileNotFoundError:
        if looks_like_store(path):
            raise ResultsError(
                f"{mf}: missing; rerun `badia batch` with the experiment file and --out "
                f"{path} to rebuild it from the parts") from None
        raise ResultsError(
            f"{mf}: missing; {path} is not a badia results folder") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{mf}: unreadable manifest ({_one_line(exc)})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != STORE_FORMAT:
        raise ResultsError(
            f"{mf}: not a badia results manifest of format {STORE_FORMAT}")
    problem = manifest_problem(manifest)
    if problem:
        raise ResultsError(f"{mf}: {problem}")
    return manifest


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def manifest_problem(m: Mapping[str, Any]) -> str | None:
    """The first field of a manifest whose type is not what `badia batch` writes (and what
    `load` and `badia report` read), as "<field>: <what is wrong>"; None if it is sound."""
    def kind(v: Any) -> str:
        return "null" if v is None else type(v).__name__

    # the design and the runs are what `load` needs; the rest is checked when present
    for key in ("design", "runs"):
        if not isinstance(m.get(key), dict):
            return f"{key}: expected an object, got {kind(m.get(key))}"
    for key, want in (("name", str), ("fingerprint", str), ("created", str),
                      ("experiment_file", str), ("experiment", dict), ("base_scenario", dict),
                      ("code", dict), ("packages", dict)):
        if key in m and not isinstance(m[key], want):
            what = "an object" if want is dict else "text"
            return f"{key}: expected {what}, got {kind(m[key])}"
    exp = m.get("experiment") or {}
    if "days" in exp and exp["days"] is not None and (
            isinstance(exp["days"], bool) or not isinstance(exp["days"], (int, float))):
        return f"experiment.days: expected a number or null, got {kind(exp['days'])}"
    for key, want in (("factors", dict), ("replicates", int)):
        if key in exp and not (isinstance(exp[key], want) and not isinstance(exp[key], bool)):
            what = "an object" if want is dict else "a whole number"
            return f"experiment.{key}: expected {what}, got {kind(exp[key])}"
    base = m.get("base_scenario") or {}
    for key in ("file", "yaml"):
        if key in base and not isinstance(base[key], str):
            return f"base_scenario.{key}: expected text, got {kind(base[key])}"
    design = m["design"]
    if not isinstance(design.get("kind"), str):
        return f"design.kind: expected text, got {kind(design.get('kind'))}"
    factors = design.get("factors")
    if not isinstance(factors, list) or not all(isinstance(f, str) for f in factors):
        return f"design.factors: expected a list of factor paths, got {kind(factors)}"
    points = design.get("points")
    if not isinstance(points, list):
        return f"design.points: expected a list, got {kind(points)}"
    for i, point in enumerate(points):
        if not isinstance(point, dict) or any(f not in point for f in factors):
            return f"design.points[{i}]: expected an object with a value for every factor"
    rows = m["runs"].get("rows")
    if not isinstance(rows, list):
        return f"runs.rows: expected a list, got {kind(rows)}"
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == len(ID_COLUMNS)
                and all(_is_int(v) for v in row)):
            return (f"runs.rows[{i}]: expected [run_id, point_id, replicate, seed] as whole "
                    f"numbers, got {json.dumps(row)[:60]}")
        if not 0 <= row[1] < len(points):
            return f"runs.rows[{i}]: point_id {row[1]} is not a design point (0-{len(points) - 1})"
    return None


#: What a results folder may hold besides temporary and set-aside files: a folder holding only
#: these (and a `parts` folder) is a store whose manifest can be rebuilt.
STORE_ENTRIES = frozenset({MANIFEST, PARTS, FAILURES, LOCK, "runs.parquet", "daily.parquet",
                           "events.parquet"})


def looks_like_store(path: Path) -> bool:
    """`path` is a folder with a `parts` folder and nothing a results store would not hold
    (a batch killed before its manifest was written, or a store whose manifest was lost)."""
    path = Path(path)
    if not (path / PARTS).is_dir():
        return False
    return all(p.name in STORE_ENTRIES or p.name.startswith((".tmp-", f"{MANIFEST}.bad-"))
               for p in path.iterdir())


def part_ids(path: Path) -> RunIds:
    """The ids a part holds (reads only its id columns; raises if unreadable)."""
    table = pq.read_table(path, columns=list(ID_COLUMNS))
    return RunIds(*(int(table.column(c)[0].as_py()) for c in ID_COLUMNS))


def set_aside(path: Path) -> Path:
    """Move `path` to `<path>.bad-<time>` (never deleted); returns the new name."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.bad-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.bad-{stamp}-{n}")
        n += 1
    os.replace(path, aside)
    return aside
