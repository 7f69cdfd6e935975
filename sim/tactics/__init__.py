"""Tactics: behaviours as small state machines (:mod:`sim.tactics.base`). Insurgent ones: the
shared cell logic with hide and refuge in :mod:`sim.tactics.cells`, then
:mod:`sim.tactics.raids`, :mod:`sim.tactics.ambush`, :mod:`sim.tactics.seizure` and
:mod:`sim.tactics.crossing`; garrison ones in :mod:`sim.tactics.garrison`; the sites they look
for in :mod:`sim.tactics.sites`. ``docs/tactics.md`` lists their states and parameters. This
module maps a tactic's ``kind`` to its behaviour."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.tactics import ambush, cells, civilians, crossing, garrison, mines, prey, raids, seizure
from sim.tactics.base import Behaviour

if TYPE_CHECKING:
    from sim.rules.state import UnitView
    from sim.tactics.base import TacticState

#: Behaviour classes by tactic kind.
REGISTRY: dict[str, type[Behaviour]] = {
    cls.kind: cls
    for mod in (garrison, cells, raids, ambush, seizure, crossing, mines, prey, civilians)
    for cls in vars(mod).values()
    if isinstance(cls, type) and issubclass(cls, Behaviour) and cls.kind
}


def make_behaviour(model: TacticState, unit: UnitView, tactic, unit_spec) -> Behaviour | None:
    """The behaviour for a unit: its scenario ``tactic``, else its kind's default."""
    kind = tactic.kind if tactic is not None else DEFAULT_TACTIC.get(unit.kind)
    if kind is None:
        return None
    return REGISTRY[kind](model, unit, tactic, unit_spec)


#: The tactic a unit kind follows when its spec names none.
DEFAULT_TACTIC = {
    "cell": "hide",
    "strongpoint": "hold",
    "patrol": "patrol",
    "convoy": "escort",
    "qrf": "pursue",
    "border_post": "border_watch",
    "zone_guard": "zone_guard",
}
