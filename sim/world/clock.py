"""Hourly clock, sun position and light level (day, twilight, night).

One model step is one hour. The light of each hour comes from the sun's elevation at the map
centre, so day length follows the season and the latitude (at 34.5 N about 9.8 h from sunrise
to sunset in December and 14.5 h in June).

Sun position follows the NOAA solar calculator (Meeus, *Astronomical Algorithms*, low-precision
series): declination and equation of time from the Julian century, hour angle from true solar
time. It is accurate to about 0.01 deg in elevation and under a minute in sunrise/sunset for
1900-2100, far inside what an hourly model needs. All functions are vectorised over numpy
arrays of times (``datetime64``) and positions.

Elevations are *geometric* (no refraction) unless ``refraction=True``. Sunrise and sunset use
the standard convention that the sun's centre is 0.833 deg below the geometric horizon (0.567
deg refraction + 0.267 deg semi-diameter), the same convention as almanacs and ``astral``; the
``DAY`` threshold of :class:`LightConfig` is that same -0.833 deg, so "day" means "the sun is up"
in the almanac sense. ``TWILIGHT`` runs down to nautical dusk (-12 deg): below it the horizon is
invisible to the naked eye and unaided observation is effectively night.

Time conventions: UTC datetimes are timezone-aware (``tzinfo=UTC``); scenario wall-clock times
are naive and sit ``utc_offset_hours`` ahead of UTC (Syria/Iraq, UTC+3, by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Clock",
    "ClockTick",
    "LightConfig",
    "LightLevel",
    "light_level",
    "sun_elevation_deg",
    "sunrise_sunset_utc",
]

SUNRISE_DEPRESSION_DEG = 0.833
"""Sun centre below the geometric horizon at almanac sunrise/sunset (refraction + semi-diameter)."""

_J2000 = np.datetime64("2000-01-01T12:00:00", "ns")
_NS_PER_DAY = 86_400e9


#: Hours in a day: the step is an hour, and rests, recoveries and daily draws count in days.
HOURS_PER_DAY = 24


class LightLevel(IntEnum):
    """Light of an hour, ordered: comparisons such as ``light >= TWILIGHT`` are meaningful."""

    NIGHT = 0
    TWILIGHT = 1
    DAY = 2


class LightConfig(BaseModel):
    """Sun-elevation thresholds (geometric elevation, degrees) between the light levels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day_min_elevation_deg: float = Field(
        -SUNRISE_DEPRESSION_DEG, ge=-18.0, le=10.0,
        description="DAY when the sun is above this (default: almanac sunrise/sunset).",
    )
    twilight_min_elevation_deg: float = Field(
        -12.0, ge=-18.0, le=10.0,
        description="TWILIGHT from here up to the day threshold (default: nautical twilight).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> LightConfig:
        if self.twilight_min_elevation_deg >= self.day_min_elevation_deg:
            raise ValueError(
                "twilight_min_elevation_deg must be below day_min_elevation_deg "
                f"({self.twilight_min_elevation_deg} >= {self.day_min_elevation_deg})"
            )
        return self


DEFAULT_LIGHT = LightConfig()


# --------------------------------------------------------------------------- time conversion
def _to_datetime64_utc(when_utc: Any) -> np.ndarray:
    """``datetime`` (aware -> converted to UTC, naive -> taken as UTC) or datetime64 array."""
    if isinstance(when_utc, datetime):
        if when_utc.tzinfo is not None:
            when_utc = when_utc.astimezone(UTC).replace(tzinfo=None)
        return np.asarray(np.datetime64(when_utc, "ns"))
    if isinstance(when_utc, date):
        return np.asarray(np.datetime64(when_utc, "ns"))
    arr = np.asarray(when_utc)
    if arr.dtype == object:  # a list of datetimes
        return np.array([_to_datetime64_utc(w) for w in arr.ravel()]).reshape(arr.shape)
    if not np.issubdtype(arr.dtype, np.datetime64):
        raise TypeError(f"when_utc must be datetime or datetime64, got dtype {arr.dtype}")
    return arr.astype("datetime64[ns]")


def _julian_century(when64: np.ndarray) -> np.ndarray:
    days = (when64 - _J2000).astype("int64") / _NS_PER_DAY
    return days / 36525.0


def _sun_dec_eot(t_cent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solar declination (rad) and equation of time (minutes) at Julian centuries ``t_cent``."""
    t = t_cent
    l0 = np.radians(np.mod(280.46646 + t * (36000.76983 + t * 0.0003032), 360.0))
    m = np.radians(357.52911 + t * (35999.05029 - 0.0001537 * t))
    e = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    c = (
        np.sin(m) * (1.914602 - t * (0.004817 + 0.000014 * t))
        + np.sin(2 * m) * (0.019993 - 0.000101 * t)
        + np.sin(3 * m) * 0.000289
    )
    omega = np.radians(125.04 - 1934.136 * t)
    app_long = np.radians(np.degrees(l0) + c - 0.00569 - 0.00478 * np.sin(omega))
    eps0 = 23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60.0) / 60.0
    eps = np.radians(eps0 + 0.00256 * np.cos(omega))
    dec = np.arcsin(np.sin(eps) * np.sin(app_long))
    y = np.tan(eps / 2.0) ** 2
    eot_rad = (
        y * np.sin(2 * l0)
        - 2 * e * np.sin(m)
        + 4 * e * y * np.sin(m) * np.cos(2 * l0)
        - 0.5 * y * y * np.sin(4 * l0)
        - 1.25 * e * e * np.sin(2 * m)
    )
    return dec, 4.0 * np.degrees(eot_rad)


def _refraction_deg(elev_deg: np.ndarray) -> np.ndarray:
    """NOAA's approximation of atmospheric refraction (deg) at geometric elevation ``elev_deg``."""
    e = np.asarray(elev_deg, dtype=float)
    te = np.tan(np.radians(np.clip(e, -89.0, 89.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        high = 58.1 / te - 0.07 / te**3 + 0.000086 / te**5
        mid = 1735.0 + e * (-518.2 + e * (103.4 + e * (-12.79 + e * 0.711)))
        low = -20.774 / te
    arcsec = np.where(e > 85.0, 0.0, np.where(e > 5.0, high, np.where(e > -0.575, mid, low)))
    return arcsec / 3600.0


def sun_elevation_deg(
    when_utc: Any, lat: Any, lon: Any, *, refraction: bool = False
) -> Any:
    """Elevation of the sun's centre above the horizon, degrees (numpy-broadcast).

    ``when_utc`` is a ``datetime`` (naive = UTC, aware = converted) or an array of
    ``datetime64`` in UTC; ``lat``/``lon`` are WGS84 degrees (east positive). Geometric
    elevation by default; ``refraction=True`` adds NOAA's refraction correction (apparent
    elevation). Returns a float for scalar input, else an array of the broadcast shape.
    """
    w = _to_datetime64_utc(when_utc)
    dec, eot = _sun_dec_eot(_julian_century(w))
    minutes = (w - w.astype("datetime64[D]")).astype("int64") / 60e9
    true_solar_min = np.mod(minutes + eot + 4.0 * np.asarray(lon, dtype=float), 1440.0)
    hour_angle = np.radians(true_solar_min / 4.0 - 180.0)
    phi = np.radians(np.asarray(lat, dtype=float))
    cos_zen = np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(hour_angle)
    elev = 90.0 - np.degrees(np.arccos(np.clip(cos_zen, -1.0, 1.0)))
    if refraction:
        elev = elev + _refraction_deg(elev)
    return float(elev) if np.ndim(elev) == 0 else elev


def _event_minutes(
    day64: np.ndarray, lat: float, lon: float, depression_deg: float, rising: bool
) -> np.ndarray:
    """Minutes after 00:00 UTC of ``day64`` (datetime64[D] array) of sunrise or sunset.

    The event is the one belonging to the solar day whose noon falls on that UTC date. Three
    fixed-point iterations re-evaluate declination and equation of time at the event itself
    (converges to well under a second). NaN where the sun never crosses (polar day/night).
    """
    base = day64.astype("datetime64[ns]")
    phi = math.radians(lat)
    cos_z = math.cos(math.radians(90.0 + depression_deg))
    sign = -1.0 if rising else 1.0
    minutes = np.full(day64.shape, 720.0 - 4.0 * lon)
    for _ in range(3):
        t = base + (minutes * 60e9).astype("int64").astype("timedelta64[ns]")
        dec, eot = _sun_dec_eot(_julian_century(t))
        with np.errstate(invalid="ignore"):
            cos_ha = (cos_z - math.sin(phi) * np.sin(dec)) / (math.cos(phi) * np.cos(dec))
            ha_deg = np.degrees(np.arccos(np.where(np.abs(cos_ha) <= 1.0, cos_ha, np.nan)))
        new = 720.0 - 4.0 * lon - eot + sign * 4.0 * ha_deg
        minutes = np.where(np.isnan(new), 720.0 - 4.0 * lon, new)
    # Redo the final evaluation so polar cases come back as NaN, not as the noon fallback.
    t = base + (minutes * 60e9).astype("int64").astype("timedelta64[ns]")
    dec, eot = _sun_dec_eot(_julian_century(t))
    with np.errstate(invalid="ignore"):
        cos_ha = (cos_z - math.sin(phi) * np.sin(dec)) / (math.cos(phi) * np.cos(dec))
        ha_deg = np.degrees(np.arccos(np.where(np.abs(cos_ha) <= 1.0, cos_ha, np.nan)))
    return 720.0 - 4.0 * lon - eot + sign * 4.0 * ha_deg


def _events64(
    days64: np.ndarray, lat: float, lon: float, depression_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sunrise and sunset (datetime64[ns] UTC; NaT where none) for each UTC date."""
    out = []
    base = days64.astype("datetime64[ns]")
    for rising in (True, False):
        m = _event_minutes(days64, lat, lon, depression_deg, rising)
        ns = np.where(np.isnan(m), 0, np.round(m * 60e9)).astype("int64")
        ev = base + ns.astype("timedelta64[ns]")
        out.append(np.where(np.isnan(m), np.datetime64("NaT", "ns"), ev))
    return out[0], out[1]


def sunrise_sunset_utc(
    day: date, lat: float, lon: float, *, depression_deg: float = SUNRISE_DEPRESSION_DEG
) -> tuple[datetime, datetime]:
    """Sunrise and sunset (timezone-aware UTC datetimes) on the UTC date ``day``.

    ``depression_deg`` is how far the sun's centre is below the geometric horizon at the event
    (0.833 = almanac sunrise; 6, 12, 18 give civil, nautical, astronomical twilight). The events
    are those of the solar day whose noon falls on ``day`` (for the Badia, UTC+2.5 h of solar
    time, that is also the local date). Raises ``ValueError`` if the sun does not cross that
    elevation on that day (polar day or night).
    """
    if isinstance(day, datetime):
        day = day.date()
    d64 = np.asarray([np.datetime64(day, "D")])
    rise, sset = _events64(d64, float(lat), float(lon), float(depression_deg))
    if np.isnat(rise[0]) or np.isnat(sset[0]):
        raise ValueError(
            f"the sun does not cross {-depression_deg:.3f} deg elevation on {day} "
            f"at lat {lat}, lon {lon}"
        )
    return _dt_utc(rise[0]), _dt_utc(sset[0])


def _dt_utc(t64: np.datetime64) -> datetime:
    us = t64.astype("datetime64[us]").astype(datetime)
    return us.replace(tzinfo=UTC)


def light_level(elevation_deg: Any, cfg: LightConfig = DEFAULT_LIGHT) -> Any:
    """Light level of a sun elevation (deg): a :class:`LightLevel` for a scalar, else an int8
    array of ``LightLevel`` values. DAY above ``cfg.day_min_elevation_deg``, TWILIGHT down to
    ``cfg.twilight_min_elevation_deg`` (inclusive), NIGHT below."""
    e = np.asarray(elevation_deg, dtype=float)
    lvl = (e >= cfg.twilight_min_elevation_deg).astype(np.int8) + (
        e > cfg.day_min_elevation_deg
    ).astype(np.int8)
    return LightLevel(int(lvl)) if lvl.ndim == 0 else lvl


# --------------------------------------------------------------------------- the clock
@dataclass(frozen=True, slots=True)
class ClockTick:
    """Everything the model needs to know about one hourly step."""

    hour_index: int
    """Steps since the start (the start itself is 0)."""
    local: datetime
    """Wall-clock time (naive, ``utc_offset_hours`` ahead of UTC)."""
    utc: datetime
    """The same instant in UTC (timezone-aware)."""
    day: int
    """Calendar day number: 0 on the start's wall-clock date, 1 on the next date, ..."""
    hour_of_day: int
    """Wall-clock hour, 0..23."""
    sun_elevation_deg: float
    """Geometric sun elevation at the map centre, sampled within the step (default mid-step)."""
    light: LightLevel


class Clock:
    """Hourly clock of a run: hour index -> wall-clock time, day, sun elevation and light.

    ``start_local`` is the naive wall-clock datetime of step 0 in a zone ``utc_offset_hours``
    ahead of UTC; step ``h`` covers ``[start + h, start + h + 1)`` hours. The sun of a step is
    evaluated ``sample_offset_hours`` into it (default mid-step) at ``(lat, lon)``, normally the
    map centre (across a 500 km theatre sunrise differs by ~20 min, well under a step). Per-hour
    arrays are computed vectorised for a block of hours at once and extended on demand, so
    per-step queries are array look-ups. The ``hours_*`` queries measure from the step's start.
    """

    def __init__(
        self,
        start_local: datetime,
        lat: float,
        lon: float,
        *,
        utc_offset_hours: float = 3.0,
        light_config: LightConfig = DEFAULT_LIGHT,
        hours: int = 24 * 31,
        sample_offset_hours: float = 0.5,
    ) -> None:
        if start_local.tzinfo is not None:
            raise ValueError("start_local must be a naive wall-clock datetime")
        if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 360.0:
            raise ValueError(f"lat/lon out of range: {lat}, {lon}")
        if not -14.0 <= utc_offset_hours <= 14.0:
            raise ValueError(f"utc_offset_hours must be within [-14, 14], got {utc_offset_hours}")
        self.start_local = start_local
        self.lat = float(lat)
        self.lon = float(lon)
        self.utc_offset = timedelta(hours=utc_offset_hours)
        self.light_config = light_config
        self.start_utc = (start_local - self.utc_offset).replace(tzinfo=UTC)
        self._start64 = np.datetime64(start_local - self.utc_offset, "ns")
        if not 0.0 <= sample_offset_hours <= 1.0:
            raise ValueError(
                f"sample_offset_hours must be within [0, 1], got {sample_offset_hours}"
            )
        # The light of step h is the sun at h + sample_offset_hours: by default mid-step, the
        # fairest single sample of an hour that contains a sunrise or sunset.
        self._sample_ns = round(sample_offset_hours * 3.6e12)
        self._n = 0
        self._elev = np.empty(0)
        self._light = np.empty(0, dtype=np.int8)
        self._rise = np.empty(0, dtype="datetime64[ns]")
        self._set = np.empty(0, dtype="datetime64[ns]")
        self._ensure(max(int(hours), 1))

    # ------------------------------------------------------------------ precomputation
    def _ensure(self, n_hours: int) -> None:
        if n_hours <= self._n:
            return
        n = max(n_hours, 2 * self._n)
        times = self._start64 + (
            np.arange(n, dtype="int64") * 3_600_000_000_000 + self._sample_ns
        ).astype("timedelta64[ns]")
        self._elev = np.asarray(sun_elevation_deg(times, self.lat, self.lon))
        self._light = light_level(self._elev, self.light_config)
        # Sun events for every UTC date the run touches, one day of margin either side so the
        # next sunrise / last sunset always exists.
        first = self._start64.astype("datetime64[D]") - np.timedelta64(2, "D")
        last = times[-1].astype("datetime64[D]") + np.timedelta64(3, "D")
        days = np.arange(first, last, dtype="datetime64[D]")
        rise, sset = _events64(days, self.lat, self.lon, SUNRISE_DEPRESSION_DEG)
        self._rise = rise[~np.isnat(rise)]
        self._set = sset[~np.isnat(sset)]
        self._n = n

    def sun_elevation_deg(self, n_hours: int) -> np.ndarray:
        """Sun elevation (deg) of each of the first ``n_hours`` steps (read-only view)."""
        self._ensure(n_hours)
        v = self._elev[:n_hours]
        v.flags.writeable = False
        return v

    def light_levels(self, n_hours: int) -> np.ndarray:
        """:class:`LightLevel` values (int8) of the first ``n_hours`` steps (read-only view)."""
        self._ensure(n_hours)
        v = self._light[:n_hours]
        v.flags.writeable = False
        return v

    def light(self, hour_index: int) -> LightLevel:
        """Light level of step ``hour_index``."""
        self._check(hour_index)
        self._ensure(hour_index + 1)
        return LightLevel(int(self._light[hour_index]))

    # ------------------------------------------------------------------ queries
    @staticmethod
    def _check(hour_index: int) -> None:
        if hour_index < 0:
            raise ValueError(f"hour_index must be >= 0, got {hour_index}")

    def at(self, hour_index: int) -> ClockTick:
        """The state of the clock at step ``hour_index`` (0 = the start)."""
        h = int(hour_index)
        self._check(h)
        self._ensure(h + 1)
        local = self.start_local + timedelta(hours=h)
        return ClockTick(
            hour_index=h,
            local=local,
            utc=self.start_utc + timedelta(hours=h),
            day=(local.date() - self.start_local.date()).days,
            hour_of_day=local.hour,
            sun_elevation_deg=float(self._elev[h]),
            light=LightLevel(int(self._light[h])),
        )

    def hour_index_of(self, day: int, hour: float = 0.0) -> int:
        """Step index of wall-clock ``hour`` on calendar ``day`` (0 = the start date); the first
        step at or after that time. Raises ``ValueError`` if it is before the start."""
        target = datetime.combine(self.start_local.date(), datetime.min.time()) + timedelta(
            days=day, hours=hour
        )
        delta_h = (target - self.start_local).total_seconds() / 3600.0
        if delta_h < 0:
            raise ValueError(f"day {day} hour {hour} is before the start {self.start_local}")
        return math.ceil(delta_h - 1e-9)

    def _times64(self, hour_index: Any) -> np.ndarray:
        h = np.asarray(hour_index, dtype=float)
        if np.any(h < 0):
            raise ValueError("hour_index must be >= 0")
        self._ensure(int(np.max(h, initial=0)) + 2)
        return self._start64 + np.round(h * 3.6e12).astype("int64").astype("timedelta64[ns]")

    @staticmethod
    def _out(v: np.ndarray) -> Any:
        return float(v) if np.ndim(v) == 0 else v

    def _gap_hours(self, events: np.ndarray, hour_index: Any, forward: bool) -> Any:
        t = self._times64(hour_index)
        if forward:
            i = np.searchsorted(events, t, side="left")
        else:
            i = np.searchsorted(events, t, side="right") - 1
        ok = (i >= 0) & (i < events.size)
        ev = events[np.clip(i, 0, max(events.size - 1, 0))] if events.size else t
        gap = (ev - t if forward else t - ev).astype("int64") / 3.6e12
        # No such event in the table: only in polar day or night.
        return self._out(np.where(ok, gap, np.nan))

    def hours_until_sunrise(self, hour_index: Any) -> Any:
        """Hours from step ``hour_index`` (may be fractional or an array) to the next sunrise at or
        after it: "how long will the dark last / when will dawn catch me in the open"."""
        return self._gap_hours(self._rise, hour_index, forward=True)

    def hours_until_sunset(self, hour_index: Any) -> Any:
        """Hours from step ``hour_index`` to the next sunset at or after it."""
        return self._gap_hours(self._set, hour_index, forward=True)

    def hours_since_sunset(self, hour_index: Any) -> Any:
        """Hours from the last sunset at or before step ``hour_index`` to it."""
        return self._gap_hours(self._set, hour_index, forward=False)

    def hours_since_sunrise(self, hour_index: Any) -> Any:
        """Hours from the last sunrise at or before step ``hour_index`` to it."""
        return self._gap_hours(self._rise, hour_index, forward=False)


def _dusks(levels: np.ndarray) -> np.ndarray:
    """Hours that begin a night: night, after an hour that is not (never the first hour)."""
    night = levels == LightLevel.NIGHT
    return np.concatenate(([False], night[1:] & ~night[:-1]))


class LightCalendar:
    """The light of every hour of a run, precomputed once, and the questions tactics ask of it
    ("how long until first light", "when does the next night begin").

    ``levels[h]`` is the :class:`LightLevel` of step ``h`` (:meth:`Clock.light_levels`). Queries
    look at most 48 hours ahead; past the end of the table they answer "in a day" (24 h), which
    only happens at the end of a run.
    """

    #: How far ahead the queries look, in hours (a night and a day and then some).
    LOOKAHEAD_HOURS = 48

    def __init__(self, levels: np.ndarray):
        self.levels = levels  # not written to after this: the tables below are made from it
        # per question, the answer for every hour of the run (:meth:`_next_where`), made at
        # the question's first asking: the tactics of a few hundred units ask them hour after
        # hour, and a table lookup costs a fraction of a numpy scan of the next hours
        self._tables: dict[Any, list[int]] = {}
        self._changed: list[bool] | None = None  # changed_at of every hour, made at its first call

    def _next_where(self, name: Any, mask_of) -> list[int]:
        """``t[h]``: the first hour ``j >= h`` where ``mask_of(levels)[j]`` holds (``len(levels)``
        if none), for every ``h`` in ``0 .. len(levels)`` (a table per ``name``): a query's
        scan of the hours ``h .. h + w`` finds ``t[h]`` if ``t[h] < min(h + w, len(levels))``,
        else nothing."""
        table = self._tables.get(name)
        if table is None:
            n = len(self.levels)
            at = np.where(mask_of(self.levels), np.arange(n), n)
            table = np.minimum.accumulate(np.append(at, n)[::-1])[::-1].tolist()
            self._tables[name] = table
        return table

    def _fast(self, hour: Any) -> bool:
        """Whether ``hour`` is answered from the tables: a Python int within the run (the
        scans below stay for anything else, a numpy hour getting numpy answers as before)."""
        return type(hour) is int and 0 <= hour < len(self.levels)

    def at(self, hour: int) -> LightLevel:
        """Light level of step ``hour``."""
        return LightLevel(int(self.levels[hour]))

    def changed_at(self, hour: int) -> bool:
        """Whether the light of step ``hour`` differs from the step before (dusk, dawn)."""
        changed = self._changed
        if changed is None:  # once per run, for the model asks every hour
            levels = self.levels
            changed = self._changed = [False, *(levels[1:] != levels[:-1]).tolist()]
        return changed[hour]

    def hours_to_first_light(self, hour: int) -> float:
        """Hours from ``hour`` until morning twilight begins (the end of darkness); 0 by day."""
        end = min(len(self.levels), hour + 30)
        if self._fast(hour):
            j = self._next_where("not_night", lambda v: v != LightLevel.NIGHT)[hour]
            return float(j - hour) if j < end else float(end - hour)
        later = np.flatnonzero(self.levels[hour:end] != LightLevel.NIGHT)
        return float(later[0]) if len(later) else float(end - hour)

    def next_dusk_hour(self, hour: int) -> int:
        """The first hour of the next night (after the coming day if it is night now)."""
        if self._fast(hour):
            # a dusk: a night hour after one that is not (looked for from the next hour on)
            j = self._next_where("dusk", _dusks)[hour + 1]
            return j if j < min(hour + self.LOOKAHEAD_HOURS, len(self.levels)) else hour + 24
        night = self.levels[hour : hour + self.LOOKAHEAD_HOURS] == LightLevel.NIGHT
        starts = np.flatnonzero(night[1:] & ~night[:-1]) + 1
        return hour + int(starts[0]) if len(starts) else hour + 24

    def next_night_hour(self, hour: int) -> int:
        """The next hour of full night (``hour`` itself if it is night)."""
        if self._fast(hour):
            j = self._next_where("night", lambda v: v == LightLevel.NIGHT)[hour]
            return j if j < min(hour + 36, len(self.levels)) else hour + 24
        later = np.flatnonzero(self.levels[hour : hour + 36] == LightLevel.NIGHT)
        return hour + int(later[0]) if len(later) else hour + 24

    def next_day_hour(self, hour: int) -> int:
        """The next hour of full daylight after ``hour``."""
        if self._fast(hour):
            n = len(self.levels)
            j = self._next_where("day", lambda v: v == LightLevel.DAY)[hour + 1]
            return j if j < min(hour + 37, n) else hour + 1 + 24
        later = np.flatnonzero(self.levels[hour + 1 : hour + 37] == LightLevel.DAY)
        return hour + 1 + int(later[0]) if len(later) else hour + 1 + 24

    def end_of(self, hour: int, level: LightLevel, window_hours: int = 36) -> int:
        """The first hour at or after ``hour`` whose light is not ``level`` (``hour +
        window_hours`` if the light stays ``level`` that long)."""
        if self._fast(hour) and type(window_hours) is int and window_hours > 0:
            lv = int(level)
            j = self._next_where(("not", lv), lambda v: v != lv)[hour]
            return j if j < min(hour + window_hours, len(self.levels)) else hour + window_hours
        later = np.flatnonzero(self.levels[hour : hour + window_hours] != level)
        return hour + int(later[0]) if len(later) else hour + window_hours
