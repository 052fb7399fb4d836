"""Counting windows: a sliding minute, and a day that ends at midnight Pacific time (keymux/pacific.py).
"""

from __future__ import annotations

from collections import deque

from keymux.pacific import next_pacific_midnight, pacific_day_start

__all__ = ["COALESCE_AFTER", "COALESCE_SPAN", "MINUTE", "DayCounter", "SlidingWindow", "min_known",
           "next_pacific_midnight", "pacific_day_start"]

MINUTE = 60.0
COALESCE_AFTER = 256  # entries a window keeps exact before it starts merging (see SlidingWindow)
COALESCE_SPAN = 1.0  # seconds of additions one merged entry may cover


def min_known(a: int | None, b: int | None) -> int | None:
    """The smaller of two optional limits; None means "no limit known"."""
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


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
        entries = self._entries
        if entries and entries[0][0] <= now - self.span:  # checked here: most calls have nothing to expire
            self._prune(now)
        return self._total

    def add(self, now: float, amount: float) -> list[float]:
        entries = self._entries
        if entries and entries[0][0] <= now - self.span:
            self._prune(now)
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
        entries = self._entries
        if entries and entries[0][0] <= now - self.span:
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
