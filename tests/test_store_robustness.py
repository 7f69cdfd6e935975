"""A results store that loses nothing: resume verifies every part in full (corrupt data pages
are caught, moved aside and redone), one batch per folder at a time (a lock), written files get
ordinary permissions, an unwritable folder is one line, and SIGTERM stops the local workers and
leaves a folder that a rerun finishes.

Batches run `sim.engine.run.run_scenario` on the bundled scenarios for a day or two.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from sim.errors import BatchError
from sim.experiments.batch import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    run_batch,
    run_batch_command,
)
from sim.experiments.results import load
from sim.experiments.store import atomic_write_bytes, verify_part

ROOT = Path(__file__).resolve().parent.parent
OUTPOST = ROOT / "scenarios" / "outpost_night_raid.yaml"
THEATRE = ROOT / "scenarios" / "badia_theatre.yaml"


def _experiment(tmp_path: Path, body: str, name: str = "t", base: Path = OUTPOST) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(f"name: {name}\nscenario: {base}\n{body}")
    return p


FOUR = "replicates: 4\ndays: 1\nseed: 5\n"


def _args(exp: Path, out: Path, **kw: object) -> argparse.Namespace:
    base = {"experiment": exp, "out": out, "workers": 1, "scheduler": None,
            "force_new": False, "quiet": True}
    base.update(kw)
    return argparse.Namespace(**base)


def _snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every file and folder under `folder` with (inode, size, mtime_ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_size,
                                         p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


# --------------------------------------------------------------------------------------------
# 1. resume verifies each part in full
# --------------------------------------------------------------------------------------------


def _garble_data_page(path: Path) -> None:
    """Flip bytes in the middle of the `events` column's compressed data pages, leaving the
    footer (and so `pq.read_metadata`) intact."""
    meta = pq.read_metadata(path)
    row_group = meta.row_group(0)
    col = next(row_group.column(i) for i in range(row_group.num_columns)
               if row_group.column(i).path_in_schema.startswith("events"))
    start = col.data_page_offset
    mid = start + col.total_compressed_size // 2
    data = bytearray(path.read_bytes())
    for i in range(mid, mid + 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate_middle(path: Path) -> None:
    """Cut a slice out of the middle of the file (the footer stays at the end)."""
    data = path.read_bytes()
    n = len(data)
    path.write_bytes(data[: n // 3] + data[n // 3 + 64:])


def test_resume_reads_each_part_fully_and_redoes_corrupt_ones(tmp_path: Path) -> None:
    exp = _experiment(tmp_path, FOUR)
    out = tmp_path / "out"
    assert run_batch(exp, out, workers=1, progress=False).exit_code == EXIT_OK
    parts = out / "parts"
    good = {p.name: p.read_bytes() for p in parts.glob("run-*.parquet")}
    garbled, truncated = parts / "run-000001.parquet", parts / "run-000002.parquet"
    _garble_data_page(garbled)
    _truncate_middle(truncated)
    pq.read_metadata(garbled)           # the footer alone would call it done
    for p in (garbled, truncated):
        with pytest.raises(Exception):  # noqa: B017 - pyarrow raises several kinds
            verify_part(p, int(p.stem.split("-")[1]))

    lines: list[str] = []
    report = run_batch(exp, out, workers=1, progress=False, log=lines.append)
    assert report.exit_code == EXIT_OK
    assert report.already_done == 2 and report.completed == 2
    notes = [line for line in lines if "moved to" in line]
    assert len(notes) == 2 and all("\n" not in line for line in notes)
    assert any(str(garbled) in line for line in notes)
    assert any(str(truncated) in line for line in notes)
    # moved aside, not deleted
    assert len(list(parts.glob("run-000001.parquet.bad-*"))) == 1
    assert len(list(parts.glob("run-000002.parquet.bad-*"))) == 1
    # redone, identical to the first time (same seeds); the untouched ones kept as they were
    assert {p.name: p.read_bytes() for p in parts.glob("run-*.parquet")} == good
    assert sorted(load(out).runs["run_id"]) == [0, 1, 2, 3]


def test_load_notices_a_garbled_data_page(tmp_path: Path) -> None:
    from sim.errors import ResultsError

    exp = _experiment(tmp_path, "replicates: 1\ndays: 1\n")
    out = tmp_path / "out"
    run_batch(exp, out, workers=1, progress=False)
    _garble_data_page(out / "parts" / "run-000000.parquet")
    with pytest.raises(ResultsError, match=r"run-000000\.parquet"):
        load(out)


# --------------------------------------------------------------------------------------------
# 2. one batch per folder
# --------------------------------------------------------------------------------------------


def _hold_lock(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_a_locked_folder_is_refused_in_one_line_and_nothing_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = _experiment(tmp_path, FOUR)
    # a new folder another batch has just locked
    fresh = tmp_path / "fresh"
    fd = _hold_lock(fresh)
    try:
        before = _snapshot(fresh)
        assert run_batch_command(_args(exp, fresh)) == EXIT_BAD_INPUT
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(fresh) in err and "another batch" in err
        assert _snapshot(fresh) == before
    finally:
        os.close(fd)

    # a store with work left (and a stray temporary file of the batch holding the lock)
    out = tmp_path / "out"
    run_batch(exp, out, workers=1, progress=False)
    (out / "parts" / "run-000003.parquet").unlink()
    (out / "parts" / ".tmp-run-000003.parquet-x").write_bytes(b"being written")
    fd = _hold_lock(out)
    try:
        before = _snapshot(out)
        with pytest.raises(BatchError, match="another batch"):
            run_batch(exp, out, workers=1, progress=False)
        assert _snapshot(out) == before
    finally:
        os.close(fd)
    # once the lock is free the batch goes ahead
    report = run_batch(exp, out, workers=1, progress=False)
    assert report.exit_code == EXIT_OK and report.completed == 1


# --------------------------------------------------------------------------------------------
# 3. ordinary file modes
# --------------------------------------------------------------------------------------------


def test_written_files_are_readable_by_group_and_world(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        exp = _experiment(tmp_path, "replicates: 2\ndays: 1\n")
        out = tmp_path / "out"
        calls: list[int] = []

        def fails_once(scenario, *, seed, days):
            from sim.engine.run import run_scenario

            calls.append(seed)
            if len(calls) == 1:
                raise RuntimeError("the first run fails")
            return run_scenario(scenario, seed=seed, days=days)

        with ThreadPoolExecutor(1) as pool:
            report = run_batch(exp, out, executor=pool, runner=fails_once, progress=False)
        assert report.completed == 1 and len(report.failed) == 1   # one part, one failure
        files = [p for p in out.rglob("*") if p.is_file()]
        names = {p.name for p in files}
        assert {"manifest.json", "run-000001.parquet", "run-000000.json",
                "runs.parquet", ".lock"} <= names
        assert {p.name: p.stat().st_mode & 0o777 for p in files} == {
            p.name: 0o644 for p in files}
        # the umask is respected, whatever it is
        os.umask(0o027)
        atomic_write_bytes(tmp_path / "x.bin", b"x")
        assert (tmp_path / "x.bin").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


# --------------------------------------------------------------------------------------------
# 4. an unwritable folder is one line
# --------------------------------------------------------------------------------------------


def test_an_unwritable_results_folder_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The tests run as root, and root ignores permission bits, so `chmod 0o500` would not make
    # a folder unwritable here. Instead: a folder whose parent is a file (NotADirectoryError),
    # and a folder under /sys, where even root may not create anything (EPERM).
    exp = _experiment(tmp_path, "replicates: 1\ndays: 1\n")
    (tmp_path / "a-file").write_text("not a folder")
    places = [tmp_path / "a-file" / "out"]
    try:
        (Path("/sys") / "badia-probe").mkdir()
    except OSError:
        places.append(Path("/sys") / "badia-test-results" / "out")
    else:   # pragma: no cover - a writable /sys: nothing to test there
        (Path("/sys") / "badia-probe").rmdir()
    for out in places:
        assert run_batch_command(_args(exp, out)) == EXIT_BAD_INPUT
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert str(out) in err and "Traceback" not in err
        assert not out.exists()


# --------------------------------------------------------------------------------------------
# 5. SIGTERM stops the workers and leaves a resumable folder
# --------------------------------------------------------------------------------------------


def test_sigterm_terminates_the_workers_and_a_rerun_finishes_the_rest(tmp_path: Path) -> None:
    n_runs = 12
    exp = _experiment(tmp_path, f"replicates: {n_runs}\ndays: 2\nseed: 9\n", base=THEATRE)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sim.experiments.batch", str(exp), "--out", str(out),
           "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parts = out / "parts"
    parent = psutil.Process(proc.pid)
    children: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            # collect the descendants while the parent lives (forkserver, workers, tracker)
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in parent.children(recursive=True):
                    children.setdefault(child.pid, child)
            if parts.is_dir() and list(parts.glob("run-*.parquet")):
                break
            if proc.poll() is not None:
                pytest.fail(f"batch ended before the signal: {proc.stderr.read()!r}")
            time.sleep(0.02)
        else:
            pytest.fail("no part appeared within 120 s")
        for child in parent.children(recursive=True):
            children.setdefault(child.pid, child)
        assert len(children) >= 2, "expected worker processes"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        _, alive = psutil.wait_procs(list(children.values()), timeout=15)
        assert not alive, f"still running after SIGTERM: {[p.pid for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for child in children.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    err = proc.stderr.read().decode()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "interrupted" in err and "Traceback" not in err
    done = {p.name: p.read_bytes() for p in parts.glob("run-*.parquet")}
    assert 1 <= len(done) < n_runs, "the signal must land mid-batch for this test to mean much"
    assert not list(out.rglob(".tmp-*"))
    stamps = {name: (parts / name).stat().st_mtime_ns for name in done}

    report = run_batch(exp, out, workers=2, progress=False)
    assert report.exit_code == EXIT_OK
    assert report.already_done == len(done) and report.completed == n_runs - len(done)
    for name, data in done.items():      # finished parts were not redone
        assert (parts / name).read_bytes() == data
        assert (parts / name).stat().st_mtime_ns == stamps[name]
    assert sorted(load(out).runs["run_id"]) == list(range(n_runs))


# --------------------------------------------------------------------------------------------
# 6. a lost or damaged manifest is rebuilt from the experiment file and the parts
# --------------------------------------------------------------------------------------------


def _half_done(tmp_path: Path) -> tuple[Path, Path, dict[str, tuple[int, int, int]]]:
    """An experiment of 4 runs with 2 of them stored; the parts' snapshot."""
    exp = _experiment(tmp_path, FOUR)
    out = tmp_path / "out"
    run_batch(exp, out, workers=1, progress=False)
    for name in ("run-000001.parquet", "run-000003.parquet"):
        (out / "parts" / name).unlink()
    for name in ("runs.parquet", "daily.parquet", "events.parquet"):
        (out / name).unlink()
    return exp, out, _snapshot(out / "parts")


