"""Sun position, sunrise/sunset, light levels and the hourly clock."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from astral import Observer
from astral.sun import dusk, elevation, sun
from pydantic import ValidationError

from sim.world.clock import (
    Clock,
    LightCalendar,
    LightConfig,
    LightLevel,
    light_level,
    sun_elevation_deg,
    sunrise_sunset_utc,
)

PALMYRA = (34.5624, 38.2840)
AL_BUKAMAL = (34.45226, 40.91854)
DATES = [date(2018, 3, 20), date(2018, 6, 21), date(2018, 9, 22), date(2018, 12, 21)]


@pytest.mark.parametrize("place", [PALMYRA, AL_BUKAMAL], ids=["Palmyra", "Al-Bukamal"])
@pytest.mark.parametrize("day", DATES, ids=str)
def test_sunrise_sunset_agree_with_astral(place, day):
    """Independent source: astral. Tolerance 60 s (the brief allows 5 min; the two agree to
    about 15 s, astral adding a small refraction adjustment to the 0.833 deg convention)."""
    lat, lon = place
    rise, sset = sunrise_sunset_utc(day, lat, lon)
    ref = sun(Observer(lat, lon), date=day, tzinfo=UTC)
    assert abs((rise - ref["sunrise"]).total_seconds()) < 60
    assert abs((sset - ref["sunset"]).total_seconds()) < 60
    assert rise.tzinfo is not None and rise.date() == day


def test_day_length_follows_the_season():
    lengths = {}
    for day in DATES:
        rise, sset = sunrise_sunset_utc(day, *PALMYRA)
        lengths[day.month] = (sset - rise).total_seconds() / 3600
    assert lengths[6] > lengths[3] > lengths[12]
    # At the equinox (declination ~0) the sun is up 12 h plus the time it takes to sink the
    # 0.833 deg convention twice: 2 * asin(sin(0.833) / cos(lat)) / 15 deg per hour.
    extra = 2 * math.degrees(math.asin(math.sin(math.radians(0.833))
                                       / math.cos(math.radians(PALMYRA[0])))) / 15.0
    assert lengths[3] == pytest.approx(12.0 + extra, abs=0.03)
    # Solstices are symmetric about 12 h + extra (to the ~2 min of the equation of time).
    assert lengths[6] + lengths[12] == pytest.approx(24.0 + 2 * extra, abs=0.05)


def test_sun_elevation_agrees_with_astral_and_is_vectorised():
    lat, lon = AL_BUKAMAL
    times = [datetime(2018, m, 11, h, 17, tzinfo=UTC) for m in (1, 4, 7, 10) for h in (1, 6, 11)]
    ours = sun_elevation_deg(np.array([t.replace(tzinfo=None) for t in times],
                                      dtype="datetime64[ns]"), lat, lon)
    for t, e in zip(times, ours, strict=True):
        assert e == pytest.approx(elevation(Observer(lat, lon), t, with_refraction=False),
                                  abs=0.01)
        assert sun_elevation_deg(t, lat, lon) == pytest.approx(e)  # scalar path, aware time
    t = times[4]
    assert sun_elevation_deg(t, lat, lon, refraction=True) == pytest.approx(
        elevation(Observer(lat, lon), t, with_refraction=True), abs=0.02
    )
    # Broadcast over positions too.
    grid = sun_elevation_deg(times[1], np.array([[30.0], [35.0]]), np.array([38.0, 41.0]))
    assert grid.shape == (2, 2)


def test_sun_is_at_minus_0833_at_sunrise():
    rise, sset = sunrise_sunset_utc(date(2018, 6, 21), *PALMYRA)
    assert sun_elevation_deg(rise, *PALMYRA) == pytest.approx(-0.833, abs=0.005)
    assert sun_elevation_deg(sset, *PALMYRA) == pytest.approx(-0.833, abs=0.005)


def test_polar_night_is_an_error():
    with pytest.raises(ValueError, match="does not cross"):
        sunrise_sunset_utc(date(2018, 12, 21), 80.0, 15.0)


# --------------------------------------------------------------------------- light levels
def test_light_thresholds():
    assert light_level(10.0) is LightLevel.DAY
    assert light_level(-0.5) is LightLevel.DAY
    assert light_level(-1.0) is LightLevel.TWILIGHT
    assert light_level(-12.0) is LightLevel.TWILIGHT
    assert light_level(-12.1) is LightLevel.NIGHT
    cfg = LightConfig(day_min_elevation_deg=0.0, twilight_min_elevation_deg=-6.0)
    assert light_level(np.array([1.0, -3.0, -7.0]), cfg).tolist() == [2, 1, 0]
    with pytest.raises(ValidationError, match="twilight_min_elevation_deg"):
        LightConfig(day_min_elevation_deg=-5.0, twilight_min_elevation_deg=-3.0)
    with pytest.raises(ValidationError, match="extra"):
        LightConfig(dawn=1.0)


@pytest.mark.parametrize("day", DATES, ids=str)
def test_a_day_runs_night_twilight_day_twilight_night(day):
    """Minute by minute through a local day at Palmyra (UTC+3): NIGHT at midnight, DAY at noon,
    a TWILIGHT band on each side, and the evening band ends at astral's nautical dusk."""
    start = np.datetime64(datetime(day.year, day.month, day.day) - timedelta(hours=3), "ns")
    minutes = start + np.arange(24 * 60).astype("timedelta64[m]")
    light = light_level(sun_elevation_deg(minutes, *PALMYRA))
    assert light[0] == LightLevel.NIGHT  # local midnight
    assert light[12 * 60] == LightLevel.DAY  # local noon
    runs = [int(light[0])] + [int(v) for i, v in enumerate(light[1:], 1) if v != light[i - 1]]
    assert runs == [0, 1, 2, 1, 0]
    last_twilight = minutes[np.flatnonzero(light == LightLevel.TWILIGHT)[-1]]
    nautical = dusk(Observer(*PALMYRA), date=day, depression=12, tzinfo=UTC)
    last_dt = last_twilight.astype("datetime64[us]").astype(datetime).replace(tzinfo=UTC)
    gap = (last_dt - nautical).total_seconds()
    assert abs(gap) < 120


