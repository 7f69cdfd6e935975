"""The README stays true: its quick start is two commands, and its scenario example loads."""

from __future__ import annotations

import re
from pathlib import Path

from sim.engine.run import run_scenario
from sim.scenario.loading import parse_scenario

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def test_quick_start_is_one_block_of_two_commands_and_ci_calls_the_test_one():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    commands = [line for line in blocks[0].splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_readme_scenario_example_loads_and_runs():
    import yaml

    block = re.findall(r"```yaml\n(.*?)```", README, re.S)[0]
    scenario = parse_scenario(yaml.safe_load(block), source="README.md")
    result = run_scenario(scenario, seed=1, days=2)
    assert len(result.daily) == 2
