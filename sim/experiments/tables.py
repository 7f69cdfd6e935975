"""Flat, typed tables of a results folder, for tools that open Parquet files directly.

A results folder's parts (one nested Parquet row per run, `sim.experiments.results`) are the
store's crash-safe record; their event structs differ from run to run (each run has the keys
its events happened to carry), which `polars.scan_parquet` refuses and DuckDB reads only with
`unnest`. When a batch finishes, three flat tables are written beside the parts::

    runs.parquet     one row per run: run_id, point_id, replicate, seed, status, one column
                     per factor (named by its path, as in the experiment file), every summary
                     metric
    daily.parquet    run_id, point_id, replicate, day, every daily metric
    events.parquet   run_id, point_id, replicate and the fixed event schema `EVENT_SCHEMA`:
                     hour, day, type, row, col, lat, lon, faction, unit, and `data`, the
                     event's other fields as JSON text ({"losses": {"government": 2}, ...})

This module holds the building blocks (the fixed event schema, the typing of factor columns,
atomic Parquet writing, the metadata that says which state of the parts a table was made
from); `sim.experiments.results` (`write_flat_tables`, `ensure_flat_tables`) reads the parts
and uses them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

RUNS_TABLE = "runs.parquet"
DAILY_TABLE = "daily.parquet"
EVENTS_TABLE = "events.parquet"
#: The flat tables, in the order they are written.
FLAT_TABLES = (RUNS_TABLE, DAILY_TABLE, EVENTS_TABLE)
#: Bumped when a flat table's layout changes incompatibly (a table of another format is stale).
FLAT_FORMAT = 1
#: Key of the JSON document in each flat table's Parquet key-value metadata.
META_KEY = b"badia"

#: The event columns every events table has, whatever the event types carry: the columns of
#: `sim.engine.model.DesertModel.log`, the acting unit's name, and the rest as JSON text.
EVENT_SCHEMA = pa.schema([
    ("hour", pa.int64()),
    ("day", pa.int64()),
    ("type", pa.string()),
    ("row", pa.int64()),
    ("col", pa.int64()),
    ("lat", pa.float64()),
    ("lon", pa.float64()),
    ("faction", pa.string()),
    ("unit", pa.string()),
    ("data", pa.string()),
])
#: The run columns that lead the runs, daily and events tables.
RUN_ID_COLUMNS = ("run_id", "point_id", "replicate")


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _finite_or_none(value: Any) -> Any:
    # JSON has no NaN: a field that measured nothing is null
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def _int_or_none(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, default=_json_value)


_EVENT_CONVERT = {"hour": _int_or_none, "day": _int_or_none, "type": _text_or_none,
                  "row": _int_or_none, "col": _int_or_none, "lat": _float_or_none,
                  "lon": _float_or_none, "faction": _text_or_none, "unit": _text_or_none}


def fixed_events_table(events: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Events (dicts as `DesertModel.log` makes them; nested fields as dicts) as a table of
    `EVENT_SCHEMA`: the fixed columns, and `data`, the other fields as JSON text with sorted
    keys ("{}" when there are none; NaN written as null)."""
    columns: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
    for event in events:
        rest = {}
        for key, value in event.items():
            convert = _EVENT_CONVERT.get(key)
            if convert is None:
                rest[key] = value
        for key, convert in _EVENT_CONVERT.items():
            columns[key].append(convert(event.get(key)))
        columns["data"].append(json.dumps(_finite_or_none(rest), sort_keys=True,
                                          default=_json_value, allow_nan=False))
    return pa.Table.from_pydict(columns, schema=EVENT_SCHEMA)


def _fixed_column(table: pa.Table, name: str, type_: pa.DataType) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(table.num_rows, type=type_)
    col = table.column(name).combine_chunks()
    if col.type == type_:
        return col
    try:
        return col.cast(type_)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        convert = _EVENT_CONVERT[name]
        return pa.array([convert(v) for v in col.to_pylist()], type=type_)


def flat_events_table(table: pa.Table) -> pa.Table:
    """Flattened event rows (dotted names for nested fields, as in a part or `load`'s events;
    leading `run_id, point_id, replicate` columns kept) to the fixed schema: the same result
    as `fixed_events_table` on the nested events, column by column, so that hundreds of
    thousands of events take seconds. Null fields are left out of `data`."""
    fixed = [n for n in EVENT_SCHEMA.names if n != "data"]
    columns: dict[str, pa.Array] = {}
    for name in RUN_ID_COLUMNS:
        if name in table.column_names:
            columns[name] = table.column(name).combine_chunks().cast(pa.int64())
    for name in fixed:
        columns[name] = _fixed_column(table, name, EVENT_SCHEMA.field(name).type)
    extras = [c for c in table.column_names if c not in fixed and c not in RUN_ID_COLUMNS]
    n = table.num_rows
    data: list[str] = ["{}"] * n
    kinds = np.asarray(columns["type"].fill_null("").to_numpy(zero_copy_only=False), dtype=object)
    valid = {c: np.asarray(table.column(c).is_valid()) for c in extras}
    values: dict[str, list[Any]] = {}
    for kind in dict.fromkeys(kinds.tolist()):
        rows = np.flatnonzero(kinds == kind)
        # the fields events of this type carry (a part has a column for every field of every type)
        present = [c for c in extras if valid[c][rows].any()]
        for c in present:
            if c not in values:
                values[c] = table.column(c).to_pylist()
        keys = [(c.split("."), values[c]) for c in present]
        for i in rows.tolist():
            event: dict[str, Any] = {}
            for path, vals in keys:
                v = vals[i]
                if v is None:
                    continue
                if isinstance(v, float) and not math.isfinite(v):
                    v = None          # JSON has no NaN: a field that measured nothing is null
                node = event
                for p in path[:-1]:
                    child = node.get(p)
                    if not isinstance(child, dict):
                        child = node[p] = {}
                    node = child
                node[path[-1]] = v
            try:
                data[i] = json.dumps(event, sort_keys=True, default=_json_value, allow_nan=False)
            except ValueError:        # a NaN inside a list
                data[i] = json.dumps(_finite_or_none(event), sort_keys=True, default=_json_value)
    columns["data"] = pa.array(data, type=pa.string())
    return pa.table(columns)