# --------------------------------------------------------------------------- the clock
def test_clock_hours_cross_midnight_month_and_year():
    clock = Clock(datetime(2018, 12, 31, 22, 0), *PALMYRA, utc_offset_hours=3.0)
    tick = clock.at(3)
    assert tick.local == datetime(2019, 1, 1, 1, 0)
    assert tick.utc == datetime(2018, 12, 31, 22, 0, tzinfo=UTC)
    assert (tick.day, tick.hour_of_day) == (1, 1)
    assert clock.at(1).day == 0 and clock.at(2).day == 1
    # Leap day.
    leap = Clock(datetime(2020, 2, 28, 23, 0), *PALMYRA)
    assert leap.at(24).local == datetime(2020, 2, 29, 23, 0)
    assert leap.at(25).local == datetime(2020, 3, 1, 0, 0)
    assert leap.at(25).day == 2
    # Far beyond the precomputed block: extended on demand.
    far = clock.at(24 * 400)
    assert far.local == datetime(2020, 2, 4, 22, 0)
    assert far.sun_elevation_deg == pytest.approx(
        sun_elevation_deg(far.utc + timedelta(minutes=30), *PALMYRA)
    )


def test_clock_light_is_night_at_midnight_and_day_at_noon_all_year():
    clock = Clock(datetime(2018, 1, 1, 0, 0), *PALMYRA, hours=24 * 365)
    light = clock.light_levels(24 * 365).reshape(365, 24)
    assert np.all(light[:, 0] == LightLevel.NIGHT)
    assert np.all(light[:, 12] == LightLevel.DAY)
    assert np.any(light == LightLevel.TWILIGHT)
    # Mid-hour sampling: the hour in which the sun sets is DAY iff it sets after mid-hour.
    tick = clock.at(24 * 171 + 19)  # 2018-06-21 19:00 local
    _, sset = sunrise_sunset_utc(date(2018, 6, 21), *PALMYRA)
    mid = tick.utc + timedelta(minutes=30)
    assert (tick.light == LightLevel.DAY) == (sset > mid)
    with pytest.raises(ValueError):
        clock.at(-1)
    assert not clock.light_levels(10).flags.writeable


