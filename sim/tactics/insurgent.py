"""Insurgent tactics: hide, night raid, highway ambush, town seizure, border crossing, refuge.

Every insurgent behaviour derives from :class:`CellBehaviour`, which holds what all of them
share: where the cell's hides are, going to ground by day, finding water when it runs dry,
avoiding fights without ammunition (no raid, ambush or assault is launched, and the cell does
not fire), and running for a refuge zone when pursued. A cell whose vehicles are out of fuel
walks (see ``DesertModel._hours_along``).
"""

from __future__ import annotations

import numpy as np

from sim.engine.units import Posture
from sim.tactics import Behaviour, nearest
from sim.world.clock import LightLevel

#: A pursuer closer than this (km) makes a cell run for refuge.
PURSUIT_ALERT_KM = 25.0
#: How far inside a refuge zone a fleeing cell goes (km): beyond the pursuers' weapons.
REFUGE_DEPTH_KM = 4.0
#: Refuge zones farther than this (km) are out of reach; the cell goes to ground instead.
REFUGE_REACH_KM = 60.0
#: A border crossing looks for a gap at most this much longer (km) than the direct route.
GAP_DETOUR_KM = 15.0
#: An ambush cell that lost fighters lies up this many nights before it ambushes again.
RECOVERY_NIGHTS = 3
#: Hours for which a hostile patrol seen near a stretch of road keeps ambushers off it.
PATROL_MEMORY_HOURS = 12
#: A raid detected farther than this (km) from its target is "detected early" and aborts.
EARLY_DETECTION_KM = 3.0
#: Hours of darkness a raid keeps in hand for the unexpected.
DAWN_MARGIN_HOURS = 1.0


class CellBehaviour(Behaviour):
    """Shared insurgent logic; on its own it is the **hide** tactic."""

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
        t = self.model.terrain
        cache = self.model.__dict__.setdefault("_hide_cache", {})
        key = tuple(areas)
        if key not in cache:
            mask = np.zeros(t.shape, bool)
            for name in areas:
                mask |= t.areas[name]
            caves = np.flatnonzero(mask & t.cave) if areas else np.flatnonzero(t.cave)
            if len(caves) == 0:
                rugged = mask if areas else (t.concealment >= 0.5)
                caves = np.flatnonzero(rugged & np.isfinite(t.move_cost["foot"]))
            cache[key] = caves
        return cache[key]

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

    def nearest_hides(self, cell: int, k: int = 3) -> np.ndarray:
        return nearest(self.hides, cell, self.model.terrain.cols, k)

    def at_hide(self) -> bool:
        t = self.model.terrain
        return bool(t.cave.ravel()[self.unit.cell]) or (
            len(self.hides) and self.unit.cell in set(self.nearest_hides(self.unit.cell, 1))
        )

    def go_to_ground(self, near: int | None = None) -> bool:
        """Withdraw to one of the nearest hides (not necessarily the one it came from)."""
        u = self.unit
        choices = self.nearest_hides(u.cell if near is None else near, 3)
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
        idx, cells, _ = m.known_enemies(self.unit, max_age_hours=2)
        out = []
        for i, cell in zip(idx.tolist(), cells.tolist(), strict=True):
            if f.posture[i] == int(Posture.PURSUING) and (
                m.distance_km(cell, self.unit.cell) <= PURSUIT_ALERT_KM
            ):
                out.append(i)
        return out

    def _refuge_cells(self) -> np.ndarray:
        """Cells a little inside the refuge zones (so a cell that reaches one is clearly in)."""
        m = self.model
        t = m.terrain
        cache = m.__dict__.setdefault("_refuge_cache", {})
        key = tuple(self.refuge_zones)
        if key not in cache:
            from scipy.ndimage import binary_erosion

            inside = np.isin(t.zone, self.refuge_zones)
            # deep enough inside that no one outside is within weapon range
            deep = binary_erosion(inside, iterations=max(1, round(REFUGE_DEPTH_KM / t.cell_km)))
            cache[key] = np.flatnonzero(deep if deep.any() else inside)
        return cache[key]

    def seek_refuge(self) -> bool:
        """Run for the nearest refuge zone barred to the pursuers; False if none is in reach."""
        m = self.model
        t = m.terrain
        u = self.unit
        if not self.refuge_zones:
            return False
        target = nearest(self._refuge_cells(), u.cell, t.cols, 1)
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
        t = m.terrain
        if self.state == "fleeing":
            if t.zone.ravel()[u.cell] in self.refuge_zones:
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
        if self.alerted("detected", "engaged") and self.pursuers() and self.seek_refuge():
            u.cease_fire()
            return True
        if u.supply("ammo") <= 0:
            m.force.fires[u.idx] = False
            u.cease_fire()
        if u.supply("water") < 0.5 and self.state in ("hidden", "start", "refuge"):
            return self.fetch_water()
        return False

    def on_refuge(self) -> None:
        """Hook: the cell reached a refuge zone (a raid records how it ended)."""

    def fetch_water(self) -> bool:
        """Go to the nearest water (oasis, well, town, river) or cave cache, by night."""
        m = self.model
        t = m.terrain
        if not self.is_night:
            self.unit.sleep_until(self.next_dusk_hour())
            return True
        sources = m.__dict__.setdefault(
            "_water_cells", np.flatnonzero(t.water_available.ravel() | t.cave.ravel())
        )
        target = nearest(sources, self.unit.cell, t.cols, 1)
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
        if self.state == "withdraw" and not u.is_moving:
            self.set_state("hidden")
        if not self.at_hide():
            self.go_to_ground()
            return
        u.halt(Posture.HIDDEN)
        self.set_state("hidden")
        if self.is_night and self.model.rng.random() < 0.15:
            # relocating between caves at night keeps the garrison guessing
            others = self.nearest_hides(u.cell, 4)[1:]
            if len(others):
                u.go_to(int(others[self.model.rng.integers(len(others))]), Posture.MOVING)
                return
        u.sleep_until(self.next_dusk_hour() if self.is_day else self.hour + 6)


