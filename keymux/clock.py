"""Time as the pool and the emulators see it.

Everything that depends on minute/day windows or cooldowns reads time through a
`Clock`, so tests can drive a `FakeClock` instead of sleeping.
`time()` is wall-clock epoch seconds (daily quotas reset at a wall-clock moment:
midnight America/Los_Angeles).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time as _time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` (in the event loop) once `time()` >= `when`."""
        ...


class SystemClock:
    time = staticmethod(_time.time)  # called several times per request: the C function, no frame of ours

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - _time.time()), callback)


class _FakeTimer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that only moves when told to; timers fire on `advance`."""

    def __init__(self, start: float = 1_767_000_000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _FakeTimer, Callable[[], None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = _FakeTimer()
        if when <= self._now:
            asyncio.get_running_loop().call_soon(self._fire, timer, callback)
        else:
            heapq.heappush(self._timers, (when, next(self._seq), timer, callback))
        return timer

    @staticmethod
    def _fire(timer: _FakeTimer, callback: Callable[[], None]) -> None:
        if not timer.cancelled:
            callback()

    def advance(self, seconds: float) -> None:
        self.set(self._now + seconds)

    def set(self, when: float) -> None:
        self._now = max(self._now, when)
        while self._timers and self._timers[0][0] <= self._now:
            _, _, timer, callback = heapq.heappop(self._timers)
            self._fire(timer, callback)
