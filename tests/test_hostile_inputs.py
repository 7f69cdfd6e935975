"""Hostile and careless inputs: alias bombs, deep nesting, impossible dates, absurd magnitudes,
duplicate keys, booleans for numbers, bad `--days`, in scenario, experiment and calibration files
and `--set` values. Each fails fast, in bounded memory, with one line naming the file and the
field (exit status 1 from the command line, no traceback). And the package installs without
make: a plain `pip install .` into a fresh virtualenv finds its bundled scenarios and caches
terrains in the user's cache folder."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
import tracemalloc
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from sim.errors import CalibrationError, ExperimentError, ScenarioError
from sim.experiments.calibration_data import load_calibration
from sim.experiments.design import MAX_LEVELS, load_experiment
from sim.scenario import fields
from sim.scenario.loading import EXPERIMENT_DIR, SCENARIO_DIR, load_scenario, scenario_path
from sim.scenario.map import MAX_ASCII_CELLS
from sim.scenario.safe_yaml import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    PyBadiaLoader,
    parse_yaml,
    read_yaml_file,
)
from sim.scenario.schema import MAX_STRENGTH, MAX_UNITS, Scenario

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "scenarios" / "outpost_night_raid.yaml"
#: A bomb must be refused this fast (seconds) and in this much memory (bytes, Python heap).
FAST_S = 2.0
SMALL_HEAP = 4 * 2**20
#: Address space for a `badia` subprocess fed a bomb: enough for its imports (numpy, pandas,
#: dask), far from what an expanded bomb needs.
CHILD_ADDRESS_SPACE = 1 << 30

BADIA = Path(sys.executable).with_name("badia")
CLI = [str(BADIA)] if BADIA.exists() else [sys.executable, "-m", "sim.cli"]

# CI draws the same examples every time (a red CI must be reproducible); local runs explore
HOSTILE = settings(max_examples=int(os.environ.get("BADIA_HOSTILE_EXAMPLES", "60")),
                   deadline=None, derandomize=bool(os.environ.get("CI")),
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                          HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def laughs(levels: int = 9, fanout: int = 10, prefix: str = "  - ") -> str:
    """A billion-laughs bomb as block list items `&a0 [lol, ...]`, `&a1 [*a0, ...]`, ...:
    fanout ** levels values once expanded."""
    lines = [f"{prefix}&a0 [" + ", ".join(["lol"] * fanout) + "]"]
    lines += [f"{prefix}&a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]"
              for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str, name: str = "hostile.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def scenario(tmp_path: Path, body: str, name: str = "hostile.yaml") -> Path:
    """A scenario that extends the outpost raid with `body`."""
    return write(tmp_path, f"extends: {BASE}\n{body}", name)


def one_line_error(exc: ScenarioError, source: Path | str, *needles: str) -> str:
    """The single message of `exc`, checked to be one line naming `source` and `needles`."""
    assert len(exc.messages) == 1, exc.messages
    line = exc.messages[0]
    assert "\n" not in line and line.startswith(f"{source}: "), line
    assert "internal error" not in line and "Traceback" not in line, line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def refused(load: Any, path: Path, error: type[ScenarioError], *needles: str) -> tuple[str, float,
                                                                                      int]:
    """Load `path` expecting `error`; return (its one line, seconds, peak Python heap bytes)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(error) as info:
            load(path)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return one_line_error(info.value, path, *needles), seconds, peak


def limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_ADDRESS_SPACE, CHILD_ADDRESS_SPACE))


def badia(*args: str | Path, cwd: Path | None = None, memory_limit: bool = False,
          timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout,
                          preexec_fn=limit_address_space if memory_limit else None)


def cli_refuses(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit status 1, one line on stderr holding `needles`, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --------------------------------------------------------------------------------------------
# alias bombs: scenario, experiment, calibration, --set; refused in milliseconds, small memory
# --------------------------------------------------------------------------------------------


def test_alias_bomb_in_units_is_refused_fast_in_small_memory(tmp_path: Path) -> None:
    p = scenario(tmp_path, "units:\n" + laughs())
    line, seconds, peak = refused(load_scenario, p, ScenarioError, "units[",
                                  f"more than {MAX_NODES:,} values with aliases expanded")
    assert seconds < FAST_S and peak < SMALL_HEAP, (seconds, peak, line)


def test_alias_bomb_in_an_experiment_is_refused_fast_in_small_memory(tmp_path: Path) -> None:
    bomb = "".join(f"  x{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i else "lol"] * 10) + "]\n"
                   for i in range(9))
    p = write(tmp_path, f"name: bomb\nscenario: {BASE}\nset:\n{bomb}")
    line, seconds, peak = refused(load_experiment, p, ExperimentError, "set.x",
                                  "aliases expanded")
    assert seconds < FAST_S and peak < SMALL_HEAP, (seconds, peak, line)


