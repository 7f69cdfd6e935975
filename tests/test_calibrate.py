"""`badia calibrate`: the file format and its errors, targets and the bounded distance, recovery
of known parameters, reproducibility across workers and engines, resume, and the outputs."""

from __future__ import annotations

import math
import shutil
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.errors import CalibrationError
from sim.experiments.calibration_data import (
    BoundedDistance,
    build_targets,
    load_calibration,
    parse_period,
    read_observed,
    target_loss,
)
from sim.experiments.calibration_spec import CalibrationSpec

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "calibration"
SCENARIO = REPO / "scenarios" / "outpost_night_raid.yaml"
#: A copy of experiments/observed/central_syria_2020.csv as it was when these tests were written
#: (so that the expectations below do not move when the data file is extended)
OBSERVED_2020 = DATA / "central_syria_2020_snapshot.csv"
THEATRE = "Homs;Deir ez-Zor;Raqqa;Hama;Aleppo"

#: The parameters the recovery test fits, and their true values.
STRENGTH = "units[kind=cell].strength"
SENSOR = "units[kind=strongpoint].night_sensor_range_km"
TRUE = {STRENGTH: 9, SENSOR: 2.5}
DAYS = 3
OUTPUTS = {"losses_gov": "losses__government", "night_detections":
           "detections_night__government", "attacks": "attacks_attempted",
           "losses_ins": "losses__insurgents"}


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _calibration(observed: str = "observed.csv", **changes: object) -> dict:
    doc: dict = {
        "name": "recovery",
        "description": "Recover two known parameters of the outpost raid from its own output",
        "scenario": str(SCENARIO),
        "days": DAYS,
        "seed": 7,
        "parameters": [
            {"path": STRENGTH, "prior": {"uniform": [3, 15]}, "integer": True},
            {"path": SENSOR, "prior": {"uniform": [0.5, 5.0]}},
        ],
        "observed": {"file": observed, "use": "fit"},
        "outputs": [{"quantity": q, "model": col, "aggregate": "total"}
                    for q, col in OUTPUTS.items()],
        "budget": {"population": 24, "generations": 3, "replicates": 1, "ppc_runs": 20},
    }
    doc.update(changes)
    return doc


