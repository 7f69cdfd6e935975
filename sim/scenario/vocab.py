"""The vocabulary of scenario files, defined once: unit kinds, mobilities, roles, place and
area kinds, road classes. Every other module takes these names from here."""

from __future__ import annotations

import typing
from typing import Literal

# --------------------------------------------------------------------------------------------
# Enumerations
# --------------------------------------------------------------------------------------------

Ground = Literal["flat", "sand", "rugged", "wadi", "river", "irrigated"]
RoadClass = Literal["highway", "track"]
PlaceKind = Literal[
    "city", "town", "village", "oasis", "well", "outpost", "base", "crossing", "junction",
    "station", "landmark", "camp", "airbase", "rendezvous",
]
AreaKind = Literal["rugged", "sand", "wadi", "irrigated", "caves", "region"]
Mobility = Literal["foot", "offroad", "road"]
Role = Literal["garrison", "insurgent", "neutral", "civilian"]
UnitKind = Literal[
    "cell", "strongpoint", "patrol", "convoy", "qrf", "border_post", "zone_guard",
    "civilian_vehicle", "forager",
]
WaterKind = Literal["oasis", "well"]
Schedule = Literal["day", "night", "always"]


#: Every unit kind, in the order of the force table's ``kind`` column: the scenario's kinds and
#: ``escort`` (created during a run to ride with a convoy).
KINDS: tuple[str, ...] = (*typing.get_args(UnitKind)[:4], "escort", *typing.get_args(UnitKind)[4:])
#: Mobility classes, in the order of the force table's ``mobility`` column and the terrain's
#: ``move_cost`` layers.
MOBILITIES: tuple[str, ...] = typing.get_args(Mobility)
#: Event types that count as attacks (insurgent initiative), by attack kind.
ATTACK_TYPES = ("raid", "ambush", "seizure")
#: Attack kinds of the campaign mechanisms: a mine or IED struck by a passing vehicle, a fake
#: checkpoint on a highway, an attack on civilians in the open desert. Their daily columns are
#: written (as zeros on quiet days) only in scenarios with a ``campaign:`` section, so the
#: columns of other scenarios stay as they were.
CAMPAIGN_ATTACK_TYPES = ("mine_strike", "fake_checkpoint", "prey")
#: Unit kinds of civilians (a civilian faction's units): they never fire.
CIVILIAN_KINDS = ("civilian_vehicle", "forager")
