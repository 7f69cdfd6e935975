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
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.ndimage import distance_transform_edt
from scipy.spatial import cKDTree

from sim.engine.movement import owner_of
from sim.scenario.vocab import ATTACK_TYPES, CAMPAIGN_ATTACK_TYPES
from sim.world.clock import LightLevel

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
        self._points_seen: dict[complex, np.ndarray] = {}  # (cell, range) -> points seen
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
            if roads.closed_until.max() > hour:
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
        """(road, area) fractions inside some garrison unit's sensor range now.

        Posts that never move (speed 0) cover the same points all run long, so their union is
        kept per light and recomputed only when one of them is lost or re-equipped; the mobile
        units are added on top at each sample.
        """
        f = model.force
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
        # the mean of a bool array: its count over its length, one division either way
        na, nr = self._n_area, self._n_road
        area = int(np.count_nonzero(covered[:na])) / na if na else 0.0
        road = int(np.count_nonzero(covered[na:])) / nr if nr else float("nan")
        self._coverage = (road, area)
        return road, area

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
        known = self._points_seen
        try:  # most samples: every key seen before (one pass, in C)
            seen = list(map(known.__getitem__, keys))
        except KeyError:
            self._look_up(keys)
            seen = list(map(known.__getitem__, keys))
        covered[np.concatenate(seen)] = True
        return covered

    def _look_up(self, keys: set[complex]) -> None:
        """Keep the points seen from each (cell, range) of ``keys`` not kept yet
        (:meth:`_covered`; one tree query for all of them)."""
        known = self._points_seen
        missing = [k for k in keys if k not in known]
        if len(known) + len(missing) > 50_000:
            known.clear()
            missing = list(keys)
        rc = np.array([divmod(int(k.real), self._cols) for k in missing], dtype=float)
        radius = np.array([k.imag for k in missing])
        hits = self._tree.query_ball_point(rc * self.cell_km, radius, return_sorted=False)
        for key, h in zip(missing, hits, strict=True):
            known[key] = np.asarray(h, dtype=np.int64)

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