def _write(folder: Path, doc: dict, name: str = "calibration.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _synthetic_observed(path: Path, replicates: int = 16) -> None:
    """The model's own output at TRUE, averaged over replicates, as an observed CSV: totals
    over the run's days (a 3-day run from 2018-06-01 18:00 has days 2018-06-02..04)."""
    from sim.engine.run import run_scenario
    from sim.scenario.loading import load_scenario

    scenario = load_scenario(SCENARIO, overrides=list(TRUE.items()))
    sums = dict.fromkeys(OUTPUTS, 0.0)
    for r in range(replicates):
        daily = run_scenario(scenario.model_copy(deep=True), seed=90_000 + r, days=DAYS).daily
        for q, col in OUTPUTS.items():
            sums[q] += float(daily[col].sum())
    lines = ["quantity,period,value,bound,region,source,use,note"]
    lines += [f"{q},2018-06-02/2018-06-04,{v / replicates:.3f},approx,\"{THEATRE}\",synthetic,"
              f"fit,mean of {replicates} runs at the true values" for q, v in sums.items()]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def observed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("calibration")
    _synthetic_observed(folder / "observed.csv")
    return folder


def _one_error(path: Path) -> str:
    with pytest.raises(CalibrationError) as err:
        load_calibration(path)
    messages = err.value.messages
    assert len(messages) == 1, messages
    assert "\n" not in messages[0]
    return messages[0]


# --------------------------------------------------------------------------------------------
# (a) file errors: one line naming the file and the field
# --------------------------------------------------------------------------------------------


def test_example_file_loads() -> None:
    cal = load_calibration(DATA / "outpost.yaml")
    assert [p.path for p in cal.spec.parameters] == [STRENGTH, SENSOR]
    assert {t.quantity for t in cal.targets} == {"attacks_total", "pro_government_killed_total",
                                                  "attack_days"}
    assert all(t.days == (1, 2, 3, 4, 5, 6) for t in cal.targets)


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"budgett": {}}, "", "unknown key 'budgett' (did you mean 'budget'?)"),
    ({"budget": {"populaton": 10}}, "budget", "unknown key 'populaton' (did you mean "
                                              "'population'?)"),
    ({"parameters": [{"path": "units[kind=cell].strenght", "prior": {"uniform": [1, 2]}}]},
     "parameters[0].path", "unknown key 'strenght'"),
    ({"parameters": [{"path": "units[kind=tank].strength", "prior": {"uniform": [1, 2]}}]},
     "parameters[0].path", "no item of units has kind=tank"),
    ({"parameters": [{"path": STRENGTH, "prior": {"uniform": [5, 1]}}]},
     "parameters[0].prior", "uniform: lo (5) must be less than hi (1)"),
    ({"parameters": [{"path": STRENGTH, "prior": {"beta": [1, 2]}}]},
     "parameters[0].prior", "unknown key 'beta'"),
    ({"parameters": [{"path": STRENGTH, "prior": {"normal": [5, 0]}}]},
     "parameters[0].prior", "normal: the sd must be positive"),
    ({"parameters": [{"path": STRENGTH, "prior": {"uniform": [1, 2], "normal": [1, 1]}}]},
     "parameters[0].prior", "give exactly one of"),
    ({"parameters": [{"path": STRENGTH, "prior": {"uniform": [1.5, 4]}, "integer": True}]},
     "parameters[0]", "integer: true needs whole-number prior bounds"),
    ({"parameters": [{"path": STRENGTH, "prior": {"uniform": [3, 15]}}]},
     "parameters[0].prior", "is it a whole-number field (integer: true)?"),
    ({"budget": {"population": 50, "max_runs": 10}}, "budget", "leaves no room"),
    ({"observed": {"file": "nowhere.csv"}}, "observed.file", "file not found"),
    ({"outputs": [{"quantity": "attacks", "model": "attacks_attempted",
                   "aggregate": "monthly"}]}, "outputs[0].aggregate", "'month_sum'"),
    ({"outputs": [{"quantity": "attacks_total", "model": "attacks_attemptd",
                   "aggregate": "total"}]},
     "outputs[0].model", "no daily column 'attacks_attemptd'"),
    ({"outputs": [{"quantity": "atacks", "model": "attacks_attempted",
                   "aggregate": "total"}]},
     "outputs[0]", "no observed row of quantity 'atacks'"),
    ({"scenario": "no_such_scenario.yaml"}, "scenario", "file not found"),
])
def test_a_bad_file_is_one_line_naming_the_file_and_field(
        tmp_path: Path, change: dict, field: str, words: str) -> None:
    shutil.copy(DATA / "outpost_observed.csv", tmp_path / "observed.csv")
    doc = yaml.safe_load((DATA / "outpost.yaml").read_text())
    doc["scenario"] = str(SCENARIO)
    doc["observed"]["file"] = "observed.csv"
    doc.update(change)
    path = _write(tmp_path, doc)
    line = _one_error(path)
    assert line.startswith(f"{path}: {field}: " if field else f"{path}: "), line
    assert words in line, line


def test_a_bad_observed_row_names_the_csv_line_and_column(tmp_path: Path) -> None:
    text = (DATA / "outpost_observed.csv").read_text().splitlines()
    text[2] = text[2].replace(",approx,", ",minimum,")
    (tmp_path / "observed.csv").write_text("\n".join(text) + "\n")
    doc = yaml.safe_load((DATA / "outpost.yaml").read_text())
    doc["scenario"] = str(SCENARIO)
    doc["observed"]["file"] = "observed.csv"
    line = _one_error(_write(tmp_path, doc))
    assert line.startswith(f"{tmp_path / 'observed.csv'}: line 3: bound: "), line
    assert line.endswith("got 'minimum' (did you mean 'min'?)"), line


# --------------------------------------------------------------------------------------------
# Periods, regions, windows and the distance (no simulation)
# --------------------------------------------------------------------------------------------


def test_periods() -> None:
    assert parse_period("2020") == (date(2020, 1, 1), date(2020, 12, 31), "year")
    assert parse_period("2020-02") == (date(2020, 2, 1), date(2020, 2, 29), "month")
    assert parse_period("2020-01/2020-04") == (date(2020, 1, 1), date(2020, 4, 30), "month")
    assert parse_period("2020-12-01/2020-12-21")[1] == date(2020, 12, 21)
    for bad in ("2020-13", "20-01", "2020-04/2020-01", "2020/2020-03"):
        with pytest.raises(ValueError):
            parse_period(bad)


