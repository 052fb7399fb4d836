"""In-process StateStore: the default for a single keymux process.

Every method runs without suspending, so check-and-reserve is atomic in one event loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from keymux.config.schema import Limits
from keymux.pool.deployment import Deployment
from keymux.pool.limits import MINUTE, DayCounter, SlidingWindow, min_known
from keymux.pool.store import Blocked, Park, Reservation, ScopeView, State, pinned_kind

INF = float("inf")
# A scope whose request limit is unknown (none declared, none learned yet) starts slowly, like TCP: it
# sends rounds of `window` requests, the window doubling after a round that all succeeded and halving
# on a 429, until it has shown its limit in a 429 or gone this long without one. A round ends only when
# all its requests are answered, so a free-tier key sees at most the second round before its first 429
# comes back (window 1, then 2), where a burst straight away would have many requests in flight.
PROBE_SPAN = MINUTE
WINDOW_MAX = 4096


@dataclass
class _Scope:
    minute_requests: SlidingWindow = field(default_factory=SlidingWindow)
    minute_tokens: SlidingWindow = field(default_factory=SlidingWindow)
    day: DayCounter = field(default_factory=DayCounter)
    park: Park | None = None
    backoff_level: int = 0
    in_flight: int = 0
    learned: dict[str, int] = field(default_factory=dict)
    effective: tuple[Limits, Limits] | None = None  # (declared, declared with learned limits): see _limits
    probe_since: float | None = None  # when the cautious start began (None: not yet used)
    probed: bool = False  # went PROBE_SPAN without a 429: no need for caution
    window: int = 1  # slow start: requests per round while the limit is unknown
    round_sent: int = 0  # admitted in the current round
    round_done: int = 0  # of those, answered
    round_ok: int = 0  # of those, succeeded


@dataclass
class _Dep:
    park: Park | None = None
    failures: deque[float] = field(default_factory=deque)


class MemoryStore:
    def __init__(self) -> None:
        self._scopes: dict[str, _Scope] = {}
        self._deps: dict[str, _Dep] = {}
        self._disabled: dict[str, str] = {}
        self._pins: dict[str, tuple[str, float]] = {}  # resource -> (owner fingerprint, expires at)
        self._jobs: dict[str, str] = {}  # long-running job name -> what recording its end needs (JSON)
        self._sweep_pins_at = 100_000  # pins held before expired ones are swept (doubles: sweeps stay rare)

    def _scope(self, key: str) -> _Scope:
        s = self._scopes.get(key)
        if s is None:
            s = self._scopes[key] = _Scope()
        return s

    def _dep(self, key: str) -> _Dep:
        d = self._deps.get(key)
        if d is None:
            d = self._deps[key] = _Dep()
        return d

    # -- admission -------------------------------------------------------------------------
    @staticmethod
    def _limits(d: Deployment, s: _Scope) -> Limits:
        """The scope's declared limits, lowered by any it learned; cached until either changes."""
        declared = d.limits
        cached = s.effective
        if cached is not None and cached[0] is declared:
            return cached[1]
        learned = s.learned
        lim = declared if not learned else Limits(
            rpm=min_known(declared.rpm, learned.get("rpm")), tpm=min_known(declared.tpm, learned.get("tpm")),
            rpd=min_known(declared.rpd, learned.get("rpd")), tpd=min_known(declared.tpd, learned.get("tpd")),
            max_parallel=declared.max_parallel)
        s.effective = (declared, lim)
        return lim

    def _free_at(self, d: Deployment, s: _Scope, tokens: float, now: float) -> tuple[float, str]:
        """When this deployment could take the request (now if it can), and why not if later."""
        if self._disabled and d.fingerprint in self._disabled:
            return INF, f"disabled ({self._disabled[d.fingerprint]})"
        when, why = now, ""
        park = s.park
        if park is not None and park.until > when:
            when, why = park.until, park.reason
        dep = self._deps.get(d.id) if self._deps else None
        park = dep.park if dep is not None else None
        if park is not None and park.until > when:
            when, why = park.until, park.reason
        lim = self._limits(d, s)
        rpm = lim.rpm
        if rpm is not None:
            t = s.minute_requests.free_at(now, 1, rpm)
            if t > when:
                when, why = t, f"rpm {rpm} reached"
        tpm = lim.tpm
        if tpm is not None and tokens:
            t = s.minute_tokens.free_at(now, tokens, tpm)
            if t > when:
                when, why = t, f"tpm {tpm} reached" if t < INF else f"request (~{int(tokens)} tokens) exceeds tpm {tpm}"
        s.day.roll(now)
        rpd = lim.rpd
        if rpd is not None and s.day.requests >= rpd:
            t = s.day.end
            if t > when:
                when, why = t, f"rpd {rpd} reached, back at midnight Pacific"
        tpd = lim.tpd
        if tpd is not None and tokens and s.day.tokens + tokens > tpd:
            t = s.day.end
            if t > when:
                when, why = t, f"tpd {tpd} reached, back at midnight Pacific"
        return when, why

    async def reserve(self, ordered: Sequence[Deployment], tokens: float, now: float,
                      metered: bool = True) -> Reservation | Blocked:
        earliest = INF
        reasons: dict[str, str] = {}
        parallel = False
        for d in ordered:
            if not metered:
                if d.fingerprint in self._disabled:
                    reasons[d.id] = f"disabled ({self._disabled[d.fingerprint]})"
                    continue
                return Reservation(deployment=d, tokens=0, at=now)
            s = self._scope(d.scope)
            when, why = self._free_at(d, s, tokens, now)
            if when <= now:
                cap = d.limits.max_parallel
                if cap is not None and s.in_flight >= cap:
                    parallel = True
                    reasons[d.id] = f"{cap} requests in flight"
                    continue
                if self._probing(d, s, now) and not self._slow_start_admits(s):
                    parallel = True
                    reasons[d.id] = f"limit unknown yet: slow start, {s.window} at a time"
                    continue
                return self._take(d, s, tokens, now)
            reasons[d.id] = why
            earliest = min(earliest, when)
        return Blocked(earliest=earliest, reasons=reasons, waiting_on_parallel=parallel)

    @staticmethod
    def _probing(d: Deployment, s: _Scope, now: float) -> bool:
        if s.probed or d.limits.rpm is not None or "rpm" in s.learned:
            return False
        if s.probe_since is None:
            s.probe_since = now
        elif now - s.probe_since >= PROBE_SPAN:
            s.probed = True
        return not s.probed

    @staticmethod
    def _slow_start_admits(s: _Scope) -> bool:
        if s.round_sent >= s.window:
            if s.round_done < s.round_sent:
                return False  # the round is still out: wait for its answers
            if s.round_ok >= s.window:
                s.window = min(s.window * 2, WINDOW_MAX)
            s.round_sent = s.round_done = s.round_ok = 0
        s.round_sent += 1
        return True

    def _take(self, d: Deployment, s: _Scope, tokens: float, now: float) -> Reservation:
        s.in_flight += 1
        s.day.requests += 1
        s.day.tokens += tokens
        req = s.minute_requests.add(now, 1)
        tok = s.minute_tokens.add(now, tokens)
        return Reservation(deployment=d, tokens=tokens, at=now, handles=[s, req, tok, s.day.day])

    async def settle(self, reservation: Reservation, tokens: float, now: float, succeeded: bool = False,
                     limited: bool = False) -> None:
        if succeeded:
            self._succeeded(reservation.deployment)
        if not reservation.handles:  # unmetered
            return
        s, _req, tok, day = reservation.handles
        assert isinstance(s, _Scope) and isinstance(tok, list)
        s.in_flight -= 1
        if limited:  # a 429: halve the slow-start window and begin a new round
            s.window = max(1, s.window // 2)
            s.round_sent = s.round_done = s.round_ok = 0
        elif s.round_done < s.round_sent:
            s.round_done += 1
            s.round_ok += succeeded
        s.minute_tokens.settle(tok, reservation.tokens, tokens, now)
        if s.day.day == day:
            s.day.tokens += tokens - reservation.tokens

    # -- state changes ---------------------------------------------------------------------
    async def park_scope(self, scope: str, park: Park) -> None:
        s = self._scope(scope)
        if s.park is None or park.until > s.park.until:  # never shorten a park already in force
            s.park = park
        s.probe_since, s.probed = park.until, False  # a 429 means caution again, from the end of the park

    async def park_deployment(self, deployment_id: str, park: Park) -> None:
        self._dep(deployment_id).park = park

    async def disable_key(self, fingerprint: str, reason: str) -> None:
        self._disabled[fingerprint] = reason

    async def enable_key(self, fingerprint: str) -> None:
        self._disabled.pop(fingerprint, None)

    async def reset_key(self, fingerprint: str, scopes: Sequence[str], deployment_ids: Sequence[str]) -> None:
        for scope in scopes:
            s = self._scopes.get(scope)
            if s is not None:
                s.park, s.backoff_level = None, 0
        for deployment_id in deployment_ids:
            self._deps.pop(deployment_id, None)

    async def record_failure(self, deployment_id: str, now: float, window: float = MINUTE) -> int:
        fails = self._dep(deployment_id).failures
        fails.append(now)
        while fails and fails[0] <= now - window:
            fails.popleft()
        return len(fails)

    async def record_success(self, deployment: Deployment) -> None:
        self._succeeded(deployment)

    def _succeeded(self, deployment: Deployment) -> None:
        s = self._scopes.get(deployment.scope)
        if s is not None:
            s.backoff_level = 0
        dep = self._deps.get(deployment.id)
        if dep is not None:
            dep.failures.clear()

    async def next_backoff(self, scope: str) -> int:
        s = self._scope(scope)
        s.backoff_level += 1
        return s.backoff_level

    async def learn_limit(self, scope: str, name: str, value: int) -> None:
        s = self._scope(scope)
        s.learned[name] = value
        s.effective = None

    # -- views -----------------------------------------------------------------------------
    async def refresh(self, deployments: Sequence[Deployment], now: float) -> None:
        """Views are always current here."""

    def view(self, d: Deployment, now: float) -> ScopeView:
        s = self._scope(d.scope)
        s.day.roll(now)
        state, until, reason = State.READY, None, ""
        if d.fingerprint in self._disabled:
            state, reason = State.DISABLED, self._disabled[d.fingerprint]
        else:
            dep = self._deps.get(d.id)
            for park in (s.park, dep.park if dep else None):
                if park is not None and park.until > now and (until is None or park.until > until):
                    state, until, reason = park.state, park.until, park.reason
            if state is State.READY:
                when, why = self._free_at(d, s, 0, now)
                if when > now:
                    daily = "midnight" in why
                    state, until, reason = (State.EXHAUSTED if daily else State.COOLING), when, why
        return ScopeView(
            state=state,
            until=until,
            reason=reason,
            rpm_used=s.minute_requests.total(now),
            tpm_used=s.minute_tokens.total(now),
            rpd_used=s.day.requests,
            tpd_used=s.day.tokens,
            in_flight=s.in_flight,
            learned=dict(s.learned),
        )

    async def pin(self, resource: str, owner: str, ttl: float, now: float) -> None:
        if len(self._pins) >= self._sweep_pins_at:  # drop what has expired before growing further
            self._pins = {r: p for r, p in self._pins.items() if p[1] > now}
            self._sweep_pins_at = max(100_000, 2 * len(self._pins))
        self._pins[resource] = (owner, now + ttl)

    async def owner(self, resource: str, now: float) -> str | None:
        pinned = self._pins.get(resource)
        if pinned is None:
            return None
        if pinned[1] <= now:
            del self._pins[resource]
            return None
        return pinned[0]

    async def unpin(self, resource: str) -> None:
        self._pins.pop(resource, None)

    async def pin_counts(self, now: float) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for resource, (owner, until) in self._pins.items():
            kind = pinned_kind(resource)
            if kind is not None and until > now:
                per = counts.setdefault(owner, {})
                per[kind] = per.get(kind, 0) + 1
        return counts

    async def track_job(self, name: str, info: str) -> None:
        self._jobs[name] = info

    async def tracked_jobs(self) -> dict[str, str]:
        return dict(self._jobs)

    async def untrack_job(self, name: str) -> str | None:
        return self._jobs.pop(name, None)