class RefugeBehaviour(CellBehaviour):
    """**Refuge**: hide close to a zone barred to the enemy and run into it when pursued."""

    kind = "refuge"


class NightRaid(CellBehaviour):
    """**Night raid**: leave the hide after dusk, strike a target outpost with surprise, and be
    back in a hide (not necessarily the same) before first light.

    States: hidden -> approach (guns ready: the fight opens when in range) -> withdraw ->
    hidden (or the refuge when one is nearer than the hides). Aborts if detected on the
    approach (``abort_if_detected``) or if dawn would catch the group in the open.
    """

    kind = "night_raid"

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        self.targets = [model.cell_of_place(name) for name in params.targets]
        self.raid: dict | None = None
        self.speed_kmh = max(float(model.force.offroad_speed_kmh[unit.idx]), 1.0)

    def _hours_between(self, a: int, b: int) -> float:
        # a quick estimate for planning: straight line at 70% of off-road speed
        return self.model.distance_km(a, b) / (0.7 * self.speed_kmh)

    def _pick_target(self) -> tuple[int, int] | None:
        """(target cell, defending unit) of the nearest defended target within reach."""
        m = self.model
        f = m.force
        fi = m.faction_index[self.unit.faction]
        best = None
        for cell in self.targets:
            d = m.distance_km(self.unit.cell, cell)
            if d > self.params.max_distance_km:
                continue
            r, c = divmod(cell, m.terrain.cols)
            here = np.flatnonzero(
                f.alive[: f.n] & (f.row[: f.n] == r) & (f.col[: f.n] == c)
                & m.hostile[fi, f.faction[: f.n]]
            )
            if len(here) == 0:
                continue
            if best is None or d < best[0]:
                best = (d, cell, int(here[np.argmax(f.strength[here])]))
        return None if best is None else (best[1], best[2])

    def decide(self) -> None:
        u = self.unit
        m = self.model
        if self.reflexes():
            if self.raid and self.state == "fleeing":
                self.raid["fled"] = True
            return
        state = self.state
        if state in ("start", "hidden", "to_water"):
            if not self.back_in_hide():
                return
            if not self.is_night:
                u.sleep_until(self.next_dusk_hour())
                return
            self.try_launch()
        elif state == "approach":
            dark_left = self.hours_to_first_light()
            back = self._hours_between(self.raid["target_cell"], u.cell) + DAWN_MARGIN_HOURS
            far = m.distance_km(u.cell, self.raid["target_cell"]) > EARLY_DETECTION_KM
            if self.alerted("engaged", "broke_off"):
                # a raid is one sharp blow: after the hour's fight, away before the relief comes
                u.cease_fire()
                self.withdraw()
            elif not m.force.alive[self.raid["defender"]]:
                self.abort("target_gone")
            elif self.params.abort_if_detected and self.alerted("detected") and far:
                self.abort("detected")
            elif dark_left < back + 1.0:
                self.abort("dawn")
            elif not u.is_moving:
                # in position but no fight yet (the defenders moved): give up for tonight
                self.abort("no_contact")
            else:
                u.sleep_until(m.hour + 1)
        elif state == "withdraw":
            if u.is_moving:
                return
            self.finish()

    def try_launch(self) -> None:
        u = self.unit
        m = self.model
        if u.supply("ammo") <= 0:
            u.sleep_until(self.next_dusk_hour())  # nothing to fight with: stay hidden
            return
        pick = self._pick_target()
        if pick is None:
            u.sleep_until(self.next_dusk_hour())
            return
        cell, defender = pick
        there = self._hours_between(u.cell, cell)
        back = there  # to a hide near the start or the target: about the same distance
        if there + 1.0 + back + DAWN_MARGIN_HOURS > self.hours_to_first_light():
            u.sleep_until(self.next_dusk_hour())  # not enough darkness left tonight
            return
        # drive to just inside weapon range of the target and open fire on arrival
        if not u.go_to(cell, Posture.MOVING):
            u.sleep_until(self.next_dusk_hour())
            return
        standoff = 0.8 * float(m.force.weapon_range_km[u.idx]) / m.terrain.grid.cell_km
        stop = max(0, len(u.path) - 1 - int(standoff))
        u.follow(u.path[: stop + 1], Posture.MOVING)
        u.attack(defender, "raid")
        self.raid = {"target_cell": cell, "defender": defender, "start_hour": m.hour,
                     "light": int(m.light)}  # fmt: skip
        m.log("raid_start", u.cell, u.faction, unit=u.name, light=int(m.light),
              night=bool(m.light == LightLevel.NIGHT))  # fmt: skip
        self.set_state("approach")

    def abort(self, reason: str) -> None:
        self.model.log("raid_abort", self.unit.cell, self.unit.faction, unit=self.unit.name,
                       reason=reason)  # fmt: skip
        self.raid["aborted"] = reason
        self.withdraw()

    def withdraw(self) -> None:
        """Fall back to a hide; or, when a refuge zone is nearer than any hide, run for it
        (the raid has stirred up the garrison and the zone is where pursuit must stop)."""
        u = self.unit
        m = self.model
        if self.refuge_zones and self.raid is not None:
            hide = self.nearest_hides(u.cell, 1)
            refuge = self._refuge_cells()
            near_refuge = nearest(refuge, u.cell, m.terrain.cols, 1)
            if len(near_refuge) and (
                len(hide) == 0
                or m.distance_km(u.cell, int(near_refuge[0])) < m.distance_km(u.cell, int(hide[0]))
            ) and self.seek_refuge():
                return
        self.go_to_ground()
        self.set_state("withdraw")

    def on_refuge(self) -> None:
        if self.raid is not None:
            u = self.unit
            self.model.log("raid_end", u.cell, u.faction, unit=u.name, in_hide=False,
                           in_refuge=True, before_first_light=bool(self.is_night),
                           aborted=self.raid.get("aborted", ""))  # fmt: skip
            self.raid = None

    def finish(self) -> None:
        u = self.unit
        m = self.model
        in_hide = self.at_hide()
        before_light = m.light == LightLevel.NIGHT
        u.halt(Posture.HIDDEN)
        if self.raid is not None:
            m.log("raid_end", u.cell, u.faction, unit=u.name, in_hide=bool(in_hide),
                  in_refuge=False, before_first_light=bool(before_light and in_hide),
                  aborted=self.raid.get("aborted", ""))  # fmt: skip
        self.raid = None
        self.set_state("hidden")
        u.sleep_until(self.next_dusk_hour())


