"""Fuzzing the scenario loader: random damage to valid scenarios either loads or raises
ScenarioError with one-line messages naming the file; never any other exception."""

from __future__ import annotations

import copy
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.errors import ScenarioError
from sim.scenario.loading import load_raw, load_scenario, parse_scenario
from sim.scenario.overrides import apply_overrides
from sim.scenario.schema import Scenario

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {
    "box": ROOT / "tests/data/good/mini_box.yaml",
    "ascii": ROOT / "tests/data/good/mini_ascii.yaml",
    "outpost": ROOT / "scenarios/outpost_night_raid.yaml",
}
BASES = {k: load_raw(p) for k, p in SOURCES.items()}
SOURCE = "fuzz.yaml"

# BADIA_FUZZ_EXAMPLES raises the count for a long local hunt; CI runs the default
# CI draws the same examples every time (a red CI must be reproducible); local runs explore
FUZZ = settings(max_examples=int(os.environ.get("BADIA_FUZZ_EXAMPLES", "200")), deadline=None,
                derandomize=bool(os.environ.get("CI")),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def all_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a dict value or list item in the raw data."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out += all_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*prefix, i))
            out += all_paths(v, (*prefix, i))
    return out


def names_in(data: dict) -> list[str]:
    """Names of things in (possibly already damaged) raw data, to swap references around."""
    m = data.get("map")
    found: list[Any] = []
    if isinstance(m, dict):
        for key in ("places", "roads", "areas", "zones", "borders"):
            items = m.get(key)
            if isinstance(items, list):
                found += [x.get("name") for x in items if isinstance(x, dict)]
    factions = data.get("factions")
    if isinstance(factions, dict):
        found += list(factions)
    return [n for n in found if isinstance(n, str)]


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from([-1, 0, 1e308, -1e-9, 90.5, 181, "", " ", "T3", "Palmyra", "government",
                     "night_raid", "2018-13-45T99:00", "[1, 2]"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)


def check_outcome(data: dict) -> None:
    try:
        s = parse_scenario(data, SOURCE, base_dir=ROOT / "tests/data/good")
    except ScenarioError as e:
        assert e.messages, "a ScenarioError must carry at least one message"
        for line in e.messages:
            assert "\n" not in line and "Traceback" not in line
            assert line.startswith((f"{SOURCE}: ", str(ROOT))), line
    else:
        assert isinstance(s, Scenario)
        # whatever loads must also survive a round trip through to_yaml
        assert parse_scenario(yaml.safe_load(s.to_yaml()), SOURCE) == s


def mutate(data: dict, draw: st.DrawFn) -> dict:
    data = copy.deepcopy(data)
    paths = all_paths(data)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(paths))
        parent = data
        try:
            for seg in path[:-1]:
                parent = parent[seg]
            key = path[-1]
            _ = parent[key]
        except (KeyError, IndexError, TypeError):
            continue   # an earlier mutation removed this path
        if not isinstance(parent, (dict, list)):
            continue   # an earlier mutation replaced a container with a scalar (a string)
        op = draw(st.sampled_from(["delete", "rename", "value", "reference", "number"]))
        if op == "delete":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            new = draw(st.one_of(st.text(max_size=10), st.integers(), st.sampled_from(
                [str(key) + "s", str(key)[:-1], str(key).upper(), "class", "cls", "kind"])))
            parent[new] = parent.pop(key)
        elif op == "reference":
            parent[key] = draw(st.one_of(st.sampled_from(names_in(data) or ["x"]),
                                         st.text(max_size=10)))
        elif op == "number":
            old = parent[key]
            if isinstance(old, (int, float)) and not isinstance(old, bool):
                parent[key] = draw(st.sampled_from(
                    [-old, old * 1000, 0, -1, math.inf, math.nan, 10**30, 0.5]))
            else:
                parent[key] = draw(values)
        else:
            parent[key] = draw(values)
    return data


@FUZZ
@given(st.data(), st.sampled_from(sorted(BASES)))
def test_mutated_scenarios_load_or_raise_scenario_error(data: st.DataObject, which: str) -> None:
    check_outcome(mutate(BASES[which], data.draw))


@FUZZ
@given(st.sampled_from(sorted(BASES)), st.lists(st.tuples(
    st.one_of(st.sampled_from(["units[0].strength", "units[kind=cell].count", "map.cell_km",
                               "map.places[0].name", "factions.government.hostile",
                               "units[1].tactic.kind", "map.legend.x", "events", "units",
                               "map.texture.scale_km", "units[9].at", "map.roads[0].class",
                               "units[name=T3 post].at", "a.b[0]"]),
              st.text(alphabet="abcdefkmnstu_.[]=0129 ", max_size=24)),
    values), max_size=3))
def test_random_overrides_load_or_raise_scenario_error(which: str, overrides: list) -> None:
    try:
        data = apply_overrides(BASES[which], overrides, SOURCE)
    except ScenarioError as e:
        assert all(line.startswith(f"{SOURCE}: ") and "\n" not in line for line in e.messages)
        return
    check_outcome(data)


@FUZZ
@given(st.sampled_from(sorted(SOURCES)), st.data())
def test_damaged_yaml_text_loads_or_raises_scenario_error(which: str, data: st.DataObject
                                                          ) -> None:
    text = SOURCES[which].read_text()
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        i = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
        j = min(len(text), i + data.draw(st.integers(min_value=0, max_value=8)))
        insert = data.draw(st.sampled_from(["", ":", "[", "{", "- ", "\t", "  ", "'", "\n",
                                            "x", "&a", "*a", "!!python/none", "extends: x"]))
        text = text[:i] + insert + text[j:]
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "fuzz.yaml"
        f.write_text(text)
        try:
            load_scenario(f)
        except ScenarioError as e:
            assert all(line.startswith((f"{f}: ", str(ROOT))) for line in e.messages)


@pytest.mark.parametrize("which", sorted(BASES))
def test_fuzz_bases_are_valid(which: str) -> None:
    # the mutations start from valid data, so a failure above is the mutation's doing
    assert isinstance(parse_scenario(copy.deepcopy(BASES[which]), SOURCE,
                                     base_dir=ROOT / "tests/data/good"), Scenario)
