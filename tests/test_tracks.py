"""Replay files: the tracks `badia run` records, read back by `badia viz --replay`.

What a reviewer relies on: the unit drawn at hour h is where the model had it at hour h (and
each side knew what it knew then), recording changes nothing the run writes, the file stays
small, and a bad folder is one line naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sim.app.replay import batch_run_folder, open_replay, replay_folder
from sim.cli import main
from sim.engine.model import DesertModel
from sim.engine.tracks import KNOWLEDGE_FILE, TRACKS_FILE, TrackConfig, TrackRecorder
from sim.errors import ReplayError
from sim.experiments.single import events_jsonl, write_run
from sim.scenario.loading import load_scenario

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "outpost_night_raid.yaml"
DAYS = 3
COLUMNS = ("alive", "row", "col", "strength", "posture")


def _run(out: Path, every_hours: int = 1, days: int = DAYS):
    """Run the scenario with a recorder, keeping the model's own state after every hour."""
    scenario = load_scenario(SCENARIO).model_copy(update={"days": float(days)})
    model = DesertModel(scenario)
    recorder = TrackRecorder(model, TrackConfig(every_hours=every_hours))
    truth: dict[int, dict[str, np.ndarray]] = {}

    def keep(m: DesertModel) -> None:
        n = m.force.n
        truth[m.hour] = {c: getattr(m.force, c)[:n].copy() for c in COLUMNS}
        truth[m.hour]["knowledge"] = [m.knowledge.known_to(fi, m.hour, None, 48)
                                      for fi in range(len(m.faction_names))]  # fmt: skip
        truth[m.hour]["targets"] = {u.idx: u.attack_target for u in m.units}
        recorder.observe(m)

    keep(model)
    model.run_for_hours(model.spec.hours, after_step=keep)
    result = model.result()
    write_run(result, out)
    recorder.write(out)
    return result, truth


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("run")
    result, truth = _run(out)
    return out, truth, result


def test_positions_and_knowledge_at_every_hour_are_the_models(run_dir):
    out, truth, _ = run_dir
    replay = open_replay(out)
    assert list(replay.hours) == list(range(DAYS * 24 + 1))
    for hour, state in truth.items():
        frame = replay.frame(hour)
        assert frame.hour == hour
        f = frame.force
        alive = state["alive"]
        assert np.array_equal(f.alive[: f.n], alive), hour
        for col in ("row", "col", "posture"):
            assert np.array_equal(getattr(f, col)[: f.n][alive], state[col][alive]), (hour, col)
        assert np.allclose(f.strength[: f.n][alive], state["strength"][alive])
        for fi, (idx, cells, ages) in enumerate(state["knowledge"]):
            got = frame.knowledge.known_to(fi, hour, None, 48)
            assert np.array_equal(got[0], idx) and np.array_equal(got[1], cells), (hour, fi)
            assert np.array_equal(got[2], ages)
        for u in frame.units:
            want = state["targets"].get(u.idx) if alive[u.idx] else None
            assert u.attack_target == want, (hour, u.name)
        assert all(e["hour"] < hour for e in frame.events)
        assert len(frame.events) == sum(e["hour"] < hour for e in replay.events)


def test_recording_changes_nothing_the_run_writes(run_dir):
    _, _, recorded = run_dir
    scenario = load_scenario(SCENARIO).model_copy(update={"days": float(DAYS)})
    plain = DesertModel(scenario)
    plain.run_for_hours(plain.spec.hours)
    result = plain.result()
    assert events_jsonl(result.events) == events_jsonl(recorded.events)
    assert result.daily.equals(recorded.daily)


