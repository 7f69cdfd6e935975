"""Scenario files: bundled scenarios load; bad input gives one clear line; overrides, extends,
events, round trips and per-kind unit defaults behave as documented in docs/scenario-format.md."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from sim.errors import PathError, ScenarioError
from sim.scenario.defaults import (
    KIND_DEFAULTS,
    enemies_of,
    factions_with_role,
    hostile_pairs,
    is_hostile,
    resolved_unit,
    resolved_units,
    role_of,
)
from sim.scenario.loading import load_raw, load_scenario, main_validate, parse_scenario
from sim.scenario.map import MapSpec
from sim.scenario.overrides import apply_overrides, resolve_path, set_path
from sim.scenario.paths import Selector, parse_path
from sim.scenario.schema import Scenario, UnitSpec

ROOT = Path(__file__).resolve().parent.parent
DATA = Path("tests/data")
BAD = DATA / "bad"
GOOD = DATA / "good"
MINI = GOOD / "mini_box.yaml"


@pytest.fixture(autouse=True)
def _run_from_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # file names in messages are relative to where the command runs, as for a user
    monkeypatch.chdir(ROOT)


def only_message(excinfo: pytest.ExceptionInfo[ScenarioError]) -> str:
    messages = excinfo.value.messages
    assert len(messages) == 1, messages
    assert "\n" not in messages[0]
    return messages[0]


# --------------------------------------------------------------------------------------------
# Bundled scenarios
# --------------------------------------------------------------------------------------------


def test_badia_theatre_loads_with_the_intended_force() -> None:
    s = load_scenario("scenarios/badia_theatre.yaml")
    assert s.map.cell_km == 1.0
    b = s.map.box
    assert b is not None
    assert (b.south, b.west, b.north, b.east) == (32.3, 36.2, 35.7, 41.2)
    assert set(s.factions) == {"government", "insurgents", "coalition", "iraq"}
    assert s.days == 90 and s.start == datetime(2018, 6, 1, 18, 0)
    per_faction: dict[str, int] = {}
    for u in s.units:
        per_faction[u.faction] = per_faction.get(u.faction, 0) + u.count
    assert 250 <= sum(per_faction.values()) <= 350
    assert per_faction["insurgents"] == 25
    cells = [u for u in s.units if u.faction == "insurgents"]
    assert {u.tactic.kind for u in cells if u.tactic} >= {
        "night_raid", "ambush", "hide", "border_crossing", "refuge"}
    zone = next(z for z in s.map.zones if z.name == "Al-Tanf zone")
    assert zone.circle is not None and zone.circle.radius_km == 55
    assert zone.barred == ["government"] and zone.guarded_by == "coalition"
    assert any(p.name == "Al-Bukamal crossing" for p in s.map.places)
    assert {r.name for r in s.map.roads if r.cls == "track"} >= {"Palmyra-Tanf track"}
    assert s.map.place("Palmyra").oasis and s.map.place("El Kowm oasis").oasis


def test_outpost_scenario_is_a_small_ascii_map() -> None:
    s = load_scenario("scenarios/outpost_night_raid.yaml")
    assert s.map.is_ascii and s.map.cell_km == 0.25
    rows, cols = s.map.grid_shape or (0, 0)
    assert 25 <= rows <= 35 and 35 <= cols <= 45
    assert s.days == 14
    raiders = [u for u in s.units if u.faction == "insurgents"]
    assert sum(u.count for u in raiders) == 3
    assert all(u.tactic is not None and u.tactic.kind == "night_raid" for u in raiders)
    assert {u.kind for u in s.units if u.faction == "government"} == {"strongpoint", "patrol"}


@pytest.mark.parametrize("path", ["scenarios/badia_theatre.yaml",
                                  "scenarios/outpost_night_raid.yaml"])
def test_bundled_scenarios_open_with_a_comment(path: str) -> None:
    text = (ROOT / path).read_text()
    head = text.split("\nname:")[0].lower()
    assert head.startswith("#")
    for word in ("what it replays", "what to watch", "metrics"):
        assert word in head


# --------------------------------------------------------------------------------------------
# Bad input: exactly one line naming the file and field, via the API and via the CLI path
# --------------------------------------------------------------------------------------------

# file -> (file named in the message, field path, words the message must contain)
BAD_CASES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "unknown_key.yaml": ("unknown_key.yaml", "units[0]: ",
                         ("unknown key 'strenght'", "did you mean 'strength'")),
    "via_unknown_place.yaml": ("via_unknown_place.yaml", "map.roads[0].via[2]: ",
                               ("unknown place 'Sukhna'", "did you mean 'Al-Sukhnah'")),
    "zone_around_unknown.yaml": ("zone_around_unknown.yaml", "map.zones[0].circle.around: ",
                                 ("unknown place 'Al-Tanf garrison'",)),
    "polygon_outside_box.yaml": ("polygon_outside_box.yaml", "map.areas[0].polygon[2]: ",
                                 ("[34.9, 40.2]", "outside the map box")),
    "unit_at_unknown.yaml": ("unit_at_unknown.yaml", "units[0].at: ",
                             ("unknown place or area 'Hill cave'", "did you mean 'Hill caves'")),
    "bad_type.yaml": ("bad_type.yaml", "units[0].strength: ", ("valid integer", "'lots'")),
    "negative_strength.yaml": ("negative_strength.yaml", "units[0].strength: ",
                               ("greater than or equal to 0", "-5")),
    "yaml_syntax.yaml": ("yaml_syntax.yaml", "line 6, column 9: ", ("YAML syntax error",)),
    "missing_required.yaml": ("missing_required.yaml", "units[0].faction: ",
                              ("missing required field",)),
    "box_and_ascii.yaml": ("box_and_ascii.yaml", "map: ",
                           ("exactly one of box", "ascii", "got both")),
    "ragged_ascii.yaml": ("ragged_ascii.yaml", "map.ascii: ",
                          ("ragged rows", "row 2 has 5 columns", "row 0 has 6")),
    "legend_missing.yaml": ("legend_missing.yaml", "map.ascii: ",
                            ("character 'C'", "row 1, col 3", "not in map.legend")),
    "hostile_unknown.yaml": ("hostile_unknown.yaml", "factions.coalition.hostile[0]: ",
                             ("unknown faction 'insurgent'", "did you mean 'insurgents'")),
    "cycle_a.yaml": ("cycle_a.yaml", "extends: ",
                     ("cycle", "cycle_a.yaml -> cycle_b.yaml -> cycle_a.yaml")),
    "event_bad_path.yaml": ("event_bad_path.yaml",
                            'events[0].set."units[kind=border_post].strenght": ',
                            ("unknown key 'strenght'", "did you mean 'strength'")),
    "unknown_tactic.yaml": ("unknown_tactic.yaml", "units[0].tactic.kind: ",
                            ("unknown tactic kind 'nightraid'", "did you mean 'night_raid'")),
    "south_ge_north.yaml": ("south_ge_north.yaml", "map.box: ",
                            ("south (35.0) must be less than north (34.0)",)),
    "caves_within_unknown.yaml": ("caves_within_unknown.yaml", "map.areas[1].within: ",
                                  ("unknown area 'Hils'", "did you mean 'Hills'")),
    "tactic_target_unknown.yaml": ("tactic_target_unknown.yaml", "units[0].tactic.targets[0]: ",
                                   ("unknown place 'T-3'", "did you mean 'T3'")),
    "unit_unknown_faction.yaml": ("unit_unknown_faction.yaml", "units[0].faction: ",
                                  ("unknown faction 'goverment'", "did you mean 'government'")),
    "tactic_wrong_role.yaml": ("tactic_wrong_role.yaml", "units[0].tactic.kind: ",
                               ("'sweep' is a garrison tactic", "insurgent")),
    "road_class_bad.yaml": ("road_class_bad.yaml", "map.roads[0].class: ",
                            ("'motorway' is not one of highway, track",)),
    "ambush_unknown_road.yaml": ("ambush_unknown_road.yaml", "units[0].tactic.road: ",
                                 ("unknown road 'M2O'", "did you mean 'M20'")),
    "extends_missing.yaml": ("extends_missing.yaml", "extends: ",
                             ("file not found", "no_such_base.yaml")),
    # the base file's own error is reported under the base file's name
    "extends_bad_base.yaml": ("base_with_error.yaml", "days: ", ("greater than 0", "-3")),
    "not_a_mapping.yaml": ("not_a_mapping.yaml", "", ("top level must be a mapping", "list")),
    "place_no_position.yaml": ("place_no_position.yaml", "map.places[1]: ",
                               ("missing position", "lat and lon")),
}


def expected_prefix(name: str) -> tuple[str, str]:
    file_named, field, _ = BAD_CASES[name]
    return str(BAD / file_named), field


def test_every_bad_fixture_is_covered() -> None:
    on_disk = {p.name for p in BAD.glob("*.yaml")}
    # cycle_b is cycle_a's partner; base_with_error is extends_bad_base's base (both also bad)
    assert on_disk - set(BAD_CASES) == {"cycle_b.yaml", "base_with_error.yaml"}
    assert set(BAD_CASES) <= on_disk
    assert len(BAD_CASES) >= 15


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_file_gives_one_line(name: str) -> None:
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(BAD / name)
    line = only_message(excinfo)
    file_named, field = expected_prefix(name)
    assert line.startswith(f"{file_named}: {field}"), line
    for word in BAD_CASES[name][2]:
        assert word in line, (word, line)
    assert str(excinfo.value) == line


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_file_via_cli_prints_one_line_and_exits_1(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main_validate([str(BAD / name)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    file_named, field = expected_prefix(name)
    assert lines[0].startswith(f"{file_named}: {field}")
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(BAD / name)
    assert lines[0] == excinfo.value.messages[0]


def test_cli_validates_several_files_and_reports_each(capsys: pytest.CaptureFixture[str]) -> None:
    code = main_validate([str(MINI), str(BAD / "bad_type.yaml"),
                          "scenarios/outpost_night_raid.yaml"])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"{MINI}: ok" in out and "scenarios/outpost_night_raid.yaml: ok" in out
    assert err.strip().splitlines() == [line for line in err.strip().splitlines()
                                        if line.startswith(str(BAD / "bad_type.yaml"))]
    assert main_validate([str(MINI), "scenarios/badia_theatre.yaml"]) == 0


def test_missing_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario("scenarios/no_such_file.yaml")
    assert only_message(excinfo) == "scenarios/no_such_file.yaml: file not found"
    assert main_validate(["scenarios/no_such_file.yaml"]) == 1
    assert capsys.readouterr().err.strip() == "scenarios/no_such_file.yaml: file not found"


def test_all_problems_of_a_file_are_collected() -> None:
    data = load_raw(MINI)
    data["map"]["roads"][1]["via"][1] = "T4"
    data["units"][0]["at"] = "T33"
    data["factions"]["coalition"]["hostile"] = ["insurgent"]
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "x.yaml")
    msgs = excinfo.value.messages
    assert len(msgs) == 3, msgs
    assert any(m.startswith("x.yaml: map.roads[1].via[1]: unknown place 'T4'") for m in msgs)
    assert any(m.startswith("x.yaml: units[0].at: unknown place or area 'T33'") for m in msgs)
    assert any(m.startswith("x.yaml: factions.coalition.hostile[0]:") for m in msgs)


def test_several_type_errors_are_collected() -> None:
    data = load_raw(MINI)
    data["days"] = "long"
    data["units"][1]["strength"] = -1
    data["map"]["places"][0]["kind"] = "metropolis"
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "x.yaml")
    msgs = excinfo.value.messages
    assert len(msgs) == 3, msgs
    assert any(m.startswith("x.yaml: days: ") for m in msgs)
    assert any(m.startswith("x.yaml: units[1].strength: ") for m in msgs)
    assert any(m.startswith("x.yaml: map.places[0].kind: 'metropolis' is not one of") for m in msgs)


def test_unknown_key_in_a_tactic_suggests_that_tactics_field() -> None:
    data = load_raw(MINI)
    data["units"][4]["tactic"]["hidez"] = ["Hill caves"]
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "x.yaml")
    assert only_message(excinfo) == (
        "x.yaml: units[4].tactic: unknown key 'hidez' (did you mean 'hides'?)")


def test_bad_point_is_one_clear_line() -> None:
    data = load_raw(MINI)
    data["map"]["roads"][0]["via"][1] = [34.6, "east"]
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "x.yaml")
    line = only_message(excinfo)
    assert line.startswith("x.yaml: map.roads[0].via[1]: ")
    assert "expected a place name or [lat, lon]" in line


def test_ambush_segment_must_lie_on_its_road() -> None:
    data = load_raw(MINI)
    data["units"][5]["tactic"]["segment"] = ["Palmyra", "T3"]
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "x.yaml")
    line = only_message(excinfo)
    assert line.startswith("x.yaml: units[5].tactic.segment[1]: place 'T3' is not on road 'M20'")


def test_directly_built_models_still_check_references() -> None:
    # other modules may build a MapSpec in code; it must not slip past the reference checks
    with pytest.raises(ValidationError, match="unknown place 'Nowhere'"):
        MapSpec.model_validate({
            "cell_km": 1.0, "box": {"south": 34, "west": 38, "north": 35, "east": 39},
            "places": [{"name": "A", "kind": "town", "lat": 34.5, "lon": 38.5}],
            "roads": [{"name": "r", "via": ["A", "Nowhere"]}],
        })


# --------------------------------------------------------------------------------------------
# Start time
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [
    "2018-06-01T18:00", "2018-06-01T18:00:00", datetime(2018, 6, 1, 18, 0),
    datetime(2018, 6, 1, 15, 0, tzinfo=UTC),   # 15:00 UTC = 18:00 at UTC+3
    datetime(2018, 6, 1, 18, 0, tzinfo=timezone(timedelta(hours=3))),
])
def test_start_accepts_string_or_datetime(start: object) -> None:
    data = load_raw(MINI)
    data["start"] = start
    assert parse_scenario(data, "x.yaml").start == datetime(2018, 6, 1, 18, 0)


def test_yaml_timestamp_forms_both_load(tmp_path: Path) -> None:
    # PyYAML reads '2018-06-01T18:00' as a str but '2018-06-01 18:00:00' as a datetime
    for text in ("2018-06-01T18:00", "2018-06-01 18:00:00"):
        f = tmp_path / "s.yaml"
        f.write_text(f"extends: {ROOT / MINI}\nstart: {text}\n")
        assert load_scenario(f).start == datetime(2018, 6, 1, 18, 0)


# --------------------------------------------------------------------------------------------
# Overrides and paths
# --------------------------------------------------------------------------------------------


def test_override_index_and_scalar() -> None:
    s = load_scenario(MINI, ["units[0].strength=40", "map.cell_km=2.5", "seed=12"])
    assert s.units[0].strength == 40 and s.map.cell_km == 2.5 and s.seed == 12
    base = load_scenario(MINI)
    assert s.units[1:] == base.units[1:]


def test_override_selector_changes_every_match_and_only_them() -> None:
    base = load_scenario(MINI)
    s = load_scenario(MINI, ["units[kind=cell].strength=3"])
    for before, after in zip(base.units, s.units, strict=True):
        assert after.strength == (3 if before.kind == "cell" else before.strength)
    assert sum(1 for u in s.units if u.kind == "cell") == 2


def test_override_values_are_yaml() -> None:
    s = load_scenario(MINI, ["units[4].tactic.targets=[T3, Arak]",
                             "factions.government.colour='#000000'", "map.roads[1].class=highway"])
    assert s.units[4].tactic.targets == ["T3", "Arak"]
    assert s.factions["government"].colour == "#000000"
    assert s.map.roads[1].cls == "highway"


def test_override_mapping_and_pairs() -> None:
    a = load_scenario(MINI, {"units[0].strength": 31, "days": 7})
    b = load_scenario(MINI, [("units[0].strength", 31), ("days", 7)])
    assert a == b and a.units[0].strength == 31 and a.days == 7


def test_override_of_absent_optional_field_creates_it() -> None:
    s = load_scenario(MINI, ["map.texture.seed=5", "units[0].vehicles=4"])
    assert s.map.texture is not None and s.map.texture.seed == 5
    assert s.units[0].vehicles == 4


def test_override_field_alias_and_name_are_one_field() -> None:
    s = load_scenario(MINI, ["map.roads[0].cls=track"])
    assert s.map.roads[0].cls == "track"
    assert "cls" not in apply_overrides(load_raw(MINI), ["map.roads[0].cls=track"], "x")["map"][
        "roads"][0]


@pytest.mark.parametrize(("override", "words"), [
    ("units[0].strenght=4", ("units[0].strenght: bad override", "did you mean 'strength'")),
    ("mapp.cell_km=3", ("mapp.cell_km: bad override", "did you mean 'map'")),
    ("units[9].strength=4", ("units[9].strength: bad override", "index 9 out of range",
                             "6 items")),
    ("units[kind=tank].strength=4", ("units[kind=tank].strength: bad override",
                                     "no item of units has kind=tank")),
    ("units[knd=cell].strength=4", ("bad override", "did you mean 'kind'")),
    ("factions.goverment.role=neutral", ("no 'goverment' in factions",
                                         "did you mean 'government'")),
    ("units[0].strength", ("units[0].strength: bad override", "expected path=value")),
    ("units..strength=4", ("bad override", "empty key")),
    ("units[0].strength=[1,", ("bad override", "not valid YAML")),
])
def test_bad_override_is_one_line(override: str, words: tuple[str, ...],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(MINI, [override])
    line = only_message(excinfo)
    assert line.startswith(f"{MINI}: ")
    for w in words:
        assert w in line, (w, line)
    assert main_validate([str(MINI)], [override]) == 1
    err = capsys.readouterr().err
    assert err.strip() == line and "Traceback" not in err


def test_bad_override_value_names_the_override() -> None:
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(MINI, ["units[0].strength=-4"])
    line = only_message(excinfo)
    assert line.startswith(f"{MINI}: units[0].strength: ")
    assert line.endswith("(from --set units[0].strength=-4)")


def test_override_cannot_append_list_items() -> None:
    with pytest.raises(ScenarioError, match="index 6 out of range"):
        load_scenario(MINI, ["units[6]={faction: government, kind: qrf, at: T3}"])


def test_apply_overrides_is_pure() -> None:
    raw = load_raw(MINI)
    before = copy.deepcopy(raw)
    out = apply_overrides(raw, ["units[0].strength=1"], "x")
    assert raw == before and out["units"][0]["strength"] == 1


def test_parse_path() -> None:
    assert parse_path("a.b[2].c") == ["a", "b", 2, "c"]
    assert parse_path("units[kind=border_post].strength") == [
        "units", Selector("kind", "border_post"), "strength"]
    assert parse_path("units[name=T3 post].at") == ["units", Selector("name", "T3 post"), "at"]
    for bad in ["", "a..b", "a[x]", ".a", "a.", "[0]", "a[-1]", "a[=x]"]:
        with pytest.raises(PathError):
            parse_path(bad)


def test_resolve_path_on_raw_data_and_model_agree() -> None:
    s = load_scenario(MINI)
    raw = load_raw(MINI)
    for path in ["units[kind=cell].count", "factions.coalition.comms_delay_hours",
                 "units[0].strength", "map.roads[0].class", "units[count=3].faction"]:
        on_model = resolve_path(s, path)
        on_raw = resolve_path(raw, path)
        assert [loc for loc, _ in on_model] == [loc for loc, _ in on_raw]
    assert [loc for loc, _ in resolve_path(s, "units[kind=cell].count")] == [
        ("units", 4, "count"), ("units", 5, "count")]
    assert [v for _, v in resolve_path(s, "units[kind=cell].count")] == [3, 1]
    assert resolve_path(s, "units[name=T3 post].strength") == [(("units", 0, "strength"), None)]
    with pytest.raises(PathError, match="did you mean 'strength'"):
        resolve_path(s, "units[0].strenth")


def test_set_path_is_pure_and_sets_every_match() -> None:
    raw = load_raw(MINI)
    out = set_path(raw, "units[faction=insurgents].count", 2)
    assert [u.get("count") for u in out["units"] if u["faction"] == "insurgents"] == [2, 2]
    assert raw != out


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


def test_events_validate_their_paths_and_values() -> None:
    s = load_scenario(MINI)
    assert [e.at_hours for e in s.events] == [48.0, 78.0]
    data = load_raw(MINI)
    data["events"] = [{"day": 1, "set": {"units[kind=border_post].strength": -3}}]
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "x.yaml")
    line = only_message(excinfo)
    assert line.startswith('x.yaml: events[0].set."units[kind=border_post].strength": ')
    assert "greater than or equal to 0" in line


def test_events_may_not_change_the_map_or_clock() -> None:
    data = load_raw(MINI)
    data["events"] = [{"day": 1, "set": {"map.cell_km": 2}}]
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "x.yaml")
    assert "events may only change" in only_message(excinfo)


# --------------------------------------------------------------------------------------------
# extends
# --------------------------------------------------------------------------------------------


def test_extends_merges_dicts_and_replaces_lists() -> None:
    base = load_scenario(MINI)
    child = load_scenario(GOOD / "child_extends.yaml")
    assert child.name == "mini-child" and child.seed == 9
    assert child.map.cell_km == 1.0
    assert child.map.box == base.map.box and child.map.places == base.map.places
    assert [u.name for u in child.units] == ["lone post", None]
    assert child.events == base.events
    assert child.extends is None


def test_extends_chains_across_directories() -> None:
    g = load_scenario(GOOD / "nested" / "grandchild.yaml")
    assert g.name == "mini-grandchild" and g.days == 2.5 and g.seed == 9
    assert g.factions["coalition"].comms_delay_hours == 0.25
    assert g.factions["coalition"].hostile == ["insurgents"]   # kept from the base


def test_errors_after_extends_name_the_file_that_wrote_the_field(tmp_path: Path) -> None:
    f = tmp_path / "child.yaml"
    f.write_text(f"extends: {ROOT / MINI}\n"
                 "map:\n  places:\n    - {name: X, kind: town, lat: 34.5, lon: 38.5}\n"
                 "factions:\n  coalition: {hostile: [insurgent]}\n")
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(f)
    msgs = excinfo.value.messages
    # the child's own mistake is the child's line
    assert f"{f}: factions.coalition.hostile[0]: unknown faction 'insurgent' " \
           "(did you mean 'insurgents'?)" in msgs
    # replacing the places list dropped Palmyra: the roads naming it are the base file's lines
    base = ROOT / MINI    # named as the child names it (here an absolute path)
    assert any(m.startswith(f"{base}: map.roads[0].via[0]: unknown place 'Palmyra'")
               for m in msgs)
    assert all(m.startswith((f"{f}: ", f"{base}: ")) for m in msgs)


# --------------------------------------------------------------------------------------------
# Round trip
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["scenarios/badia_theatre.yaml",
                                  "scenarios/outpost_night_raid.yaml",
                                  "tests/data/good/mini_ascii.yaml",
                                  "tests/data/good/nested/grandchild.yaml"])
def test_to_yaml_reloads_to_an_equal_scenario(path: str, tmp_path: Path) -> None:
    s = load_scenario(path)
    text = s.to_yaml()
    data = yaml.safe_load(text)
    assert "extends" not in data and data["seed"] == s.seed
    out = tmp_path / "resolved.yaml"
    out.write_text(text)
    assert load_scenario(out) == s


# --------------------------------------------------------------------------------------------
# Factions and unit defaults
# --------------------------------------------------------------------------------------------


def test_every_unit_kind_has_defaults() -> None:
    kinds = set(UnitSpec.model_fields["kind"].annotation.__args__)
    assert set(KIND_DEFAULTS) == kinds
    assert KIND_DEFAULTS["strongpoint"].fortified and KIND_DEFAULTS["border_post"].fortified
    assert not KIND_DEFAULTS["cell"].fortified
    assert KIND_DEFAULTS["strongpoint"].speed_kmh == 0
    assert KIND_DEFAULTS["border_post"].speed_kmh == 0
    for d in KIND_DEFAULTS.values():
        assert d.night_sensor_range_km < d.sensor_range_km
        assert 0 < d.breakoff_loss_fraction < 1


def test_resolved_unit_fills_only_what_the_spec_leaves_out() -> None:
    s = load_scenario(MINI)
    patrol = resolved_unit(s.units[1], 1)
    assert patrol.strength == 12                       # given in the file
    d = KIND_DEFAULTS["patrol"]
    assert (patrol.vehicles, patrol.speed_kmh, patrol.night_sensor_range_km) == (
        d.vehicles, d.speed_kmh, d.night_sensor_range_km)
    assert patrol.name == "patrol-1" and patrol.tactic == s.units[1].tactic
    spec = UnitSpec(faction="g", kind="cell", at="X", fortified=True, mobility="foot",
                    water_days=0)
    r = resolved_unit(spec)
    assert r.fortified is True and r.mobility == "foot" and r.water_days == 0
    assert r.strength == KIND_DEFAULTS["cell"].strength and r.name == "cell"
    assert [u.name for u in resolved_units(s)][:2] == ["T3 post", "patrol-1"]


def test_hostility_is_symmetric_and_roles_are_looked_up() -> None:
    s = load_scenario("scenarios/badia_theatre.yaml")
    pairs = hostile_pairs(s.factions)
    assert ("iraq", "insurgents") in pairs and ("insurgents", "iraq") in pairs
    assert not is_hostile(s.factions, "government", "coalition")
    assert is_hostile(s.factions, "coalition", "insurgents")
    assert role_of(s.factions, "iraq") == "garrison"
    assert factions_with_role(s.factions, "insurgent") == ["insurgents"]
    assert enemies_of(s.factions, "insurgents") == ["government", "coalition", "iraq"]
    one_sided = parse_scenario(
        {**load_raw(MINI), "factions": {"government": {"role": "garrison"},
                                        "insurgents": {"role": "insurgent",
                                                       "hostile": ["government"]},
                                        "coalition": {"role": "garrison"}}}, "x.yaml")
    assert is_hostile(one_sided.factions, "government", "insurgents")


def test_scenario_helpers() -> None:
    s = load_scenario(MINI)
    assert s.hours == 120 and s.end == datetime(2018, 6, 6, 18, 0)
    assert isinstance(s, Scenario)
    assert s.map.place("T3").kind == "station"
    assert s.map.place("Palmyra").radius_km == 1.5     # town default
    hills = s.map.area("Hill caves")
    assert hills.shape == "within" and hills.count == 5


def test_worked_examples_in_the_format_doc_load() -> None:
    text = (ROOT / "docs/scenario-format.md").read_text()
    examples = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    full = [d for d in examples if isinstance(d, dict) and "map" in d and "name" in d]
    assert len(full) == 2
    loaded = [parse_scenario(d, "docs/scenario-format.md") for d in full]
    assert {s.map.is_ascii for s in loaded} == {True, False}


@pytest.mark.parametrize(("map_", "path", "words"), [
    ({"cell_km": 1}, "map: ", ("exactly one of box", "got neither")),
    ({"cell_km": 0.001, "box": {"south": 30, "west": 30, "north": 40, "east": 45}},
     "map.cell_km: ", ("cells", "the limit is 8,000,000")),
    ({"cell_km": 1, "box": {"south": 30, "west": 30, "north": 31, "east": 31},
      "legend": {".": {"ground": "flat"}}}, "map.legend: ", ("only used with ascii",)),
    ({"cell_km": 1, "ascii": "..\n..\n"}, "map.centre: ", ("required with ascii",)),
    ({"cell_km": 1, "ascii": "\n\n", "centre": {"lat": 34, "lon": 38}}, "map.ascii: ",
     ("no rows",)),
])
def test_map_structure_problems(map_: dict, path: str, words: tuple[str, ...]) -> None:
    data = {"name": "m", "map": {"legend": {".": {"ground": "flat"}}} | map_
            if "ascii" in map_ else map_, "factions": {"g": {"role": "garrison"}}}
    with pytest.raises(ScenarioError) as excinfo:
        parse_scenario(data, "m.yaml")
    line = only_message(excinfo)
    assert line.startswith(f"m.yaml: {path}"), line
    for w in words:
        assert w in line