def test_the_bundled_observed_data_reads() -> None:
    path = REPO / "experiments" / "observed" / "central_syria_2020.csv"
    rows = read_observed(path, "central_syria_2020.csv")
    assert {r.use for r in rows} == {"fit", "context"}
    assert any(r.quantity == "attacks_per_month" and r.use == "fit" for r in rows)


def _spec_2020(outputs: list[dict]) -> CalibrationSpec:
    return CalibrationSpec.model_validate({
        "name": "c2020", "scenario": "x.yaml",
        "parameters": [{"path": STRENGTH, "prior": {"uniform": [1, 2]}}],
        "observed": {"file": "x.csv"}, "outputs": outputs})


def test_targets_from_the_2020_observed_data() -> None:
    """Read with the default (whole-theatre) regions over a 2020 run: ranges split by month,
    a count for four of five governorates becomes a floor, overlapping finer rows drop out,
    context rows stay out."""
    rows = read_observed(OBSERVED_2020, "central_syria_2020.csv")
    spec = _spec_2020([
        {"quantity": "attacks_per_month", "model": "attacks_attempted",
         "aggregate": "month_sum", "slack": 2.0},
        {"quantity": "attacks_total", "model": "attacks_attempted", "aggregate": "total"},
        {"quantity": "pro_government_killed_per_month", "model": "losses__government",
         "aggregate": "month_sum", "slack": 1.5},
    ])
    targets, notes, errors = build_targets(spec, rows, datetime(2020, 1, 1), 366)
    assert not errors
    by = {(t.quantity, t.period): t for t in targets}
    jan = by["attacks_per_month", "2020-01"]
    assert (jan.observed, jan.bound, jan.slack, len(jan.days)) == (18, "max", 2.0, 31)
    assert [p for q, p in by if q == "attacks_per_month"] == [
        "2020-01", "2020-02", "2020-03", "2020-04", "2020-05", "2020-07", "2020-08", "2020-09",
        "2020-12"]
    may = by["attacks_per_month", "2020-05"]   # Homs;DeZ;Raqqa;Hama: a floor, no ceiling
    assert (may.observed, may.bound, math.isinf(may.slack)) == (18, "min", True)
    aug = by["attacks_per_month", "2020-08"]   # the theatre row, not the governorates'
    assert (aug.observed, aug.bound, aug.slack) == (35, "min", 2.0)
    total = by["attacks_total", "2020"]
    assert (total.observed, total.bound, len(total.days)) == (286, "min", 366)
    assert by["pro_government_killed_per_month", "2020-08"].slack == 1.5
    assert ("pro_government_killed_per_month", "2020-12-01/2020-12-21") not in by  # context
    # each output weighs 1 in all
    for oi in range(3):
        assert math.isclose(sum(t.weight for t in targets if t.output == oi), 1.0)
    assert any("left out" in n for n in notes)


def test_regions_are_summed_when_an_output_names_them() -> None:
    rows = read_observed(OBSERVED_2020, "central_syria_2020.csv")
    spec = _spec_2020([{"quantity": "attacks_per_month", "model": "attacks_attempted",
                        "aggregate": "month_sum", "regions": ["Homs", "Deir ez-Zor"]}])
    targets, _, errors = build_targets(spec, rows, datetime(2020, 1, 1), 366)
    assert not errors
    by = {t.period: t for t in targets}
    assert (by["2020-08"].observed, by["2020-08"].bound) == (22, "approx")   # 12 + 10
    assert (by["2020-12"].observed, by["2020-12"].bound) == (13, "approx")   # 5 + 8
    assert by["2020-09"].bound == "min" and by["2020-09"].observed == 11     # DeZ only
    assert "2020-01" not in by     # the theatre-wide ceiling says nothing about two of five


def test_a_partly_covered_month_is_scaled_up_or_left_out() -> None:
    rows = read_observed(OBSERVED_2020, "central_syria_2020.csv")
    spec = _spec_2020([{"quantity": "attacks_per_month", "model": "attacks_attempted",
                        "aggregate": "month_sum"}])
    # 2020-08-11 00:00 for 30 days: day 1 is 2020-08-11; August 21 of 31 days, September 9/30
    targets, notes, _ = build_targets(spec, rows, datetime(2020, 8, 11), 30)
    assert [t.period for t in targets] == ["2020-08"]
    assert math.isclose(targets[0].scale, 31 / 21)
    assert any("under 50%" in n and "2020-09" in n for n in notes)


