"""What a run gives back: daily metrics, summary, event log and the resolved scenario."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from sim.scenario.schema import Scenario


@dataclass
class RunResult:
    """Outputs of one run (see docs/architecture.md, "Data flow")."""

    daily: pd.DataFrame
    summary: dict[str, float]
    events: list[dict]
    scenario: Scenario
    # a sim.engine.tracks.TrackRecorder when the run recorded tracks (replay); not named as a
    # type here, because the recorder's module reads the model, which imports this one
    tracks: Any = None
