"""What a run reports: collected hourly inside the run, written per day.

Daily columns (one row per simulated day):

- ``attacks_attempted``, ``attacks_succeeded`` and per attack type (``raid_``, ``ambush_``,
  ``seizure_`` ...): an attack succeeds when the attacked side is destroyed or breaks off, or
  loses more fighters than the attacker;
- ``losses__<faction>``: fighters lost that day (in engagements, mine and air strikes);
  ``units_alive__<faction>`` and ``fighters_alive__<faction>`` at the end of the day;
- ``detections_day__<faction>``, ``detections_night__<faction>``: detections made by the faction
  in daylight (and twilight) and at night;
- ``road_closed_hours`` (segment-hours, all roads) and ``road_closed_hours__<road>``: hours a
  road segment was closed by an ambush set on it or an attack on it in the last hours;
- ``roads_open_fraction``: mean over the day's hours of the fraction of road km open;
- ``border_crossings`` (``crossing`` events of insurgent units, ``sim.rules.borders``),
  ``zone_entries`` (counted on every cell a unit passes during the
  hour, so a strip crossed and left within the hour counts), ``zone_entries_barred`` (must
  stay 0), ``engagements``, ``pursuits_broken_off``;
- ``recruits`` (fighters who joined a cell or formed one), ``air_strikes``, ``air_strike_hits``:
  in scenarios with a ``campaign:`` section (``sim.rules.recruitment``, ``sim.rules.air``);
- ``mines_laid``, ``mines_cleared`` (by garrison patrols): from the day of the first such event
  (``sim.rules.mines``);
- ``coverage_road_day``/``_night`` and ``coverage_area_day``/``_night``: fraction of road cells
  and of map cells inside some garrison unit's sensor range, sampled every
  ``coverage_every_hours`` and averaged by light (twilight counts as day).
"""

from __future__ import annotations

import re
from collections import defaultdict
from itertools import accumulate
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.ndimage import distance_transform_edt
from scipy.spatial import cKDTree

from sim.compiled import kernel
from sim.engine.movement import owner_of
from sim.scenario.vocab import ATTACK_TYPES, CAMPAIGN_ATTACK_TYPES
from sim.world.clock import LightLevel
from sim.world.raster import read_only

if TYPE_CHECKING:
    from sim.rules.state import Detections
    from sim.tactics.base import TacticState
    from sim.world.raster import Terrain


def slug(name: str) -> str:
    """A metric-safe name: lower case, words joined by underscores."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "x"


#: Daily columns of the campaign's recruitment and air strikes, written (as zeros on quiet days)
#: only in scenarios with a ``campaign:`` section, so other scenarios' columns stay as they were.
CAMPAIGN_COLUMNS = ("recruits", "air_strikes", "air_strike_hits")
#: Sample points for garrison coverage (area lattice; half as many road cells at most).
COVERAGE_SAMPLES = 8000
#: (cell, range) lookups of the points seen kept at most (beyond, the store starts afresh).
POINTS_KEPT = 50_000
#: Slots of the compiled coverage's table of (cell, range) lookups at first (a power of two;
#: made larger as more are kept, so that it is never more than half full and probes are short).
_SLOTS_START = 1 << 12
#: Room in the compiled coverage's store of the points seen at first (it doubles when full).
_FLAT_START = 1 << 14
#: The farthest one step of a path goes, in cells (a diagonal step).
_DIAGONAL = float(np.sqrt(2.0))


def _mean(values: list[float]) -> float:
    """``float(np.mean(values))`` of a list of floats, bit for bit (the same pairwise sum,
    ``np.add.reduce``, over the same count) without ``np.mean``'s wrapper."""
    return float(np.add.reduce(np.array(values, dtype=float))) / len(values)


def _zone_distance(t: Terrain) -> np.ndarray:
    """Flat, read-only: each cell's distance in cells to the nearest zone cell (0 inside)."""
    dist = distance_transform_edt(t.zone < 0).ravel()
    dist.flags.writeable = False
    return dist