def with_run_ids(table: pa.Table, run_id: int, point_id: int, replicate: int) -> pa.Table:
    """`table` with the run's `run_id, point_id, replicate` columns in front."""
    n = table.num_rows
    ids = [pa.array(np.full(n, v, dtype=np.int64)) for v in (run_id, point_id, replicate)]
    return pa.Table.from_arrays([*ids, *table.columns],
                                names=[*RUN_ID_COLUMNS, *table.column_names])


def empty_events_table() -> pa.Table:
    """An events table with no rows (run ids and `EVENT_SCHEMA`)."""
    return with_run_ids(EVENT_SCHEMA.empty_table(), 0, 0, 0)


# --------------------------------------------------------------------------------------------
# Factor columns
# --------------------------------------------------------------------------------------------


def typed_column(values: Sequence[Any]) -> pa.Array:
    """One column of factor values with the narrowest Arrow type that holds them all: numbers
    as int64 or float64, text as string, bools as bool, lists as lists; values of mixed kinds
    fall back to their JSON text."""
    plain = [v.item() if isinstance(v, np.generic) else v for v in values]
    kinds = {type(v) for v in plain if v is not None}
    if kinds and kinds <= {int, float}:
        if kinds == {int}:
            return pa.array(plain, type=pa.int64())
        return pa.array([None if v is None else float(v) for v in plain], type=pa.float64())
    if len(kinds) == 1 and kinds < {str, bool}:
        return pa.array(plain)
    try:
        arr = pa.array(plain)
        if arr.type != pa.null() and not pa.types.is_struct(arr.type):
            return arr
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        pass
    return pa.array([None if v is None else json.dumps(v, default=_json_value) for v in plain],
                    type=pa.string())


def factor_column_names(factors: Sequence[str], taken: Iterable[str]) -> dict[str, str]:
    """factor path -> its column name in runs.parquet: the path itself, or `factor:<path>` if
    a summary metric or id column already has that name."""
    used = set(taken)
    return {f: (f"factor:{f}" if f in used else f) for f in factors}


# --------------------------------------------------------------------------------------------
# Writing and the state of the parts
# --------------------------------------------------------------------------------------------


def parts_state(parts: Iterable[Path], failures: Iterable[Path], fingerprint: str) -> str:
    """A digest of what a results folder holds: every part's name and size, every failure
    record's name, and the experiment's fingerprint. A flat table made from another state is
    out of date."""
    h = hashlib.sha256(f"{FLAT_FORMAT}|{fingerprint}\n".encode())
    for p in sorted(parts, key=lambda p: p.name):
        h.update(f"part {p.name} {p.stat().st_size}\n".encode())
    for p in sorted(failures, key=lambda p: p.name):
        h.update(f"failure {p.name}\n".encode())
    return h.hexdigest()


def file_mode() -> int:
    """The mode an ordinary new file gets now: 0o666 less the process umask (read from
    /proc/self/status, which never changes the umask; elsewhere the umask seen first): what a
    file made with `tempfile.mkstemp` (always 0o600) is given before it is renamed into
    place."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


_UMASK: int | None = None


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file to write `path` through: a temporary file in the same folder that, on a
    clean exit, is given the mode of an ordinary new file (`file_mode`), flushed, fsynced and
    `os.replace`d onto `path`, and on any error removed. A reader (or a crash) sees the old
    file, no file, or the whole new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    os.close(fd)  # reopened by name: writers such as tifffile want the file's name
    try:
        with open(tmp, "wb") as f:
            os.fchmod(f.fileno(), file_mode())
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_parquet_atomic(table: pa.Table, path: Path, meta: Mapping[str, Any], *,
                         key: bytes = META_KEY) -> None:
    """Write `table` to `path` (zstd) with `meta` as JSON under the metadata `key` (badia's
    own by default; GeoParquet's is `geo`), atomically (`atomic_file`)."""
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[key] = json.dumps(dict(meta), default=_json_value).encode()
    table = table.replace_schema_metadata(schema_meta)
    with atomic_file(path) as f:
        pq.write_table(table, f, compression="zstd")


def table_meta(path: Path) -> dict[str, Any] | None:
    """The `badia` metadata of a flat table (None if the file is missing or unreadable)."""
    try:
        raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
        return json.loads(raw) if raw else None
    except (OSError, ValueError, pa.ArrowException):
        return None


__all__ = [
    "DAILY_TABLE",
    "EVENTS_TABLE",
    "EVENT_SCHEMA",
    "FLAT_FORMAT",
    "FLAT_TABLES",
    "RUNS_TABLE",
    "RUN_ID_COLUMNS",
    "atomic_file",
    "empty_events_table",
    "factor_column_names",
    "file_mode",
    "fixed_events_table",
    "flat_events_table",
    "parts_state",
    "table_meta",
    "typed_column",
    "with_run_ids",
    "write_parquet_atomic",
]
