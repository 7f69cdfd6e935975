"""The ``campaign:`` section of a scenario: the mechanisms a persistent insurgency needs, each with
typed parameters (units in their names). Every part is optional; a scenario without the section
runs exactly as before.

Owners of each part (one rule module each):

- ``recruitment``: fighters join cells over time, depleted cells rebuild, new cells form in hides
  (:mod:`sim.rules.recruitment`);
- ``caches``: supplies dug in at hides, drawn and refilled (:mod:`sim.rules.caches`);
- ``air_strikes``: strikes on located cells after a delay, with a probability of hitting
  (:mod:`sim.rules.air`);
- ``mines``: how mines and IEDs laid on roads are struck by passing vehicles
  (:mod:`sim.rules.mines`).
"""

from __future__ import annotations

from pydantic import Field

from sim.scenario.fields import FiniteFloat, Name, _Model

# ----------------------------------------------------- recruitment (sim.rules.recruitment)


class RecruitmentSpec(_Model):
    """Fighters joining a faction's cells over time."""

    faction: Name


# ----------------------------------------------------------------- caches (sim.rules.caches)


class CachesSpec(_Model):
    """Supplies dug in at a faction's hides."""

    faction: Name


# ----------------------------------------------------------------- air strikes (sim.rules.air)


class AirStrikesSpec(_Model):
    """A faction's air strikes on located enemy units."""

    faction: Name


# ----------------------------------------------------------------- mines and IEDs (sim.rules.mines)


class MinesSpec(_Model):
    """How mines and IEDs laid on roads behave once laid (laying is a tactic, `mine_laying`)."""

    strike_probability: FiniteFloat = Field(default=0.5, ge=0, le=1)


# ----------------------------------------------------------------- the section


class CampaignSpec(_Model):
    """The campaign mechanisms of a scenario (all optional)."""

    recruitment: list[RecruitmentSpec] = Field(default_factory=list)
    caches: list[CachesSpec] = Field(default_factory=list)
    air_strikes: list[AirStrikesSpec] = Field(default_factory=list)
    mines: MinesSpec | None = None
