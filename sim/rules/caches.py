"""Caches: supplies dug in at a faction's hides, drawn by its cells and refilled by smuggling
(``campaign.caches``, one :class:`~sim.scenario.campaign.CachesSpec` each).

Every hide cell ``c`` of an entry's areas (``Sites.hides``: the cave cells) is a cache holding
a stock ``x[c, k]`` of each supply ``k`` in (water, fuel, ammo), in days of one cell's use (a
unit's supplies are days of its own use, whatever its strength). Ammunition is stocked only with
``ammo: true``. A cache starts full, ``x = X`` (``stock_days_per_cache``). Each hour, in the
supply phase:

1. **refill** (smuggling), with ``r = refill_days_per_month`` and a 30-day month::

       x <- min(X, x + r / HOURS_PER_MONTH)

2. **draw**: the units of the faction *resting* on cache ``c`` (alive, not moving this hour)
   want ``w_i = cap_i - days_i`` of each supply; in force-table order each takes what is left::

       g_i = min(w_i, max(0, x - sum_{j before i} w_j)),    x <- x - sum_i g_i

   so the cache gives ``min(x, sum_i w_i)``: what it holds, never more; an empty cache gives
   nothing.

A faction with caches gets nothing from caves that are not its caches: the engine leaves it out
of the free cave refill of :func:`sim.rules.supplies.resupply` (water and fuel at any cave,
never ammunition), which every other insurgent faction keeps. Water at wells, oases, rivers and
towns stays free for everyone. Everything here is numpy over the cache cells and the units
standing on them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sim.rules.force import ForceTable
    from sim.scenario.campaign import CachesSpec

#: The supplies a cache holds, in the order of its stock's columns.
SUPPLIES = ("water", "fuel", "ammo")
#: Hours in a month of smuggling: the refill rate is given per 30-day month.
HOURS_PER_MONTH = 30 * 24


def draw(stock: np.ndarray, slot: np.ndarray, want: np.ndarray) -> np.ndarray:
    """What each taker gets from its cache: ``g_i = min(w_i, max(0, x - sum_{j before i} w_j))``.

    ``stock``: one supply's stock per cache; ``slot``: each taker's cache, sorted (takers of a
    cache in their order); ``want``: each taker's want (>= 0). ``stock`` is lowered in place
    by what is given."""
    if len(slot) == 0:
        return np.zeros(0)
    cum = np.cumsum(want)
    first = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1]])
    group = np.cumsum(np.r_[True, slot[1:] != slot[:-1]]) - 1
    before = cum - want - (cum[first] - want[first])[group]
    give = np.clip(stock[slot] - before, 0.0, want)
    stock -= np.bincount(slot, weights=give, minlength=len(stock))
    np.maximum(stock, 0.0, out=stock)  # rounding: never below empty
    return give


class Caches:
    """The run's caches, every faction's, as arrays: ``keys`` (``faction x cells + cell``,
    sorted), the stock ``(caches, 3)``, the full stock ``X``, the refill per hour and which
    supplies each holds.

    Args:
        entries: ``(faction index, hide cells, spec)`` per ``campaign.caches`` entry; a cell
            in two entries of one faction is one cache (the first entry's).
        n_factions: factions in the run.
        n_cells: cells of the map (``rows x cols``).
    """

    def __init__(self, entries: Sequence[tuple[int, np.ndarray, CachesSpec]], n_factions: int,
                 n_cells: int):
        self.n_cells = n_cells
        self.factions = np.zeros(n_factions, dtype=bool)
        keys, full, rate, holds = [], [], [], []
        for fi, cells, spec in entries:
            cells = np.asarray(cells, dtype=np.int64)
            self.factions[fi] = True
            keys.append(fi * n_cells + cells)
            full.append(np.full(len(cells), float(spec.stock_days_per_cache)))
            rate.append(np.full(len(cells), float(spec.refill_days_per_month) / HOURS_PER_MONTH))
            holds.append(np.tile([True, True, bool(spec.ammo)], (len(cells), 1)))
        all_keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        self.keys, first = np.unique(all_keys, return_index=True)  # sorted; first entry wins
        self.full = np.concatenate(full)[first] if keys else np.zeros(0)
        self.rate_per_hour = np.concatenate(rate)[first] if keys else np.zeros(0)
        self.holds = np.concatenate(holds)[first] if keys else np.zeros((0, 3), dtype=bool)
        self.stock = self.full[:, None] * self.holds

    def cache_of(self, faction: int, cell: int) -> int:
        """Index of the faction's cache at ``cell`` (-1 if there is none)."""
        key = faction * self.n_cells + cell
        i = int(np.searchsorted(self.keys, key))
        return i if i < len(self.keys) and self.keys[i] == key else -1

    def refill(self, hours: float = 1.0) -> None:
        """Smuggling: ``x <- min(X, x + r hours / HOURS_PER_MONTH)`` for the supplies held."""
        self.stock += (self.rate_per_hour * hours)[:, None] * self.holds
        np.minimum(self.stock, self.full[:, None], out=self.stock)

    def supply(self, force: ForceTable, n: int, cols: int, resting: np.ndarray) -> None:
        """Units of a faction with caches, alive and resting on one of its caches, refill from
        it (:func:`draw`, for each supply the cache holds)."""
        f = force
        fac = f.faction[:n]
        who = np.flatnonzero(f.alive[:n] & resting[:n] & self.factions[fac])
        if len(who) == 0 or len(self.keys) == 0:
            return
        key = fac[who].astype(np.int64) * self.n_cells + f.cells(who, cols)
        pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        on = self.keys[pos] == key
        units, slot = who[on], pos[on]
        if len(units) == 0:
            return
        order = np.lexsort((units, slot))
        units, slot = units[order], slot[order]
        for k, name in enumerate(SUPPLIES):
            days = getattr(f, f"{name}_days")
            cap = getattr(f, f"{name}_cap")
            want = np.maximum(cap[units] - days[units], 0.0) * self.holds[slot, k]
            stock = self.stock[:, k].copy()
            days[units] += draw(stock, slot, want)
            self.stock[:, k] = stock