class Ambush(CellBehaviour):
    """**Highway interdiction**: move at night to a concealed spot beside a road segment and lie
    in wait (through the next day) for ``wait_hours``; spring on a passing convoy or patrol no
    stronger than ``max_odds`` times the cell; withdraw to a hide at the following dusk.
    A segment under ambush, or attacked in the last ``closure_hours``, counts as closed.

    States: hidden -> to_site -> waiting -> (attack) -> withdraw -> hidden.
    """

    kind = "ambush"

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        self.site: int | None = None
        self.road_cell: int | None = None
        self.wait_until = -1
        self.watching: list[int] = []  # road cells this ambush covers (model tripwires)
        self.set_hour = -1
        self.strength_at_set = 0.0
        self.rest_until = -1

    def _road_cells(self) -> np.ndarray:
        m = self.model
        cache = m.__dict__.setdefault("_ambush_roads", {})
        key = (self.params.road, tuple(self.params.segment or ()))
        if key not in cache:
            segs = [
                s for s in m.metrics.segments
                if s["road"] == self.params.road
                and (not self.params.segment or {s["a"], s["b"]} == set(self.params.segment))
            ]
            cells = np.concatenate([s["cells"] for s in segs]) if segs else np.empty(0, np.int64)
            cache[key] = np.unique(cells)
        return cache[key]

    def _pick_site(self) -> tuple[int, int] | None:
        """(lying-up cell, road cell): a road cell near the hide, and the best-concealed cell
        within weapon range of it (rugged ground or a wadi bank beats the open)."""
        m = self.model
        t = m.terrain
        road = nearest(self._road_cells(), self.unit.cell, t.cols, 8)
        if len(road) == 0:
            return None
        road_cell = int(road[m.rng.integers(len(road))])
        r, c = divmod(road_cell, t.cols)
        reach = max(1, int(0.8 * m.force.weapon_range_km[self.unit.idx] / t.grid.cell_km))
        r0, r1 = max(0, r - reach), min(t.rows, r + reach + 1)
        c0, c1 = max(0, c - reach), min(t.cols, c + reach + 1)
        window = t.concealment[r0:r1, c0:c1]
        passable = np.isfinite(t.move_cost["foot"][r0:r1, c0:c1])
        # a firing position needs a view of the road: folds and wadi banks, not caves
        usable = passable & (t.road[r0:r1, c0:c1] == 0) & ~t.cave[r0:r1, c0:c1]
        score = np.where(usable, window, -1.0)
        k = int(np.argmax(score))
        rr, cc = divmod(k, c1 - c0)
        return (rr + r0) * t.cols + (cc + c0), road_cell

    def decide(self) -> None:
        u = self.unit
        m = self.model
        if self.reflexes():
            return
        state = self.state
        if state in ("start", "hidden", "to_water", "refuge"):
            if not self.back_in_hide():
                return
            if not self.is_night or self.hours_to_first_light() < 3 or m.hour < self.rest_until:
                u.sleep_until(self.next_dusk_hour())
                return
            if m.force.strength[u.idx] < 0.5 * m.force.strength0[u.idx]:
                u.sleep_until(self.next_dusk_hour())  # too weak to take on a convoy
                return
            pick = self._pick_site()
            if pick is None or self._patrolled(pick[1]):
                u.sleep_until(self.next_dusk_hour())  # the road is watched tonight: lie low
                return
            if not u.go_to(pick[0], Posture.MOVING):
                u.sleep_until(self.next_dusk_hour())
                return
            self.site, self.road_cell = pick
            self.set_state("to_site")
        elif state == "to_site":
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            self.set_state("waiting")
            self.wait_until = m.hour + int(self.params.wait_hours)
            self.set_hour = m.hour
            self.strength_at_set = float(m.force.strength[u.idx])
            m.log("ambush_set", u.cell, u.faction, unit=u.name)
            self.wait()
        elif state == "waiting":
            if self.alerted("engaged", "broke_off"):
                self.withdraw("blown")  # found and fired on
                return
            if m.hour >= self.wait_until and self.is_night:
                self.withdraw("waited")
                return
            self.wait()
        elif state == "attack":
            # one burst of fire, then away before the garrison reacts
            self.withdraw("sprung")
        elif state == "withdraw":
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            self.set_state("hidden")
            u.sleep_until(self.next_dusk_hour())

    def wait(self) -> None:
        """Keep the road closed while in position (the model springs the ambush when a hostile
        unit drives into the watched stretch, see :meth:`spring`)."""
        m = self.model
        m.metrics.close_road(self.road_cell, m.hour + 1)
        if not self.watching:
            t = m.terrain
            reach = max(1, int(m.force.weapon_range_km[self.unit.idx] / t.grid.cell_km))
            road = self._road_cells()
            r, c = divmod(self.unit.cell, t.cols)
            rr, cc = np.divmod(road, t.cols)
            self.watching = road[(np.abs(rr - r) <= reach) & (np.abs(cc - c) <= reach)].tolist()
            for cell in self.watching:
                m.tripwires[int(cell)] = self.unit
        self.unit.sleep_until(m.hour + 1)

    def spring(self, prey) -> bool:
        """A hostile unit drives into the watched stretch: open fire if the odds are right."""
        u = self.unit
        m = self.model
        f = m.force
        if self.state != "waiting" or prey.kind not in ("convoy", "patrol", "escort", "qrf"):
            return False
        leader = prey.attached_to if prey.attached_to is not None else prey
        escort = [x for x in m._attached if x.attached_to is leader and x.alive]
        odds = float(f.strength[leader.idx]) + sum(float(f.strength[x.idx]) for x in escort)
        own = float(f.strength[u.idx])
        if odds < self.params.min_convoy_strength or odds > self.params.max_odds * own:
            return False
        if f.ammo_days[u.idx] <= 0:
            return False
        u.attack(leader.idx, "ambush")
        self.set_state("attack")
        m.metrics.close_road(self.road_cell, m.hour + int(self.params.closure_hours))
        u.alert("sprung")
        return True

    def _unwatch(self) -> None:
        for cell in self.watching:
            if self.model.tripwires.get(cell) is self.unit:
                del self.model.tripwires[cell]
        self.watching = []

    def _patrolled(self, road_cell: int) -> bool:
        """Whether the cell's faction saw a hostile patrol or QRF near this stretch of road in
        the last ``PATROL_MEMORY_HOURS``: a watched road is left alone for the night."""
        m = self.model
        idx, cells, _ = m.known_enemies(self.unit, max_age_hours=PATROL_MEMORY_HOURS)
        for i, c in zip(idx.tolist(), cells.tolist(), strict=True):
            if m.units[i].kind in ("patrol", "qrf") and m.distance_km(c, road_cell) <= 10.0:
                return True
        return False

    def withdraw(self, reason: str = "") -> None:
        m = self.model
        f = m.force
        if reason in ("blown", "sprung") and f.strength[self.unit.idx] < self.strength_at_set:
            # a fight that cost the cell fighters: it lies up for a few nights to recover
            self.rest_until = m.hour + 24 * RECOVERY_NIGHTS
        if self.watching:
            self.model.log("ambush_end", self.unit.cell, self.unit.faction, unit=self.unit.name,
                           reason=reason, hours=self.model.hour - self.set_hour)  # fmt: skip
        self._unwatch()
        self.unit.cease_fire()
        self.go_to_ground()
        self.set_state("withdraw")