def test_alias_bomb_in_a_calibration_file_is_refused_fast_in_small_memory(tmp_path: Path
                                                                          ) -> None:
    p = write(tmp_path, f"name: bomb\nscenario: {BASE}\nparameters:\n" + laughs())
    line, seconds, peak = refused(load_calibration, p, CalibrationError, "parameters[",
                                  "aliases expanded")
    assert seconds < FAST_S and peak < SMALL_HEAP, (seconds, peak, line)


def test_alias_bomb_in_a_set_value_is_refused(tmp_path: Path) -> None:
    bomb = "[" + ", ".join(f"&b{i} [" + ", ".join([f"*b{i - 1}" if i else "x"] * 12) + "]"
                           for i in range(8)) + "]"
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASE, overrides=[f"units[0].name={bomb}"])
    assert time.perf_counter() - t0 < FAST_S
    one_line_error(info.value, BASE, "units[0].name: bad override", "aliases expanded")


def test_many_small_aliases_and_recursive_aliases_are_refused() -> None:
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(ScenarioError, match=f"more than {MAX_ALIASES} aliases"):
        parse_yaml(many, "f.yaml")
    with pytest.raises(ScenarioError, match=r"f.yaml: a\[1\]: line 1, .*recursive"):
        parse_yaml("a: &x [1, *x]\n", "f.yaml")
    # a few aliases, and merge keys overridden as YAML intends, are fine
    assert parse_yaml("base: &b {x: 1, y: 2}\nc: {<<: *b, y: 3}\nd: [*b, *b]\n", "f") == {
        "base": {"x": 1, "y": 2}, "c": {"x": 1, "y": 3}, "d": [{"x": 1, "y": 2}] * 2}


@pytest.mark.parametrize(("command", "text"), [
    ("validate", f"extends: {BASE}\nunits:\n" + laughs()),
    ("run", f"extends: {BASE}\nunits:\n" + laughs()),
    ("batch", f"name: bomb\nscenario: {BASE}\nfactors:\n  days:\n    levels:\n"
     + laughs(prefix="      - ")),
    ("calibrate", f"name: bomb\nscenario: {BASE}\nparameters:\n" + laughs()),
])
def test_cli_refuses_a_bomb_in_bounded_memory(tmp_path: Path, command: str, text: str) -> None:
    p = write(tmp_path, text)
    extra = ["--out", tmp_path / "out"] if command in ("run", "batch", "calibrate") else []
    t0 = time.perf_counter()
    result = badia(command, p, *extra, cwd=tmp_path, memory_limit=True)
    cli_refuses(result, str(p), "aliases expanded")
    assert time.perf_counter() - t0 < 60   # process start-up included; the refusal is ms
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# depth, size, duplicate keys, integers, dates
# --------------------------------------------------------------------------------------------


#: What a refusal of deep nesting says: this loader's limit, or libyaml's own (1,000 levels),
#: which its scanner can meet first when it reads ahead through thousands of `[`.
DEEP_MESSAGE = (f"nested more than {MAX_DEPTH} levels deep", "exceeded maximum nesting depth")


@pytest.mark.parametrize("nest", [" " + "[" * 5000 + "]" * 5000, " " + "[" * 500 + "]" * 500,
                                  " " + "{a: " * 3000 + "1" + "}" * 3000,
                                  "\n" + "- " * 2000 + "1"])
def test_deep_nesting_is_one_line(tmp_path: Path, nest: str) -> None:
    p = scenario(tmp_path, f"units:{nest}\n")
    line, seconds, _ = refused(load_scenario, p, ScenarioError)
    assert any(m in line for m in DEEP_MESSAGE) and seconds < FAST_S, line


def test_deep_nesting_from_the_command_line(tmp_path: Path) -> None:
    for n in (200, 4000):
        p = scenario(tmp_path, "units: " + "[" * n + "]" * n + "\n", f"deep{n}.yaml")
        for result in (badia("validate", p),
                       badia("run", p, "--out", tmp_path / "out", "--quiet")):
            assert any(m in cli_refuses(result, str(p)) for m in DEEP_MESSAGE)


