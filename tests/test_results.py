"""The results store: part encoding, atomic writes, loading, bad parts, Sobol indices."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sim.errors import ResultsError
from sim.experiments.results import load, sobol_indices
from sim.experiments.store import (
    STORE_FORMAT,
    ResultsStore,
    RunIds,
    atomic_write_bytes,
    encode_part,
)

FACTORS = ["units[kind=patrol].count", "map.cell_km"]


def _manifest(points: list[dict], replicates: int, design_extra: dict | None = None) -> dict:
    rows = [[p * replicates + r, p, r, 1000 + p * replicates + r]
            for p in range(len(points)) for r in range(replicates)]
    design = {"kind": "full_factorial", "factors": FACTORS, "points": points, "sobol": None}
    design.update(design_extra or {})
    return {"format": STORE_FORMAT, "name": "t", "design": design,
            "runs": {"columns": ["run_id", "point_id", "replicate", "seed"], "rows": rows}}


def _ids(manifest: dict) -> list[RunIds]:
    return [RunIds(*r) for r in manifest["runs"]["rows"]]


def _run_data(ids: RunIds) -> tuple[dict, pd.DataFrame, list[dict]]:
    days = 3
    daily = pd.DataFrame({
        "day": np.arange(1, days + 1),
        "attacks_attempted": np.full(days, float(ids.run_id)),
        "coverage_area_night": np.linspace(0.1, 0.3, days),
    })
    summary = {"attacks_attempted_total": float(ids.run_id * days), "days": days}
    events = [
        {"hour": 5, "day": 1, "type": "engagement", "row": 3, "col": 4, "lat": 34.5,
         "lon": 38.7, "faction": "insurgents", "losses": {"government": 1, "insurgents": 2}},
        {"hour": 30, "day": 2, "type": "detection", "row": 1, "col": 2, "lat": 34.6,
         "lon": 38.8, "faction": "government", "unit": "T3 post", "range_km": 1.5},
    ][: 1 + ids.run_id % 2]
    return summary, daily, events


def _store(tmp_path: Path, n_points: int = 3, replicates: int = 2) -> tuple[Path, dict]:
    points = [{FACTORS[0]: p + 1, FACTORS[1]: 0.25 * (p + 1)} for p in range(n_points)]
    manifest = _manifest(points, replicates)
    store = ResultsStore.create(tmp_path / "res", manifest)
    for ids in _ids(manifest):
        store.write_part(ids.run_id, encode_part(ids, *_run_data(ids)))
    return store.path, manifest


def test_load_returns_the_contract_tables(tmp_path: Path) -> None:
    path, _ = _store(tmp_path)
    res = load(path)
    assert list(res.design.columns) == ["point_id", *FACTORS]
    assert res.design[FACTORS[0]].tolist() == [1, 2, 3]
    assert list(res.runs.columns[:5]) == ["run_id", "point_id", "replicate", "seed", "status"]
    assert res.runs["run_id"].tolist() == list(range(6))
    assert (res.runs["status"] == "ok").all()
    assert res.runs["seed"].tolist() == [1000 + i for i in range(6)]
    assert res.runs["attacks_attempted_total"].tolist() == [3.0 * i for i in range(6)]
    assert res.runs["days"].dtype == np.float64          # summary metrics are floats
    assert len(res.daily) == 6 * 3
    assert list(res.daily.columns[:4]) == ["run_id", "point_id", "replicate", "day"]
    one = res.daily[res.daily["run_id"] == 4]
    assert one["day"].tolist() == [1, 2, 3]
    assert one["attacks_attempted"].tolist() == [4.0] * 3
    # events: base columns, flattened nested dicts, type-specific keys (absent -> missing)
    assert len(res.events) == 3 * 1 + 3 * 2
    for col in ["run_id", "point_id", "replicate", "hour", "day", "type", "row", "col",
                "faction", "losses.government", "losses.insurgents", "unit", "range_km"]:
        assert col in res.events.columns
    eng = res.events[res.events["type"] == "engagement"]
    assert eng["losses.insurgents"].tolist() == [2] * 6
    assert res.failures.empty and res.left_out.empty
    merged = res.with_design(res.runs)
    assert merged[FACTORS[0]].tolist() == [1, 1, 2, 2, 3, 3]


def test_failed_runs_are_listed_with_status_failed(tmp_path: Path) -> None:
    path, _ = _store(tmp_path)
    store = ResultsStore.open(path)
    os.remove(store.part_path(3))
    store.write_failure(3, {"error_type": "ScenarioError", "error": "x.yaml: units[1]: bad",
                            "traceback": "Traceback..."})
    res = load(path)
    row = res.runs[res.runs["run_id"] == 3].iloc[0]
    assert row["status"] == "failed" and np.isnan(row["attacks_attempted_total"])
    assert row["seed"] == 1003 and row["point_id"] == 1
    assert res.failures["run_id"].tolist() == [3]
    assert res.failures["error"].iloc[0] == "x.yaml: units[1]: bad"
    assert 3 not in set(res.daily["run_id"])


def test_writing_a_part_clears_the_runs_old_failure(tmp_path: Path) -> None:
    path, manifest = _store(tmp_path)
    store = ResultsStore.open(path)
    store.write_failure(2, {"error": "old"})
    ids = _ids(manifest)[2]
    store.write_part(2, encode_part(ids, *_run_data(ids)))
    assert store.failed_run_ids() == set()
    assert load(path).failures.empty


def test_corrupt_part_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    path, _ = _store(tmp_path)
    bad = path / "parts" / "run-000004.parquet"
    bad.write_bytes(bad.read_bytes()[:50])      # a truncated file
    with pytest.raises(ResultsError) as info:
        load(path)
    msg = str(info.value)
    assert str(bad) in msg and "\n" not in msg
    with pytest.warns(UserWarning, match="left out 1 run"):
        res = load(path, skip_bad=True)
    assert res.left_out["run_id"].tolist() == [4]
    assert res.left_out["part"].tolist() == ["parts/run-000004.parquet"]
    assert sorted(res.runs["run_id"]) == [0, 1, 2, 3, 5]


def test_missing_part_is_an_error_unless_skipped(tmp_path: Path) -> None:
    path, _ = _store(tmp_path)
    os.remove(path / "parts" / "run-000001.parquet")
    with pytest.raises(ResultsError, match=r"run-000001\.parquet: missing; 1 of 6 runs"):
        load(path)
    with pytest.warns(UserWarning):
        res = load(path, skip_bad=True)
    assert res.left_out["run_id"].tolist() == [1]
    assert 1 not in set(res.runs["run_id"])


def test_part_holding_another_run_is_refused(tmp_path: Path) -> None:
    path, _ = _store(tmp_path)
    parts = path / "parts"
    shutil.copyfile(parts / "run-000002.parquet", parts / "run-000005.parquet")
    with pytest.raises(ResultsError, match="does not hold the run its name says"):
        load(path, skip_bad=False)


def test_not_a_results_folder(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"manifest\.json: missing"):
        load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ResultsError, match="unreadable manifest"):
        load(tmp_path)
    with pytest.raises(ResultsError, match="no such results folder"):
        load(tmp_path / "nope")


def test_temporary_files_are_ignored_by_load_and_cleared_by_the_store(tmp_path: Path) -> None:
    path, _ = _store(tmp_path)
    (path / "parts" / ".tmp-run-000001.parquet-abc").write_bytes(b"half a fi")
    assert len(load(path).runs) == 6
    assert ResultsStore.open(path).clear_temporary() == 1
    assert not list((path / "parts").glob(".tmp-*"))


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]   # no temporary left behind


def test_part_is_plain_parquet_and_types_are_stable(tmp_path: Path) -> None:
    ids = RunIds(7, 3, 1, 2**62 + 5)
    summary = {"a": 1, "b": 2.5, "flag": True}
    events = [{"hour": 1, "day": 1, "type": "x", "row": 0, "col": 0, "lat": 0.0, "lon": 0.0,
               "faction": "f", "target": "T3"},
              {"hour": 2, "day": 1, "type": "x", "row": 0, "col": 0, "lat": 0.0, "lon": 0.0,
               "faction": "f", "target": 17}]           # mixed types: kept, as JSON text
    p = tmp_path / "part.parquet"
    p.write_bytes(encode_part(ids, summary, pd.DataFrame({"day": [1]}), events))
    t = pq.read_table(p)
    assert t.num_rows == 1 and t.column("seed")[0].as_py() == 2**62 + 5
    s = t.column("summary")[0].as_py()
    assert s == {"a": 1.0, "b": 2.5, "flag": 1.0}
    ev = t.column("events")[0].as_py()
    assert [e["target"] for e in ev] == ["T3", "17"]


def test_empty_outputs_roundtrip(tmp_path: Path) -> None:
    manifest = _manifest([{FACTORS[0]: 1, FACTORS[1]: 0.5}], 1)
    store = ResultsStore.create(tmp_path / "res", manifest)
    store.write_part(0, encode_part(RunIds(0, 0, 0, 1000), {}, None, []))
    res = load(store.path)
    assert res.runs["run_id"].tolist() == [0]
    assert res.daily.empty and res.events.empty


def test_create_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(ResultsError, match="not empty"):
        ResultsStore.create(tmp_path, _manifest([{}], 1))
    assert (tmp_path / "x").read_text() == "keep me"


def test_sobol_indices_match_the_analytic_values(tmp_path: Path) -> None:
    # Y = 4 x1 + 2 x2 + 0 x3 with x uniform on [0, 1]: V1 = 16/12, V2 = 4/12, V3 = 0, so
    # S1 = 0.8, S2 = 0.2, S3 = 0 (additive, so total = first order).
    from SALib.sample import sobol as salib_sobol

    names = ["a", "b", "c"]
    problem = {"num_vars": 3, "names": names, "bounds": [[0.0, 1.0]] * 3}
    unit = salib_sobol.sample(problem, 128, calc_second_order=False, seed=1)
    points = [dict(zip(names, row, strict=True)) for row in unit.tolist()]
    manifest = _manifest(points, 1, {"kind": "sobol", "factors": names, "sobol": {
        "problem": problem, "calc_second_order": False, "samples": 128}})
    store = ResultsStore.create(tmp_path / "res", manifest)
    for ids in _ids(manifest):
        x = unit[ids.point_id]
        y = 4 * x[0] + 2 * x[1]
        store.write_part(ids.run_id, encode_part(ids, {"y": y}, None, []))
    idx = sobol_indices(load(store.path), "y").set_index("factor")
    assert idx.loc["a", "S1"] == pytest.approx(0.8, abs=0.03)
    assert idx.loc["b", "S1"] == pytest.approx(0.2, abs=0.03)
    assert idx.loc["c", "S1"] == pytest.approx(0.0, abs=0.03)
    assert idx.loc["a", "ST"] == pytest.approx(0.8, abs=0.03)
    with pytest.raises(ResultsError, match="no summary metric 'z'"):
        sobol_indices(load(store.path), "z")


def test_manifest_is_json(tmp_path: Path) -> None:
    path, manifest = _store(tmp_path)
    assert json.loads((path / "manifest.json").read_text()) == manifest
