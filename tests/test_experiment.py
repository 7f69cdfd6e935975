"""Experiment files: validation messages, design expansion and run seeds."""

from __future__ import annotations

import argparse
import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from sim.errors import ExperimentError, ScenarioError
from sim.experiments.batch import EXIT_BAD_INPUT, run_batch_command
from sim.experiments.design import FactorSpec, expand_design, load_experiment, plan_runs, run_seed

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).parent / "data" / "bad_experiments"
BASE = ROOT / "scenarios" / "outpost_night_raid.yaml"
BAD_FILES = sorted(BAD.glob("*.yaml"))


def _expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path} must start with '# expect: <message>'"
    return first.removeprefix("# expect: ")


def _write(tmp_path: Path, body: str, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(f"name: t\nscenario: {BASE}\n" + body)
    return p


def test_bad_experiment_files_exist() -> None:
    # the acceptance list: unknown factor path, empty levels, negative replicates, range with
    # min > max, missing base scenario, unknown key
    names = {p.stem for p in BAD_FILES}
    assert {"unknown_factor_path", "empty_levels", "negative_replicates", "range_min_gt_max",
            "missing_scenario", "unknown_key"} <= names


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_experiment_gives_one_line_naming_file_and_field(path: Path) -> None:
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    messages = info.value.messages
    assert len(messages) == 1, messages
    line = messages[0]
    assert "\n" not in line
    assert line.startswith(f"{path}: "), line
    assert _expected(path) in line, line


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_experiment_through_the_cli_is_one_line_without_traceback(
        path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(experiment=path, out=tmp_path / "out", workers=1, scheduler=None,
                              force_new=False, quiet=True)
    assert run_batch_command(args) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert _expected(path) in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "out").exists(), "a bad experiment must not create a results folder"


def test_factor_in_set_and_factors_is_refused(tmp_path: Path) -> None:
    p = _write(tmp_path, "set: {'units[kind=patrol].count': 2}\n"
                         "factors:\n  units[kind=patrol].count: {levels: [1, 2]}\n")
    with pytest.raises(ExperimentError, match=r"set\.units\[kind=patrol\]\.count: also a factor"):
        load_experiment(p)


def test_set_value_that_breaks_the_base_scenario_names_the_field(tmp_path: Path) -> None:
    p = _write(tmp_path, "set: {'units[kind=patrol].strength': -3}\n")
    with pytest.raises(ScenarioError) as info:
        load_experiment(p)
    text = str(info.value)
    assert re.search(r"units\[\d+\]\.strength", text) and "-3" in text


def test_full_factorial_is_every_combination_once_last_factor_fastest(tmp_path: Path) -> None:
    p = _write(tmp_path, "factors:\n"
                         "  units[kind=patrol].tactic.schedule: {levels: [day, night, always]}\n"
                         "  units[kind=strongpoint].count: {range: {min: 1, max: 3}, "
                         "integer: true}\n"
                         "  map.cell_km: {levels: [0.25, 0.5]}\n"
                         "replicates: 2\n")
    exp = load_experiment(p)
    d = expand_design(exp)
    combos = [tuple(pt[f] for f in d.factors) for pt in d.points]
    assert combos == list(itertools.product(["day", "night", "always"], [1, 2, 3], [0.25, 0.5]))
    assert all(isinstance(pt["units[kind=strongpoint].count"], int) for pt in d.points)
    runs = list(plan_runs(d, exp.spec.replicates, exp.spec.seed))
    assert [r.run_id for r in runs] == list(range(18 * 2))
    assert [(r.point_id, r.replicate) for r in runs] == [(p, r) for p in range(18)
                                                         for r in range(2)]


def test_no_factors_is_one_point(tmp_path: Path) -> None:
    exp = load_experiment(_write(tmp_path, "replicates: 5\n"))
    d = expand_design(exp)
    assert d.points == ({},)
    assert len(list(plan_runs(d, 5, 0))) == 5


def test_latin_hypercube_puts_one_sample_in_each_stratum(tmp_path: Path) -> None:
    n = 20
    p = _write(tmp_path, "factors:\n"
                         "  units[kind=patrol].night_sensor_range_km: {range: {min: 1.0, "
                         "max: 5.0}}\n"
                         "  map.cell_km: {range: {min: 0.2, max: 0.3}}\n"
                         f"design: {{kind: latin_hypercube, samples: {n}}}\nseed: 4\n")
    d = expand_design(load_experiment(p))
    assert len(d.points) == n
    for f, (lo, hi) in zip(d.factors, [(1.0, 5.0), (0.2, 0.3)], strict=True):
        v = np.array([pt[f] for pt in d.points])
        assert np.all((v >= lo) & (v <= hi))
        strata = np.floor((v - lo) / (hi - lo) * n).astype(int)
        # the defining property of a Latin hypercube: each of n equal strata holds one sample
        assert sorted(strata) == list(range(n))
    again = expand_design(load_experiment(p))
    assert again.points == d.points
    other = expand_design(load_experiment(_write(
        tmp_path, p.read_text().split("\n", 2)[2].replace("seed: 4", "seed: 5"), "b.yaml")))
    assert other.points != d.points


def test_sobol_design_size_and_values(tmp_path: Path) -> None:
    body = ("factors:\n"
            "  units[kind=patrol].night_sensor_range_km: {range: {min: 1.0, max: 4.0}}\n"
            "  units[kind=patrol].tactic.period_hours: {levels: [6, 12, 24]}\n"
            "  units[kind=strongpoint].count: {range: {min: 1, max: 3}, integer: true}\n")
    d2 = expand_design(load_experiment(_write(
        tmp_path, body + "design: {kind: sobol, samples: 16}\n")))
    d1 = expand_design(load_experiment(_write(
        tmp_path, body + "design: {kind: sobol, samples: 16, calc_second_order: false}\n",
        "b.yaml")))
    assert len(d2.points) == 16 * (2 * 3 + 2)      # Saltelli: N (2D + 2)
    assert len(d1.points) == 16 * (3 + 2)          # N (D + 2) without second order
    assert d2.sobol is not None and d2.sobol["problem"]["num_vars"] == 3
    v = np.array([pt["units[kind=patrol].night_sensor_range_km"] for pt in d2.points])
    assert v.min() >= 1.0 and v.max() <= 4.0
    assert {pt["units[kind=patrol].tactic.period_hours"] for pt in d2.points} == {6, 12, 24}
    assert {pt["units[kind=strongpoint].count"] for pt in d2.points} == {1, 2, 3}


def test_unit_mapping_is_uniform_over_whole_numbers_and_levels() -> None:
    u = (np.arange(3000) + 0.5) / 3000
    ints = FactorSpec.model_validate({"range": {"min": 2, "max": 4}, "integer": True})
    counts = {k: ints.from_unit(u).count(k) for k in (2, 3, 4)}
    assert counts == {2: 1000, 3: 1000, 4: 1000}
    levels = FactorSpec.model_validate({"levels": ["a", "b"]})
    assert levels.from_unit(np.array([0.0, 0.49, 0.5, 1.0])) == ["a", "a", "b", "b"]
    cont = FactorSpec.model_validate({"range": {"min": -1.0, "max": 1.0}})
    assert cont.from_unit(np.array([0.0, 0.25, 1.0])) == [-1.0, -0.5, 1.0]


def test_run_seed_is_the_spawned_seed_sequence_and_depends_only_on_point_and_replicate() -> None:
    root = 2024
    children = np.random.SeedSequence(root).spawn(7)
    for p in (0, 3, 6):
        grandchildren = children[p].spawn(5)
        for r in (0, 4):
            want = int(grandchildren[r].generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
            assert run_seed(root, p, r) == want
    seeds = {run_seed(root, p, r) for p in range(200) for r in range(10)}
    assert len(seeds) == 2000
    assert all(0 <= s < 2**63 for s in seeds)
    assert run_seed(root, 1, 0) != run_seed(root + 1, 1, 0)


def test_seeds_of_a_point_do_not_change_with_the_replicate_count(tmp_path: Path) -> None:
    body = "factors:\n  units[kind=patrol].count: {levels: [1, 2]}\nseed: 9\n"
    e2 = load_experiment(_write(tmp_path, body + "replicates: 2\n"))
    e5 = load_experiment(_write(tmp_path, body + "replicates: 5\n", "b.yaml"))
    s2 = {(r.point_id, r.replicate): r.seed for r in plan_runs(expand_design(e2), 2, 9)}
    s5 = {(r.point_id, r.replicate): r.seed for r in plan_runs(expand_design(e5), 5, 9)}
    assert all(s5[k] == v for k, v in s2.items())


def test_too_many_runs_is_refused(tmp_path: Path) -> None:
    levels = list(range(1, 101))
    p = _write(tmp_path, "factors:\n"
                         f"  units[kind=patrol].count: {{levels: {levels}}}\n"
                         f"  units[kind=strongpoint].count: {{levels: {levels}}}\n"
                         "replicates: 101\n")
    with pytest.raises(ExperimentError, match=re.escape("1010000 runs, more than 1000000")):
        load_experiment(p)


#: Bundled experiment files (calibration files, ``calibrate_*.yaml``, have their own loader and
#: test in tests/test_calibrate.py).
BUNDLED = sorted(p for p in (ROOT / "experiments").glob("*.yaml")
                 if not p.stem.startswith("calibrate_"))


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_experiments_load(path: Path) -> None:
    exp = load_experiment(path)
    d = expand_design(exp)
    assert len(d.points) >= 1 and exp.spec.replicates >= 1


def test_nolh_design_is_a_listed_kind_and_needs_a_factor(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match=r"design\.kind: unknown design kind 'nolhs' "
                                              r"\(did you mean 'nolh'\?\) \(one of .*nolh\)"):
        load_experiment(_write(tmp_path, "design: {kind: nolhs}\n"))
    with pytest.raises(ExperimentError, match="factors: a nolh design needs at least one factor"):
        load_experiment(_write(tmp_path, "design: nolh\n", "b.yaml"))


def test_nolh_design_points_and_runs(tmp_path: Path) -> None:
    p = _write(tmp_path, "factors:\n"
                         "  units[kind=patrol].night_sensor_range_km: {range: {min: 1.0, "
                         "max: 4.0}}\n"
                         "  units[kind=patrol].tactic.period_hours: {levels: [6, 12, 24]}\n"
                         "design: {kind: nolh, stack: 2}\nreplicates: 2\n")
    exp = load_experiment(p)
    d = expand_design(exp)
    assert d.kind == "nolh" and len(d.points) == 2 * 16 + 1
    v = sorted({pt["units[kind=patrol].night_sensor_range_km"] for pt in d.points})
    assert v[0] == 1.0 and v[-1] == 4.0 and len(v) == 17
    runs = list(plan_runs(d, exp.spec.replicates, exp.spec.seed))
    assert [r.run_id for r in runs] == list(range(33 * 2))