def test_a_file_too_large_is_refused_before_it_is_read(tmp_path: Path) -> None:
    p = tmp_path / "huge.yaml"
    with p.open("wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)     # sparse: nothing to read, size says it all
    with pytest.raises(ScenarioError) as info:
        read_yaml_file(p, what="scenario file")
    one_line_error(info.value, p, "more than the 5 MB limit")
    with pytest.raises(ScenarioError, match="characters, more than the 5 MB"):
        parse_yaml("x" * (MAX_FILE_BYTES + 1), "--set value")
    if Path("/dev/zero").exists():      # a device says size 0: the read itself stops
        with pytest.raises(ScenarioError, match="/dev/zero: the scenario file is more than"):
            read_yaml_file("/dev/zero", what="scenario file")


def test_duplicate_key_names_the_key_and_both_lines(tmp_path: Path) -> None:
    p = scenario(tmp_path, "units:\n  - name: a\n    faction: government\n    kind: patrol\n"
                           "    at: T3 outpost\n    strength: 5\n    strength: 50\n")
    refused(load_scenario, p, ScenarioError, "units[0]: line 8, column 5: duplicate key "
                                             "'strength' (first at line 7)")
    p2 = scenario(tmp_path, "seed: 1\nseed: 2\n", "top.yaml")
    refused(load_scenario, p2, ScenarioError, "line 3, column 1: duplicate key 'seed' "
                                              "(first at line 2)")
    e = write(tmp_path, f"name: a\nscenario: {BASE}\nreplicates: 2\nreplicates: 3\n", "e.yaml")
    refused(load_experiment, e, ExperimentError, "duplicate key 'replicates' (first at line 3)")


def test_integer_literals_cannot_overflow_or_stall() -> None:
    with pytest.raises(ScenarioError, match="integer with 5,000 characters"):
        parse_yaml("seed: " + "9" * 5000, "f.yaml")
    with pytest.raises(ScenarioError, match="integer with"):
        parse_yaml("seed: " + ":".join(["59"] * 2000), "f.yaml")   # YAML 1.1 base 60


@pytest.mark.parametrize(("start", "needle"), [
    ("2018-02-30", "start: day is out of range for month"),
    ("2018-13-01", "start: month must be in 1..12"),
    ("2018-06-31 18:00:00", "start: day is out of range for month"),
    ("2019-02-29T18:00", "start: day is out of range for month"),
])
def test_impossible_dates_are_one_line(tmp_path: Path, start: str, needle: str) -> None:
    p = scenario(tmp_path, f"start: {start}\n")
    refused(load_scenario, p, ScenarioError, needle, start.split()[0])
    result = badia("run", p, "--days", "1", "--out", tmp_path / "out", "--quiet")
    cli_refuses(result, needle)


def test_real_dates_still_load(tmp_path: Path) -> None:
    assert load_scenario(scenario(tmp_path, "start: 2020-02-29\n")).start.day == 29
    s = load_scenario(scenario(tmp_path, "start: 2018-06-01 18:00:00\n", "b.yaml"))
    assert (s.start.month, s.start.hour) == (6, 18)


def test_impossible_date_in_a_set_value_is_one_line() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASE, overrides=["start=2018-02-30"])
    one_line_error(info.value, BASE, "start: day is out of range for month", "--set")


# --------------------------------------------------------------------------------------------
# magnitudes and booleans
# --------------------------------------------------------------------------------------------