class SeizeTown(CellBehaviour):
    """**Town seizure for resupply**: groups gather, take a lightly held town at night, hold it
    for ``hold_hours`` refilling water, fuel and ammunition, and leave before relief arrives."""

    kind = "seize_town"

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        t = model.terrain
        self.towns = [t.places[n] for n in params.towns]
        gather = params.gather_at
        if gather is None:
            self.gather_cells = np.array([unit.cell])
        elif gather in t.places:
            self.gather_cells = np.array([model.cell_of_place(gather)])
        else:
            self.gather_cells = np.flatnonzero(t.areas[gather])
        self.town = None
        self.held_since = None

    def _group(self) -> list:
        """The cells of this faction sharing the seize_town tactic and still alive."""
        return [
            u for u in self.model.units
            if u.alive and isinstance(u.behaviour, SeizeTown) and u.faction == self.unit.faction
        ]

    def decide(self) -> None:
        u = self.unit
        m = self.model
        t = m.terrain
        state = self.state
        if state == "start":
            target = nearest(self.gather_cells, u.cell, t.cols, 1)
            if len(target) and int(target[0]) != u.cell:
                u.go_to(int(target[0]), Posture.MOVING)
            self.set_state("gather")
            return
        if state == "gather":
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            group = self._group()
            ready = [g for g in group if g.behaviour.state == "gather" and not g.is_moving
                     and g.supply("ammo") > 0]  # fmt: skip
            if len(ready) >= self.params.min_group and self.is_night:
                town = min(self.towns, key=lambda p: m.distance_km(u.cell, m.cell_of_place(p.name)))
                for g in ready:
                    g.behaviour.go_seize(town)
                return
            u.sleep_until(self.next_dusk_hour() if not self.is_night else m.hour + 1)
            return
        if state == "assault":
            if u.is_moving:
                return
            town_cell = m.cell_of_place(self.town.name)
            defenders = self._defenders(town_cell)
            if defenders:
                u.attack(defenders[0], "seizure")
                u.sleep_until(m.hour + 1)
                return
            self.hold(town_cell)
            return
        if state == "hold":
            if self.alerted("broke_off") or m.hour >= self.held_since + self.params.hold_hours:
                m.log("seizure_end", u.cell, u.faction, unit=u.name, town=self.town.name,
                      held_hours=m.hour - self.held_since)  # fmt: skip
                self.go_to_ground()
                self.set_state("withdraw")
                return
            u.sleep_until(m.hour + 1)
            return
        if state == "withdraw":
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            self.set_state("hidden")
            u.sleep_until(m.hour + 24 * 7)
            return
        if self.reflexes():
            return
        u.sleep_until(m.hour + 24)

    def go_seize(self, town) -> None:
        self.town = town
        self.model.town_assaulted(town.name, self.unit)
        self.unit.go_to(self.model.cell_of_place(town.name), Posture.ATTACKING)
        self.set_state("assault")

    def _defenders(self, town_cell: int) -> list[int]:
        m = self.model
        f = m.force
        fi = f.faction[self.unit.idx]
        t = m.terrain
        mask = t.town.ravel() == t.town.ravel()[town_cell]
        if t.town.ravel()[town_cell] < 0:
            mask = np.zeros(t.rows * t.cols, bool)
            mask[town_cell] = True
        cells = f.row[: f.n].astype(np.int64) * t.cols + f.col[: f.n]
        idx = np.flatnonzero(f.alive[: f.n] & m.hostile[fi, f.faction[: f.n]] & mask[cells])
        return idx.tolist()

    def hold(self, town_cell: int) -> None:
        u = self.unit
        m = self.model
        f = m.force
        if self.held_since is None:
            self.held_since = m.hour
            m.log("seizure_start", u.cell, u.faction, unit=u.name, town=self.town.name)
            m.town_seized(self.town.name, u)
        before = {name: round(float(getattr(f, f"{name}_days")[u.idx]), 3)
                  for name in ("water", "fuel", "ammo")}  # fmt: skip
        for name in ("water", "fuel", "ammo"):  # the town's stores
            getattr(f, f"{name}_days")[u.idx] = getattr(f, f"{name}_cap")[u.idx]
        after = {name: round(float(getattr(f, f"{name}_days")[u.idx]), 3) for name in before}
        m.log("resupply", u.cell, u.faction, unit=u.name, town=self.town.name, before=before,
              after=after)  # fmt: skip
        u.halt(Posture.RESTING)
        self.set_state("hold")
        u.sleep_until(m.hour + 1)


