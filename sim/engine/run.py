"""One run of a scenario, start to finish: :func:`run_scenario` and its :class:`RunResult`."""

from __future__ import annotations

from pathlib import Path

from sim.engine.model import DesertModel
from sim.engine.result import RunResult
from sim.rules.config import ModelConfig
from sim.scenario.loading import load_scenario
from sim.scenario.schema import Scenario


def run_scenario(
    scenario: Scenario | str | Path,
    *,
    seed: int | None = None,
    days: float | None = None,
    overrides=(),
    progress: bool = False,
    config: ModelConfig | None = None,
) -> RunResult:
    """Run a scenario for ``days`` (default: the scenario's) and return its results."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, overrides=list(overrides))
        overrides = ()
    if days is not None:
        scenario = scenario.model_copy(update={"days": float(days)})
    model = DesertModel(scenario, rng=seed, overrides=overrides, config=config)
    model.run_for_hours(model.spec.hours, progress=progress)
    return model.result()