def test_track_file_is_small_integers_and_compact(tmp_path):
    """The theatre (325 units) for a day: a few bytes per unit and hour recorded."""
    out = tmp_path / "theatre"
    assert main(["run", str(REPO / "scenarios" / "badia_theatre.yaml"), "--days", "1",
                 "--quiet", "--out", str(out)]) == 0  # fmt: skip
    table = pq.read_table(out / TRACKS_FILE)
    types = {f.name: str(f.type) for f in table.schema}
    assert types == {"hour": "int32", "unit": "int16", "cell": "int32", "strength": "float",
                     "posture": "int8", "target": "int16"}  # fmt: skip
    meta = json.loads(table.schema.metadata[b"badia.tracks"])
    assert meta["every_hours"] == 1 and len(meta["units"]) >= 1
    raw = table.nbytes  # the columns in memory, uncompressed
    size = (out / TRACKS_FILE).stat().st_size
    assert table.num_rows >= 300 * 25
    # about 10 KB of it is the unit list (names once); 90 days of the theatre are 0.5 B per row
    assert size < raw / 3, (size, raw)
    assert size < 5 * table.num_rows, (size, table.num_rows)
    assert pq.read_table(out / KNOWLEDGE_FILE).num_rows > 0


def test_a_coarser_interval_records_every_nth_hour_and_the_end(tmp_path):
    _run(tmp_path, every_hours=5, days=1)
    replay = open_replay(tmp_path)
    assert list(replay.hours) == [0, 5, 10, 15, 20, 24]
    assert replay.frame(7).hour == 5  # the latest recorded hour at or before
    assert replay.parse_when("hour 12") == 10


def test_the_clock_label_and_go_to_agree(run_dir):
    out, _, _ = run_dir
    replay = open_replay(out)
    start = replay.base.clock.at(0).local
    assert replay.when_text(0) == f"day 1, {start:%H:%M}"
    hour = replay.parse_when("day 2, 02:00")
    assert replay.when_text(hour) == "day 2, 02:00"
    assert 24 <= hour < 48
    assert replay.parse_when("d2 2:00") == hour
    assert replay.parse_when(str(hour)) == hour
    for bad in ("tomorrow", "day 2, 25:00", "day 0", f"day {DAYS + 5}"):
        with pytest.raises(ValueError):
            replay.parse_when(bad)


# ------------------------------------------------------------------------- bad folders
def _viz(capsys, *args: str) -> tuple[int, str]:
    code = main(["viz", *args])
    err = capsys.readouterr().err
    return code, err


def test_bad_replay_folders_are_one_line_naming_the_path(run_dir, tmp_path, capsys):
    out, _, _ = run_dir
    missing = tmp_path / "nowhere"
    code, err = _viz(capsys, "--replay", str(missing))
    assert code == 1 and err.splitlines() == [f"badia viz: {missing}: no such folder"]

    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    code, err = _viz(capsys, "--replay", str(a_file))
    assert code == 1 and len(err.splitlines()) == 1 and "not a folder" in err

    no_tracks = tmp_path / "old-run"
    shutil.copytree(out, no_tracks)
    (no_tracks / TRACKS_FILE).unlink()
    code, err = _viz(capsys, "--replay", str(no_tracks))
    assert code == 1 and len(err.splitlines()) == 1
    assert str(no_tracks) in err and "missing tracks.parquet" in err and "badia run" in err

    (no_tracks / TRACKS_FILE).write_bytes(b"not parquet at all")
    code, err = _viz(capsys, "--replay", str(no_tracks))
    assert code == 1 and len(err.splitlines()) == 1
    assert f"{no_tracks / TRACKS_FILE}: not a readable Parquet file" in err

    shutil.copy(out / "daily.parquet", no_tracks / TRACKS_FILE)  # Parquet, not tracks
    code, err = _viz(capsys, "--replay", str(no_tracks))
    assert code == 1 and "not a badia track file" in err and "Traceback" not in err

    shutil.copy(out / TRACKS_FILE, no_tracks / TRACKS_FILE)
    with (no_tracks / "events.jsonl").open("a") as fh:
        fh.write('{"hour": "soon"}\n')
    code, err = _viz(capsys, "--replay", str(no_tracks))
    assert code == 1 and len(err.splitlines()) == 1
    assert f"{no_tracks / 'events.jsonl'}: line " in err and "not an event" in err

    shutil.copy(out / "events.jsonl", no_tracks / "events.jsonl")
    (no_tracks / "scenario.yaml").write_text("name: x\nmap: {}\n")
    code, err = _viz(capsys, "--replay", str(no_tracks))
    assert code == 1 and len(err.splitlines()) == 1
    assert f"{no_tracks / 'scenario.yaml'}: not a valid scenario" in err


