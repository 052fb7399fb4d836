"""Shared bookkeeping for the upstream emulators: keys, quota windows, call log, faults.

Quota is counted per (project-or-key, model), like Google counts per project:
  - per-minute: a sliding 60 s window over the clock times of accepted requests
    (and, for tpm, their input tokens);
  - per-day: a counter that resets at midnight America/Los_Angeles.
Only requests that are answered successfully count.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")

KEY_STATUSES = frozenset(
    {"ok", "invalid", "not_found", "leaked", "suspended", "service_disabled", "location"}
)
FAULTS = frozenset({"503", "500", "bare429", "array429", "timeout", "midstream", "spendcap", "prepay", "tierdrop",
                    "content_policy"})

WINDOW = 60.0
EPSILON = 1e-6  # a request leaves the window this early: epoch floats carry ~0.2 µs of noise


@dataclass
class EmuKey:
    rpm: int | None = None
    rpd: int | None = None
    tpm: int | None = None  # input tokens per minute
    project: str | None = None  # keys of one project share quota counters
    status: str = "ok"  # see KEY_STATUSES
    free_limit_zero: bool = False  # every request answers the per-day 429 with limit 0

    def __post_init__(self) -> None:
        if self.status not in KEY_STATUSES:
            raise ValueError(f"unknown key status {self.status!r}; one of {sorted(KEY_STATUSES)}")


@dataclass(slots=True)
class Call:
    key: str  # the API key as sent ("" when none)
    model: str  # model id ("" for list calls)
    status: int  # HTTP status answered (0 for an injected hang)
    kind: str  # ok, rate_limited, daily_exhausted, invalid_key, overloaded, ...
    stream: bool
    at: float  # clock time
    endpoint: str = ""  # generateContent, streamGenerateContent, countTokens, chat.completions, ...


# ---------------------------------------------------------------- time helpers


def pacific_day_bounds(ts: float) -> tuple[float, float]:
    """Epoch bounds [start, end) of the America/Los_Angeles calendar day holding `ts`."""
    day = datetime.fromtimestamp(ts, PACIFIC).date()
    start = datetime.combine(day, dtime(0), tzinfo=PACIFIC).timestamp()
    end = datetime.combine(day + timedelta(days=1), dtime(0), tzinfo=PACIFIC).timestamp()
    return start, end


def next_pacific_midnight(ts: float) -> float:
    return pacific_day_bounds(ts)[1]


def proto_duration(seconds: float, whole: bool = False) -> str:
    """google.protobuf.Duration JSON: "26s", "26.100s", "26.123456s" (to the nearest µs).

    `whole=True` truncates to whole seconds, as Google's RetryInfo often does.
    """
    us = max(0, round(seconds * 1_000_000))
    s, frac = divmod(us, 1_000_000)
    if whole or frac == 0:
        return f"{s}s"
    if frac % 1000 == 0:
        return f"{s}.{frac // 1000:03d}s"
    return f"{s}.{frac:06d}s"


def go_duration(seconds: float) -> str:
    """Go time.Duration.String() of `seconds` rounded up to 1 ms: "0s", "12ms", "1.5s", "6m0s"."""
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, frac = divmod(rem, 1000)
    sec = f"{s}" if frac == 0 else f"{s}.{frac:03d}".rstrip("0")
    if h:
        return f"{h}h{m}m{sec}s"
    if m:
        return f"{m}m{sec}s"
    return f"{sec}s"


# ---------------------------------------------------------------- quota windows


@dataclass(slots=True)
class QuotaHit:
    """Why a request is refused. kind: rpm | tpm | rpd | zero."""

    kind: str
    limit: int
    used: int
    retry_after: float  # seconds until the per-minute window frees (short, also for rpd)


class _Counter:
    __slots__ = ("reqs", "toks", "tok_sum", "day_start", "day_end", "day_count")

    def __init__(self) -> None:
        self.reqs: deque[float] = deque()
        self.toks: deque[tuple[float, int]] = deque()
        self.tok_sum = 0
        self.day_start = 0.0
        self.day_end = 0.0
        self.day_count = 0

    def prune(self, now: float) -> None:
        edge = now - WINDOW + EPSILON
        reqs = self.reqs
        while reqs and reqs[0] <= edge:
            reqs.popleft()
        toks = self.toks
        while toks and toks[0][0] <= edge:
            self.tok_sum -= toks.popleft()[1]
        if not (self.day_start <= now < self.day_end):
            self.day_start, self.day_end = pacific_day_bounds(now)
            self.day_count = 0


class QuotaBook:
    """Per (scope, model) counters. `scope` is the key's project, or the key itself."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str], _Counter] = {}

    @staticmethod
    def scope(key: str, ek: EmuKey) -> str:
        return f"project:{ek.project}" if ek.project else f"key:{key}"

    def _get(self, scope: str, model: str, now: float) -> _Counter:
        c = self._counters.get((scope, model))
        if c is None:
            c = self._counters[(scope, model)] = _Counter()
        c.prune(now)
        return c

    def check(self, scope: str, model: str, ek: EmuKey, tokens: int, now: float) -> QuotaHit | None:
        """The first limit this request would break, or None. Does not record."""
        if ek.free_limit_zero:
            return QuotaHit("zero", 0, 0, _short_delay(now))
        if ek.rpd is None and ek.rpm is None and ek.tpm is None:
            return None
        c = self._get(scope, model, now)
        if ek.rpd is not None and c.day_count >= ek.rpd:
            return QuotaHit("rpd", ek.rpd, c.day_count, _short_delay(now))
        if ek.rpm is not None and len(c.reqs) >= ek.rpm:
            # the (len - rpm + 1)-th oldest request must leave before one more fits
            idx = len(c.reqs) - ek.rpm
            when = c.reqs[idx] + WINDOW if c.reqs else now + WINDOW
            return QuotaHit("rpm", ek.rpm, len(c.reqs), max(when - now, 0.001))
        if ek.tpm is not None and c.tok_sum + tokens > ek.tpm:
            used = c.tok_sum
            when = now + WINDOW
            free = used
            for ts, n in c.toks:
                free -= n
                if free + tokens <= ek.tpm:
                    when = ts + WINDOW
                    break
            return QuotaHit("tpm", ek.tpm, used, max(when - now, 0.001))
        return None

    def record(self, scope: str, model: str, tokens: int, now: float) -> None:
        c = self._get(scope, model, now)
        c.reqs.append(now)
        if tokens:
            c.toks.append((now, tokens))
            c.tok_sum += tokens
        c.day_count += 1

    def usage(self, scope: str, model: str, now: float) -> tuple[int, int, float, float]:
        """(requests in the minute window, tokens in it, seconds until the window is empty
        of requests, same for tokens)."""
        c = self._get(scope, model, now)
        r_reset = c.reqs[-1] + WINDOW - now if c.reqs else 0.0
        t_reset = c.toks[-1][0] + WINDOW - now if c.toks else 0.0
        return len(c.reqs), c.tok_sum, r_reset, t_reset

    def reset(self) -> None:
        self._counters.clear()


