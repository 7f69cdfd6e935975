"""Insurgent cells: what every insurgent behaviour shares, and the hide and refuge tactics.

Every insurgent behaviour derives from :class:`CellBehaviour`, which holds what all of them
share: where the cell's hides are, going to ground by day, finding water when it runs dry,
avoiding fights without ammunition (no raid, ambush or assault is launched, and the cell does
not fire), running for a refuge zone when pursued, and (``split_when_pursued``) splitting in two
that run to different hides. A cell whose vehicles are out of fuel walks (see
``Orders.hours_along`` in :mod:`sim.engine.orders`). The other insurgent tactics live in
:mod:`sim.tactics.raids`, :mod:`sim.tactics.ambush`, :mod:`sim.tactics.seizure` and
:mod:`sim.tactics.crossing`.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation

from sim.rules.state import Posture
from sim.tactics.base import Behaviour
from sim.world.clock import LightLevel

#: A pursuer closer than this (km) makes a cell run for refuge.
PURSUIT_ALERT_KM = 25.0
#: How far inside a refuge zone a fleeing cell goes (km): beyond the pursuers' weapons.
REFUGE_DEPTH_KM = 4.0
#: Refuge zones farther than this (km) are out of reach; the cell goes to ground instead.
REFUGE_REACH_KM = 60.0
#: A refuge cell's hides keep this many cells clear of any border line, so moving between them
#: never steps over a border the refuge zone straddles.
REFUGE_BORDER_CLEARANCE_CELLS = 3
#: Only pursuers the faction saw this recently (hours) set off the refuge reflex: an older
#: sighting says little about where the pursuer is now.
PURSUER_MAX_AGE_HOURS = 2
#: Going to ground picks at random among this many nearest hides, so a cell is not always
#: found back in the cave it came from.
GO_TO_GROUND_HIDES = 3
#: Chance, at each night-time decision of a hidden cell, that it moves to another hide:
#: relocating now and then keeps the garrison guessing.
RELOCATE_CHANCE = 0.15
#: A relocating cell picks among this many next-nearest hides (a short night's walk).
RELOCATE_HIDES = 3
#: A hidden cell re-decides this often (hours) outside full daylight, to catch its chance to
#: relocate.
HIDE_RECHECK_HOURS = 6
#: Below this much water (days of normal use) a hidden cell goes for water at night, with time
#: in hand to reach it.
LOW_WATER_DAYS = 0.5


class CellBehaviour(Behaviour):
    """Shared insurgent logic; on its own it is the **hide** tactic.

    Uses: ``model.sites`` (hides, refuge cells, water, nearest), ``model.terrain.cave`` / ``zone``,
    ``model.barred_zones``, ``model.hostile``, ``model.known_enemies``, ``model.distance_km``,
    ``model.rng``, ``model.calendar``, ``model.log``, ``model.spawn_cell`` (a split);
    ``unit.go_to``, ``unit.halt``, ``unit.cease_fire``, ``unit.supply``, ``unit.sleep_until``.
    """

    kind = "hide"
    wakes_on_light = True

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        t = model.terrain
        areas = list(getattr(params, "hides", None) or [])
        self.hides = self._hide_cells(areas)
        self.refuge_zones = self._refuge_zones(getattr(params, "zones", None))
        self.in_refuge = False
        unit.posture = Posture.HIDDEN if t.cave.ravel()[unit.cell] else Posture.RESTING

    # --- hides ------------------------------------------------------------------------------
    def _hide_cells(self, areas: list[str]) -> np.ndarray:
        """Cave cells in the named areas; else caves within reach; else rugged ground nearby."""
        return self.model.sites.hides(areas)

    def back_in_hide(self) -> bool:
        """The start of each night's decision: a cell still on the move keeps going, one away
        from its hides goes to ground, one in a hide lies hidden. True if it is in its hide."""
        u = self.unit
        if u.is_moving:
            return False
        if not self.at_hide():
            self.go_to_ground()
            self.set_state("withdraw")
            return False
        u.halt(Posture.HIDDEN)
        self.set_state("hidden")
        return True

    def nearest_hides(self, cell: int, k: int) -> np.ndarray:
        """The ``k`` hides nearest to ``cell``."""
        return self.model.sites.nearest(self.hides, cell, k)

    def at_hide(self) -> bool:
        """In a cave, or on one of its hides. (A cell is its own nearest hide exactly when it
        is one: a set lookup, not a search of every hide.)"""
        t = self.model.terrain
        cell = self.unit.cell
        return bool(t.cave.item(cell)) or (len(self.hides) and cell in self._hide_set())

    def _hide_set(self) -> frozenset[int]:
        """The hides as a set, made again if ``hides`` is replaced."""
        kept = self.__dict__.get("_hides_kept")
        if kept is None or kept[0] is not self.hides:
            kept = self._hides_kept = (self.hides, frozenset(self.hides.tolist()))
        return kept[1]

    def go_to_ground(self, near: int | None = None) -> bool:
        """Withdraw to one of the nearest hides (not necessarily the one it came from)."""
        u = self.unit
        choices = self.nearest_hides(u.cell if near is None else near, GO_TO_GROUND_HIDES)
        if len(choices) == 0:
            u.halt(Posture.HIDDEN)
            return False
        target = int(choices[self.model.rng.integers(len(choices))])
        if target == u.cell:
            u.halt(Posture.HIDDEN)
            return True
        return u.go_to(target, Posture.WITHDRAWING)

    # --- refuge -----------------------------------------------------------------------------
    def _refuge_zones(self, names) -> list[int]:
        """Zones the cell may enter that bar at least one of its enemies (where their pursuit
        must stop), read from the model's current rules (events can change them)."""
        m = self.model
        t = m.terrain
        fi = m.faction_index[self.unit.faction]
        zones = []
        for z, info in enumerate(t.zones):
            if names and info.name not in names:
                continue
            if z in m.barred_zones[fi]:
                continue
            if any(z in m.barred_zones[j] for j in np.flatnonzero(m.hostile[fi])):
                zones.append(z)
        return zones

    def pursuers(self) -> list[int]:
        """Enemy units known to be chasing, or closing on, this cell."""
        m = self.model
        f = m.force
        idx, cells, _ = m.known_enemies(self.unit, max_age_hours=PURSUER_MAX_AGE_HOURS)
        out = []
        for i, cell in zip(idx.tolist(), cells.tolist(), strict=True):
            if f.posture[i] == int(Posture.PURSUING) and (
                m.distance_km(cell, self.unit.cell) <= PURSUIT_ALERT_KM
            ):
                out.append(i)
        return out

    def _refuge_cells(self) -> np.ndarray:
        """Cells a little inside the refuge zones (so a cell that reaches one is clearly in):
        deep enough that no one outside is within weapon range."""
        return self.model.sites.refuge_cells(self.refuge_zones, REFUGE_DEPTH_KM)

    def seek_refuge(self) -> bool:
        """Run for the nearest refuge zone barred to the pursuers; False if none is in reach."""
        m = self.model
        t = m.terrain
        u = self.unit
        if not self.refuge_zones:
            return False
        target = m.sites.nearest(self._refuge_cells(), u.cell, 1)
        if len(target) == 0 or m.distance_km(int(target[0]), u.cell) > REFUGE_REACH_KM:
            return False
        if t.zone.ravel()[u.cell] in self.refuge_zones:
            self.in_refuge = True
            u.halt(Posture.HIDDEN)
            return True
        if u.go_to(int(target[0]), Posture.WITHDRAWING):
            self.set_state("fleeing")
            m.log("refuge_run", u.cell, u.faction, unit=u.name)
            return True
        return False

    # --- shared reflexes ---------------------------------------------------------------------
    def reflexes(self) -> bool:
        """Urgent reactions common to all cells; True if one took over this decision."""
        u = self.unit
        m = self.model
        if self.state == "fleeing":
            if m.terrain.zone.ravel()[u.cell] in self.refuge_zones:
                self.in_refuge = True
                m.log("refuge_reached", u.cell, u.faction, unit=u.name)
                self.on_refuge()
                u.halt(Posture.HIDDEN)
                self.set_state("refuge")
                u.sleep_until(self.next_dusk_hour())
                return True
            if u.is_moving:
                return True
            self.set_state("hidden")  # stopped short of the zone (cut off): go to ground
        if self.state == "refuge":
            if self.is_night and not self.pursuers():
                # the hunt is over: back to the hides under cover of the next night
                self.in_refuge = False
                self.go_to_ground()
                self.set_state("withdraw")
            else:
                u.halt(Posture.HIDDEN)
                u.sleep_until(self.next_dusk_hour())
            return True
        alerts = u.alerts
        if alerts and ("detected" in alerts or "engaged" in alerts) and self.pursuers():
            if getattr(self.params, "split_when_pursued", False) and self.split_off():
                return True
            if self.seek_refuge():
                u.cease_fire()
                return True
        if u.supply("ammo") <= 0:
            m.force.fires[u.idx] = False
            u.cease_fire()
        if u.supply("water") < LOW_WATER_DAYS and self.state in ("hidden", "start", "refuge"):
            return self.fetch_water()
        return False

    def split_off(self) -> bool:
        """**Dispersal** (``split_when_pursued``): a pursued cell of ``s >= 2 m`` fighters
        (``m`` = ``split_min_strength``) splits in two, ``ceil(s / 2)`` staying and
        ``floor(s / 2)`` leaving as a new cell with the same tactic, numbers and supplies
        (``model.spawn_cell``). The cell runs for a refuge zone if one is in reach, else goes to
        ground; the new cell makes for another of the nearest hides. The pursuers chase what
        they saw; the new cell is not known to them. False (no split) below ``2 m`` or when the
        force table has no room left.

        Full strengths follow the fighters: the new cell's is its strength, the old cell's
        drops by what left, ``s0' = max(ceil(s / 2), s0 - floor(s / 2))``."""
        m = self.model
        u = self.unit
        f = m.force
        s = int(f.strength[u.idx])
        half = s // 2
        if half < int(self.params.split_min_strength):
            return False
        child = m.spawn_cell(u.faction, u.cell, half, self.params, name=f"{u.name} split",
                             like=u)  # fmt: skip
        if child is None:
            return False
        f.strength[u.idx] = s - half
        f.strength0[u.idx] = max(s - half, float(f.strength0[u.idx]) - half)
        u.cease_fire()
        self.on_split()
        if not self.seek_refuge():
            self.go_to_ground()
            self.set_state("withdraw")
        others = [int(h) for h in self.nearest_hides(u.cell, GO_TO_GROUND_HIDES + 1)
                  if int(h) != u.destination]  # fmt: skip
        b = child.behaviour
        if others:
            child.go_to(others[int(m.rng.integers(len(others)))], Posture.WITHDRAWING)
        b.set_state("withdraw")
        b.until_arrival()
        m.log("cell_split", u.cell, u.faction, unit=u.name, new_unit=child.name,
              strength=s - half, new_strength=half)  # fmt: skip
        return True

    def on_split(self) -> None:
        """Hook: the cell split off half its fighters while pursued (a raid aborts)."""

    def on_refuge(self) -> None:
        """Hook: the cell reached a refuge zone (a raid records how it ended)."""

    def fetch_water(self) -> bool:
        """Go to the nearest water (oasis, well, town, river) or cave cache, by night; a cell
        still dry where it stands (an empty cache: ``campaign.caches``) goes to the next one."""
        m = self.model
        if not self.is_night:
            self.unit.sleep_until(self.next_dusk_hour())
            return True
        target = m.sites.nearest(m.sites.water(), self.unit.cell, 1)
        if len(target) and int(target[0]) == self.unit.cell:
            target = m.sites.nearest(m.sites.water(), self.unit.cell, 2)
            target = target[target != self.unit.cell]
        if len(target) and self.unit.go_to(int(target[0]), Posture.MOVING):
            self.set_state("to_water")
            return True
        return False

    def decide(self) -> None:
        """Hide: stay in the hide by day; at night, now and then, move to another one."""
        u = self.unit
        if self.reflexes():
            return
        if u.is_moving:
            return
        if self.state == "withdraw":
            self.set_state("hidden")
        if not self.at_hide():
            self.go_to_ground()
            return
        u.halt(Posture.HIDDEN)
        self.set_state("hidden")
        m = self.model
        light = m.light
        if light == LightLevel.NIGHT and m.rng.random() < RELOCATE_CHANCE:
            # relocating between caves at night keeps the garrison guessing
            others = self.nearest_hides(u.cell, RELOCATE_HIDES + 1)[1:]
            if len(others):
                u.go_to(int(others[m.rng.integers(len(others))]), Posture.MOVING)
                return
        u.sleep_until(self.next_dusk_hour() if light == LightLevel.DAY
                      else m.hour + HIDE_RECHECK_HOURS)


class RefugeBehaviour(CellBehaviour):
    """**Refuge**: hide close to a zone barred to the enemy and run into it when pursued.

    A cell that starts inside one of its refuge zones stays there: its hides are the zone's
    inner cells.

    Uses: as :class:`CellBehaviour` (its ``zones`` choose the refuges).
    """

    kind = "refuge"

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        if model.terrain.zone.ravel()[unit.cell] in self.refuge_zones:
            # a cell that starts inside its refuge (a camp in the zone) lives there: its hides
            # are the refuge's own cells on its side of every border, not caves a hundred
            # kilometres outside it nor the far side of a border the zone straddles
            t = model.terrain
            cells = self._refuge_cells()
            sides = t.border_side.reshape(len(t.border_side), -1)
            same = (sides[:, cells] == sides[:, [unit.cell]]).all(axis=0)
            near_line = binary_dilation(t.border >= 0, iterations=REFUGE_BORDER_CLEARANCE_CELLS)
            keep = same & ~near_line.ravel()[cells]
            self.hides = cells[keep] if keep.any() else cells
            self.in_refuge = True