def test_batch_folders_need_a_run_with_kept_tracks(run_dir, tmp_path, capsys):
    out, _, _ = run_dir
    results = tmp_path / "results"
    results.mkdir()
    (results / "manifest.json").write_text("{}")
    code, err = _viz(capsys, "--replay", str(results))
    assert code == 1 and "choose one of its runs with --run ID" in err
    code, err = _viz(capsys, "--replay", str(results), "--run", "3")
    assert code == 1 and len(err.splitlines()) == 1 and "no replay files for run 3" in err
    code, err = _viz(capsys, "--replay", str(out), "--run", "3")
    assert code == 1 and "not a batch results folder" in err
    # RESULTS_DIR/ID and --run ID name the same kept run
    shutil.copytree(out, batch_run_folder(results, 3))
    assert replay_folder(results, 3) == batch_run_folder(results, 3)
    assert replay_folder(results / "3", None) == batch_run_folder(results, 3)
    with pytest.raises(ReplayError, match="cannot be opened together"):
        replay_folder(out, None, SCENARIO)


def test_badia_run_writes_tracks_and_refuses_a_bad_interval(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(SCENARIO), "--days", "1", "--quiet", "--out", str(out)]) == 0
    assert f"badia viz --replay {out}" in capsys.readouterr().out
    assert (out / TRACKS_FILE).is_file() and (out / KNOWLEDGE_FILE).is_file()
    code = main(["run", str(SCENARIO), "--days", "1", "--quiet", "--out", str(out),
                 "--track-every-hours", "25"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err.splitlines() == [
        "badia run: --track-every-hours: expected 0 (no tracks) or a whole number from 1 to "
        "24, got 25"]
    none = tmp_path / "none"
    assert main(["run", str(SCENARIO), "--days", "1", "--quiet", "--out", str(none),
                 "--track-every-hours", "0"]) == 0  # fmt: skip
    assert not (none / TRACKS_FILE).exists()


# ------------------------------------------------------------------------- batches
def test_a_batch_keeps_tracks_when_asked_and_each_run_replays_by_its_id(tmp_path, capsys):
    from concurrent.futures import ThreadPoolExecutor

    from sim.experiments.batch import run_batch
    from sim.experiments.design import load_experiment
    from sim.experiments.results import load

    spec = tmp_path / "exp.yaml"
    base = (f"name: kept\nscenario: {SCENARIO}\nreplicates: 2\ndays: 1\n"
            "factors:\n  units[kind=patrol].tactic.schedule: {levels: [day, night]}\n")
    spec.write_text(base + "keep: {tracks: true}\n")
    plain = tmp_path / "plain.yaml"
    plain.write_text(base)
    # tracks change no result: a store made without them resumes with them, and the reverse
    kept, bare = load_experiment(spec), load_experiment(plain)
    assert kept.spec.fingerprint_data() == bare.spec.fingerprint_data()

    with ThreadPoolExecutor(1) as pool:
        run_batch(spec, tmp_path / "res", executor=pool, progress=False)
        run_batch(plain, tmp_path / "bare", executor=pool, progress=False)
    res = tmp_path / "res"
    runs = load(res).runs
    assert sorted(runs["run_id"]) == [0, 1, 2, 3]
    assert not (tmp_path / "bare" / "replays").exists()  # off by default
    for run_id, seed in zip(runs["run_id"], runs["seed"], strict=True):
        folder = replay_folder(res, int(run_id))
        assert folder == batch_run_folder(res, int(run_id))
        replay = open_replay(folder)
        assert replay.scenario.seed == seed
        assert replay.last_hour == 24
    # the replay's events are the stored run's events
    events = load(res).events
    stored = events[events["run_id"] == 3]
    assert len(stored) == len(open_replay(batch_run_folder(res, 3)).events)
