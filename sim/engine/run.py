"""One run of a scenario, start to finish: :func:`run_scenario` and its :class:`RunResult`."""

from __future__ import annotations

from pathlib import Path

from sim.engine.model import DesertModel
from sim.engine.result import RunResult
from sim.engine.tracks import TrackConfig, TrackRecorder
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
    tracks: TrackConfig | None = None,
) -> RunResult:
    """Run a scenario for ``days`` (default: the scenario's) and return its results; with
    ``tracks``, recorded unit tracks too (``result.tracks``, for replay)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, overrides=list(overrides))
        overrides = ()
    if days is not None:
        scenario = scenario.model_copy(update={"days": float(days)})
    model = DesertModel(scenario, rng=seed, overrides=overrides, config=config)
    recorder = None if tracks is None else TrackRecorder(model, tracks)
    model.run_for_hours(model.spec.hours, progress=progress,
                        after_step=None if recorder is None else recorder.observe)
    result = model.result()
    result.tracks = recorder
    return result
