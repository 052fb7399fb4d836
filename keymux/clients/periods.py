"""Budget periods: when the current one started and when it resets, in the client's stated time zone.

    day    local midnight to local midnight
    week   Monday 00:00 to the next Monday 00:00
    month  the 1st 00:00 to the next 1st 00:00
    total  never resets (start 0, reset None)

Computed from the clock's epoch seconds, so a FakeClock drives resets in tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PERIODS = ("day", "week", "month", "total")


def zone(name: str) -> ZoneInfo:
    """The named IANA zone; ValueError (with the name) when it is not one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as UTC or Europe/Berlin") from None


def _local_midnight(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def period_bounds(period: str, now: float, tz: ZoneInfo) -> tuple[float, float | None]:
    """(start, reset) of the period containing `now`, as epoch seconds."""
    if period == "total":
        return 0.0, None
    local = datetime.fromtimestamp(now, tz)
    start = _local_midnight(local)
    if period == "day":
        end = start + timedelta(days=1)
    elif period == "week":
        start -= timedelta(days=start.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = start.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown budget period {period!r}; one of {', '.join(PERIODS)}")
    # Re-attach the zone after the date arithmetic: a DST change inside the period moves the wall offset.
    start = start.replace(tzinfo=None).replace(tzinfo=tz)
    end = end.replace(tzinfo=None).replace(tzinfo=tz)
    return start.timestamp(), end.timestamp()


def day_bounds(now: float, tz: ZoneInfo) -> tuple[float, float]:
    start, end = period_bounds("day", now, tz)
    assert end is not None
    return start, end


def minute_bounds(now: float) -> tuple[float, float]:
    start = now - now % 60.0
    return start, start + 60.0
