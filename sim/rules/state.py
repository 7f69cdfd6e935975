"""The narrow run state the rules work on: the force table, postures, and the protocol of what a
rule may read and call on a run.

Rules (detection, combat, engagements, supplies, borders, events) never import the model: they
receive a :class:`RunState` (the engine's ``DesertModel`` is one) or plain arrays. The protocol
names every member a rule uses, so a rule's reach into a run is written down in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:
    from sim.rules.config import ModelConfig
    from sim.rules.force import ForceTable
    from sim.rules.knowledge import Knowledge
    from sim.scenario.schema import Scenario
    from sim.world.raster import Terrain


class Posture(IntEnum):
    """What a unit is doing; drives detection (moving units are easier to see) and fire."""

    HIDDEN = 0
    RESTING = 1
    MOVING = 2
    ATTACKING = 3
    WITHDRAWING = 4
    PURSUING = 5


#: Postures in which a unit is on the move this hour.
MOVING_POSTURES = (Posture.MOVING, Posture.ATTACKING, Posture.WITHDRAWING, Posture.PURSUING)
#: A wake hour that never comes (units without a tactic, posts that only react to alerts). The
#: one "never" of the program: timers, replacements and schedules all use it.
NEVER_HOUR = int(np.iinfo(np.int32).max)


@dataclass
class Operation:
    """An attack under way (one raid, one ambush, one assault): what, on whom, since when, and
    whether its first engagement has been logged and succeeded."""

    kind: str
    target: int
    since: int
    logged: bool = False
    succeeded: bool | None = None


class Detections(NamedTuple):
    """One hour's detections: parallel arrays of observer and target unit indices."""

    observer: np.ndarray
    target: np.ndarray


class UnitView(Protocol):
    """What rules and tactics use of a unit (the engine's ``Unit`` agent)."""

    idx: int
    name: str
    faction: str
    kind: str
    home: int
    spec_index: int
    path: np.ndarray
    path_hours: np.ndarray
    alerts: list[str]
    attack_target: int | None
    operation: Operation | None
    attached_to: UnitView | None
    behaviour: Any
    resolved: Any
    wake_hour: int

    @property
    def cell(self) -> int: ...
    @property
    def rc(self) -> tuple[int, int]: ...
    @property
    def strength(self) -> float: ...
    @property
    def alive(self) -> bool: ...
    @property
    def posture(self) -> Posture: ...
    @property
    def is_moving(self) -> bool: ...
    @property
    def path_pos(self) -> int: ...
    @property
    def destination(self) -> int: ...
    def supply(self, name: str) -> float: ...
    def go_to(self, target_cell: int, posture: Posture = ..., *, often: bool = ...) -> bool: ...
    def follow(self, cells: np.ndarray, posture: Posture = ...) -> None: ...
    def halt(self, posture: Posture = ...) -> None: ...
    def stay(self, posture: Posture = ...) -> None: ...
    def attack(self, target_idx: int, kind: str) -> None: ...
    def cease_fire(self) -> None: ...
    def alert(self, reason: str) -> None: ...
    def sleep_until(self, hour: int) -> None: ...


class RunState(Protocol):
    """What the rules read and call on a run (the engine's ``DesertModel`` provides it).

    State: the hour, the one random generator, the terrain, the force table and its units, the
    factions (names, index, hostility matrix, which zones each is barred from, border security,
    which are insurgents), what each faction knows, the rule settings and the scenario.
    Calls: ``log`` an event, report a ``unit_destroyed``.
    """

    hour: int
    rng: np.random.Generator
    terrain: Terrain
    force: ForceTable
    units: Sequence[UnitView]
    faction_names: list[str]
    faction_index: dict[str, int]
    hostile: np.ndarray
    barred_zones: list[frozenset[int]]
    border_security: np.ndarray
    insurgent_faction: np.ndarray
    knowledge: Knowledge
    config: ModelConfig
    spec: Scenario
    light_by_hour: np.ndarray
    events: list[dict]
    attack_targets: np.ndarray  # per unit: the unit it attacks, -1 for none

    def log(self, event_type: str, cell: int, faction: str = "", **data: Any) -> dict: ...
    def unit_destroyed(self, unit: UnitView) -> None: ...