def test_bounded_loss() -> None:
    # a minimum: free from the floor up to slack x floor (on the +1 log scale)
    assert target_loss(10, 10, "min", 2.0) == 0.0
    assert target_loss(21, 10, "min", 2.0) == pytest.approx(0.0)
    assert target_loss(5, 10, "min", 2.0) == pytest.approx(math.log(11 / 6))
    assert target_loss(43, 10, "min", 2.0) == pytest.approx(math.log(44 / 11) - math.log(2))
    assert target_loss(1000, 10, "min", math.inf) == 0.0
    # a maximum: the mirror
    assert target_loss(15, 10, "max", 2.0) == pytest.approx(math.log(16 / 11))
    assert target_loss(6, 10, "max", 2.0) == 0.0
    # approx: symmetric in ratio
    assert target_loss(21, 10, "approx", 2.0) == pytest.approx(target_loss(4.5, 10, "approx", 2))
    d = BoundedDistance(("a", "b"), ("min", "approx"), (2.0, 2.0), (0.5, 1.5))
    assert d({"a": 5, "b": 10}, {"a": 10, "b": 10}) == pytest.approx(0.5 * math.log(11 / 6) / 2)


def test_inside_90_respects_the_bound() -> None:
    from sim.experiments.calibrate import inside_90

    assert inside_90(10, "min", 2.0, q05=12, q95=18)       # above the floor, within slack
    assert not inside_90(10, "min", 2.0, q05=25, q95=40)   # wholly above 2 x the floor
    assert not inside_90(10, "min", 2.0, q05=2, q95=8)     # never reaches the floor
    assert inside_90(10, "max", 2.0, q05=6, q95=9)
    assert not inside_90(10, "max", 2.0, q05=11, q95=20)
    assert inside_90(10, "approx", 2.0, q05=8, q95=12)
    assert not inside_90(10, "approx", 2.0, q05=11, q95=12)


# --------------------------------------------------------------------------------------------
# (b) recovery, (d) calibrated.yaml, (e) outputs
# --------------------------------------------------------------------------------------------


def test_b_recovers_known_parameters_and_writes_every_output(observed_dir: Path) -> None:
    from sim.analysis.calibration_report import calibrate
    from sim.engine.run import run_scenario
    from sim.scenario.loading import load_scenario
    from sim.scenario.overrides import resolve_path

    path = _write(observed_dir, _calibration())
    out = observed_dir / "recovery"
    run = calibrate(path, out, workers=2, progress=False)

    summary = pd.read_csv(out / "posterior_summary.csv").set_index("parameter")
    for p, truth in TRUE.items():
        lo, hi = summary.loc[p, "q05"], summary.loc[p, "q95"]
        assert lo <= truth <= hi, f"{p}: true {truth} outside the 90% interval {lo}..{hi}"
        assert summary.loc[p, "prior_low"] < summary.loc[p, "prior_high"]
    # and the data narrowed the strength (the sensor range is only weakly identified by
    # three days of counts: its interval may stay wide)
    assert summary.loc[STRENGTH, "q95"] - summary.loc[STRENGTH, "q05"] <= 0.75 * (15 - 3)
    assert set(summary.columns) >= {"mean", "median", "q05", "q50", "q95", "prior_low",
                                    "prior_high"}
    posterior = pd.read_csv(out / "posterior.csv")
    assert len(posterior) == 24 and math.isclose(posterior["weight"].sum(), 1.0)
    assert (posterior[STRENGTH] == posterior[STRENGTH].round()).all()

    # (d) calibrated.yaml extends the base scenario, loads with the medians, and runs
    scenario = load_scenario(out / "calibrated.yaml")
    for p, value in run.medians.items():
        assert {v for _, v in resolve_path(scenario, p)} == {value}
    assert "extends:" in (out / "calibrated.yaml").read_text()
    assert len(run_scenario(scenario, seed=1, days=1).daily) == 1

    # (e) the posterior-predictive table and the figures
    ppc = pd.read_csv(out / "ppc.csv")
    assert {"quantity", "period", "observed", "bound", "q05", "q25", "q50", "q75", "q95",
            "inside_90"} <= set(ppc.columns)
    assert len(ppc) == len(OUTPUTS) and ppc["inside_90"].dtype == bool
    assert (ppc["q05"] <= ppc["q25"]).all() and (ppc["q75"] <= ppc["q95"]).all()
    assert len(pd.read_csv(out / "ppc_runs.csv")) == 20
    for name in ("marginals", "pairs", "ppc"):
        png = out / "figures" / f"{name}.png"
        assert png.stat().st_size > 20_000, png
    report = (out / "report.md").read_text()
    for words in ("## Generations", "acceptance rate", "epsilon", "wall time",
                  "## Posterior-predictive check"):
        assert words in report
    pops = run.populations
    assert list(pops["t"]) == [-1, 0, 1, 2]
    assert (np.diff(pops["epsilon"].to_numpy()[1:]) < 0).all()


