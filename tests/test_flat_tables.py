"""The flat tables beside a results folder's parts (runs/daily/events.parquet): written when a
batch finishes, typed, readable by pandas, polars and DuckDB with no helper, and equal to
`sim.experiments.results.load` value for value; rebuilt when missing or out of date; none left
by a batch that stopped early."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim.experiments.batch import EXIT_INTERRUPTED, EXIT_OK, run_batch
from sim.experiments.results import ensure_flat_tables, flat_tables_current, load, write_flat_tables
from sim.experiments.store import STORE_FORMAT, ResultsStore, RunIds, encode_part, events_table
from sim.experiments.tables import (
    EVENT_SCHEMA,
    FLAT_TABLES,
    factor_column_names,
    fixed_events_table,
    flat_events_table,
    typed_column,
)

pl = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "scenarios" / "outpost_night_raid.yaml"
SCHEDULE = "units[kind=patrol].tactic.schedule"
RANGE = "units[kind=strongpoint].night_sensor_range_km"
SMALL = f"""\
factors:
  {SCHEDULE}: {{levels: [day, night]}}
  {RANGE}: {{levels: [1.0, 4.0]}}
replicates: 2
days: 2
seed: 3
"""


def _experiment(tmp_path: Path, body: str = SMALL, name: str = "flat") -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(f"name: {name}\nscenario: {BASE}\n{body}")
    return p


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished batch of the outpost night raid: 4 points x 2 replicates x 2 days."""
    tmp = tmp_path_factory.mktemp("flat")
    out = tmp / "out"
    with ThreadPoolExecutor(2) as pool:
        report = run_batch(_experiment(tmp), out, executor=pool, progress=False)
    assert report.exit_code == EXIT_OK and report.flat_tables
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN and null (None) counting as the same missing value."""
    def missing(v: Any) -> bool:
        return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA

    a, b = (v.tolist() if isinstance(v, (np.ndarray, np.generic)) else v for v in (a, b))
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b, strict=True)))
    if missing(a) or missing(b):
        return missing(a) and missing(b)
    if isinstance(a, float) or isinstance(b, float):
        return float(a) == float(b)
    return a == b


def _assert_frames_agree(flat: pd.DataFrame, ref: pd.DataFrame, columns: list[str]) -> int:
    assert len(flat) == len(ref)
    checked = 0
    for col in columns:
        for i, (x, y) in enumerate(zip(flat[col].tolist(), ref[col].tolist(), strict=True)):
            assert _same(x, y), f"{col} row {i}: flat {x!r} != load {y!r}"
            checked += 1
    return checked


# --------------------------------------------------------------------------------------------
# The real batch: polars, DuckDB, pandas against load()
# --------------------------------------------------------------------------------------------


def test_a_finished_batch_writes_the_three_tables_beside_the_parts(batch: Path) -> None:
    for name in FLAT_TABLES:
        assert (batch / name).is_file(), name
    assert flat_tables_current(batch)
    assert not list(batch.glob(".tmp-*"))
    meta = json.loads(pq.read_schema(batch / "runs.parquet").metadata[b"badia"])
    assert meta["table"] == "runs" and meta["factors"] == {SCHEDULE: SCHEDULE, RANGE: RANGE}


def test_polars_reads_the_runs_table_and_agrees_with_load_on_every_summary_value(
        batch: Path) -> None:
    res = load(batch)
    ref = res.with_design(res.runs).sort_values("run_id").reset_index(drop=True)
    lazy = pl.scan_parquet(batch / "runs.parquet")
    flat = lazy.sort("run_id").collect()
    assert flat.schema["run_id"] == pl.Int64 and flat.schema["seed"] == pl.Int64
    assert flat.schema[SCHEDULE] == pl.String and flat.schema[RANGE] == pl.Float64
    metrics = [c for c in res.runs.columns if c not in ("run_id", "point_id", "replicate",
                                                         "seed", "status")]
    assert len(metrics) > 20
    assert set(flat.columns) == {*res.runs.columns, SCHEDULE, RANGE}
    n = _assert_frames_agree(flat.to_pandas(), ref, [*res.runs.columns, SCHEDULE, RANGE])
    assert n == len(ref) * (len(res.runs.columns) + 2)


def test_duckdb_reads_the_runs_table_and_agrees_with_load_on_every_summary_value(
        batch: Path) -> None:
    res = load(batch)
    ref = res.with_design(res.runs).sort_values("run_id").reset_index(drop=True)
    flat = duckdb.sql(f"SELECT * FROM read_parquet('{batch / 'runs.parquet'}') "
                      f"ORDER BY run_id").df()
    _assert_frames_agree(flat, ref, [*res.runs.columns, SCHEDULE, RANGE])
    # a question in SQL with no unnest: mean raids per patrol schedule, as pandas gives it
    got = dict(duckdb.sql(
        f'SELECT "{SCHEDULE}", avg(raid_attempted_total) FROM '
        f"read_parquet('{batch / 'runs.parquet'}') GROUP BY 1").fetchall())
    want = ref.groupby(SCHEDULE)["raid_attempted_total"].mean().to_dict()
    assert got.keys() == want.keys()
    assert all(math.isclose(got[k], want[k]) for k in want)


def test_pandas_reads_the_runs_table_as_is(batch: Path) -> None:
    res = load(batch)
    flat = pd.read_parquet(batch / "runs.parquet")
    ref = res.with_design(res.runs)
    _assert_frames_agree(flat, ref, [*res.runs.columns, SCHEDULE, RANGE])


def test_the_daily_table_agrees_with_load(batch: Path) -> None:
    res = load(batch)
    ref = res.daily.sort_values(["run_id", "day"]).reset_index(drop=True)
    flat = pl.scan_parquet(batch / "daily.parquet").sort(["run_id", "day"]).collect()
    assert flat.columns[:4] == ["run_id", "point_id", "replicate", "day"]
    assert set(flat.columns) == set(ref.columns)
    _assert_frames_agree(flat.to_pandas(), ref, list(ref.columns))
    per_run = duckdb.sql(f"SELECT run_id, count(*) FROM read_parquet('{batch / 'daily.parquet'}')"
                         f" GROUP BY run_id ORDER BY run_id").fetchall()
    assert per_run == [(r, 2) for r in range(8)]


def test_the_events_table_has_the_fixed_schema_and_the_same_events_as_load(
        batch: Path) -> None:
    res = load(batch)
    ref = res.events.reset_index(drop=True)
    assert len(ref) > 20
    flat = pl.scan_parquet(batch / "events.parquet").collect()
    assert flat.columns == ["run_id", "point_id", "replicate", *EVENT_SCHEMA.names]
    assert pq.read_schema(batch / "events.parquet").remove_metadata().equals(pa.schema(
        [("run_id", pa.int64()), ("point_id", pa.int64()), ("replicate", pa.int64()),
         *zip(EVENT_SCHEMA.names, EVENT_SCHEMA.types, strict=True)]))
    fixed = ["run_id", "point_id", "replicate", "hour", "day", "type", "row", "col", "lat",
             "lon", "faction", "unit"]
    flat_pd = flat.to_pandas()
    _assert_frames_agree(flat_pd, ref, fixed)
    # every other field of every event is in `data`, nested as the model logged it
    others = [c for c in ref.columns if c not in fixed]
    assert any(c.startswith("losses.") for c in others)
    for i, text in enumerate(flat_pd["data"]):
        data = json.loads(text)
        for col in others:
            want = ref.at[i, col]
            node: Any = data
            for key in col.split("."):
                node = node.get(key) if isinstance(node, dict) else None
            assert _same(node, want), (i, col, node, want)


def test_duckdb_reads_event_data_as_json(batch: Path) -> None:
    res = load(batch)
    eng = res.events[res.events["type"] == "engagement"]
    lost = float(eng["losses.government"].fillna(0).sum())
    got = duckdb.sql(
        "SELECT sum(CAST(json_extract(data, '$.losses.government') AS DOUBLE)) FROM "
        f"read_parquet('{batch / 'events.parquet'}') WHERE type = 'engagement'").fetchall()[0][0]
    assert math.isclose(got or 0.0, lost)


# --------------------------------------------------------------------------------------------
# When the tables are written, removed and rebuilt
# --------------------------------------------------------------------------------------------


class _Watching(ThreadPoolExecutor):
    """A thread pool that records, at every submission, whether a flat table exists."""

    def __init__(self, out: Path):
        super().__init__(2)
        self.out = out
        self.seen: list[bool] = []

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(any((self.out / n).exists() for n in FLAT_TABLES))
        return super().submit(*args, **kwargs)


def test_resume_removes_the_tables_first_and_writes_them_again(tmp_path: Path) -> None:
    exp = _experiment(tmp_path, SMALL.replace("days: 2", "days: 1"))
    out = tmp_path / "out"
    with ThreadPoolExecutor(2) as pool:
        run_batch(exp, out, executor=pool, progress=False)
    assert flat_tables_current(out)
    before = pd.read_parquet(out / "runs.parquet")
    (out / "parts" / "run-000005.parquet").unlink()
    assert not flat_tables_current(out)            # stale: a part is gone
    with _Watching(out) as pool:
        report = run_batch(exp, out, executor=pool, progress=False)
    assert report.completed == 1 and pool.seen == [False]
    assert flat_tables_current(out)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), before)


def test_a_batch_that_stops_early_leaves_no_tables(tmp_path: Path) -> None:
    from sim.engine.run import run_scenario

    calls = []

    def runner(scenario: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return run_scenario(scenario, **kw)

    exp = _experiment(tmp_path, SMALL.replace("days: 2", "days: 1"))
    out = tmp_path / "out"
    with ThreadPoolExecutor(1) as pool:
        report = run_batch(exp, out, executor=pool, progress=False, runner=runner, window=4)
    assert report.exit_code == EXIT_INTERRUPTED
    assert not any((out / n).exists() for n in FLAT_TABLES)
    with ThreadPoolExecutor(2) as pool:
        assert run_batch(exp, out, executor=pool, progress=False).exit_code == EXIT_OK
    assert flat_tables_current(out)


def test_missing_tables_are_rebuilt_by_ensure(batch: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(batch, copy)
    assert ensure_flat_tables(copy) is False       # current: nothing to do
    (copy / "events.parquet").unlink()
    assert not flat_tables_current(copy)
    assert ensure_flat_tables(copy) is True
    assert flat_tables_current(copy)
    pd.testing.assert_frame_equal(pd.read_parquet(copy / "events.parquet"),
                                  pd.read_parquet(batch / "events.parquet"))


# --------------------------------------------------------------------------------------------
# A hand-made store: failed runs, types, odd values
# --------------------------------------------------------------------------------------------


def _store(tmp_path: Path) -> Path:
    factors = ["units[kind=patrol].count", "units[0].tactic.route", "days"]
    points = [{factors[0]: 2, factors[1]: ["A", "B"], factors[2]: 3.5},
              {factors[0]: 3, factors[1]: ["B", "A"], factors[2]: 7}]
    rows = [[p * 2 + r, p, r, 100 + p * 2 + r] for p in range(2) for r in range(2)]
    manifest = {"format": STORE_FORMAT, "name": "hand", "fingerprint": "f",
                "design": {"kind": "full_factorial", "factors": factors, "points": points,
                           "sobol": None},
                "runs": {"columns": ["run_id", "point_id", "replicate", "seed"], "rows": rows}}
    store = ResultsStore.create(tmp_path / "res", manifest)
    for run_id, point_id, replicate, seed in rows[:3]:
        ids = RunIds(run_id, point_id, replicate, seed)
        daily = pd.DataFrame({"day": [1, 2], "attacks": [1.0, float(run_id)]})
        events = [
            {"hour": 1, "day": 1, "type": "engagement", "row": 2, "col": 3, "lat": 34.5,
             "lon": 38.5, "faction": "insurgents", "unit": "cell-1",
             "losses": {"government": run_id, "insurgents": 1}, "ratio": float("nan")},
            {"hour": 2, "day": 1, "type": "resupply", "row": 2, "col": 4, "lat": 34.51,
             "lon": 38.52, "faction": "insurgents", "unit": "cell-1", "town": "Palmyra"},
        ][: 1 + run_id % 2]
        summary = {"days": 2.0, "attacks_total": float(run_id), "rate": float("nan")}
        store.write_part(run_id, encode_part(ids, summary, daily, events))
    store.write_failure(3, {"error_type": "ValueError", "error": "boom", "traceback": "tb"})
    return store.path


def test_failed_runs_are_rows_and_colliding_factor_names_are_prefixed(tmp_path: Path) -> None:
    path = _store(tmp_path)
    write_flat_tables(path)
    runs = pl.read_parquet(path / "runs.parquet")
    assert runs["status"].to_list() == ["ok", "ok", "ok", "failed"]
    # the factor `days` collides with the summary metric `days`
    assert "factor:days" in runs.columns and "days" in runs.columns
    assert runs["factor:days"].to_list() == [3.5, 3.5, 7.0, 7.0]
    assert runs["units[kind=patrol].count"].dtype == pl.Int64
    assert runs["units[0].tactic.route"].to_list()[0] == ["A", "B"]
    assert runs["attacks_total"].to_list()[:3] == [0.0, 1.0, 2.0]
    assert runs["attacks_total"].to_list()[3] is None            # failed: no value
    assert math.isnan(runs["rate"].to_list()[0])                  # measured nothing: NaN
    res = load(path)
    _assert_frames_agree(runs.to_pandas(), res.runs, list(res.runs.columns))


def test_event_data_is_json_with_nested_fields_and_null_for_nan(tmp_path: Path) -> None:
    path = _store(tmp_path)
    write_flat_tables(path)
    ev = pl.read_parquet(path / "events.parquet").sort(["run_id", "hour"])
    assert ev["run_id"].to_list() == [0, 1, 1, 2]
    first = json.loads(ev["data"][0])
    assert first == {"losses": {"government": 0, "insurgents": 1}, "ratio": None}
    assert json.loads(ev["data"][2]) == {"town": "Palmyra"}
    assert ev["unit"].to_list() == ["cell-1"] * 4


def test_fixed_events_table_from_model_events() -> None:
    table = fixed_events_table([
        {"hour": 5, "day": 1, "type": "loss", "row": 1, "col": 2, "lat": 34.1, "lon": 38.2,
         "faction": "government", "unit": "patrol-1", "kind": "patrol",
         "losses": {"government": np.int64(3)}},
        {"hour": 6, "day": 1, "type": "scenario_event", "row": 0, "col": 0, "lat": 34.0,
         "lon": 38.0, "faction": "", "set": {"units[0].strength": 4}},
    ])
    assert table.schema.equals(EVENT_SCHEMA)
    rows = table.to_pylist()
    assert json.loads(rows[0]["data"]) == {"kind": "patrol", "losses": {"government": 3}}
    assert rows[1]["unit"] is None
    assert json.loads(rows[1]["data"]) == {"set": {"units[0].strength": 4}}
    assert fixed_events_table([]).num_rows == 0


def test_a_parts_flattened_events_give_the_same_table_as_the_model_events() -> None:
    """`badia run --gis` converts a run's events one by one, a batch's flat table converts the
    parts' flattened columns: the two must agree."""
    events = [
        {"hour": 1, "day": 1, "type": "engagement", "row": 2, "col": 3, "lat": 34.5,
         "lon": 38.5, "faction": "insurgents", "unit": "cell-1",
         "losses": {"government": 2, "insurgents": 0}, "ratio": float("nan"), "surprise": True},
        {"hour": 2, "day": 1, "type": "sweep_done", "row": 5, "col": 6, "lat": 34.6,
         "lon": 38.6, "faction": "government", "unit": "sweep-1", "squares": [[1, 2], [3, 4]]},
        {"hour": 3, "day": 1, "type": "relief", "row": 5, "col": 6, "lat": 34.6,
         "lon": 38.6, "faction": "", "town": "Palmyra", "relief_hours": 5},
    ]
    by_event = fixed_events_table(events)
    by_column = flat_events_table(events_table(events))
    assert by_column.equals(by_event)
    assert json.loads(by_column.column("data")[0].as_py()) == {
        "losses": {"government": 2, "insurgents": 0}, "ratio": None, "surprise": True}


