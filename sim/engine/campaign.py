"""The campaign's rules on the run's agenda: recruitment, air strikes, caches and the daily
knowledge of where the hostile posts stand (``scenario.campaign``).

A part of :class:`~sim.engine.model.DesertModel` (a mixin): it uses the model's ``spec``,
``terrain``, ``sites``, ``agenda``, ``force``, ``knowledge``, ``faction_index``, ``hostile``,
``insurgent_faction`` and ``hour``; the rules themselves are in :mod:`sim.rules.recruitment`,
:mod:`sim.rules.air` and :mod:`sim.rules.caches`.
"""

from __future__ import annotations

import numpy as np

from sim.engine.agenda import (
    AIR_REQUEST,
    AIR_STRIKE,
    POSTS_KNOWN,
    RECRUITMENT,
)
from sim.rules.air import AirStrikes
from sim.rules.caches import Caches
from sim.rules.recruitment import (
    HOURS_PER_DAY,
    Recruitment,
    first_arrival_hour,
)
from sim.scenario.vocab import KINDS

#: Force-table codes of the static posts (what insurgents know the positions of).
POST_KIND_CODES = np.array([KINDS.index("strongpoint"), KINDS.index("border_post")])


class CampaignRules:
    """The campaign phases of the agenda (mixed into ``DesertModel``)."""

    def _start_campaign(self) -> None:
        """The campaign's rules (``scenario.campaign``): recruitment draws once a day and air
        strikes are asked for every hour, both on the agenda; caches are drawn from in the
        supply phase, and a faction with caches no longer refills at every cave for free."""
        camp = self.spec.campaign
        t = self.terrain
        self.recruitment: list[Recruitment] = []
        self.air_strikes: list[AirStrikes] = []
        self.caches: Caches | None = None
        self._cave_refill = self.insurgent_faction  # factions refilled at any cave for free
        if camp is None:
            return
        for spec in camp.recruitment:
            mask = np.zeros(t.shape, dtype=bool)
            for area in spec.hides:
                mask |= t.areas[area]
            rec = Recruitment(spec, self.faction_index[spec.faction], mask,
                              self.sites.hides(spec.hides))  # fmt: skip
            self.recruitment.append(rec)
            self.agenda.schedule(first_arrival_hour(self.spec.start), RECRUITMENT, rec)
        for spec in camp.air_strikes:
            air = AirStrikes(spec, self.faction_index[spec.faction], len(self.force.alive))
            self.air_strikes.append(air)
            self.agenda.schedule(0, AIR_REQUEST, air)
        if camp.posts_known:
            self.agenda.schedule(0, POSTS_KNOWN, None)
        if camp.caches:
            entries = [(self.faction_index[c.faction], self.sites.hides(c.hides), c)
                       for c in camp.caches]  # fmt: skip
            self.caches = Caches(entries, len(self.faction_names), t.rows * t.cols)
            self._cave_refill = self.insurgent_faction & ~self.caches.factions

    def _campaign_due(self, phase: int, item) -> None:
        """An agenda entry of the campaign: a day's recruits, an hour's strike requests (each
        strike put on the agenda for when it lands; the next requests in an hour), a strike."""
        if phase == RECRUITMENT:
            item.day(self)
            self.agenda.schedule(self.hour + HOURS_PER_DAY, RECRUITMENT, item)
        elif phase == AIR_REQUEST:
            for strike in item.requests(self):
                self.agenda.schedule(strike.lands_hour, AIR_STRIKE, (item, strike))
            self.agenda.schedule(self.hour + 1, AIR_REQUEST, item)
        elif phase == AIR_STRIKE:
            air, strike = item
            air.land(self, strike)
        elif phase == POSTS_KNOWN:
            self._posts_known()
            self.agenda.schedule(self.hour + HOURS_PER_DAY, POSTS_KNOWN, None)

    def _posts_known(self) -> None:
        """Insurgent factions know where the hostile posts (strongpoints, border posts) stand:
        a checkpoint is no secret to the people who drive past it. Recorded as a sighting of each
        living post (by the post itself, so no insurgent unit counts as the observer), shared
        after the faction's comms delay and refreshed daily."""
        f = self.force
        n = f.n
        static = f.alive[:n] & np.isin(f.kind[:n], POST_KIND_CODES)
        for fi in np.flatnonzero(self.insurgent_faction).tolist():
            posts = np.flatnonzero(static & self.hostile[fi, f.faction[:n]])
            if len(posts):
                self.knowledge.record(self.hour, np.full(len(posts), fi), posts, posts,
                                      f.cells(posts, self.terrain.cols))