# --------------------------------------------------------------------------------------------
# (c) determinism: 1 worker, 2 workers, a Dask cluster, and a resumed run agree
# --------------------------------------------------------------------------------------------


def _small(folder: Path, generations: int = 2, **changes: object) -> Path:
    doc = _calibration(budget={"population": 12, "generations": generations, "replicates": 1,
                               "ppc_runs": 4}, **changes)
    return _write(folder, doc, f"small_{generations}_{changes.get('seed', 7)}.yaml")


def test_c_same_posterior_with_1_and_2_workers_a_dask_cluster_and_after_resume(
        observed_dir: Path) -> None:
    """1 worker (by the command line), 2 workers stopped after one generation and resumed to
    two, and a Dask cluster give byte-identical posteriors, checks and calibrated scenarios;
    another seed gives another posterior."""
    from distributed import LocalCluster

    from sim.cli import main
    from sim.experiments.calibrate import run_calibration

    small = _small(observed_dir)
    runs = observed_dir / "determinism"
    assert main(["calibrate", str(small), "--out", str(runs / "one"), "--workers", "1",
                 "--quiet"]) == 0
    first = run_calibration(_small(observed_dir, generations=1), runs / "two", workers=2,
                            progress=False)
    assert first.generations_now == 1
    resumed = run_calibration(small, runs / "two", workers=2, resume=True, progress=False)
    assert resumed.resumed and resumed.generations_now == 1
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as cluster:
        run_calibration(small, runs / "dask", scheduler=cluster.scheduler_address,
                        progress=False)
        other_seed = run_calibration(_small(observed_dir, generations=1, seed=8),
                                     runs / "seed8", scheduler=cluster.scheduler_address,
                                     progress=False)

    ref = (runs / "one" / "posterior.csv").read_text()
    assert len(ref.splitlines()) == 13
    for other in ("two", "dask"):
        assert (runs / other / "posterior.csv").read_text() == ref, other
        for name in ("ppc.csv", "posterior_summary.csv", "calibrated.yaml"):
            a = (runs / "one" / name).read_text().split("\n", 2)[-1]   # past the dated header
            assert (runs / other / name).read_text().split("\n", 2)[-1] == a, (other, name)
    one = pd.read_csv(runs / "one" / "posterior.csv")
    assert not np.allclose(other_seed.posterior[SENSOR].to_numpy(), one[SENSOR].to_numpy())


# --------------------------------------------------------------------------------------------
# Results folders and the command line
# --------------------------------------------------------------------------------------------


def test_an_existing_folder_needs_resume_and_resume_needs_the_same_file(
        observed_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim.cli import main

    small = _small(observed_dir, generations=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "abc.db").write_bytes(b"")
    assert main(["calibrate", str(small), "--out", str(out), "--quiet"]) == 1
    assert "use --resume" in capsys.readouterr().err
    assert main(["calibrate", str(small), "--out", str(tmp_path / "none"), "--resume"]) == 1
    assert "no abc.db to resume" in capsys.readouterr().err
    (out / "calibration.json").write_text('{"fingerprint": "another", "name": "x"}')
    assert main(["calibrate", str(small), "--out", str(out), "--resume", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "another file" in err and len(err.strip().splitlines()) == 1
    assert main(["calibrate", str(small), "--workers", "2", "--scheduler", "tcp://x:1"]) == 1


def test_cli_prints_file_errors_one_per_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from sim.cli import main

    path = _write(tmp_path, {"name": "x", "budgett": 1})
    assert main(["calibrate", str(path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith(f"{path}: ") for line in err) and len(err) >= 2


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "experiments")
                                        .glob("calibrate_*.yaml")), ids=lambda p: p.stem)
def test_bundled_calibration_files_load(path):
    from sim.experiments.calibration_data import load_calibration

    cal = load_calibration(path)
    assert cal.spec.parameters and cal.targets