@pytest.mark.parametrize("damage", ["missing", "garbled", "wrong types"])
def test_a_lost_or_damaged_manifest_is_rebuilt_and_no_part_is_lost(
        tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]) -> None:
    exp, out, parts_before = _half_done(tmp_path)
    mf = out / "manifest.json"
    original = json.loads(mf.read_text())
    if damage == "missing":
        mf.unlink()
    elif damage == "garbled":
        mf.write_text(mf.read_text()[:200])
    else:
        mf.write_text(json.dumps({**original, "runs": {"rows": "0-3"}}))
    assert run_batch_command(_args(exp, out)) == EXIT_OK
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "rebuilt" in line]
    assert len(notes) == 1 and str(mf) in notes[0] and str(exp) in notes[0]
    assert "2 intact part(s)" in notes[0]
    assert "Traceback" not in err
    # the two stored parts were kept as they were (same file, never rewritten)
    after = _snapshot(out / "parts")
    for name, stat in parts_before.items():
        assert after[name] == stat
    assert len(after) == 4
    rebuilt = json.loads(mf.read_text())
    assert rebuilt["fingerprint"] == original["fingerprint"]
    assert rebuilt["runs"] == original["runs"]
    assert len(load(out).runs) == 4
    if damage != "missing":   # the damaged manifest is kept beside it, never deleted
        assert len(list(out.glob("manifest.json.bad-*"))) == 1