def test_helpers() -> None:
    assert typed_column([1, 2]).type == pa.int64()
    assert typed_column([1, 2.5]).type == pa.float64()
    assert typed_column(["day", "night"]).type == pa.string()
    assert typed_column([True, False]).type == pa.bool_()
    assert typed_column([1, "x"]).to_pylist() == ["1", '"x"']       # mixed: JSON text
    assert factor_column_names(["a", "b.c"], ["a"]) == {"a": "factor:a", "b.c": "b.c"}


def test_the_analysis_notebook_runs_as_one_script(batch: Path, tmp_path: Path) -> None:
    """experiments/analysis_notebook.py, `# %%` cells run top to bottom as a script."""
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "res"
    shutil.copytree(batch, copy)
    run = subprocess.run([sys.executable, str(ROOT / "experiments" / "analysis_notebook.py"),
                          str(copy)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    made = {p.name for p in (copy / "notebook").glob("*.png")}
    assert {"event_map_engagements.png"} <= made and any(n.startswith("main_effects")
                                                         for n in made)
    try:
        import geopandas  # noqa: F401
        import tifffile  # noqa: F401
    except ImportError:
        assert "note:" in run.stdout and "skipping" in run.stdout
    else:
        assert "gis_overlay.png" in made
        assert (copy / "notebook" / "gis" / "ground.tif").is_file()
