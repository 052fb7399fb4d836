"""The pool: which key may take this request now, or when will one be free?

`acquire` ranks a group's deployments with the routing strategy and asks the store to reserve
the first with room. When none has room, the request waits in one FIFO queue (shared by all
groups, since groups can share keys) until the earliest deployment frees up, or is refused at
once with an honest retry-after when that moment lies beyond the time it may wait.
`report` turns an upstream verdict into key state (park, disable, count failures).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from keymux.clock import Clock, Timer
from keymux.config.policies import RATE_LIMIT, SERVER, TIMEOUT
from keymux.config.schema import RouterSettings
from keymux.errors import NoCapacity
from keymux.pool.deployment import Deployment
from keymux.pool.egress import Egress, counts_for_egress
from keymux.pool.limits import next_pacific_midnight
from keymux.pool.store import Blocked, Park, Reservation, State, StateStore
from keymux.pool.strategies import Strategy, apply_order
from keymux.providers.base import Outcome, Verdict

log = logging.getLogger("keymux.pool")

PARK_MARGIN = 0.5  # seconds added to Google's retryDelay: its clock and ours are not the same clock
BACKOFF_BASE, BACKOFF_CAP = 5.0, 300.0
LIMITED = frozenset({Outcome.RATE_LIMITED, Outcome.BACKOFF, Outcome.DAILY_EXHAUSTED})  # the 429s


async def _nothing() -> None:
    return None


class Lease:
    """One admitted attempt on one deployment. Release exactly once."""

    __slots__ = ("deployment", "pool", "released", "reservation", "started")

    def __init__(self, reservation: Reservation, pool: Pool, started: float) -> None:
        self.reservation = reservation
        self.deployment: Deployment = reservation.deployment  # read several times per attempt: no property
        self.pool = pool
        self.started = started
        self.released = False

    def release(self, verdict: Verdict, tokens: float | None = None) -> Awaitable[None]:
        """Await it. A second release does nothing."""
        if self.released:
            return _nothing()
        self.released = True
        return self.pool._release(self, verdict, tokens)  # the pool's coroutine itself: one frame less


@dataclass(eq=False)
class _Waiter:
    group: str
    candidates: list[Deployment]
    ids: frozenset[str]
    tokens: float
    arrived: float
    deadline: float
    future: asyncio.Future[Reservation] = field(repr=False)
    timer: Timer | None = None


def _fmt_wait(seconds: float) -> str:
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    if seconds < 5400:
        return f"{math.ceil(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _fmt_clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S UTC")


class PoolConfig(Protocol):
    """What the pool reads of the live config snapshot (keymux/live.py), once per call."""

    @property
    def groups(self) -> dict[str, list[Deployment]]: ...
    @property
    def router(self) -> RouterSettings: ...
    @property
    def strategy(self) -> Strategy: ...
    def providers(self, group: str) -> frozenset[str]: ...
    def ordered(self, group: str) -> bool: ...
    def keys_of_provider(self, provider: str) -> int: ...


class LiveConfig(Protocol):
    @property
    def snapshot(self) -> PoolConfig: ...


class Pool:
    def __init__(self, live: LiveConfig, store: StateStore, clock: Clock) -> None:
        self.live = live
        self.store = store
        self.clock = clock
        self._waiters: list[_Waiter] = []
        self.egress = Egress()
        self.causes: dict[tuple[str, str], int] = {}  # (key fingerprint, 429 cause) -> answers, for metrics
        self._drain_timer: Timer | None = None
        self._draining = False
        self._redrain = False
        self.wait_observers: list[Callable[[float], None]] = []  # seconds each queued request waited

    # The snapshot in force: a reload swaps it (keymux/live.py). Leases in flight keep their deployment;
    # state lives in the store by scope / deployment id / fingerprint, so it carries over.
    @property
    def groups(self) -> dict[str, list[Deployment]]:
        return self.live.snapshot.groups

    @property
    def settings(self) -> RouterSettings:
        return self.live.snapshot.router

    @property
    def strategy(self) -> Strategy:
        return self.live.snapshot.strategy

    def swapped(self, _: object = None) -> None:
        """A new snapshot is in force: the queue may fit keys that were added."""
        self._kick()

    def providers(self, group: str) -> frozenset[str]:
        """The upstream APIs a group's deployments speak (usually one)."""
        return self.live.snapshot.providers(group)

    def wake(self) -> None:
        """Capacity may have freed elsewhere (another replica): offer it to the queue."""
        self._kick()

    def queue_depth(self) -> int:
        return len(self._waiters)

    def deployments_of(self, fingerprint: str) -> list[Deployment]:
        seen: dict[str, Deployment] = {}
        for deployments in self.groups.values():
            for d in deployments:
                if d.fingerprint == fingerprint:
                    seen.setdefault(d.id, d)
        return list(seen.values())

    async def disable_key(self, fingerprint: str, reason: str) -> None:
        await self.store.disable_key(fingerprint, reason)

    async def enable_key(self, fingerprint: str) -> None:
        await self.store.enable_key(fingerprint)
        self._kick()

    async def reset_key(self, fingerprint: str) -> None:
        """Clear the key's cooldowns, backoff and failure counts (not a disable: see enable_key)."""
        deps = self.deployments_of(fingerprint)
        await self.store.reset_key(fingerprint, sorted({d.scope for d in deps}), [d.id for d in deps])
        self._kick()

    def _observe_wait(self, seconds: float) -> None:
        for observer in self.wait_observers:
            observer(seconds)

    # -- admission -------------------------------------------------------------------------
    def candidates(self, group: str, exclude: Iterable[str] = ()) -> list[Deployment]:
        if not exclude:  # the common case: nothing failed yet (callers never mutate the list)
            return self.groups.get(group, [])
        excluded = set(exclude)
        return [d for d in self.groups.get(group, ()) if d.fingerprint not in excluded]

    async def acquire(self, group: str, tokens: float, *, exclude: Sequence[str] = (),
                      wait: float | None = None, metered: bool = True, pinned: str | None = None) -> Lease:
        """Reserve a deployment of `group` for one attempt, waiting up to `wait` seconds (FIFO).

        Unmetered calls (countTokens) skip the quota windows and only avoid disabled keys.
        `pinned`: only the key with this fingerprint may take it (it owns a resource the request names);
        it waits for that key like any request waits, and is refused with that key's reason."""
        now = self.clock.time()
        if pinned is not None:
            cands = self.pinned_candidates(group, pinned)
            if not cands:
                raise NoCapacity(f"the key {pinned} that owns the resource this request names is not serving "
                                 f"{group or 'any group'} any more", retry_after=None)
        else:
            cands = self.candidates(group, exclude)
        if not cands:
            raise NoCapacity(f"no key left to try for {group}", retry_after=None)
        if not metered:
            unmetered = await self.store.reserve(self._rank(group, cands), 0, now, metered=False)
            if isinstance(unmetered, Reservation):
                return self._lease(unmetered, now)
            raise self._no_capacity(group, cands, unmetered, now)
        max_wait = self.settings.queue_timeout if wait is None else wait
        ids = frozenset(d.id for d in cands) if self._waiters else None
        blocked: Blocked | None = None
        if ids is None or not any(w.ids & ids for w in self._waiters):  # nobody queued ahead for these keys
            got = await (self._reserve(group, cands, tokens, now) if self.egress.latest > now
                         else self.store.reserve(self._rank(group, cands), tokens, now))
            if isinstance(got, Reservation):
                return self._lease(got, now)
            blocked = got
            self._refuse_if_hopeless(group, cands, blocked, now, now + max_wait)
        fut: asyncio.Future[Reservation] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(group, cands, ids or frozenset(d.id for d in cands), tokens, now, now + max_wait, fut)
        waiter.timer = self.clock.call_at(waiter.deadline, lambda: self._expire(waiter))
        self._waiters.append(waiter)
        if blocked is None:
            self._kick()  # queued behind others: the drain serves them in order
        else:
            self._schedule(blocked.earliest)
        try:
            reservation = await fut
        except asyncio.CancelledError:
            self._forget(waiter)
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                # Admitted in the same instant the client went away: give the capacity back.
                await self.store.settle(fut.result(), 0, self.clock.time())
                self._kick()
            raise
        except NoCapacity:
            self._observe_wait(self.clock.time() - now)
            raise
        self._observe_wait(self.clock.time() - now)
        return self._lease(reservation, self.clock.time())

    def pinned_candidates(self, group: str, fingerprint: str) -> list[Deployment]:
        """The deployments of key `fingerprint` in `group` ("" : in any group)."""
        if not group:
            return self.deployments_of(fingerprint)
        return [d for d in self.groups.get(group, ()) if d.fingerprint == fingerprint]

    # -- resource affinity (what a resource's key is: the store knows, for every replica) ------
    async def pin(self, resource: str, fingerprint: str, ttl: float) -> None:
        await self.store.pin(resource, fingerprint, ttl, self.clock.time())

    async def owner(self, resource: str) -> str | None:
        return await self.store.owner(resource, self.clock.time())

    async def unpin(self, resource: str) -> None:
        await self.store.unpin(resource)

    async def pin_counts(self) -> dict[str, dict[str, int]]:
        return await self.store.pin_counts(self.clock.time())

    async def _reserve(self, group: str, cands: list[Deployment], tokens: float, now: float) -> Reservation | Blocked:
        if self.egress.latest > now:  # some provider is backing off: leave its deployments out
            backing = {d.cfg.provider: b for d in cands if (b := self.egress.backing_off(d.cfg.provider, now))}
            if backing:
                rest = [d for d in cands if d.cfg.provider not in backing]
                if not rest:
                    return Blocked(earliest=min(b.until for b in backing.values()),
                                   reasons={d.id: backing[d.cfg.provider].reason for d in cands})
                cands = rest
        return await self.store.reserve(self._rank(group, cands), tokens, now)

    def egress_status(self, now: float) -> dict[str, dict[str, object]]:
        """Providers backing off as a whole (egress limited), for health, metrics and the dashboard."""
        out: dict[str, dict[str, object]] = {}
        for provider, p in self.egress.providers.items():
            if p.until > now:
                out[provider] = {"until": p.until, "until_in": round(p.until - now, 1), "level": p.level,
                                 "reason": p.reason}
        return out

    def keys_of_provider(self, provider: str) -> int:
        return self.live.snapshot.keys_of_provider(provider)

    def _rank(self, group: str, cands: list[Deployment]) -> list[Deployment]:
        snapshot = self.live.snapshot
        ranked = snapshot.strategy.rank(group, cands)
        return apply_order(ranked) if snapshot.ordered(group) else ranked

    def _lease(self, reservation: Reservation, now: float) -> Lease:
        d = reservation.deployment
        d.in_flight += 1
        d.last_used = now
        d.recent.add(now, 1)
        return Lease(reservation, self, now)

    def _refuse_if_hopeless(self, group: str, cands: list[Deployment], blocked: Blocked,
                            now: float, deadline: float) -> None:
        if blocked.waiting_on_parallel:
            return  # a deployment is only busy with in-flight requests: one will finish
        if blocked.earliest <= deadline and blocked.earliest < math.inf:
            return
        raise self._no_capacity(group, cands, blocked, now)

    def _no_capacity(self, group: str, cands: list[Deployment], blocked: Blocked, now: float) -> NoCapacity:
        n = len(cands)
        keys = "key" if n == 1 else f"all {n} keys"
        reasons = sorted(set(blocked.reasons.values()))
        why = "; ".join(reasons[:3]) if reasons else "no capacity"
        if blocked.earliest == math.inf:
            return NoCapacity(f"{keys} for {group} are unavailable ({why}); none will free up on its own",
                              retry_after=None)
        wait = max(0.0, blocked.earliest - now)
        return NoCapacity(
            f"{keys} for {group} are busy ({why}); the first is free in {_fmt_wait(wait)}"
            f" (at {_fmt_clock(blocked.earliest)})",
            retry_after=wait,
        )

    # -- the queue -------------------------------------------------------------------------
    def _expire(self, waiter: _Waiter) -> None:
        if waiter.future.done():
            return
        self._forget(waiter)
        now = self.clock.time()
        waiter.future.set_exception(NoCapacity(
            f"waited {_fmt_wait(now - waiter.arrived)} for a key of {waiter.group}; none freed up in time",
            retry_after=self._earliest_hint(waiter, now),
        ))

    def _earliest_hint(self, waiter: _Waiter, now: float) -> float:
        hints = [self.store.view(d, now).until for d in waiter.candidates]
        known = [h - now for h in hints if h is not None and h > now]
        return min(known) if known else 1.0  # busy with in-flight requests only: soon

    def _forget(self, waiter: _Waiter) -> None:
        if waiter.timer is not None:
            waiter.timer.cancel()
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass

    def _schedule(self, when: float) -> None:
        if when == math.inf:
            return
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        self._drain_timer = self.clock.call_at(when, self._kick)

    def _kick(self) -> None:
        if not self._waiters:
            return
        if self._draining:
            self._redrain = True
            return
        asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """Offer freed capacity to waiters in arrival order; each takes what fits it."""
        self._draining = True
        try:
            while True:
                self._redrain = False
                earliest = math.inf
                for waiter in list(self._waiters):
                    if waiter.future.done():
                        continue
                    now = self.clock.time()
                    result = await self._reserve(waiter.group, waiter.candidates, waiter.tokens, now)
                    if waiter.future.done():  # expired or cancelled while we asked
                        if isinstance(result, Reservation):
                            await self.store.settle(result, 0, now)
                        continue
                    if isinstance(result, Reservation):
                        self._forget(waiter)
                        waiter.future.set_result(result)
                        continue
                    if result.earliest > waiter.deadline and not result.waiting_on_parallel:
                        self._forget(waiter)
                        waiter.future.set_exception(self._no_capacity(waiter.group, waiter.candidates, result, now))
                        continue
                    earliest = min(earliest, result.earliest)
                if not self._redrain:
                    break
        finally:
            self._draining = False
        if self._waiters:
            self._schedule(earliest)

    # -- verdicts --------------------------------------------------------------------------
    async def _release(self, lease: Lease, verdict: Verdict, tokens: float | None) -> None:
        d = lease.deployment
        now = self.clock.time()
        d.in_flight -= 1
        ok = verdict.outcome is Outcome.OK
        await self.store.settle(lease.reservation, lease.reservation.tokens if tokens is None else tokens, now,
                                succeeded=ok, limited=not ok and verdict.outcome in LIMITED)
        if ok and verdict.until is None:  # the common answer: report()'s first lines, without its coroutine
            if self.egress.providers:
                self.egress.success(d.cfg.provider, now)
            d.served += 1
            d.observe_latency(now - lease.started)
        else:
            await self.report(d, verdict, now, latency=now - lease.started, recorded=ok)
        self._kick()

    async def report(self, d: Deployment, verdict: Verdict, now: float, latency: float | None = None,
                     recorded: bool = False) -> None:
        """`recorded`: the store already counted this success (settle(succeeded=True))."""
        outcome = verdict.outcome
        if outcome is Outcome.OK:
            if self.egress.providers:
                self.egress.success(d.cfg.provider, now)
            d.served += 1
            if verdict.until is not None:  # e.g. x-ratelimit-remaining-requests: 0
                await self._park_scope(d, Park(verdict.until, State.COOLING, verdict.reason))
            if latency is not None:
                d.observe_latency(latency)
            if not recorded:
                await self.store.record_success(d)
            return
        if verdict.cause:
            counted = (d.fingerprint, verdict.cause)
            self.causes[counted] = self.causes.get(counted, 0) + 1
        if verdict.learned_limit is not None:
            name, value = verdict.learned_limit
            await self.store.learn_limit(d.scope, name, value)
        if counts_for_egress(verdict) and await self._egress_hit(d, now):
            return  # the host's address is limited, not this key: its state stays clean
        if verdict.whole_project:
            await self._park_project(d, verdict, now)
            return
        policy = self.settings.allowed_fails_policy
        if outcome is Outcome.RATE_LIMITED:
            delay = verdict.retry_after if verdict.retry_after is not None else BACKOFF_BASE
            delay = max(delay, self.settings.retry_after)
            await self._park_scope(d, Park(now + delay + PARK_MARGIN, State.COOLING, verdict.reason))
            if RATE_LIMIT in policy:
                await self._count_failure(d, verdict, now, policy[RATE_LIMIT])
        elif outcome is Outcome.DAILY_EXHAUSTED:
            until = verdict.until or next_pacific_midnight(now)
            await self._park_scope(d, Park(until, State.EXHAUSTED, verdict.reason))
        elif outcome is Outcome.BACKOFF:
            level = await self.store.next_backoff(d.scope)
            delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (level - 1))
            if verdict.retry_after is not None:
                delay = max(delay, verdict.retry_after)
            await self._park_scope(d, Park(now + delay, State.COOLING, f"{verdict.reason}; backing off {_fmt_wait(delay)}"))
            if RATE_LIMIT in policy:
                await self._count_failure(d, verdict, now, policy[RATE_LIMIT])
        elif outcome is Outcome.INVALID_KEY:
            await self.store.disable_key(d.fingerprint, verdict.reason)
            log.warning("key %s disabled: %s", d.fingerprint, verdict.reason)
        elif outcome in (Outcome.UPSTREAM_ERROR, Outcome.TIMEOUT) and verdict.cause != "overloaded":
            # (an overloaded model, Anthropic's 529, is not the key's failure)
            cls = TIMEOUT if outcome is Outcome.TIMEOUT else SERVER
            await self._count_failure(d, verdict, now, policy.get(cls, self.settings.allowed_fails))

    async def _count_failure(self, d: Deployment, verdict: Verdict, now: float, allowed: int) -> None:
        """One more failure of the deployment in 60 s; at `allowed` (allowed_fails, or allowed_fails_policy for
        this failure's class: one count for all classes, as LiteLLM's router keeps) it cools for cooldown_time."""
        fails = await self.store.record_failure(d.id, now, 60.0)
        if fails >= allowed:
            until = now + self.settings.cooldown_time
            reason = f"{fails} failures in 60 s (last: {verdict.reason})"
            await self.store.park_deployment(d.id, Park(until, State.COOLING, reason))
            log.warning("key %s %s cooling until %s: %s", d.fingerprint, d.model, _fmt_clock(until), reason)

    async def _egress_hit(self, d: Deployment, now: float) -> bool:
        """Count an unexplained 429 toward egress detection; True when the provider is (now) backing off."""
        provider = d.cfg.provider
        if self.egress.backing_off(provider, now) is not None:
            return True  # answered while the back-off runs: already explained
        settings = self.settings
        cleared = self.egress.hit(provider, d.fingerprint, d.scope, d.id, now, self.keys_of_provider(provider),
                                  settings.egress_window, settings.egress_share)
        if cleared is None:
            return False
        for fingerprint, scope, deployment_id in cleared:
            await self.store.reset_key(fingerprint, [scope], [deployment_id])
        backoff = self.egress.providers[provider]
        log.warning("provider %s backing off until %s: %s", provider, _fmt_clock(backoff.until), backoff.reason)
        self._schedule(backoff.until)
        return True

    async def _park_project(self, d: Deployment, verdict: Verdict, now: float) -> None:
        """Billing and spend caps belong to the key's project: park every model it serves."""
        if verdict.until is not None:
            park = Park(verdict.until, State.EXHAUSTED, verdict.reason)
        else:
            delay = verdict.retry_after if verdict.retry_after is not None else BACKOFF_BASE
            park = Park(now + delay + PARK_MARGIN, State.COOLING, verdict.reason)
        bucket = d.cfg.bucket
        scopes = {x.scope for ds in self.groups.values() for x in ds if x.cfg.bucket == bucket} | {d.scope}
        for scope in sorted(scopes):
            await self.store.park_scope(scope, park)
        log.warning("key %s (%d models) out until %s: %s", d.fingerprint, len(scopes), _fmt_clock(park.until),
                    park.reason)
        self._kick()

    async def _park_scope(self, d: Deployment, park: Park) -> None:
        await self.store.park_scope(d.scope, park)
        what = "exhausted" if park.state is State.EXHAUSTED else "cooling"
        log.warning("key %s %s %s until %s: %s", d.fingerprint, d.model, what, _fmt_clock(park.until), park.reason)
        self._kick()