def test_a_manifest_with_wrong_field_types_is_one_line_from_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim.analysis.report import main as report_main

    exp = _experiment(tmp_path, FOUR)
    out = tmp_path / "out"
    run_batch(exp, out, workers=1, progress=False)
    capsys.readouterr()
    mf = out / "manifest.json"
    good = json.loads(mf.read_text())
    for bad, field in (({**good, "design": {**good["design"], "points": 7}}, "design.points"),
                       ({**good, "runs": {"rows": [[0, 0, "a", 1]]}}, "runs.rows[0]"),
                       ({**good, "base_scenario": None}, "base_scenario")):
        mf.write_text(json.dumps(bad))
        assert report_main([str(out), "--out", str(tmp_path / "rep")]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0]
        assert str(mf) in err[0] and f"{field}:" in err[0]


def test_a_batch_killed_before_its_manifest_is_written_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed in its first moments (folder, lock and subfolders made, manifest not yet
    written): the same command resumes on that folder."""
    import sim.experiments.store as store

    exp = _experiment(tmp_path, FOUR)
    out = tmp_path / "out"

    def killed(path: Path, obj: object) -> None:
        (path.parent / f".tmp-{path.name}-x").write_text("{\"form")   # half written
        raise SystemExit(137)

    monkeypatch.setattr(store, "atomic_write_json", killed)
    with pytest.raises(SystemExit):
        run_batch(exp, out, workers=1, progress=False)
    monkeypatch.undo()
    assert (out / "parts").is_dir() and not (out / "manifest.json").exists()
    assert run_batch_command(_args(exp, out)) == EXIT_OK
    assert len(load(out).runs) == 4
    assert not list(out.glob(".tmp-*"))


def test_parts_of_another_experiment_are_not_adopted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, parts_before = _half_done(tmp_path)
    (out / "manifest.json").unlink()
    capsys.readouterr()
    other = _experiment(tmp_path, FOUR.replace("seed: 5", "seed: 6"), name="other")
    assert run_batch_command(_args(other, out)) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another experiment" in err[0] and "run-000000" in err[0]
    assert _snapshot(out / "parts") == parts_before
    assert not (out / "manifest.json").exists()


# --------------------------------------------------------------------------------------------
# 7. a Dask cluster: losing the scheduler is one line; runs in flight follow the cluster's size
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_cluster(port: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """A scheduler on `port` and one single-threaded worker, each its own process."""
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    sched = subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", str(port),
                              "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker",
                               f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                               "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    return [sched, worker]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_losing_the_dask_scheduler_is_one_line_and_the_same_command_resumes(
        tmp_path: Path) -> None:
    # enough runs that the batch cannot finish between its first part and the kill, even on a
    # loaded machine (60 one-day runs take a second or two on one worker)
    runs = 240
    exp = _experiment(tmp_path, f"replicates: {runs}\ndays: 1\nseed: 5\n")
    out = tmp_path / "out"
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "sim.experiments.batch", str(exp), "--out", str(out),
               "--scheduler", address, "--quiet"]
    cluster = _start_cluster(port, env)
    try:
        batch = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not list((out / "parts").glob("run-*.parquet")):
            assert batch.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        cluster[0].kill()             # the scheduler dies under the batch
        _, err = batch.communicate(timeout=120)
        stored = sorted((out / "parts").glob("run-*.parquet"))
        assert batch.returncode == 4
        lines = err.strip().splitlines()
        assert "Traceback" not in err and "probably died" not in err
        assert len(lines) == 2, lines      # what it will do, then why it stopped
        assert f"lost the Dask scheduler {address}" in lines[1]
        assert "parts are kept" in lines[1] and "rerun the same command" in lines[1]
        assert 0 < len(stored) < runs
        kept = {p.name: p.stat().st_ino for p in stored}
    finally:
        _stop(cluster)
    cluster = _start_cluster(port, env)   # the cluster comes back at the same address
    try:
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    finally:
        _stop(cluster)
    assert rerun.returncode == 0, rerun.stderr
    assert len(load(out).runs) == runs
    for name, inode in kept.items():      # the finished parts were kept, not redone
        assert (out / "parts" / name).stat().st_ino == inode


def _slow_run(scenario, *, seed, days):
    """A real run that takes a while, so a cluster can grow while runs are in flight."""
    from sim.engine.run import run_scenario

    time.sleep(0.3)
    return run_scenario(scenario, seed=seed, days=days)


@pytest.mark.slow
def test_runs_in_flight_follow_a_cluster_that_grows_after_the_batch_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed import Client, LocalCluster

    import sim.experiments.batch as batch

    in_flight: list[tuple[float, int]] = []
    real_wait = batch.wait

    def counting_wait(fs, **kw):
        in_flight.append((time.monotonic(), len(fs)))
        return real_wait(fs, **kw)

    monkeypatch.setattr(batch, "wait", counting_wait)
    exp = _experiment(tmp_path, "replicates: 80\ndays: 1\nseed: 5\n")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client, ThreadPoolExecutor(1) as pool:
        job = pool.submit(run_batch, exp, tmp_path / "out",
                          scheduler=cluster.scheduler_address, runner=_slow_run,
                          progress=False)
        deadline = time.monotonic() + 60
        while not list((tmp_path / "out" / "parts").glob("run-*.parquet")):
            assert not job.done() and time.monotonic() < deadline
            time.sleep(0.05)
        cluster.scale(4)
        client.wait_for_workers(4, timeout=60)
        grown = time.monotonic()
        report = job.result(timeout=300)
    assert report.exit_code == EXIT_OK and report.completed == 80
    before = [n for t, n in in_flight if t < grown]
    after = [n for t, n in in_flight if t > grown + 2 * batch.CLUSTER_SIZE_EVERY_S]
    assert max(before) == 4                  # 2 per worker thread, at least 4
    assert max(after) == 8                   # 4 worker threads now
