"""Nearly orthogonal Latin hypercubes: the published Cioppa-Lucas tables, stacking, scaling, and
`design: nolh` in experiment files."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import pytest

from sim.errors import ExperimentError
from sim.experiments import nolh
from sim.experiments.design import expand_design, load_experiment, plan_runs
from sim.experiments.nolh_tables import FULL_SHA256, HALF_DESIGNS

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "scenarios" / "outpost_night_raid.yaml"

# SHA-256 of each full table (all 2k + 1 rows) as listed in the source, `nolh_designs.rb` of
# Sanchez's data-farming scripts: one row per line, numbers separated by one space.
PUBLISHED_SHA256 = {
    17: "b4dd0826fe1a70fa11f007725fa7698c733c417d132d72e13a2449edb02a957e",
    33: "f6bce84d17fa3b211826b4d14ccae1b224be9a0d8b953bb2073b77333b75bd5d",
    65: "8e084d720df578c0c9a101cb0d55e7b28b8b12677e91f4a471e6b6821c5392f7",
    129: "f4ccb33eb9af6101f89aa8069e40fb94d7afbeccd88b81a185caf5c66c870fb2",
}

# (factors, runs, max |r| measured on the published table). Cioppa and Lucas's bound for
# "nearly orthogonal" is 0.03; the 17-run design is exactly orthogonal.
SIZES = [(7, 17, 0.0), (11, 33, 0.0233957), (16, 65, 0.0219406), (22, 129, 0.0074016)]


def _sha(design: np.ndarray) -> str:
    text = "".join(" ".join(str(int(v)) for v in row) + "\n" for row in design)
    return hashlib.sha256(text.encode()).hexdigest()


def _write(tmp_path: Path, body: str, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(f"name: t\nscenario: {BASE}\n" + body)
    return p


# ---- the tables --------------------------------------------------------------------------


@pytest.mark.parametrize("runs", sorted(PUBLISHED_SHA256))
def test_fold_over_rebuilds_the_published_table_digit_for_digit(runs: int) -> None:
    assert FULL_SHA256[runs] == PUBLISHED_SHA256[runs]
    full = nolh.table(runs)
    assert full.shape[0] == runs == 2 * len(HALF_DESIGNS[runs]) + 1
    assert _sha(full) == PUBLISHED_SHA256[runs]
    k = (runs - 1) // 2
    assert np.all(full[k] == (runs + 1) // 2)                 # the centre row
    assert np.array_equal(full[k + 1:], (runs + 1) - full[:k])  # x -> (m + 1) - x


@pytest.mark.parametrize(("n_factors", "runs", "measured"), SIZES)
def test_size_and_near_orthogonality(n_factors: int, runs: int, measured: float) -> None:
    d = nolh.nolh(n_factors)
    assert d.shape == (runs, n_factors)
    r = nolh.max_abs_correlation(d)
    assert r <= 0.03
    assert r == pytest.approx(measured, abs=1e-6)
    z = (d - d.mean(0)) / d.std(0)
    assert np.linalg.cond(z.T @ z) <= 1.13       # Cioppa and Lucas's other criterion


@pytest.mark.parametrize("n_factors", range(1, nolh.MAX_FACTORS + 1))
def test_every_column_is_a_permutation_of_the_levels(n_factors: int) -> None:
    d = nolh.nolh(n_factors)
    runs = nolh.table_runs(n_factors)
    assert runs == min(r for r in nolh.TABLE_RUNS if nolh.columns(r) >= n_factors)
    for j in range(n_factors):
        assert sorted(d[:, j]) == list(range(1, runs + 1))
    assert nolh.max_abs_correlation(d) <= 0.03


@pytest.mark.parametrize("runs", nolh.TABLE_RUNS)
def test_columns_are_orthogonal_to_squares_and_interactions(runs: int) -> None:
    # a consequence of the fold-over [T; 0; -T]
    c = nolh.table(runs) - (runs + 1) / 2
    for a, b in itertools.product(range(c.shape[1]), repeat=2):
        assert c[:, a] @ (c[:, b] ** 2) == 0
    for a, b, e in itertools.combinations(range(c.shape[1]), 3):
        assert c[:, a] @ (c[:, b] * c[:, e]) == 0


def test_17_run_table_is_cioppas_construction_from_his_permutation() -> None:
    """Independent check of the 17-run table: Ye's (1998) construction as extended by Cioppa
    (columns e, A_k e and A_i A_j e with their sign vectors, then folded over) from Cioppa's
    permutation e = (1, 2, 8, 4, 5, 6, 7, 3), the one the pynolh package lists for 7 factors."""
    e = np.array([1, 2, 8, 4, 5, 6, 7, 3])
    q = len(e)                                  # 2^(m-1), m = 4
    i2, r2 = np.eye(2, dtype=int), np.array([[0, 1], [1, 0]])

    def a(k: int) -> np.ndarray:                # A_k = I x ... x I x R x ... x R (k R's)
        out = np.ones((1, 1), dtype=int)
        for j in range(1, 4):
            out = np.kron(out, i2 if j < 4 - k else r2)
        return out

    def sign(k: int) -> np.ndarray:             # +-1 in blocks of 2^(k-1) rows, starting with -1
        return np.array([-1 if (row // 2 ** (k - 1)) % 2 == 0 else 1 for row in range(q)])

    cols = [e] + [sign(k) * (a(k) @ e) for k in (1, 2, 3)]
    for i, j in itertools.combinations((1, 2, 3), 2):
        cols.append(sign(i) * sign(j) * (a(i) @ a(j) @ e))
    t = np.column_stack(cols)
    built = np.vstack([t, np.zeros((1, t.shape[1]), dtype=int), -t]) + (q + 1)
    published = nolh.table(17)
    assert nolh.max_abs_correlation(built) == 0.0
    as_columns = sorted(map(tuple, built.T))
    assert as_columns == sorted(map(tuple, published.T))


# ---- stacking, columns, scaling ----------------------------------------------------------


@pytest.mark.parametrize(("n_factors", "runs", "measured"), SIZES)
@pytest.mark.parametrize("stack", [2, 3])
def test_stacking(n_factors: int, runs: int, measured: float, stack: int) -> None:
    base = nolh.nolh(n_factors)
    d = nolh.nolh(n_factors, stack=stack)
    # stack copies, the shared centre row once: stack * (m - 1) + 1 rows
    assert d.shape == (stack * (runs - 1) + 1, n_factors) == (
        nolh.stacked_runs(runs, stack), n_factors)
    assert np.array_equal(d[:runs], base)
    k = (runs - 1) // 2
    second = np.delete(np.roll(nolh.table(runs), -1, axis=1), k, axis=0)[:, :n_factors]
    assert np.array_equal(d[runs:2 * runs - 1], second)    # copy 1: rows rotated left by one
    centre = (runs + 1) // 2
    for j in range(n_factors):
        counts = np.bincount(d[:, j], minlength=runs + 1)[1:]
        assert counts[centre - 1] == 1
        assert np.all(np.delete(counts, centre - 1) == stack)
    assert nolh.max_abs_correlation(d) <= max(measured, 1e-12)
    assert len({tuple(row) for row in d}) == len(d)        # no run repeated


def test_all_rotations_are_allowed_and_no_more() -> None:
    assert nolh.nolh(7, stack=7).shape == (7 * 16 + 1, 7)
    with pytest.raises(ValueError, match=r"stack must be 1\.\.7"):
        nolh.nolh(7, stack=8)
    with pytest.raises(ValueError, match="stack must be"):
        nolh.nolh(3, stack=0)


def test_conf_chooses_the_columns() -> None:
    full = nolh.table(33)
    d = nolh.nolh(3, conf=[10, 0, 4], runs=33)
    assert np.array_equal(d, full[:, [10, 0, 4]])
    d2 = nolh.nolh(3, stack=2, conf=[10, 0, 4], runs=33)
    assert np.array_equal(d2[33:, 0], np.delete(full[:, 0], 16))   # (10 + 1) mod 11 = 0
    assert np.array_equal(nolh.nolh(2, conf=[6, 5]), nolh.table(17)[:, [6, 5]])
    for bad, msg in (([0, 1], "2 column"), ([0, 0, 1], "twice"), ([0, 1, 11], "column 11")):
        with pytest.raises(ValueError, match=msg):
            nolh.nolh(3, conf=bad, runs=33)
    with pytest.raises(ValueError, match="runs must be one of 33, 65, 129 for 8 factor"):
        nolh.nolh(8, runs=17)


def test_more_than_22_factors_or_none_is_refused() -> None:
    with pytest.raises(ValueError, match="23 factors, more than the 22"):
        nolh.nolh(23)
    with pytest.raises(ValueError, match="at least one factor"):
        nolh.nolh(0)
    with pytest.raises(ValueError, match="no published NOLH of 257 runs"):
        nolh.table(257)


def test_scale_and_unit() -> None:
    x = np.arange(1, 18)
    v = nolh.scale(x, 17, 0.2, 0.3)
    assert v[0] == 0.2 and v[-1] == 0.3 and v[8] == pytest.approx(0.25)
    assert np.all(np.diff(v) > 0)
    u = nolh.to_unit(x, 17)
    assert u[0] == 0.0 and u[-1] == 1.0 and u[8] == 0.5
    s = nolh.to_unit(x, 17, strata=True)
    assert np.array_equal(np.floor(s * 17), x - 1)         # one level per stratum
    assert np.allclose(s + s[::-1], 1.0)                   # the fold-over is kept


# ---- experiment files --------------------------------------------------------------------

FACTORS = ("factors:\n"
           "  units[kind=patrol].night_sensor_range_km: {range: {min: 1.0, max: 5.0}}\n"
           "  map.cell_km: {range: {min: 0.2, max: 0.3}}\n"
           "  units[kind=strongpoint].count: {range: {min: 1, max: 3}, integer: true}\n"
           "  units[kind=patrol].tactic.schedule: {levels: [day, night]}\n"
           "  units[kind=patrol].tactic.period_hours: {levels: [6, 12, 24]}\n")


def test_experiment_with_design_nolh_loads_and_spans_each_range(tmp_path: Path) -> None:
    exp = load_experiment(_write(tmp_path, FACTORS + "design: nolh\nreplicates: 3\n"))
    d = expand_design(exp)
    assert d.kind == "nolh" and len(d.points) == 17
    for f, (lo, hi) in (("units[kind=patrol].night_sensor_range_km", (1.0, 5.0)),
                        ("map.cell_km", (0.2, 0.3))):
        v = np.array([pt[f] for pt in d.points])
        assert v.min() == lo and v.max() == hi              # level 1 is min, level 17 is max
        assert len(set(v)) == 17                             # 17 equally spaced values
        assert np.allclose(np.sort(v), np.linspace(lo, hi, 17))
    counts = {k: [pt["units[kind=strongpoint].count"] for pt in d.points].count(k)
              for k in (1, 2, 3)}
    assert counts == {1: 6, 2: 5, 3: 6}                      # 17 / 3, rounded
    assert all(isinstance(pt["units[kind=strongpoint].count"], int) for pt in d.points)
    sched = [pt["units[kind=patrol].tactic.schedule"] for pt in d.points]
    assert {sched.count("day"), sched.count("night")} == {8, 9}
    assert {pt["units[kind=patrol].tactic.period_hours"] for pt in d.points} == {6, 12, 24}
    # the continuous factors keep the table's correlation (both are linear in the levels)
    cont = np.array([[pt[f] for f in d.factors[:2]] for pt in d.points])
    assert nolh.max_abs_correlation(cont) <= 0.03
    assert len(list(plan_runs(d, 3, exp.spec.seed))) == 17 * 3
    assert expand_design(load_experiment(_write(tmp_path, FACTORS + "design: nolh\n",
                                                "b.yaml"))).points == d.points


def test_experiment_with_stacked_nolh(tmp_path: Path) -> None:
    exp = load_experiment(_write(tmp_path, FACTORS + "design: {kind: nolh, stack: 3}\n"))
    d = expand_design(exp)
    assert len(d.points) == 3 * 16 + 1
    cont = np.array([[pt[f] for f in d.factors[:2]] for pt in d.points])
    assert nolh.max_abs_correlation(cont) <= 0.03
    assert cont[:, 0].min() == 1.0 and cont[:, 0].max() == 5.0


# 23 factor paths that exist in the outpost night raid scenario
PATHS_23 = [f"units[{i}].strength" for i in range(4)] + [
    "units[0].night_sensor_range_km", "units[1].vehicles", "units[1].speed_kmh",
    "units[1].tactic.period_hours", "units[2].count", "map.cell_km",
    "factions.government.comms_delay_hours", "factions.insurgents.comms_delay_hours"] + [
    f"units[{i}].{k}" for i in (2, 3) for k in (
        "vehicles", "offroad_speed_kmh", "weapon_range_km", "kill_rate_per_hour",
        "breakoff_loss_fraction")] + ["units[2].tactic.max_distance_km"]


def _factor_lines(paths: list[str]) -> str:
    def levels(p: str) -> str:  # a fraction stays a fraction
        return "[0.2, 0.4]" if p.endswith("fraction") else "[1, 2]"

    return "factors:\n" + "".join(f"  {p}: {{levels: {levels(p)}}}\n" for p in paths)


def test_22_factors_take_the_129_run_table(tmp_path: Path) -> None:
    assert len(PATHS_23) == len(set(PATHS_23)) == 23
    d = expand_design(load_experiment(_write(tmp_path, _factor_lines(PATHS_23[:22])
                                             + "design: nolh\n")))
    assert len(d.points) == 129 and len(d.factors) == 22


def test_more_than_22_factors_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    p = _write(tmp_path, _factor_lines(PATHS_23) + "design: nolh\n")
    with pytest.raises(ExperimentError) as info:
        load_experiment(p)
    messages = info.value.messages
    assert len(messages) == 1 and "\n" not in messages[0]
    assert messages[0].startswith(f"{p}: factors: 23 factors, more than the 22"), messages[0]


def test_stack_beyond_the_rotations_is_refused(tmp_path: Path) -> None:
    p = _write(tmp_path, FACTORS + "design: {kind: nolh, stack: 8}\n")
    with pytest.raises(ExperimentError, match=r"exp\.yaml: design\.stack: at most 7"):
        load_experiment(p)
    p = _write(tmp_path, FACTORS + "design: {kind: nolh, stack: 0}\n", "b.yaml")
    with pytest.raises(ExperimentError, match=r"b\.yaml: design\.stack: .*greater than or equal"):
        load_experiment(p)


def test_nolh_design_keys_are_checked(tmp_path: Path) -> None:
    p = _write(tmp_path, FACTORS + "design: {kind: nolh, stak: 2}\n")
    with pytest.raises(ExperimentError, match=r"design: unknown key 'stak'.*did you mean 'stack'"):
        load_experiment(p)
    p = _write(tmp_path, FACTORS + "design: nolhh\n", "b.yaml")
    with pytest.raises(ExperimentError, match=r"unknown design kind 'nolhh'.*did you mean 'nolh'"):
        load_experiment(p)