def _short_delay(now: float) -> float:
    """The short RetryInfo Google sends even for per-day quotas: until the next whole minute."""
    d = WINDOW - (now % WINDOW)
    return d if d > 0.001 else WINDOW


# ---------------------------------------------------------------- faults


class FaultQueue:
    """One-shot faults consumed in order; key-specific queues first, then the any-key queue."""

    def __init__(self) -> None:
        self._queues: dict[str | None, deque[str]] = {}

    def push(self, key: str | None, faults: tuple[str, ...]) -> None:
        for f in faults:
            if f not in FAULTS:
                raise ValueError(f"unknown fault {f!r}; one of {sorted(FAULTS)}")
        self._queues.setdefault(key, deque()).extend(faults)

    def pop(self, key: str) -> tuple[str | None, str] | None:
        """(queue it came from, fault) for the next request with `key`, or None."""
        if not self._queues:
            return None
        for k in (key, None):
            q = self._queues.get(k)
            if q:
                f = q.popleft()
                if not q:
                    del self._queues[k]
                return k, f
        return None

    def unpop(self, popped: tuple[str | None, str]) -> None:
        """Put a popped fault back at the head of its queue (the request never started)."""
        k, f = popped
        self._queues.setdefault(k, deque()).appendleft(f)

    def pending(self, key: str | None = None) -> int:
        q = self._queues.get(key)
        return len(q) if q else 0

    def clear(self) -> None:
        self._queues.clear()
