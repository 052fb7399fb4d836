"""Counting windows: a sliding minute, and a day that ends at midnight Pacific time.

Google resets daily quotas at midnight America/Los_Angeles, so a key out for the day is
out until then, not for "24 hours" and not for "60 seconds".
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta, timezone

MINUTE = 60.0
COALESCE_AFTER = 256  # entries a window keeps exact before it starts merging (see SlidingWindow)
COALESCE_SPAN = 1.0  # seconds of additions one merged entry may cover

try:
    from zoneinfo import ZoneInfo

    _PACIFIC: timezone | ZoneInfo | None = ZoneInfo("America/Los_Angeles")
except Exception:  # noqa: BLE001 - no tz database on this host (e.g. Alpine): use the US rule below
    _PACIFIC = None


def min_known(a: int | None, b: int | None) -> int | None:
    """The smaller of two optional limits; None means "no limit known"."""
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _us_pacific_offset(utc: datetime) -> timedelta:
    """US DST rule (since 2007): PDT from 2nd Sunday of March 10:00 UTC to 1st Sunday of November 09:00 UTC."""
    year = utc.year
    march = datetime(year, 3, 8, 10, tzinfo=timezone.utc)
    start = march + timedelta(days=(6 - march.weekday()) % 7)
    nov = datetime(year, 11, 1, 9, tzinfo=timezone.utc)
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
    utc = datetime.fromtimestamp(t, timezone.utc)
    if _PACIFIC is not None:
        local = utc.astimezone(_PACIFIC)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp()
    local = (utc + _us_pacific_offset(utc)).replace(tzinfo=None)
    midnight_local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    guess = midnight_local.replace(tzinfo=timezone.utc) - _us_pacific_offset(utc)
    return guess.timestamp()


def next_pacific_midnight(t: float) -> float:
    """Epoch seconds of the next midnight America/Los_Angeles strictly after `t` (DST-aware)."""
    pacific_day_start(t)
    return _day_cache[1]


class SlidingWindow:
    """Amounts added over the last `span` seconds.

    Each reservation is an entry [time, amount] that can be settled later. Exact while the window is
    small; once it holds COALESCE_AFTER entries, additions within COALESCE_SPAN of the newest entry merge
    into it, dated by their newest member. That never admits early (a merged entry expires with its
    newest member) and keeps memory bounded at high request rates (about span / COALESCE_SPAN entries).
    """

    __slots__ = ("span", "_entries", "_total")

    def __init__(self, span: float = MINUTE) -> None:
        self.span = span
        self._entries: deque[list[float]] = deque()
        self._total = 0.0

    def _prune(self, now: float) -> None:
        cutoff = now - self.span
        entries = self._entries
        while entries and entries[0][0] <= cutoff:
            self._total -= entries.popleft()[1]

    def __len__(self) -> int:
        return len(self._entries)

    def total(self, now: float) -> float:
        self._prune(now)
        return self._total

    def add(self, now: float, amount: float) -> list[float]:
        self._prune(now)
        entries = self._entries
        self._total += amount
        if len(entries) >= COALESCE_AFTER and now - entries[-1][0] < COALESCE_SPAN:
            last = entries[-1]
            last[0] = now
            last[1] += amount
            return last
        entry = [now, amount]
        entries.append(entry)
        return entry

    def settle(self, entry: list[float], reserved: float, actual: float, now: float) -> None:
        """Replace a reserved amount with the real one, if its entry is still inside the window."""
        if entry[0] > now - self.span:
            delta = actual - reserved
            entry[1] += delta
            self._total += delta

    def free_at(self, now: float, need: float, limit: float) -> float:
        """Earliest time >= now at which `need` more fits under `limit` (inf if it never can)."""
        self._prune(now)
        if self._total + need <= limit:
            return now
        if need > limit:
            return float("inf")
        excess = self._total + need - limit
        for t, amount in self._entries:
            excess -= amount
            if excess <= 0:
                return t + self.span
        return now + self.span


class DayCounter:
    """Requests and tokens since the last midnight Pacific time."""

    __slots__ = ("day", "end", "requests", "tokens")

    def __init__(self) -> None:
        self.day = 0.0
        self.end = 0.0  # the next midnight Pacific after `day`
        self.requests = 0
        self.tokens = 0.0

    def roll(self, now: float) -> None:
        if self.day <= now < self.end:  # the common case, on every admission: no calendar arithmetic
            return
        day = pacific_day_start(now)
        end = next_pacific_midnight(now)
        if day != self.day:
            self.requests, self.tokens = 0, 0.0
        self.day, self.end = day, end
