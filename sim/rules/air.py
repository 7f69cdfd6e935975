"""Air strikes: a faction strikes the enemy units it has located, hours later, where they were
seen (``campaign.air_strikes``, one :class:`~sim.scenario.campaign.AirStrikesSpec` each).

**Requests.** At the start of each hour ``h`` (an entry on the run's agenda), the faction's
known enemies (``Knowledge.known_to``: sightings shared with it by ``h``, at most
``max_age_hours`` old) become requests when the unit is alive, at least ``min_cell_strength``
strong, seen outside every zone the faction is barred from, has no strike on its way, and was
seen *after* the sighting of its last strike (one strike per sighting). Freshest sightings go
first, then the strongest units, then the lowest index; at most ``sorties_per_day`` requests in
any 24 consecutive hours (``N``), so at most ``N`` strikes land in any 24 hours, a calendar day
included.

**Landing.** A strike requested at ``h`` lands at ``h + delay_hours`` on the cell of that
sighting, ``a``. The target, now at ``c``, is *on target* when it is alive and
``max(|row_c - row_a|, |col_c - col_a|) <= AIM_RADIUS_CELLS`` (and not in a zone the faction is
barred from); a target that moved farther is never hit. On target, the strike hits with
``p = hit_probability`` and kills ``K ~ Binomial(s, f)`` of the ``s`` fighters
(``f = killed_fraction``)::

    P(hit) = p,    E[K | hit] = s f,    E[K] = p s f.

The losses go through :func:`sim.rules.engagements.apply_losses` (a unit that loses its last
fighter is destroyed, :meth:`RunState.unit_destroyed`), and a target on target is alerted
``engaged`` (it knows it was found). Events: ``air_strike`` at the cell aimed at (faction: the
striker's; ``unit``: the target, ``target_faction``, ``requested_hour``, ``seen_hour``,
``distance_cells`` from the target's cell at landing, ``on_target``, ``hit``,
``killed`` and ``losses`` ``{target faction: killed}``, as an engagement carries, so the
metrics count them in ``losses__<faction>``). A strike is not an engagement.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.rules.engagements import apply_losses
from sim.rules.knowledge import NEVER

if TYPE_CHECKING:
    from sim.rules.state import RunState
    from sim.scenario.campaign import AirStrikesSpec

#: A strike covers the cell aimed at and its eight neighbours (a 1 km cell is about what a few
#: bombs or a helicopter's rockets cover); a target beyond is missed for sure.
AIM_RADIUS_CELLS = 1
#: The window the sortie limit counts over (hours): a day.
SORTIE_WINDOW_HOURS = 24


@dataclass(frozen=True)
class Strike:
    """One strike on its way: who flies it, at whom, where, when asked and when it lands."""

    faction: int
    target: int
    aim_cell: int
    seen_hour: int
    requested_hour: int
    lands_hour: int


# --------------------------------------------------------------------------- the pure laws
def miss_cells(aim_cell: int, target_cell: int, cols: int) -> int:
    """Cells between the target and the cell aimed at (Chebyshev: 1 for a neighbour)."""
    ra, ca = divmod(int(aim_cell), cols)
    rt, ct = divmod(int(target_cell), cols)
    return max(abs(ra - rt), abs(ca - ct))


def on_target(aim_cell: int, target_cell: int, cols: int) -> bool:
    """The target stands within ``AIM_RADIUS_CELLS`` (Chebyshev) of the cell aimed at."""
    return miss_cells(aim_cell, target_cell, cols) <= AIM_RADIUS_CELLS


def outcome(rng: np.random.Generator, strength: float, hit_probability: float,
            killed_fraction: float) -> tuple[bool, int]:
    """``(hit, killed)`` of a strike on target: ``hit ~ Bernoulli(p)``, then
    ``K ~ Binomial(s, f)`` (no second draw on a miss)."""
    hit = bool(rng.random() < hit_probability)
    killed = int(rng.binomial(int(strength), killed_fraction)) if hit else 0
    return hit, killed


def choose(ages: np.ndarray, strength: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` requests flown first: freshest, then strongest, then lowest
    index."""
    order = np.lexsort((idx, -strength, ages))
    return order[: max(int(k), 0)]