def test_hours_until_sunrise_and_since_sunset():
    clock = Clock(datetime(2018, 6, 1, 18, 0), *PALMYRA)
    h = clock.hour_index_of(1, 0)  # local midnight June 1/2
    assert h == 6 and clock.at(h).local == datetime(2018, 6, 2, 0, 0)
    rise, _ = sunrise_sunset_utc(date(2018, 6, 2), *PALMYRA)
    _, sset = sunrise_sunset_utc(date(2018, 6, 1), *PALMYRA)
    midnight = clock.at(h).utc
    assert clock.hours_until_sunrise(h) == pytest.approx((rise - midnight).total_seconds() / 3600)
    assert clock.hours_since_sunset(h) == pytest.approx((midnight - sset).total_seconds() / 3600)
    # By day the next sunrise is tomorrow's, and the vectorised form agrees with the scalar.
    hs = np.arange(0, 48)
    until = clock.hours_until_sunrise(hs)
    assert until.shape == (48,)
    assert np.all((until > 0) & (until <= 24.1))
    assert until[h] == pytest.approx(clock.hours_until_sunrise(h))
    assert np.all(clock.hours_since_sunset(hs) >= 0)
    assert np.all(clock.hours_until_sunset(hs) >= 0)
    assert clock.hours_since_sunrise(h) == pytest.approx(
        24 - clock.hours_until_sunrise(h), abs=0.05
    )


def test_hour_index_of_round_trips():
    clock = Clock(datetime(2018, 6, 1, 18, 30), *PALMYRA)
    for day, hour in [(0, 19), (1, 6), (10, 0), (31, 23)]:
        tick = clock.at(clock.hour_index_of(day, hour))
        assert tick.day == day
        assert tick.local - datetime.combine(tick.local.date(), datetime.min.time()) < timedelta(
            hours=hour + 1
        )
    with pytest.raises(ValueError, match="before the start"):
        clock.hour_index_of(0, 6)


def test_clock_rejects_bad_input():
    with pytest.raises(ValueError, match="naive"):
        Clock(datetime(2018, 6, 1, tzinfo=UTC), *PALMYRA)
    with pytest.raises(ValueError, match="utc_offset_hours"):
        Clock(datetime(2018, 6, 1), *PALMYRA, utc_offset_hours=20)


# The light calendar's questions as they were asked before the answers were tabled: a numpy
# scan of the next hours each. The tables must answer every hour exactly as these do.
def _scan_first_light(levels, hour):
    end = min(len(levels), hour + 30)
    later = np.flatnonzero(levels[hour:end] != LightLevel.NIGHT)
    return float(later[0]) if len(later) else float(end - hour)


def _scan_dusk(levels, hour):
    night = levels[hour : hour + LightCalendar.LOOKAHEAD_HOURS] == LightLevel.NIGHT
    starts = np.flatnonzero(night[1:] & ~night[:-1]) + 1
    return hour + int(starts[0]) if len(starts) else hour + 24


def _scan_night(levels, hour):
    later = np.flatnonzero(levels[hour : hour + 36] == LightLevel.NIGHT)
    return hour + int(later[0]) if len(later) else hour + 24


def _scan_day(levels, hour):
    later = np.flatnonzero(levels[hour + 1 : hour + 37] == LightLevel.DAY)
    return hour + 1 + int(later[0]) if len(later) else hour + 1 + 24


def _scan_end_of(levels, hour, level, window):
    later = np.flatnonzero(levels[hour : hour + window] != level)
    return hour + int(later[0]) if len(later) else hour + window


@pytest.mark.parametrize("seed", range(6))
def test_light_calendar_tables_answer_as_the_scans(seed):
    """Every hour of random calendars (runs of light, and hour-by-hour noise), the table
    lookups give the scans' answers, of the same type, up to the table's end."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        n = int(rng.integers(1, 150))
        if seed % 2:
            levels = rng.integers(0, len(LightLevel), n)
        else:
            levels = np.repeat(rng.integers(0, len(LightLevel), n), rng.integers(1, 15, n))[:n]
        levels = levels.astype(np.int8)
        cal = LightCalendar(levels)
        for h in range(n):
            got = cal.hours_to_first_light(h)
            assert got == _scan_first_light(levels, h) and type(got) is float
            assert cal.next_dusk_hour(h) == _scan_dusk(levels, h)
            assert cal.next_night_hour(h) == _scan_night(levels, h)
            assert cal.next_day_hour(h) == _scan_day(levels, h)
            for level in LightLevel:
                for window in (1, 7, 36, 200):
                    got = cal.end_of(h, level, window)
                    assert got == _scan_end_of(levels, h, level, window) and type(got) is int
        # a numpy hour is still scanned (and answered in numpy, as before)
        h = np.int64(n // 2)
        assert cal.next_night_hour(h) == _scan_night(levels, h)
        assert cal.changed_at(0) is False
        assert [bool(cal.changed_at(k)) for k in range(1, n)] == [
            bool(levels[k] != levels[k - 1]) for k in range(1, n)]
