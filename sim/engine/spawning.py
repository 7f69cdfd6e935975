"""Building the force: units from the scenario's entries, placed at places, in areas or at
points; escorts and new cells created during a run.

A part of :class:`~sim.engine.model.DesertModel` (a mixin): it uses the model's ``terrain``,
``force``, ``paths``, ``orders``, ``rng``, ``spec``, ``faction_index``, ``hostile``,
``insurgent_faction``, ``units`` and ``_news_listeners``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sim.engine.units import Unit
from sim.errors import ScenarioError
from sim.rules.placement import out_of_sight
from sim.rules.state import Posture
from sim.scenario.defaults import resolved_unit
from sim.scenario.schema import UnitSpec
from sim.scenario.vocab import KINDS, MOBILITIES
from sim.tactics import make_behaviour

#: Kinds whose crews fire on any hostile unit they see within weapon range.
GARRISON_FIRE_KINDS = {
    "strongpoint", "patrol", "convoy", "escort", "qrf", "border_post", "zone_guard",
}


class Spawning:
    """Creating units (mixed into ``DesertModel``)."""

    def _spawn_units(self) -> None:
        t = self.terrain
        posts = self._post_positions()
        for spec_index, spec in enumerate(self.spec.units):
            ru = resolved_unit(spec)
            at, where = spec.at, f"units[{spec_index}].at"
            fi = self.faction_index[spec.faction]
            hostile = [(c, r) for f, c, r in posts if self.hostile[fi, f]]
            if self.insurgent_faction[fi] and isinstance(at, str) and at in t.areas and hostile:
                # cells lie up out of sight of hostile posts (sim.rules.placement)
                post_cells, post_km = (np.array(x) for x in zip(*hostile, strict=True))
                candidates = out_of_sight(self._area_candidates(at), post_cells, post_km, t.cols,
                                          t.grid.cell_km)
                cells = self._choose(candidates, spec.count, where, at)
            else:
                cells = self._placement_cells(at, spec.count, where)
            for k in range(spec.count):
                r, c = divmod(int(cells[k]), t.cols)
                base = spec.name or f"{spec.kind}-{spec_index}"
                name = base if spec.count == 1 else f"{base}-{k + 1}"
                unit = self._add_unit(name, spec.faction, spec.kind, ru, r, c, spec_index)
                unit.behaviour = make_behaviour(self, unit, spec.tactic, spec)

    def _add_unit(self, name, faction, kind, ru, r, c, spec_index=-1) -> Unit:
        idx = self.force.add(
            row=r,
            col=c,
            faction=self.faction_index[faction],
            kind=KINDS.index(kind),
            mobility=MOBILITIES.index(ru.mobility),
            posture=int(Posture.RESTING),
            strength=ru.strength,
            strength0=ru.strength,
            vehicles=ru.vehicles,
            speed_kmh=ru.speed_kmh,
            offroad_speed_kmh=ru.offroad_speed_kmh,
            sensor_day_km=ru.sensor_range_km,
            sensor_night_km=ru.night_sensor_range_km,
            weapon_range_km=ru.weapon_range_km,
            kill_rate_per_hour=ru.kill_rate_per_hour,
            water_days=ru.water_days,
            fuel_days=ru.fuel_days,
            ammo_days=ru.ammo_days,
            water_cap=max(ru.water_days, 1e-9),
            fuel_cap=max(ru.fuel_days, 1e-9),
            ammo_cap=max(ru.ammo_days, 1e-9),
            breakoff=ru.breakoff_loss_fraction,
            alive=True,
            search_factor=1.0,
            fortified=ru.fortified,
            fires=kind in GARRISON_FIRE_KINDS,
        )
        unit = Unit(self, idx, name, faction, kind)
        unit.spec_index = spec_index
        unit.resolved = ru
        unit.home = r * self.terrain.cols + c
        self.orders.set_path(unit, np.array([unit.home], dtype=np.int64), np.zeros(1))
        self.units.append(unit)
        return unit

    def spawn_attached(self, leader: Unit, kind: str, strength: int) -> Unit:
        """Create a unit that moves with ``leader`` (an escort with its convoy: a patrol's
        numbers, riding in the convoy's vehicles)."""
        ru = resolved_unit_for_kind("patrol" if kind == "escort" else kind, leader.faction,
                                    strength)  # fmt: skip
        r, c = leader.rc
        unit = self._add_unit(f"{leader.name}-escort", leader.faction, kind, ru, r, c)
        unit.attached_to = leader
        unit.behaviour = None
        self._attached.append(unit)
        return unit

    def spawn_cell(self, faction: str, cell: int, strength: int, tactic, *, name: str,
                   like: Unit | None = None) -> Unit | None:
        """Create an insurgent cell during the run: recruits forming a new cell
        (``sim.rules.recruitment``) or a pursued cell splitting (``CellBehaviour.split_off``).

        ``like`` (the splitting cell) gives the new cell its numbers and its supplies, else it
        has the cell kind's defaults and full supplies. It is named ``name #<index>``, follows
        ``tactic`` and decides this hour if the decisions are still to come. None when the
        force table has no room left (``sim.rules.recruitment.reserved_units``)."""
        f = self.force
        if f.n >= len(f.alive):
            return None
        if like is not None:
            ru = replace(like.resolved, strength=int(strength))
        else:
            ru = resolved_unit_for_kind("cell", faction, int(strength))
        r, c = divmod(int(cell), self.terrain.cols)
        unit = self._add_unit(f"{name} #{f.n}", faction, "cell", ru, r, c,
                              like.spec_index if like is not None else -1)  # fmt: skip
        if like is not None:
            for s in ("water", "fuel", "ammo"):
                getattr(f, f"{s}_days")[unit.idx] = getattr(f, f"{s}_days")[like.idx]
        unit.wake_hour = self.hour
        spec = like.behaviour.unit_spec if like is not None and like.behaviour else None
        unit.behaviour = make_behaviour(self, unit, tactic, spec)
        if unit.behaviour is not None and unit.behaviour.wakes_on_news:
            self._news_listeners[self.faction_index[faction]].append(unit)
        return unit

    def _area_candidates(self, area: str) -> np.ndarray:
        """Cells a unit placed in ``area`` may start on: its caves if it has any, else its
        passable cells."""
        t = self.terrain
        mask = t.areas[area]
        if t.cave[mask].any():
            mask = mask & t.cave
        return np.flatnonzero(mask & np.isfinite(t.move_cost["foot"]))

    def _choose(self, candidates: np.ndarray, count: int, field_path: str, area: str
                ) -> np.ndarray:
        """``count`` cells drawn from ``candidates`` (with replacement only if too few)."""
        if len(candidates) == 0:
            raise ScenarioError([f"{self.spec.name}: {field_path}: area '{area}' has no cells"])
        return self.rng.choice(candidates, size=count, replace=len(candidates) < count)

    def _post_positions(self) -> list[tuple[int, int, float]]:
        """``(faction index, cell, day sensor range km)`` of every static post in the scenario
        placed at a place or a point (strongpoints and border posts)."""
        t = self.terrain
        out = []
        for spec in self.spec.units:
            if spec.kind not in ("strongpoint", "border_post"):
                continue
            if isinstance(spec.at, str) and spec.at in t.places:
                cell = self.cell_of_place(spec.at)
            elif isinstance(spec.at, tuple):
                r, c = t.grid.cell_of(*spec.at)
                cell = int(r) * t.cols + int(c)
            else:
                continue
            out.append((self.faction_index[spec.faction], cell,
                        float(resolved_unit(spec).sensor_range_km)))
        return out

    def _placement_cells(self, at, count: int, field_path: str) -> np.ndarray:
        """Cells for ``count`` units placed ``at`` a place, an area or a [lat, lon] point."""
        t = self.terrain
        if isinstance(at, str) and at in t.places:
            return np.full(count, self.cell_of_place(at), dtype=np.int64)
        if isinstance(at, str) and at in t.areas:
            return self._choose(self._area_candidates(at), count, field_path, at)
        lat, lon = at
        r, c = t.grid.cell_of(lat, lon)
        return np.full(count, int(r) * t.cols + int(c), dtype=np.int64)


def resolved_unit_for_kind(kind: str, faction: str, strength: int):
    """Kind defaults for a unit created during a run (an escort)."""
    return resolved_unit(
        UnitSpec(faction=faction, kind=kind, at=[0.0, 0.0], strength=strength)
    )