class BorderCrossing(CellBehaviour):
    """**Border crossing**: at night, cross to a rendezvous on the far side, away from posts or
    through a crossing point; rest there a day and come back with supplies and fighters.

    Each time a cell crosses the line, the far side's ``border_security`` level is the chance
    that it is intercepted there and turned back (see ``DesertModel.on_border_crossing``)."""

    kind = "border_crossing"

    def __init__(self, model, unit, params=None, unit_spec=None):
        super().__init__(model, unit, params, unit_spec)
        t = model.terrain
        self.rendezvous = model.cell_of_place(params.rendezvous)
        self.border = t.border_index(params.border)
        self.home_cell = unit.cell
        self.last_trip_hour = -(10**6)

    def decide(self) -> None:
        u = self.unit
        m = self.model
        if self.reflexes():
            return
        state = self.state
        if state in ("start", "hidden", "to_water", "refuge"):
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            self.set_state("hidden")
            rested = m.hour - self.last_trip_hour >= 24 * (self.params.nights_between + 1) - 12
            if not self.is_night or self.hours_to_first_light() < 5 or not rested:
                u.sleep_until(self.next_dusk_hour())
                return
            self.last_trip_hour = m.hour
            if self.travel_via_gap(self.rendezvous):
                self.set_state("outbound")
                m.log("crossing_attempt", u.cell, u.faction, unit=u.name, direction="out")
            else:
                u.sleep_until(self.next_dusk_hour())
        elif state == "outbound":
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            self.set_state("far_side")
            u.sleep_until(self.next_dusk_hour())
        elif state == "far_side":
            if not self.is_night:
                u.sleep_until(self.next_dusk_hour())
                return
            f = m.force
            for name in ("water", "fuel", "ammo"):
                getattr(f, f"{name}_days")[u.idx] = getattr(f, f"{name}_cap")[u.idx]
            f.strength[u.idx] = max(f.strength[u.idx], f.strength0[u.idx])  # recruits
            home = self.nearest_hides(self.home_cell, 1)
            target = int(home[0]) if len(home) else self.home_cell
            if self.travel_via_gap(target):
                self.set_state("inbound")
                m.log("crossing_attempt", u.cell, u.faction, unit=u.name, direction="in")
        elif state in ("inbound", "turned_back"):
            if u.is_moving:
                return
            u.halt(Posture.HIDDEN)
            self.set_state("hidden")
            u.sleep_until(self.next_dusk_hour())

    def gap(self, a: int, b: int) -> int:
        """Where to cross the line between cells ``a`` and ``b``: the nearest crossing point
        (``use_crossings``), or else, among the border cells within reach of the direct line,
        the one farthest from the hostile posts."""
        m = self.model
        t = m.terrain
        line = np.flatnonzero(t.border.ravel() == self.border)
        if self.params.use_crossings:
            points = line[t.crossing.ravel()[line]]
            if len(points):
                return int(nearest(points, a, t.cols, 1)[0])
        f = m.force
        fi = m.faction_index[self.unit.faction]
        posts = [x.idx for x in m.units if x.kind == "border_post" and x.alive
                 and m.hostile[fi, f.faction[x.idx]]]  # fmt: skip
        (ra, ca), (rb, cb) = divmod(a, t.cols), divmod(b, t.cols)
        rr, cc = np.divmod(line, t.cols)
        detour = np.hypot(rr - ra, cc - ca) + np.hypot(rr - rb, cc - cb)
        direct = np.hypot(ra - rb, ca - cb)
        near_route = line[detour <= direct + GAP_DETOUR_KM / t.grid.cell_km]
        if len(near_route) == 0 or not posts:
            return int(line[np.argmin(detour)]) if len(line) else b
        rr, cc = np.divmod(near_route, t.cols)
        pr, pc = f.row[posts].astype(float), f.col[posts].astype(float)
        clearance = np.min(np.hypot(rr[:, None] - pr, cc[:, None] - pc), axis=1)
        return int(near_route[np.argmax(clearance)])

    def travel_via_gap(self, target: int) -> bool:
        """Go to ``target`` by way of the chosen gap in the line."""
        u = self.unit
        gap = self.gap(u.cell, target)
        if not u.go_to(gap, Posture.MOVING):
            return u.go_to(target, Posture.MOVING)
        first = u.path
        if not u.go_to(target, Posture.MOVING):
            return False
        # the second leg starts from the gap: plan it from there and join the two
        second = self.model.router.local_path(
            gap, target, ("foot", "offroad", "road")[int(self.model.force.mobility[u.idx])],
            self.model.barred_zones[self.model.force.faction[u.idx]],
        )
        u.follow(np.concatenate([first, second[1:]]), Posture.MOVING)
        return True

    def intercepted(self) -> None:
        """Turned back at the line: go back to the side it came from."""
        u = self.unit
        back = self.home_cell if self.state == "outbound" else self.rendezvous
        u.go_to(back, Posture.WITHDRAWING)
        self.set_state("turned_back")