# --------------------------------------------------------------------------- the run's strikes
class AirStrikes:
    """One ``campaign.air_strikes`` entry during a run: the strikes on their way, the sighting
    each unit was last struck for, and the request hours of the last day.

    Args:
        spec: the scenario's entry.
        faction_index: index of ``spec.faction`` in the run's factions.
        capacity: rows of the force table.
    """

    def __init__(self, spec: AirStrikesSpec, faction_index: int, capacity: int):
        self.spec = spec
        self.faction_index = faction_index
        self.struck_seen = np.full(capacity, NEVER, dtype=np.int64)  # sighting last struck for
        self.pending = np.zeros(capacity, dtype=bool)
        self.recent: deque[int] = deque()  # request hours within the sortie window
        self.requested = 0
        self.on_target = 0
        self.hits = 0

    def _barred(self, run: RunState, cells: np.ndarray) -> np.ndarray:
        barred = run.barred_zones[self.faction_index]
        if not barred:
            return np.zeros(len(cells), dtype=bool)
        return np.isin(run.terrain.zone.ravel()[cells], sorted(barred))

    def requests(self, run: RunState) -> list[Strike]:
        """This hour's new strike requests (see the module's law)."""
        spec = self.spec
        hour = run.hour
        while self.recent and self.recent[0] <= hour - SORTIE_WINDOW_HOURS:
            self.recent.popleft()
        free = spec.sorties_per_day - len(self.recent)
        if free <= 0:
            return []
        fi = self.faction_index
        f = run.force
        idx, cells, ages = run.knowledge.known_to(fi, hour, None, spec.max_age_hours)
        seen = run.knowledge.seen_hour[fi, idx]
        ok = (
            f.alive[idx] & run.hostile[fi, f.faction[idx]]
            & (f.strength[idx] >= spec.min_cell_strength)
            & ~self.pending[idx] & (seen > self.struck_seen[idx])
        )
        ok &= ~self._barred(run, cells)
        idx, cells, ages, seen = idx[ok], cells[ok], ages[ok], seen[ok]
        if len(idx) == 0:
            return []
        pick = choose(ages, f.strength[idx], idx, free)
        out = []
        for k in pick.tolist():
            i = int(idx[k])
            self.pending[i] = True
            self.struck_seen[i] = int(seen[k])
            self.recent.append(hour)
            out.append(Strike(fi, i, int(cells[k]), int(seen[k]), hour,
                              hour + int(spec.delay_hours)))  # fmt: skip
        self.requested += len(out)
        return out

    def land(self, run: RunState, strike: Strike) -> dict:
        """The strike lands: on target or not, hit or not, losses applied; returns its event."""
        spec = self.spec
        f = run.force
        i = strike.target
        self.pending[i] = False
        cols = run.terrain.cols
        cell = int(f.row[i]) * cols + int(f.col[i])
        aimed = bool(f.alive[i]) and on_target(strike.aim_cell, cell, cols) and not bool(
            self._barred(run, np.array([cell]))[0])
        hit, killed = (outcome(run.rng, f.strength[i], spec.hit_probability,
                               spec.killed_fraction) if aimed else (False, 0))  # fmt: skip
        unit = run.units[i]
        if killed:
            apply_losses(run, [i], killed)
        if aimed:
            self.on_target += 1
            self.hits += hit
            if f.alive[i]:
                unit.alert("engaged")
        return run.log(
            "air_strike", strike.aim_cell, run.faction_names[strike.faction], unit=unit.name,
            target_faction=unit.faction, requested_hour=strike.requested_hour,
            seen_hour=strike.seen_hour, distance_cells=miss_cells(strike.aim_cell, cell, cols),
            on_target=aimed, hit=hit, killed=killed, losses={unit.faction: killed},
        )
