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

from datetime import date
from typing import Any

from pydantic import Field, model_validator

from sim.scenario.fields import FiniteFloat, Int, Name, _Model

# ----------------------------------------------------- recruitment (sim.rules.recruitment)


class RecruitmentSpec(_Model):
    """Fighters joining a faction's cells over time (the law is :mod:`sim.rules.recruitment`).

    Recruits arrive as a Poisson stream, ``fighters_per_month / 30`` a day, drawn once a day.
    Each joins the weakest living cell of the faction whose hide lies in the ``hides`` areas,
    up to ``max_cell_strength``; recruits with no room gather and form a new cell of
    ``new_cell_strength`` at a hide of the areas (at most ``max_new_cells`` over the run),
    following ``tactic`` (none: ``{kind: hide}``; a tactic naming no hides hides in ``hides``).
    """

    faction: Name
    #: no default: the stream is what a scenario says it is (2020 Badia: a few dozen a month)
    fighters_per_month: FiniteFloat = Field(ge=0)
    hides: list[Name] = Field(min_length=1)                     # area names
    #: a dozen fighters is about what two or three pickups carry and one cave hides
    max_cell_strength: Int = Field(default=12, ge=1)
    #: recruits strike out as a small group, a squad of half a dozen
    new_cell_strength: Int = Field(default=6, ge=1)
    #: new cells take room in the force table reserved when the run starts: none unless asked
    max_new_cells: Int = Field(default=0, ge=0)
    #: the tactic of new cells, a tactic mapping as a unit's (checked with the scenario)
    tactic: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _strengths(self) -> RecruitmentSpec:
        if self.new_cell_strength > self.max_cell_strength:
            raise ValueError(f"new_cell_strength ({self.new_cell_strength}) must not exceed "
                             f"max_cell_strength ({self.max_cell_strength})")
        return self


# ----------------------------------------------------------------- caches (sim.rules.caches)


class CachesSpec(_Model):
    """Supplies dug in at a faction's hides (the law is :mod:`sim.rules.caches`).

    Every hide cell of the ``hides`` areas is a cache holding up to ``stock_days_per_cache``
    days (of one cell's use) of water, of fuel and, with ``ammo``, of ammunition; a cell of
    the faction resting on it refills from the stock, and the stock grows back at
    ``refill_days_per_month`` (smuggling). Without this section the faction refills water and
    fuel at any cave for free, and never ammunition.
    """

    faction: Name
    hides: list[Name] = Field(min_length=1)                     # area names
    #: a cave stocked for three or four refills of a cell's three days' load
    stock_days_per_cache: FiniteFloat = Field(default=10.0, ge=0)
    #: a smuggling run to each cache every month or so, with a few days' supplies
    refill_days_per_month: FiniteFloat = Field(default=3.0, ge=0)
    ammo: bool = True


# ----------------------------------------------------------------- air strikes (sim.rules.air)


class AirStrikesSpec(_Model):
    """A faction's air strikes on located enemy units (the law is :mod:`sim.rules.air`).

    Each hour the enemy units the faction knows of (sightings at most ``max_age_hours`` old,
    at least ``min_cell_strength`` strong, outside zones the faction is barred from) and has
    not struck at for that sighting become requests, at most ``sorties_per_day`` in any 24
    hours; a strike lands ``delay_hours`` later on the last known cell and, if the target is
    still within one cell of it, hits with ``hit_probability`` and kills
    ``Binomial(strength, killed_fraction)``.
    """

    faction: Name
    #: a handful of sorties a day over the central Badia (illustrative, not an order of battle)
    sorties_per_day: Int = Field(default=4, ge=0)
    #: the report goes up the chain and an aircraft is tasked from an airbase: hours, not minutes
    delay_hours: Int = Field(default=3, ge=0)
    #: a group spotted hours ago in broken ground is often gone or under cover
    hit_probability: FiniteFloat = Field(default=0.3, ge=0, le=1)
    #: a strike on a dispersed group lying up kills a fraction of it, rarely all
    killed_fraction: FiniteFloat = Field(default=0.25, ge=0, le=1)
    #: older sightings say too little about where the group is now to task an aircraft
    max_age_hours: Int = Field(default=6, ge=0)
    #: no sortie for a lone fighter
    min_cell_strength: Int = Field(default=2, ge=0)


# ----------------------------------------------------------------- mines and IEDs (sim.rules.mines)


class MinesSpec(_Model):
    """How mines and IEDs laid on roads behave once laid (laying is a tactic, `mine_laying`).

    A driving vehicle of a victim faction that enters a mined cell is one trial: a garrison
    patrol first finds and clears the mine with `clearance_probability`; otherwise the vehicle
    strikes it with `strike_probability`, else passes unharmed. A strike kills each occupant of
    the struck vehicle with `killed_fraction` (``Binomial(aboard, killed_fraction)``). An unstruck
    mine is inert `lifetime_days` after it was laid. The law is :mod:`sim.rules.mines`."""

    #: a pressure plate or a victim-operated IED under one lane of a desert road: about one
    #: vehicle (or column) in two that drives the stretch sets it off, the other drives past
    strike_probability: FiniteFloat = Field(default=0.5, ge=0, le=1)
    #: no route-clearance engineers in the Badia: a patrol scanning the verges from its
    #: vehicles spots about one mine in five before it drives onto it
    clearance_probability: FiniteFloat = Field(default=0.2, ge=0, le=1)
    #: an anti-tank mine or a large IED under a pickup or a bus kills about two in five of those
    #: aboard (2020 Badia reports: most strikes killed 1 to 5 of a vehicle's crew)
    killed_fraction: FiniteFloat = Field(default=0.4, ge=0, le=1)
    #: an IED's battery runs down and wind-blown sand buries or exposes the plate: after about a
    #: month a mine no longer goes off (raise it for factory-made mines, which last years)
    lifetime_days: FiniteFloat = Field(default=30.0, gt=0)
    #: a mine does not choose its victim: civilian vehicles strike it whether or not the
    #: scenario makes their faction hostile to the layer's (the layer's own side never does)
    civilians_strike: bool = True


# ----------------------------------------------------------------- the section


class CampaignSpec(_Model):
    """The campaign mechanisms of a scenario (all optional)."""

    recruitment: list[RecruitmentSpec] = Field(default_factory=list)
    caches: list[CachesSpec] = Field(default_factory=list)
    air_strikes: list[AirStrikesSpec] = Field(default_factory=list)
    mines: MinesSpec | None = None
    #: Insurgents know where the hostile posts stand (refreshed daily): checkpoints and
    #: strongpoints are no secret to the people who drive past them.
    posts_known: bool = True
    #: Days until a post (strongpoint, border post) the insurgents destroyed is manned again at
    #: full strength; none: lost for good (the default, as outside campaigns). The documented
    #: garrison re-manned its posts; without this, a year of raids runs out of targets.
    regarrison_days: FiniteFloat | None = Field(default=None, gt=0, le=365)
    #: The first day of the period the campaign replays; the days from ``start`` to it are a
    #: warm-up. A run starts from the scenario's force, a guess, with every cell and garrison
    #: unit fresh; it takes weeks to settle into the campaign's rhythm (rests out of step,
    #: QRFs worn to their working strength), and a documented year begins with the insurgency
    #: already under way. ``python -m sim.analysis.campaign`` counts months and the strength
    #: ratio from this day; calibrations compare observations by date, so the warm-up is never
    #: compared with anything. None: no warm-up.
    measured_from: date | None = None
