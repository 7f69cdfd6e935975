"""`badia batch` end to end with the real model: same results on any executor, crash-safe
resume, failing runs recorded, changed experiments refused.

Every test runs `sim.engine.run.run_scenario` on the bundled `scenarios/outpost_night_raid.yaml`
for a day or two, so a batch takes seconds; worker start-up (importing the model) dominates.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from sim.experiments.batch import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_RUNS_FAILED,
    run_batch,
    run_batch_command,
)
from sim.experiments.results import load

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "scenarios" / "outpost_night_raid.yaml"


def _experiment(tmp_path: Path, body: str, name: str = "t") -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(f"name: {name}\nscenario: {BASE}\n{body}")
    return p


SMALL = """\
factors:
  units[kind=patrol].tactic.schedule: {levels: [day, night]}
  units[kind=strongpoint].night_sensor_range_km: {levels: [1.0, 3.0]}
replicates: 2
days: 2
seed: 11
"""


def _args(exp: Path, out: Path, **kw: object) -> argparse.Namespace:
    base = {"experiment": exp, "out": out, "workers": 1, "scheduler": None,
            "force_new": False, "quiet": True}
    base.update(kw)
    return argparse.Namespace(**base)


def _parts(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "parts").glob("run-*.parquet"))}


def _frames(out: Path) -> dict[str, pd.DataFrame]:
    res = load(out)
    return {name: getattr(res, name).sort_values(
        ["run_id", *(["day"] if name == "daily" else [])], kind="stable").reset_index(drop=True)
        for name in ("runs", "daily", "events")}


def test_same_results_with_1_worker_2_workers_and_a_dask_cluster(tmp_path: Path) -> None:
    from distributed import LocalCluster

    exp = _experiment(tmp_path, SMALL)
    one = run_batch(exp, tmp_path / "one", workers=1, progress=False)
    two = run_batch(exp, tmp_path / "two", workers=2, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1",
                      dashboard_address=None) as cluster:
        dask = run_batch(exp, tmp_path / "dask", scheduler=cluster.scheduler_address,
                         progress=False)
    for report in (one, two, dask):
        assert report.exit_code == EXIT_OK
        assert report.completed == 8 and not report.failed
    ref = _parts(tmp_path / "one")
    assert len(ref) == 8
    for other in ("two", "dask"):
        got = _parts(tmp_path / other)
        assert list(got) == list(ref)
        for name, data in ref.items():
            # byte for byte: same rows, same values, same schema and column order
            assert got[name] == data, f"{other}/{name} differs from 1 worker"
    frames = _frames(tmp_path / "one")
    # the comparison means something only if the runs produced data that could differ
    assert len(frames["daily"]) == 8 * 2 and len(frames["events"]) > 0
    assert frames["runs"]["seed"].nunique() == 8
    for other in ("two", "dask"):
        for name, df in _frames(tmp_path / other).items():
            pd.testing.assert_frame_equal(df, frames[name])


def test_sigkill_midway_then_rerun_stores_every_run_exactly_once(tmp_path: Path) -> None:
    n_runs = 40
    exp = _experiment(tmp_path, "factors:\n"
                                "  units[kind=strongpoint].night_sensor_range_km: "
                                "{levels: [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]}\n"
                                "replicates: 5\ndays: 5\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sim.experiments.batch", str(exp), "--out", str(out),
           "--workers", "2",
           "--quiet"]
    # a new session, so SIGKILL reaches the worker processes too (a crashed machine)
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    parts = out / "parts"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if parts.is_dir() and len(list(parts.glob("run-*.parquet"))) >= 3:
                break
            if proc.poll() is not None:
                pytest.fail(f"batch ended before it could be killed: {proc.stderr.read()!r}")
            time.sleep(0.02)
        else:
            pytest.fail("no parts appeared within 120 s")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done_before = len(list(parts.glob("run-*.parquet")))
    assert 3 <= done_before < n_runs, "the kill must land mid-batch for this test to mean much"
    for p in parts.glob("run-*.parquet"):
        pq.read_table(p)          # every part that exists is complete

    report = run_batch(exp, out, workers=2, progress=False)
    assert report.exit_code == EXIT_OK
    assert report.already_done == done_before
    assert report.completed == n_runs - done_before
    assert not list(out.rglob(".tmp-*"))
    names = sorted(p.name for p in parts.iterdir())
    assert names == [f"run-{i:06d}.parquet" for i in range(n_runs)]
    res = load(out)
    assert sorted(res.runs["run_id"]) == list(range(n_runs))
    assert res.runs["run_id"].is_unique and (res.runs["status"] == "ok").all()
    assert sorted(res.daily["run_id"].unique()) == list(range(n_runs))
    assert (res.daily.groupby("run_id")["day"].apply(list) == pd.Series(
        [[1, 2, 3, 4, 5]] * n_runs, index=range(n_runs))).all()


def _fails_on_few_patrols(scenario, *, seed, days):
    """A run function that fails like a model would on one design point (a ScenarioError raised
    during the run), and runs the others: bad values are refused at load, so a run-time failure
    has to be made."""
    from sim.engine.run import run_scenario
    from sim.errors import ScenarioError

    strength = next(u.strength for u in scenario.units if u.kind == "patrol")
    if strength == 5:
        raise ScenarioError([f"{scenario.name}: units[1].strength: 5 breaks this run"])
    return run_scenario(scenario, seed=seed, days=days)


def test_a_failing_design_point_is_recorded_and_the_rest_complete(tmp_path: Path) -> None:
    exp = _experiment(tmp_path, "factors:\n"
                                "  units[kind=patrol].strength: {levels: [8, 5, 12]}\n"
                                "replicates: 2\ndays: 1\n")
    out = tmp_path / "out"
    with ThreadPoolExecutor(2) as pool:
        report = run_batch(exp, out, executor=pool, runner=_fails_on_few_patrols,
                           progress=False)
    assert report.exit_code == EXIT_RUNS_FAILED
    failures = sorted((out / "failures").glob("*.json"))
    assert [f.name for f in failures] == ["run-000002.json", "run-000003.json"]
    rec = json.loads(failures[0].read_text())
    assert rec["error_type"] == "ScenarioError"
    assert re.search(r"units\[\d+\]\.strength", rec["error"]) and "5 breaks" in rec["error"]
    assert rec["factors"] == {"units[kind=patrol].strength": 5}
    assert "Traceback" in rec["traceback"]
    res = load(out)
    assert res.runs.set_index("run_id")["status"].to_dict() == {
        0: "ok", 1: "ok", 2: "failed", 3: "failed", 4: "ok", 5: "ok"}
    assert sorted(res.failures["run_id"]) == [2, 3]
    # a rerun retries only the failed runs
    with ThreadPoolExecutor(2) as pool:
        report = run_batch(exp, out, executor=pool, runner=_fails_on_few_patrols,
                           progress=False)
    assert report.already_done == 4 and report.completed == 0
    assert sorted(report.failed) == [2, 3] and report.exit_code == EXIT_RUNS_FAILED


def test_resume_runs_only_what_is_missing_and_reproduces_it(tmp_path: Path) -> None:
    exp = _experiment(tmp_path, SMALL)
    out = tmp_path / "out"
    with ThreadPoolExecutor(2) as pool:
        first = run_batch(exp, out, executor=pool, progress=False)
    assert first.completed == 8
    victim = out / "parts" / "run-000005.parquet"
    before = victim.read_bytes()
    victim.unlink()
    (out / "parts" / "run-000006.parquet").write_bytes(b"PAR1 not really")   # damaged
    with ThreadPoolExecutor(2) as pool:
        again = run_batch(exp, out, executor=pool, progress=False)
    assert (again.already_done, again.completed) == (6, 2)
    assert victim.read_bytes() == before
    assert len(list((out / "parts").glob("run-000006.parquet.bad-*"))) == 1   # kept, aside
    with ThreadPoolExecutor(2) as pool:
        nothing = run_batch(exp, out, executor=pool, progress=False)
    assert (nothing.already_done, nothing.completed) == (8, 0)


def test_changed_experiment_is_refused_and_force_new_moves_the_old_store_aside(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = _experiment(tmp_path, "replicates: 2\ndays: 1\n")
    out = tmp_path / "out"
    assert run_batch_command(_args(exp, out)) == EXIT_OK
    capsys.readouterr()
    # the description does not decide results: not a change
    exp.write_text(exp.read_text() + "description: now with words\n")
    assert run_batch_command(_args(exp, out)) == EXIT_OK
    capsys.readouterr()
    exp.write_text(exp.read_text().replace("replicates: 2", "replicates: 3"))
    assert run_batch_command(_args(exp, out)) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds results of a different experiment" in err[0]
    assert "changed: replicates" in err[0] and "--force-new" in err[0]
    assert len(list((out / "parts").iterdir())) == 2      # untouched
    assert run_batch_command(_args(exp, out, force_new=True)) == EXIT_OK
    olds = list(tmp_path.glob("out.old-*"))
    assert len(olds) == 1
    assert sorted(p.name for p in (olds[0] / "parts").iterdir()) == [
        "run-000000.parquet", "run-000001.parquet"]
    assert len(load(out).runs) == 3


def test_folder_that_is_not_a_store_is_refused(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    exp = _experiment(tmp_path, "days: 1\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert run_batch_command(_args(exp, out)) == EXIT_BAD_INPUT
    assert "not a badia results folder" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"


def test_keep_selects_metrics_and_event_types(tmp_path: Path) -> None:
    exp = _experiment(tmp_path, "days: 2\nreplicates: 2\nkeep:\n"
                                "  daily: [raid_attempted, detections_night__government]\n"
                                "  summary: [losses__insurgents_total, no_such_metric]\n"
                                "  events: [engagement]\n")
    lines: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        report = run_batch(exp, tmp_path / "out", executor=pool, progress=False,
                           log=lines.append)
    assert report.exit_code == EXIT_OK
    res = load(tmp_path / "out")
    assert list(res.daily.columns) == ["run_id", "point_id", "replicate", "day",
                                       "raid_attempted", "detections_night__government"]
    assert list(res.runs.columns) == ["run_id", "point_id", "replicate", "seed", "status",
                                      "losses__insurgents_total", "no_such_metric"]
    assert res.runs["no_such_metric"].isna().all()
    assert any("no_such_metric" in line for line in lines)   # the typo is pointed out
    assert set(res.events["type"]) <= {"engagement"}


def test_a_batch_run_equals_run_scenario_on_the_file_with_its_seed(tmp_path: Path) -> None:
    from sim.engine.run import run_scenario

    path = "units[kind=strongpoint].night_sensor_range_km"
    exp = _experiment(tmp_path, f"factors:\n  {path}: {{levels: [1.0, 4.0]}}\ndays: 2\n"
                                "replicates: 2\n")
    with ThreadPoolExecutor(1) as pool:
        run_batch(exp, tmp_path / "out", executor=pool, progress=False)
    res = load(tmp_path / "out")
    for run in res.runs.itertuples():
        value = res.design.loc[run.point_id, path]
        direct = run_scenario(BASE, seed=run.seed, days=2, overrides=[f"{path}={value}"])
        stored = res.runs.loc[res.runs["run_id"] == run.run_id].iloc[0]
        for key, want in direct.summary.items():
            got = stored[key]
            assert got == want or (pd.isna(got) and pd.isna(want)), key
        daily = res.daily[res.daily["run_id"] == run.run_id].drop(
            columns=["run_id", "point_id", "replicate"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(daily, direct.daily.reset_index(drop=True),
                                      check_dtype=False)
        assert (res.events["run_id"] == run.run_id).sum() == len(direct.events)
    # the factor reached the model: the longer night sensor range sees more at night
    night = res.runs.groupby("point_id")["detections_night__government_total"].mean()
    assert night[1] > night[0]


def test_each_worker_parses_a_design_point_once(tmp_path: Path) -> None:
    from sim.experiments.batch import _scenario_for

    exp = _experiment(tmp_path, "factors:\n  units[kind=patrol].tactic.schedule: "
                                "{levels: [day, night]}\nreplicates: 3\ndays: 1\n")
    _scenario_for.cache_clear()
    with ThreadPoolExecutor(1) as pool:
        run_batch(exp, tmp_path / "out", executor=pool, progress=False)
    info = _scenario_for.cache_info()
    assert (info.misses, info.hits) == (2, 4)
