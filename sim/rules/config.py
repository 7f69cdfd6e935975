"""The rule settings of a run that are not part of a scenario file, in one typed object."""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.rules import combat, detection
from sim.rules.supplies import SupplyConfig


@dataclass
class ModelConfig:
    """Rule settings that are not part of a scenario file (kept in one place, with units)."""

    detection: detection.DetectionConfig = field(default_factory=detection.DetectionConfig)
    combat: combat.CombatConfig = field(default_factory=combat.CombatConfig)
    supplies: SupplyConfig = field(default_factory=SupplyConfig)
    knowledge_max_age_hours: int = 48
    coverage_every_hours: int = 3
    replacement_hours: int = 48
    collect_every_hours: int = 24  # DataCollector cadence; the app sets 1