UNIT = "faction: government, kind: patrol, at: T3 outpost"


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("count", "10000000", f"units[0].count: 10,000,000 units is more than the limit of "
                          f"{MAX_UNITS:,} units"),
    ("strength", "1e30", f"units[0].strength: 1e+30 fighters is more than the limit of "
                         f"{MAX_STRENGTH:,} fighters"),
    ("strength", "1.0e30", "units[0].strength: 1e+30 fighters"),
    ("strength", "99999999999999999999", "units[0].strength: 1e+20 fighters"),
    ("vehicles", "5000", "units[0].vehicles: 5,000 vehicles is more than the limit of 2,000"),
    ("speed_kmh", "1e9", "units[0].speed_kmh: 1,000,000,000 km/h is more than the limit of "
                         "200 km/h"),
    ("offroad_speed_kmh", "201", "units[0].offroad_speed_kmh: 201 km/h"),
    ("sensor_range_km", "1000", "units[0].sensor_range_km: 1,000 km is more than the limit of "
                                "100 km"),
    ("weapon_range_km", ".inf", "units[0].weapon_range_km: inf km"),
    ("kill_rate_per_hour", "1e5", "kills per shooter per hour"),
    ("water_days", "1e10", "units[0].water_days: 1e+10 days is more than the limit of 3,660"),
    ("strength", "true", "units[0].strength: expected a number, got true"),
    ("count", "false", "units[0].count: expected a number, got false"),
    ("speed_kmh", "true", "units[0].speed_kmh: expected a number, got true"),
])
def test_absurd_unit_numbers_are_one_line_with_their_unit(tmp_path: Path, field: str,
                                                          value: str, needle: str) -> None:
    p = scenario(tmp_path, f"units:\n  - {{{UNIT}, {field}: {value}}}\n")
    refused(load_scenario, p, ScenarioError, needle)


@pytest.mark.parametrize(("body", "needle"), [
    (f"units:\n  - {{{UNIT}, count: 15000}}\n  - {{{UNIT}, count: 15000}}\n",
     f"units: 30,000 units in all (counting each count), more than the {MAX_UNITS:,}"),
    ("days: 1e9\n", "days: 1,000,000,000 days is more than the limit of 3,660 days"),
    ("days: true\n", "days: expected a number, got true"),
    ("seed: true\n", "seed: expected a number, got true"),
    ("seed: 99999999999999999999999\n", "seed: 1e+23 does not fit a 64-bit integer"),
    ("events: [{day: 1e6, set: {days: 2}}]\n", "events[0].day: 1,000,000 days"),
    ("map: {texture: {seed: true}}\n", "map.texture.seed: expected a number, got true"),
])
def test_absurd_scenario_numbers_are_one_line(tmp_path: Path, body: str, needle: str) -> None:
    refused(load_scenario, scenario(tmp_path, body), ScenarioError, needle)


def test_a_huge_ascii_map_is_refused_at_validation(tmp_path: Path) -> None:
    rows = 1001
    grid = "\n".join("    " + "." * 1000 for _ in range(rows))
    p = scenario(tmp_path, f"map:\n  ascii: |\n{grid}\n")
    line, seconds, _ = refused(load_scenario, p, ScenarioError, "map.ascii: the ascii map has "
                               f"1,001,000 cells ({rows:,} rows); the limit is "
                               f"{MAX_ASCII_CELLS:,}")
    assert seconds < 10, line


def test_an_ascii_map_spanning_the_globe_is_refused(tmp_path: Path) -> None:
    refused(load_scenario, scenario(tmp_path, "map: {cell_km: 1000}\n"), ScenarioError,
            "map.cell_km: the ascii map spans about")


def test_absurd_numbers_in_set_values_are_one_line() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASE, overrides=["units[0].strength=1e30"])
    one_line_error(info.value, BASE, "units[0].strength: 1e+30 fighters", "--set")
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASE, overrides=["units[0].strength=true"])
    one_line_error(info.value, BASE, "expected a number, got true")


def test_experiment_factor_values_are_checked_against_the_limits(tmp_path: Path) -> None:
    p = write(tmp_path, f"name: e\nscenario: {BASE}\nfactors:\n"
                        "  units[kind=patrol].count: {range: {min: 1, max: 1e7}, "
                        "integer: true}\n  units[kind=patrol].speed_kmh: {levels: [50, 900]}\n"
                        "design: {kind: latin_hypercube, samples: 8}\n")
    with pytest.raises(ExperimentError) as info:
        load_experiment(p)
    lines = info.value.messages
    assert lines == [
        f"{p}: factors.units[kind=patrol].count.range.max: 10,000,000 units is more than the "
        f"limit of {MAX_UNITS:,} units (the most a scenario may have)",
        f"{p}: factors.units[kind=patrol].speed_kmh.levels[1]: 900 km/h is more than the limit "
        "of 200 km/h"], lines


@pytest.mark.parametrize(("body", "needle"), [
    ("replicates: true\n", "replicates: expected a number, got true"),
    ("days: 1e9\n", "days: 1,000,000,000 days is more than the limit of 3,660 days"),
    ("factors:\n  seed: {levels: " + str(list(range(MAX_LEVELS + 1))) + "}\n",
     f"1,001 levels, more than the {MAX_LEVELS:,}"),
])
def test_experiment_numbers_are_one_line(tmp_path: Path, body: str, needle: str) -> None:
    refused(load_experiment, write(tmp_path, f"name: e\nscenario: {BASE}\n{body}"),
            ExperimentError, needle)


