"""Google's day: daily quotas reset at midnight America/Los_Angeles, so a key out for the day is out until
then, not for "24 hours" and not for "60 seconds"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

try:
    from zoneinfo import ZoneInfo

    _PACIFIC: timezone | ZoneInfo | None = ZoneInfo("America/Los_Angeles")
except Exception:  # noqa: BLE001 - no tz database on this host (e.g. Alpine): use the US rule below
    _PACIFIC = None


def _us_pacific_offset(utc: datetime) -> timedelta:
    """US DST rule (since 2007): PDT from 2nd Sunday of March 10:00 UTC to 1st Sunday of November 09:00 UTC."""
    year = utc.year
    march = datetime(year, 3, 8, 10, tzinfo=UTC)
    start = march + timedelta(days=(6 - march.weekday()) % 7)
    nov = datetime(year, 11, 1, 9, tzinfo=UTC)
    end = nov + timedelta(days=(6 - nov.weekday()) % 7)
    return timedelta(hours=-7) if start <= utc < end else timedelta(hours=-8)


_day_cache = (0.0, 0.0)  # [start, end) of the last day asked about: most calls fall inside it


def pacific_day_start(t: float) -> float:
    """Epoch seconds of the midnight Pacific time that starts the day containing `t`."""
    global _day_cache
    start, end = _day_cache
    if start <= t < end:
        return start
    start = _compute_day_start(t)
    _day_cache = (start, _compute_day_start(start + 25 * 3600))
    return start


def _compute_day_start(t: float) -> float:
    utc = datetime.fromtimestamp(t, UTC)
    if _PACIFIC is not None:
        local = utc.astimezone(_PACIFIC)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp()
    local = (utc + _us_pacific_offset(utc)).replace(tzinfo=None)
    midnight_local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    guess = midnight_local.replace(tzinfo=UTC) - _us_pacific_offset(utc)
    return guess.timestamp()


def next_pacific_midnight(t: float) -> float:
    """Epoch seconds of the next midnight America/Los_Angeles strictly after `t` (DST-aware)."""
    pacific_day_start(t)
    return _day_cache[1]
