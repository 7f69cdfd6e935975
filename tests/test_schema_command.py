"""`badia schema`: JSON Schemas of scenario, experiment and calibration files from the pydantic
models, checked with the `jsonschema` package against every bundled file and some bad ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.cli import main

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


class _EditorLoader(yaml.SafeLoader):
    """YAML as an editor's language server sees it (YAML 1.2 core schema): `2018-06-01T18:00`
    stays text, where PyYAML's safe loader would make it a datetime."""


_EditorLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _schema(kind: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["schema", kind]) == 0
    out = capsys.readouterr().out
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _errors(schema: dict[str, Any], path: Path) -> list[str]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_EditorLoader)
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]


def _kind_of(path: Path) -> str:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return "calibration" if "parameters" in data else "experiment"


BUNDLED_SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
GOOD_SCENARIOS = [*BUNDLED_SCENARIOS, *sorted((DATA / "good").rglob("*.yaml"))]
BUNDLED_EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))


def test_the_default_is_the_scenario_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    default = capsys.readouterr().out
    assert main(["schema", "scenario"]) == 0
    assert capsys.readouterr().out == default
    schema = json.loads(default)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "scenario" in schema["title"]


def test_an_unknown_kind_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["schema", "scenarios"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("path", GOOD_SCENARIOS, ids=lambda p: p.name)
def test_the_scenario_schema_accepts_every_bundled_scenario(
        path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _errors(_schema("scenario", capsys), path) == []


@pytest.mark.parametrize("name, message", [
    ("unknown_key.yaml", "'strenght' was unexpected"),
    ("bad_type.yaml", "'lots'"),
    ("road_class_bad.yaml", "'motorway' is not one of"),
    ("unknown_tactic.yaml", "nightraid"),
    ("missing_required.yaml", "'faction' is a required property"),
    ("not_a_mapping.yaml", "is not of type 'object'"),
])
def test_the_scenario_schema_rejects_bad_scenarios(
        name: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    errors = _errors(_schema("scenario", capsys), DATA / "bad" / name)
    assert errors and any(message in e for e in errors), errors


def test_extends_needs_only_what_differs_but_list_items_stay_whole(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = _schema("scenario", capsys)
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nmap: {cell_km: 2}\nstart: 2018-06-01T18:00\n")
    assert _errors(schema, child) == []
    child.write_text("extends: base.yaml\nunits:\n  - {faction: insurgents}\n")
    assert any("'kind' is a required property" in e for e in _errors(schema, child))
    child.write_text("extends: base.yaml\nmapp: {cell_km: 2}\n")
    assert any("'mapp' was unexpected" in e for e in _errors(schema, child))
    child.write_text("name: x\nmap: {cell_km: 2}\n")           # no extends: all required
    assert any("'factions' is a required property" in e for e in _errors(schema, child))
    child.write_text("extends: base.yaml\nstart: June\n")
    assert _errors(schema, child)


@pytest.mark.parametrize("path", BUNDLED_EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_and_calibration_schemas_accept_the_bundled_files(
        path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kind = _kind_of(path)
    assert _errors(_schema(kind, capsys), path) == []


def test_the_calibration_test_file_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert _errors(_schema("calibration", capsys), DATA / "calibration" / "outpost.yaml") == []


@pytest.mark.parametrize("name, message", [
    ("unknown_key.yaml", "was unexpected"),
    ("unknown_design.yaml", "is not valid under any of the given schemas"),
    ("negative_replicates.yaml", "less than the minimum of 1"),
])
def test_the_experiment_schema_rejects_bad_experiments(
        name: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    errors = _errors(_schema("experiment", capsys), DATA / "bad_experiments" / name)
    assert errors and any(message in e for e in errors), errors


def test_the_design_shorthand_is_allowed(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    schema = _schema("experiment", capsys)
    exp = tmp_path / "e.yaml"
    for design in ("full_factorial", "nolh", "{kind: sobol, samples: 8}"):
        exp.write_text(f"name: e\nscenario: s.yaml\ndesign: {design}\n")
        assert _errors(schema, exp) == [], design
    exp.write_text("name: e\nscenario: s.yaml\ndesign: factorial\n")
    assert _errors(schema, exp)


def test_the_calibration_schema_rejects_a_typo(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    good = (ROOT / "experiments" / "calibrate_2020.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "cal.yaml"
    bad.write_text(good.replace("parameters:", "paramters:", 1), encoding="utf-8")
    errors = _errors(_schema("calibration", capsys), bad)
    assert any("'paramters' was unexpected" in e for e in errors), errors
    assert any("'parameters' is a required property" in e for e in errors), errors