def test_bundled_files_are_within_the_limits() -> None:
    for p in sorted(SCENARIO_DIR.glob("*.yaml")):
        load_scenario(p)
    for name in ("quick", "sensitivity", "garrison_coverage"):
        load_experiment(EXPERIMENT_DIR / f"{name}.yaml")


def test_no_scenario_number_field_takes_a_boolean() -> None:
    """Every int and float of the scenario models is `fields.Int` / `fields.FiniteFloat` (or
    carries their check): a bare `int` would read `true` as 1."""
    # PointRef's own check refuses booleans in [lat, lon] for the whole point
    guards = {fields._not_bool, fields._int64, fields._check_point}
    bare: list[str] = []

    def guarded(metadata: list[Any]) -> bool:
        return any(getattr(m, "func", None) in guards for m in metadata)

    def walk(tp: Any, safe: bool, where: str, models: list[type]) -> None:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            walk(typing.get_args(tp)[0], safe or guarded(list(tp.__metadata__)), where, models)
        elif origin is not None:
            for arg in typing.get_args(tp):
                walk(arg, safe, where, models)
        elif tp in (int, float) and not safe:
            bare.append(where)
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            models.append(tp)

    seen: set[type] = set()
    todo: list[type] = [Scenario]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, f in model.model_fields.items():
            walk(f.annotation, guarded(list(f.metadata)), f"{model.__name__}.{name}", todo)
    assert len(seen) > 25 and not bare, bare


# --------------------------------------------------------------------------------------------
# badia run --days / --seed
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "needle"), [
    ("-1", "--days: expected a positive whole number of days, got -1"),
    ("0", "--days: expected a positive whole number of days, got 0"),
    ("0.5", "--days: expected a whole number of days, got 0.5"),
    ("nan", "--days: expected a positive whole number of days, got nan"),
    ("1e9", "--days: 1e+09 days is more than the limit of 3660 days"),
])
def test_run_days_must_be_a_positive_whole_number(tmp_path: Path, days: str, needle: str
                                                  ) -> None:
    out = tmp_path / "out"
    line = cli_refuses(badia("run", BASE, f"--days={days}", "--out", out, "--quiet"), needle)
    assert line.startswith("badia run: ") and not out.exists()


def test_run_seed_must_not_be_negative(tmp_path: Path) -> None:
    cli_refuses(badia("run", BASE, "--seed", "-1", "--out", tmp_path / "o", "--quiet"),
                "--seed: expected a whole number from 0")


# --------------------------------------------------------------------------------------------
# property: any hostile YAML loads or is refused with one-line ScenarioErrors, quickly
# --------------------------------------------------------------------------------------------

SCALARS = st.sampled_from([
    "1", "-3", "0", "0.5", "1e30", "1.0e30", "-1.0e300", ".inf", "-.inf", ".nan", "true",
    "false", "null", "~", "yes", "2018-02-30", "2018-13-01", "2018-06-01", "2019-02-29",
    "2018-06-01 18:00:00", "2018-06-01T18:00", "0x7f", "0o17", "0b101", "1_000", "1:30:00",
    "99999999999999999999999", "'quoted'", "x", "T3 outpost", "patrol", "hold", "government",
    "''", "!!binary aGVsbG8=", "!!str 3", "!!float 1", "!!int '7'", "'\\u0000'",
]) | st.integers(min_value=-(2**70), max_value=2**70).map(str) \
   | st.integers(min_value=60, max_value=400).map(lambda n: "7" * n)
KEYS = st.sampled_from(["name", "kind", "count", "strength", "faction", "at", "speed_kmh",
                        "days", "a", "b", "set", "day", "tactic", "<<"])