class Metrics:
    """Hourly accumulation and daily roll-up of a run's metrics."""

    def __init__(self, model: TacticState):
        t = model.terrain
        self.factions = [slug(f) for f in model.faction_names]
        self.garrison = np.array(
            [model.spec.factions[f].role == "garrison" for f in model.faction_names]
        )
        self.cell_km = t.grid.cell_km
        self._cols = t.cols
        self.roads = model.roads  # read only: closures are written by the tactics
        # the campaign's attack kinds get columns only where a campaign can produce them
        campaign = model.spec.campaign is not None
        self.attack_types = ATTACK_TYPES + (CAMPAIGN_ATTACK_TYPES if campaign else ())
        self.campaign_columns = CAMPAIGN_COLUMNS if campaign else ()
        self._zone_flat = t.zone.ravel()
        # distance (cells) from each cell to the nearest zone cell; None: no zone on the map
        self._zone_dist = (t.derived("zone_distance", _zone_distance)
                           if (t.zone >= 0).any() else None)
        # fixed coverage sample points (road cells and a regular lattice over the map)
        # a regular lattice of at most ~COVERAGE_SAMPLES points estimates the covered fraction
        # to within a percent or so, at a fraction of the cost of testing every cell
        stride = max(1, int(np.ceil(np.sqrt(t.rows * t.cols / COVERAGE_SAMPLES))))
        rr, cc = np.mgrid[stride // 2 : t.rows : stride, stride // 2 : t.cols : stride]
        area = np.column_stack([rr.ravel(), cc.ravel()]).astype(float)
        road_cells = np.flatnonzero(t.road.ravel() > 0)
        if len(road_cells) > COVERAGE_SAMPLES // 2:
            road_cells = road_cells[:: len(road_cells) // (COVERAGE_SAMPLES // 2) + 1]
        road = np.column_stack(np.divmod(road_cells, t.cols)).astype(float)
        self._n_area = len(area)
        self._n_road = len(road)
        pts = np.vstack([area, road]) * self.cell_km if len(road) else area * self.cell_km
        self._tree = cKDTree(pts)
        self._static_cover: dict[tuple, np.ndarray] = {}
        # (cell, range) -> the points seen from there (`_points_of`), for both counts: shared
        # by the models on the terrain (a batch worker's runs, whose posts and bases are the
        # same), as the points depend only on the terrain's sample points
        self._points_seen: dict[complex, np.ndarray] = t.derived("coverage_points_seen",
                                                                 lambda _: {})
        # the compiled coverage (_covered_counts): whether it runs (asked at the first sample,
        # so a model that is never stepped never imports Numba) and its own store of the
        # points seen and of the posts' union per light, made then
        self._compiled: bool | None = None
        self._table = np.zeros((0, 4), dtype=np.int64)
        self._table_used = 0
        self._missing_slots = np.zeros(0, dtype=np.int64)
        self._road_km = float(self.roads.segment_km.sum())
        self._detection_keys = [[f"detections_{tag}__{name}" for name in self.factions]
                                for tag in ("day", "night")]
        self._coverage = (0.0, 0.0)
        self._cov_samples = {"day": [], "night": []}
        self._cov_last = {"road_day": np.nan, "road_night": np.nan, "area_day": np.nan,
                          "area_night": np.nan}  # fmt: skip
        self.day = defaultdict(float)
        self.rows: list[dict] = []
        self.totals = defaultdict(float)
        self._open_fraction_hours: list[float] = []
        self._zeros: dict[str, float] | None = None  # see _zero_columns

    # --------------------------------------------------------------------------- event hooks
    def on_event(self, e: dict) -> None:
        """Count an event from the log."""
        kind = e["type"]
        d = self.day
        if kind in ATTACK_TYPES or kind in CAMPAIGN_ATTACK_TYPES:
            d["attacks_attempted"] += 1
            d[f"{kind}_attempted"] += 1
            # an attack with no engagement (a mine strike) carries its own losses
            for faction, lost in e.get("losses", {}).items():
                d[f"losses__{slug(faction)}"] += lost
        elif kind == "attack_result":
            attack = e.get("attack")
            if e.get("succeeded") and (attack in ATTACK_TYPES or attack in CAMPAIGN_ATTACK_TYPES):
                d["attacks_succeeded"] += 1
                d[f"{e.get('attack', 'attack')}_succeeded"] += 1
        elif kind == "engagement":
            d["engagements"] += 1
            for faction, lost in e.get("losses", {}).items():
                d[f"losses__{slug(faction)}"] += lost
        elif kind == "crossing" and e.get("insurgent"):
            # garrison convoys driving through a border post are not what analysts count
            d["border_crossings"] += 1
        elif kind == "breakoff" and e.get("reason") == "zone":
            d["pursuits_broken_off"] += 1
        elif kind in ("resupply", "seizure_end", "relief"):
            d[f"{kind}_events"] += 1
        elif kind in ("recruits_joined", "cell_formed"):
            d["recruits"] += e["fighters"]
        elif kind == "air_strike":  # not an engagement (nobody fires back), but it kills
            d["air_strikes"] += 1
            d["air_strike_hits"] += bool(e.get("hit"))
            for faction, lost in e.get("losses", {}).items():
                d[f"losses__{slug(faction)}"] += lost
        elif kind == "mine_laid":
            d["mines_laid"] += 1
        elif kind == "mine_cleared":
            d["mines_cleared"] += 1

    def on_zone_moves(self, movers: np.ndarray, cells: np.ndarray, path_entry: np.ndarray,
                      at: np.ndarray, ends: np.ndarray, steps: np.ndarray, start: np.ndarray,
                      moved: np.ndarray | None, faction: np.ndarray,
                      barred: list[frozenset[int]]) -> None:
        """Count the zone entries of this hour's moves on every cell passed, not only where
        each move ends: a patrol that drives across a narrow zone strip and out again within
        the hour enters it once.

        ``movers``: the units that moved, ``steps`` cells each, starting the hour in cell
        ``start``; ``cells``: the cells they entered, in order; ``path_entry``: the path book's
        zone entries (:attr:`PathBook.entry`, kept for the same zone layer), where the cells
        passed that enter a zone are read; ``at``, ``ends``: where those cells are in the path
        book's flat buffer and the running sum of the movers' steps
        (:meth:`PathBook.passed_at`); ``moved``: False for a mover whose move did
        not happen (turned back at a border), None if all happened; ``faction``: the force
        table's faction column; ``barred``: per faction, the zones it may not enter
        (``zone_entries_barred``)."""
        if self._zone_dist is None or not len(cells):
            return
        entered = path_entry[at]
        if not entered.any():  # most hours: the movers in a zone stay in it
            return
        k = entered.nonzero()[0]
        mover = owner_of(ends, k)
        # only a mover that starts within reach of a zone counts its entries (each step of a
        # path goes to a neighbouring cell, at most sqrt(2) cells away; a move turned back at a
        # border did not happen)
        near = self._zone_dist[start[mover]] <= _DIAGONAL * steps[mover]
        if moved is not None:
            near &= moved[mover]
        if not near.all():
            k, mover = k[near], mover[near]
        if not len(k):
            return
        self.day["zone_entries"] += len(k)
        if not any(barred):
            return
        fac = faction[movers[mover]].tolist()
        zones = self._zone_flat[cells[k]].tolist()
        n_barred = sum(int(zone) in barred[fi] for zone, fi in zip(zones, fac, strict=True))
        if n_barred:
            self.day["zone_entries_barred"] += n_barred

    # --------------------------------------------------------------------------- hourly
    def record_hour(self, model: TacticState, det: Detections) -> None:
        """Accumulate this hour's counters; close the day after its 24th hour."""
        hour = model.hour
        night = model.light_by_hour.item(hour) == LightLevel.NIGHT  # a Python bool: no numpy scalar
        d = self.day
        if len(det.observer):
            counts = np.bincount(model.force.faction[det.observer], minlength=len(self.factions))
            names = self._detection_keys[1 if night else 0]
            for fi, count in enumerate(counts.tolist()):
                if count:
                    d[names[fi]] += count
        roads = self.roads
        if len(roads.segments):
            # one reduction tells a quiet hour (most: nothing closed) from one with closures
            if roads.any_closed_until > hour:
                closed = roads.closed(hour)
                d["road_closed_hours"] += int(closed.sum())
                for i in np.flatnonzero(closed).tolist():
                    d[f"road_closed_hours__{slug(roads.segments[i].road)}"] += 1
                total = self._road_km
                self._open_fraction_hours.append(
                    1.0 - float(roads.segment_km[closed].sum() / total) if total > 0 else 1.0
                )
            else:  # nothing closed: 1 - 0 / total
                self._open_fraction_hours.append(1.0)
        if hour % model.config.coverage_every_hours == 0:
            road_cov, area_cov = self.coverage(model, night)
            self._cov_samples["night" if night else "day"].append((road_cov, area_cov))
        if (hour + 1) % 24 == 0:
            self.close_day(model)

    def coverage(self, model: TacticState, night: bool) -> tuple[float, float]:
        """(road, area) fractions inside some garrison unit's sensor range now: the sample
        points covered over those there are, counted by the compiled kernel
        (:meth:`_covered_counts`) or, with ``$BADIA_KERNELS=numpy``, the numpy reference
        (:meth:`_covered_counts_numpy`)."""
        f = model.force
        if self._compiled is None:
            self._compiled = _covered_kernel.compiled
        if self._compiled:
            area, road = self._covered_counts(f, night)
        else:
            area, road = self._covered_counts_numpy(f, night)
        na, nr = self._n_area, self._n_road
        area_cov = area / na if na else 0.0
        road_cov = road / nr if nr else float("nan")
        self._coverage = (road_cov, area_cov)
        return road_cov, area_cov

    def _covered_counts_numpy(self, f, night: bool) -> tuple[int, int]:
        """(area, road) sample points inside some garrison unit's sensor range now.

        Posts that never move (speed 0) cover the same points all run long, so their union is
        kept per light and recomputed only when one of them is lost or re-equipped; the mobile
        units are added on top at each sample.
        """
        n = f.n
        g = f.alive[:n] & self.garrison[f.faction[:n]]
        static = g & (f.speed_kmh[:n] <= 0) & (f.offroad_speed_kmh[:n] <= 0)
        mobile = g ^ static  # g & ~static in one call (static is a part of g)
        ranges = f.sensor_night_km[:n] if night else f.sensor_day_km[:n]
        key = (night, static.tobytes(), ranges[static].tobytes())
        base = self._static_cover.get(key)
        if base is None:
            base = self._covered(f, static, ranges)
            self._static_cover = {k: v for k, v in self._static_cover.items() if k[0] != night}
            self._static_cover[key] = base
        covered = self._covered(f, mobile, ranges, base) if mobile.any() else base
        na = self._n_area
        return int(np.count_nonzero(covered[:na])), int(np.count_nonzero(covered[na:]))

    def _covered_counts(self, f, night: bool) -> tuple[int, int]:
        """:meth:`_covered_counts_numpy` in one compiled call (:func:`_covered_kernel`), the
        same posts' union kept per light, with its own store of the points seen from a
        (cell, range): a table of (cell, range bits) keys, each with its span of the points in
        ``_flat``. The kernel adds the keys it does not find to the table and reports them;
        their points are looked up (:meth:`_points_of`) and stored, and the count made
        again."""
        n = f.n
        if self._table_used + n > len(self._table) // 2:  # room for every unit's key
            self._make_room(n, len(f.alive))
        ranges = f.sensor_night_km if night else f.sensor_day_km
        while True:
            missing, area, road = _covered_kernel(
                n, f.alive, f.faction, self.garrison, ranges, f.speed_kmh, f.offroad_speed_kmh,
                f.row, f.col, self._cols, self._table, self._flat, self._last,
                *self._posts[night],
                self._covered_now, self._n_area, self._missing_slots)  # fmt: skip
            if not missing:
                return area, road
            self._store(self._missing_slots[:missing])  # then again: every key is stored now

    def _make_room(self, n: int, capacity: int) -> None:
        """Room in the compiled coverage's table for ``n`` more keys, the table kept at most
        half full: its keys moved to a table twice as large or, once ``POINTS_KEPT`` are kept,
        the store started afresh. The first time, the store and the scratch are made
        (``capacity``: the force table's)."""
        if not len(self._table):
            points = self._n_area + self._n_road
            self._covered_now = np.zeros(points, dtype=bool)
            self._missing_slots = np.zeros(capacity, dtype=np.int64)
            self._last = np.full((capacity, 4), -1, dtype=np.int64)
            self._flat = np.zeros(_FLAT_START, dtype=np.int64)
            self._flat_used = 0
            # per light: the posts' union, each unit a post or not, its range's bits, and
            # (units then, -1: none yet; area points; road points)
            self._posts = [(np.zeros(points, dtype=bool), np.zeros(capacity, dtype=bool),
                            np.zeros(capacity, dtype=np.int64),
                            np.array([-1, 0, 0], dtype=np.int64)) for _ in range(2)]  # fmt: skip
        if self._table_used >= POINTS_KEPT:  # the units' last rows go with the store
            size, old = len(self._table), self._table[:0]
            self._table_used = self._flat_used = 0
            self._last[:, 0] = -1
        else:
            size, old = max(_SLOTS_START, 2 * len(self._table)), self._table
        while size < 2 * (self._table_used + n):
            size *= 2
        self._table = np.full((size, 4), -1, dtype=np.int64)  # all slots empty
        _rehash_kernel(old, self._table)

    def _store(self, slots: np.ndarray) -> None:
        """Store the points seen from the keys just added at ``slots`` of the compiled
        coverage's table (see :meth:`_covered_counts`), after those stored before."""
        # a few keys at a time: Python lists, not a numpy call per step (each costs more)
        keys = self._table[slots]
        points = self._points_of([complex(cell, r) for cell, r in zip(
            keys[:, 0].tolist(), keys[:, 1].view(np.float64).tolist(), strict=True)])
        bounds = list(accumulate([len(p) for p in points], initial=self._flat_used))
        end = bounds[-1]
        if end > len(self._flat):  # room for the new points: at least double the store
            flat = np.zeros(max(2 * len(self._flat), end), dtype=np.int64)
            flat[: self._flat_used] = self._flat[: self._flat_used]
            self._flat = flat
        self._flat[self._flat_used : end] = np.concatenate(points)
        self._table[slots, 2] = bounds[:-1]
        self._table[slots, 3] = bounds[1:]
        self._flat_used = end
        self._table_used += len(slots)

    def _covered(self, f, which: np.ndarray, ranges: np.ndarray,
                 base: np.ndarray | None = None) -> np.ndarray:
        """Sample points within range of any unit in ``which`` (or covered in ``base``, left
        as it is: the points are set in a copy).

        The points seen from a (cell, range) are kept: most mobile units spend most samples
        at their base, and many share it, so only the units out on the move are looked up.
        A (cell, range) is one complex number, ``cell + 1j * range`` (the flat cell, both parts
        exact in a double), so the units' keys are told apart in one set of numbers; ``which``
        and ``ranges`` cover the first ``len(which)`` units."""
        size = self._n_area + self._n_road
        covered = np.zeros(size, dtype=bool) if base is None else base.copy()
        n = len(which)
        cells = f.row[:n] * self._cols  # int32, as the columns (a flat cell fits)
        cells += f.col[:n]
        keys = set((cells + 1j * ranges)[which].tolist())
        if not keys:
            return covered
        try:  # most samples: every key seen before (one pass, in C)
            seen = list(map(self._points_seen.__getitem__, keys))
        except KeyError:
            seen = self._points_of(list(keys))
        covered[np.concatenate(seen)] = True
        return covered

    def _points_of(self, keys: list[complex]) -> list[np.ndarray]:
        """The points seen from each (cell, range) of ``keys`` (``cell + 1j * range``), from
        those kept, the others found in one tree query (:meth:`_within`) and kept (read-only:
        every model on the terrain shares them; at most ``POINTS_KEPT``, then afresh)."""
        known = self._points_seen
        points = [known.get(k) for k in keys]
        missing = [i for i, p in enumerate(points) if p is None]
        if missing:
            if len(known) + len(missing) > POINTS_KEPT:
                known.clear()
            hits = self._within([int(keys[i].real) for i in missing],
                                [keys[i].imag for i in missing])
            for i, h in zip(missing, hits, strict=True):
                points[i] = known[keys[i]] = read_only(np.asarray(h, dtype=np.int64))
        return points

    def _within(self, cells: list[int], radius: list[float]) -> list[list[int]]:
        """The sample points within ``radius`` km of each flat cell of ``cells`` (one tree
        query for all of them; each is found alone, so the batch does not matter). The
        cells' (row, col) km are Python floats (a handful of keys: numpy's cost per call
        would be most of it), the same doubles as ``(row, col) * cell_km`` in numpy."""
        km, cols = self.cell_km, self._cols
        at = [(float(c // cols) * km, float(c % cols) * km) for c in cells]
        return self._tree.query_ball_point(at, radius, return_sorted=False)

    def close_day(self, model: TacticState) -> None:
        """Write the finished day's row."""
        f = model.force
        n = f.n
        row = {"day": (model.hour + 1 + 23) // 24}
        row.update(self._zero_columns())
        row.update(self.day)
        alive = f.alive[:n]
        for fi, name in enumerate(self.factions):
            mine = alive & (f.faction[:n] == fi)
            row[f"units_alive__{name}"] = float(np.count_nonzero(mine))
            row[f"fighters_alive__{name}"] = float(f.strength[:n][mine].sum())
        hours = self._open_fraction_hours
        row["roads_open_fraction"] = _mean(hours) if hours else 1.0
        for tag in ("day", "night"):
            samples = self._cov_samples[tag]
            if samples:
                self._cov_last[f"road_{tag}"] = _mean([s[0] for s in samples])
                self._cov_last[f"area_{tag}"] = _mean([s[1] for s in samples])
            row[f"coverage_road_{tag}"] = self._cov_last[f"road_{tag}"]
            row[f"coverage_area_{tag}"] = self._cov_last[f"area_{tag}"]
        for key, value in self.day.items():
            self.totals[key] += value
        self.rows.append({k: float(v) if k != "day" else int(v) for k, v in row.items()})
        self.day = defaultdict(float)
        self._open_fraction_hours = []
        self._cov_samples = {"day": [], "night": []}

    def _zero_columns(self) -> dict[str, float]:
        """The day's columns written as 0.0 before the day's counts (in the row's order):
        made once, as the factions, roads and attack kinds never change during a run."""
        if self._zeros is None:
            zeros = dict.fromkeys(
                ("attacks_attempted", "attacks_succeeded", "engagements", "border_crossings",
                 "zone_entries", "zone_entries_barred", "pursuits_broken_off",
                 "road_closed_hours"), 0.0)  # fmt: skip
            for name in self.factions:
                zeros[f"losses__{name}"] = 0.0
                zeros[f"detections_day__{name}"] = 0.0
                zeros[f"detections_night__{name}"] = 0.0
            for road in self.roads.road_names:
                zeros[f"road_closed_hours__{slug(road)}"] = 0.0
            for kind in self.attack_types:
                zeros[f"{kind}_attempted"] = 0.0
                zeros[f"{kind}_succeeded"] = 0.0
            for key in self.campaign_columns:
                zeros[key] = 0.0
            self._zeros = zeros
        return self._zeros

    # --------------------------------------------------------------------------- outputs
    def daily_frame(self) -> pd.DataFrame:
        """One row per finished day; columns sorted for stable files."""
        if not self.rows:
            return pd.DataFrame({"day": pd.Series([], dtype="int64")})
        df = pd.DataFrame(self.rows).fillna(0.0)
        cols = ["day", *sorted(c for c in df.columns if c != "day")]
        return df[cols]

    def summary(self) -> dict[str, float]:
        """End-of-run figures: totals, final strengths, mean coverage and success rates."""
        df = self.daily_frame()
        out: dict[str, float] = {"days": float(len(df))}
        if len(df) == 0:
            return out
        for col in df.columns:
            if col == "day":
                continue
            if col.startswith(("units_alive", "fighters_alive")):
                out[f"{col}_end"] = float(df[col].iloc[-1])
            elif col.startswith(("coverage", "roads_open")):
                out[f"{col}_mean"] = float(df[col].mean())
            else:
                out[f"{col}_total"] = float(df[col].sum())
        tried = out.get("attacks_attempted_total", 0.0)
        out["attack_success_rate"] = (
            out.get("attacks_succeeded_total", 0.0) / tried if tried else float("nan")
        )
        return out

    def reporters(self) -> dict:
        """Model reporters for Mesa's DataCollector (values of the day so far and totals)."""
        def current(key):
            return lambda m: float(m.metrics.day.get(key, 0.0) + m.metrics.totals.get(key, 0.0))

        reps = {
            "attacks attempted": current("attacks_attempted"),
            "attacks succeeded": current("attacks_succeeded"),
            "engagements": current("engagements"),
            "road segments open": lambda m: (
                float(m.roads.open_count(m.hour)) if len(m.roads.segments) else 0.0
            ),
            "coverage road": lambda m: m.metrics._coverage[0],
            "coverage area": lambda m: m.metrics._coverage[1],
        }
        for fi, name in enumerate(self.factions):
            reps[f"losses {name}"] = current(f"losses__{name}")
            reps[f"units alive {name}"] = (
                lambda m, fi=fi: float(
                    (m.force.view("alive") & (m.force.view("faction") == fi)).sum()
                )
            )
        return reps


@kernel
def _rehash_kernel(old, table):
    """Move the keys of ``old`` (rows of :func:`_covered_kernel`'s table) into the empty
    ``table``, probed for as that kernel probes."""
    mask = len(table) - 1
    for row in old:
        if row[0] >= 0:
            h = row[0] & mask
            while table[h, 0] >= 0:
                h = (h + 1) & mask
            table[h] = row


@kernel
def _covered_kernel(n, alive, faction, garrison, ranges, speed, offroad, row, col, cols, table,
                    flat, last, posts_covered, post, post_range, posts, covered, n_area,
                    missing):
    """(keys missing, area points covered, road points covered) by the living garrison units
    among the first ``n`` (:meth:`Metrics._covered_counts`), as
    :meth:`Metrics._covered_counts_numpy` counts them.

    ``table``: an open-addressing table (linear probing from ``cell & (len - 1)``, never more
    than half full) of (flat cell, range bits, start, end) rows, the cell -1 where empty: the
    range's bits, not its value, so that every range (NaN too) is one key; the key's points
    are ``flat[start:end]``. A unit's key not found is added (no points yet) and its slot
    written to ``missing``; once a key is missing nothing more is counted (the caller stores
    the points and calls again). ``last``: each unit's row of the table at its last count (the
    cell -1: none), read first: most units have not moved since, and the units' rows, read in
    order, cost less than the table's, read at random.

    The posts (units that never move) and their union are kept per light, as the numpy path
    keeps them: ``posts_covered``, each unit a post or not (``post``), a post's range bits
    (``post_range``) and ``posts`` = (units, area points, road points) when it was made (units
    -1: not yet); it is made again when any of those differ. ``covered``: scratch, one flag per
    sample point, area points (the first ``n_area``) then road points; a point is counted
    when first set."""
    bits = ranges.view(np.int64)
    mask = len(table) - 1

    def gather(i, into, counts, n_missing):
        """Set unit i's points in ``into``, counted in ``counts`` (area, road); the missing
        keys so far after its own, if new."""
        cell = row[i] * cols + col[i]
        if last[i, 0] == cell and last[i, 1] == bits[i]:  # where it was at the last count
            start, end = last[i, 2], last[i, 3]
        else:
            h = cell & mask
            while table[h, 0] >= 0 and (table[h, 0] != cell or table[h, 1] != bits[i]):
                h = (h + 1) & mask
            if table[h, 0] < 0:
                table[h, 0], table[h, 1], table[h, 2], table[h, 3] = cell, bits[i], 0, 0
                missing[n_missing] = h
                return n_missing + 1
            if n_missing:  # the key may be one just added, its points not stored yet
                return n_missing
            start, end = table[h, 2], table[h, 3]
            last[i] = table[h]
        if n_missing == 0:
            for k in range(start, end):
                p = flat[k]
                if not into[p]:
                    into[p] = True
                    counts[0 if p < n_area else 1] += 1
        return n_missing

    n_missing = 0
    fresh = posts[0] == n
    for i in range(n if fresh else 0):
        is_post = alive[i] and garrison[faction[i]] and speed[i] <= 0 and offroad[i] <= 0
        if is_post != post[i] or (is_post and bits[i] != post_range[i]):
            fresh = False
            break
    if not fresh:
        posts_covered[:] = False
        counts = posts[1:]
        counts[:] = 0
        for i in range(n):
            if alive[i] and garrison[faction[i]] and speed[i] <= 0 and offroad[i] <= 0:
                n_missing = gather(i, posts_covered, counts, n_missing)
        if n_missing:  # the union is not made: it is made again at the next call
            return n_missing, 0, 0
        for i in range(n):
            post[i] = alive[i] and garrison[faction[i]] and speed[i] <= 0 and offroad[i] <= 0
            post_range[i] = bits[i]
        posts[0] = n
    covered[:] = posts_covered
    counts = posts[1:].copy()
    for i in range(n):
        if alive[i] and garrison[faction[i]] and not post[i]:
            n_missing = gather(i, covered, counts, n_missing)
    return n_missing, counts[0], counts[1]