def _flow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return (st.lists(children, max_size=6).map(lambda xs: "[" + ", ".join(xs) + "]")
            | st.lists(st.tuples(KEYS, children), max_size=6).map(
                lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"))


VALUES = st.recursive(SCALARS, _flow, max_leaves=25)
DEEP = st.integers(min_value=1, max_value=3000).flatmap(
    lambda n: st.sampled_from(["[" * n + "1" + "]" * n, "{a: " * n + "1" + "}" * n]))
BOMBS = st.tuples(st.integers(1, 10), st.integers(1, 14), VALUES).map(
    lambda t: "[" + ", ".join(f"&b{i} [" + ", ".join([f"*b{i - 1}" if i else t[2]] * t[1])
                              + "]" for i in range(t[0])) + "]")
ODD = st.sampled_from(["&r [1, *r]", "*undefined", "[&x 1, &x 2]", "{? [1, 2] : 3}",
                       "{[1]: 2}", "!!python/object:os.system 'echo hi'", "!!set {a, b}",
                       "[1,", "{a: 1", "'unterminated", "\t- tab"])
HOSTILE_VALUES = VALUES | DEEP | BOMBS | ODD
FIELDS = st.sampled_from(["units", "start", "days", "seed", "events", "factions", "name",
                          "description", "campaign", "utc_offset_hours", "map"])
UNIT_FIELDS = st.sampled_from(["count", "strength", "vehicles", "speed_kmh", "sensor_range_km",
                               "kill_rate_per_hour", "water_days", "tactic", "route", "at",
                               "name", "kind"])
#: Seconds one hostile example may take, loading included (2 on an idle machine is plenty;
#: this leaves room for a loaded CI machine).
PROPERTY_S = 5.0


def _loads_or_says_so_in_one_line(load: Any, source: Path | str) -> None:
    t0 = time.perf_counter()
    try:
        load()
    except ScenarioError as exc:
        assert exc.messages, "an error with no message"
        for line in exc.messages:
            assert "\n" not in line and line.startswith(f"{source}: "), line
            assert "internal error" not in line, line
    assert time.perf_counter() - t0 < PROPERTY_S


@HOSTILE
@given(field=FIELDS, value=HOSTILE_VALUES, dup=st.booleans())
def test_hostile_top_level_values_load_or_fail_in_one_line(tmp_path: Path, field: str,
                                                           value: str, dup: bool) -> None:
    body = f"{field}: {value}\n" + (f"{field}: 1\n" if dup else "")
    p = scenario(tmp_path, body)
    _loads_or_says_so_in_one_line(lambda: load_scenario(p), p)


@HOSTILE
@given(field=UNIT_FIELDS, value=HOSTILE_VALUES)
def test_hostile_unit_values_load_or_fail_in_one_line(tmp_path: Path, field: str,
                                                      value: str) -> None:
    p = scenario(tmp_path, f"units:\n  - {{{UNIT}, {field}: {value}}}\n")
    _loads_or_says_so_in_one_line(lambda: load_scenario(p), p)


@HOSTILE
@given(path=st.sampled_from(["units[0].strength", "units[kind=cell].count", "start", "days",
                             "map.cell_km", "units[0].tactic", "events", "name"]),
       value=HOSTILE_VALUES)
def test_hostile_set_values_load_or_fail_in_one_line(path: str, value: str) -> None:
    _loads_or_says_so_in_one_line(lambda: load_scenario(BASE, overrides=[f"{path}={value}"]),
                                  BASE)


@HOSTILE
@given(text=st.text(alphabet=st.sampled_from(list("[]{}&*!:,-? \n\t'\"ab1.#|>%@`<=")),
                    max_size=200) | HOSTILE_VALUES)
def test_any_text_parses_or_is_one_yaml_line(text: str) -> None:
    _loads_or_says_so_in_one_line(lambda: parse_yaml(text, "doc.yaml"), "doc.yaml")


@pytest.mark.parametrize("text", [
    "x:\n" + laughs(), "a: 1\nb: 2\na: 3\n", "a: &x [1, *x]\n", "a: " + "[" * 100 + "]" * 100,
    "a: " + "9" * 100, "a: [" + ", ".join(["&b 1"] + ["*b"] * (MAX_ALIASES + 1)) + "]",
])
def test_the_pure_python_loader_has_the_same_limits(text: str) -> None:
    """libyaml parses when PyYAML has it; the pure-Python fallback refuses the same files."""
    with pytest.raises(ScenarioError) as info:
        parse_yaml(text, "f.yaml")
    with pytest.raises(yaml.YAMLError) as py_info:
        PyBadiaLoader(text).get_single_data()
    assert str(getattr(py_info.value, "problem", "")) in info.value.messages[0]


# --------------------------------------------------------------------------------------------
# install without make: a plain (non-editable) `pip install .` into a fresh virtualenv
# --------------------------------------------------------------------------------------------


def test_pyproject_lists_every_package_and_maps_the_bundled_folders() -> None:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    st_conf = conf["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "sim").rglob("__init__.py")}
    listed = set(st_conf["packages"])
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    assert st_conf["package-dir"] == {"sim.bundled.scenarios": "scenarios",
                                      "sim.bundled.experiments": "experiments"}
    assert listed - on_disk == set(st_conf["package-dir"])
    assert conf["build-system"]["requires"] == ["setuptools>=77"]
    assert any(d.startswith("platformdirs") for d in conf["project"]["dependencies"])


def test_constraints_file_pins_what_the_venv_installs() -> None:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = [ln for ln in lines if ln and not ln.startswith("#")]
    assert pins and all("==" in ln for ln in pins), pins[:5]
    names = {ln.split("==")[0].lower() for ln in pins}
    assert {"pydantic", "pyyaml", "platformdirs", "setuptools", "hypothesis"} <= names
    assert not names & {"badia", "pip"}
    assert "make constraints" in "\n".join(lines[:8])
    assert "-c constraints.txt" in (ROOT / "scripts" / "ensure-venv").read_text()


def test_a_bare_name_finds_a_bundled_scenario(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert scenario_path("outpost_night_raid") == SCENARIO_DIR / "outpost_night_raid.yaml"
    assert scenario_path("outpost_night_raid.yaml") == SCENARIO_DIR / "outpost_night_raid.yaml"
    assert load_scenario("outpost_night_raid").name == "outpost-night-raid"
    with pytest.raises(ScenarioError, match="no_such_scenario: file not found"):
        load_scenario("no_such_scenario")


def _copy_checkout(dest: Path) -> Path:
    """The checkout as `pip install /work/main` sees it, without the virtualenv, caches and
    outputs (a copy, so that the build's build/ and *.egg-info stay out of the checkout)."""
    skip = {".venv", ".git", ".badia-cache", ".hypothesis", ".pytest_cache", ".ruff_cache",
            "build", "out", "results", "reports", "test-artifacts", "__pycache__"}
    shutil.copytree(ROOT, dest, ignore=lambda d, names: [
        n for n in names if n in skip or n.endswith((".egg-info", ".pyc"))])
    return dest


def test_plain_pip_install_finds_bundled_scenarios_and_caches_in_the_user_folder(
        tmp_path: Path) -> None:
    src = _copy_checkout(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], capture_output=True, text=True,
                               check=True).stdout.strip())
    # the dependencies (and pip, setuptools) come from this interpreter's site-packages; its
    # .pth files are not read from there, so the checkout's editable install stays out of it
    (site / "badia-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "BADIA_CACHE_DIR", "VIRTUAL_ENV")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), OPENBLAS_NUM_THREADS="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    pip = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                          "--ignore-installed", "--no-index", "-q", str(src)],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert pip.returncode == 0, pip.stderr[-3000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = subprocess.run([str(py), "-c", (
        "import sim, sim.scenario.loading as L\n"
        "from sim.app.scenarios import bundled_scenarios\n"
        "from sim.experiments.design import load_experiment\n"
        "print(sim.__file__)\n"
        "print(L.SCENARIO_DIR)\n"
        "print(len(bundled_scenarios()))\n"
        "print(load_experiment(L.EXPERIMENT_DIR / 'quick.yaml').scenario.name)\n")],
        capture_output=True, text=True, env=env, cwd=elsewhere)
    assert probe.returncode == 0, probe.stderr[-3000:]
    module, scen_dir, n_bundled, quick_scenario = probe.stdout.split("\n")[:4]
    assert Path(module).is_relative_to(site), module          # the installed copy, not ROOT
    assert Path(scen_dir) == site / "sim" / "bundled" / "scenarios"
    assert int(n_bundled) == len(list(SCENARIO_DIR.glob("*.yaml"))) > 0
    assert quick_scenario == "outpost-night-raid"

    run = subprocess.run([str(venv / "bin" / "badia"), "run", "outpost_night_raid", "--days",
                          "1", "--quiet", "--out", "o"],
                         capture_output=True, text=True, env=env, cwd=elsewhere, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (elsewhere / "o" / "daily.parquet").is_file()
    assert list((tmp_path / "xdg" / "badia").glob("terrain-*.npz")), "no terrain cached"
    assert not list(site.rglob("*.npz")) and not (site / ".badia-cache").exists()
