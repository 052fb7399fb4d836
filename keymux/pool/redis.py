"""StateStore in Redis: several keymux replicas share quota windows, in-flight counts and key state.

Same rules as MemoryStore (the reference), in Lua (pool/redis_lua.py) so that check-and-reserve is
atomic and takes one round trip. Time is the caller's clock, passed in. Every key starts with the
namespace, so several deployments can share one Redis:

    <ns>:disabled                 hash  fingerprint -> reason
    <ns>:s:<scope>:meta|win|tok|infl and :day:<pacific day start>   (see redis_lua.py)
    <ns>:d:<deployment id>:meta   hash  the deployment's own park
    <ns>:d:<deployment id>:fail   zset  upstream failures in the last window
    <ns>:pin:<resource>           string  owner fingerprint (resource affinity), with its expiry
    <ns>:pinned:<kind>:<owner>    zset  resource -> expiry: what is pinned to a key, counted by the dashboard
    <ns>:pinned                   set   the owners that have such pins
    <ns>:jobs                     hash  long-running job (batch) -> what recording its end needs
    <ns>:capacity                 pub/sub channel: something was freed (settle, park, enable)

`view` stays synchronous: it answers from a snapshot that `refresh` loads in one round trip
(health and admin call it first), kept fresh between refreshes by what `reserve` learns when blocked.
Connection errors propagate (see pool/failover.py for running on through an outage).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from keymux.pool.deployment import Deployment
from keymux.pool.limits import MINUTE, next_pacific_midnight, pacific_day_start
from keymux.pool.redis_lua import PARK_SCOPE, RECORD_FAILURE, RESERVE, SETTLE, VIEW
from keymux.pool.store import PINNED_KINDS, Blocked, Park, Reservation, ScopeView, State, pinned_kind

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from keymux.config.schema import RedisSettings

INF = float("inf")
FIRST_ASK = 1  # candidates in the first admission call (see reserve)
INFLIGHT_TTL = 3600.0  # an in-flight entry older than this belonged to a replica that died mid-request


def make_client(settings: RedisSettings, *, decode: bool = True) -> Redis:
    """A redis-py asyncio client that fails fast (no retries): an outage is handled by the caller."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    kwargs: dict[str, Any] = {"decode_responses": decode, "socket_timeout": 2.0, "socket_connect_timeout": 1.0,
                              "retry": Retry(NoBackoff(), 0)}
    if settings.url:
        return Redis.from_url(settings.url, **kwargs)
    return Redis(host=settings.host or "127.0.0.1", port=settings.port, password=settings.password, **kwargs)


def outage_errors() -> tuple[type[BaseException], ...]:
    """What an unreachable Redis raises (a script error is a bug, not an outage)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


@dataclass(frozen=True)
class Ticket:
    """A reservation's handle in Redis: its member in the windows, and where it was counted."""

    member: str
    inflight: str
    tokens: str
    day: str


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)


def _num(value: float) -> str:
    return repr(float(value))


_BLANK = ScopeView(state=State.READY, until=None, reason="", rpm_used=0, tpm_used=0, rpd_used=0, tpd_used=0,
                   in_flight=0, learned={})


class RedisStore:
    def __init__(self, client: Redis, namespace: str = "keymux", *, inflight_ttl: float = INFLIGHT_TTL) -> None:
        self.client = client
        self.ns = namespace
        self.channel = f"{namespace}:capacity"
        self.inflight_ttl = inflight_ttl
        self._disabled = f"{namespace}:disabled"
        self._reserve = client.register_script(RESERVE)
        self._view = client.register_script(VIEW)
        self._settle = client.register_script(SETTLE)
        self._park_scope = client.register_script(PARK_SCOPE)
        self._record_failure = client.register_script(RECORD_FAILURE)
        self._replica = os.urandom(4).hex()
        self._seq = itertools.count()
        self._views: dict[str, tuple[float, ScopeView]] = {}  # deployment id -> (as of, view)
        self._key_cache: dict[tuple[str, str, int], list[str]] = {}
        self._arg_cache: dict[str, tuple[Deployment, list[str]]] = {}

    # -- keys ------------------------------------------------------------------------------
    def _scope_key(self, scope: str, part: str) -> str:
        return f"{self.ns}:s:{scope}:{part}"

    def _dep_key(self, deployment_id: str, part: str) -> str:
        return f"{self.ns}:d:{deployment_id}:{part}"

    def _keys(self, d: Deployment, day: float) -> list[str]:
        """The six keys of one deployment on one Pacific day; built once per (deployment, day)."""
        cache_key = (d.id, d.scope, int(day))
        found = self._key_cache.get(cache_key)
        if found is None:
            if len(self._key_cache) >= 4096:  # days roll, deployments come and go
                self._key_cache.clear()
            s = f"{self.ns}:s:{d.scope}"
            found = self._key_cache[cache_key] = [f"{s}:meta", f"{s}:win", f"{s}:tok", f"{s}:day:{int(day)}",
                                                  f"{s}:infl", self._dep_key(d.id, "meta")]
        return found

    def _args(self, d: Deployment) -> list[str]:
        """The seven per-deployment arguments; built once per Deployment (a reload makes new ones)."""
        found = self._arg_cache.get(d.id)
        if found is None or found[0] is not d:
            lim = d.limits
            found = self._arg_cache[d.id] = (d, [d.fingerprint, _opt(lim.rpm), _opt(lim.tpm), _opt(lim.rpd),
                                                 _opt(lim.tpd), _opt(lim.max_parallel), d.id])
        return found[1]

    def _layout(self, ordered: Sequence[Deployment], now: float, tokens: float, metered: bool,
                member: str) -> tuple[list[str], list[str]]:
        day = pacific_day_start(now)
        keys = [self._disabled]
        args = [_num(now), _num(tokens), "1" if metered else "0", member, _num(self.inflight_ttl),
                _num(next_pacific_midnight(now)), self.channel, str(len(ordered))]
        for d in ordered:
            keys += self._keys(d, day)
            args += self._args(d)
        return keys, args

    # -- admission -------------------------------------------------------------------------
    async def reserve(self, ordered: Sequence[Deployment], tokens: float, now: float,
                      metered: bool = True) -> Reservation | Blocked:
        if not ordered:
            return Blocked(earliest=INF, reasons={})
        member = f"{self._replica}:{next(self._seq)}"
        if len(ordered) > FIRST_ASK:
            # Usually the first-ranked key has room: ask about it alone first. Every candidate costs the
            # call 13 arguments, and redis-py encodes each in Python (most of the client's time per request).
            got = await self._reserve_among(ordered[:FIRST_ASK], tokens, now, metered, member)
            if isinstance(got, Reservation):
                return got
        return await self._reserve_among(ordered, tokens, now, metered, member)

    async def _reserve_among(self, ordered: Sequence[Deployment], tokens: float, now: float, metered: bool,
                             member: str) -> Reservation | Blocked:
        keys, args = self._layout(ordered, now, tokens if metered else 0, metered, member)
        reply = await self._reserve(keys=keys, args=args)
        if int(reply[0]) == 1:
            d = ordered[int(reply[1]) - 1]
            if not metered:
                return Reservation(deployment=d, tokens=0, at=now)
            k = self._keys(d, pacific_day_start(now))
            return Reservation(deployment=d, tokens=tokens, at=now,
                               handles=[Ticket(member=member, inflight=k[4], tokens=k[2], day=k[3])])
        reasons: dict[str, str] = {}
        for i, d in enumerate(ordered):
            why, when = reply[3 + 2 * i], reply[4 + 2 * i]
            reasons[d.id] = why
            if when:
                self._hint(d, float(when), why, now)
        return Blocked(earliest=float(reply[1]), reasons=reasons, waiting_on_parallel=int(reply[2]) == 1)

    def _hint(self, d: Deployment, until: float, why: str, now: float) -> None:
        """What a blocked reserve learned about one deployment, for `view` between refreshes."""
        _, old = self._views.get(d.id, (0.0, _BLANK))
        if why.startswith("disabled ("):
            view = replace(old, state=State.DISABLED, until=None, reason=why[len("disabled ("):-1])
        else:
            state = State.EXHAUSTED if "midnight" in why else State.COOLING
            view = replace(old, state=state, until=until, reason=why)
        self._views[d.id] = (now, view)

    async def settle(self, reservation: Reservation, tokens: float, now: float, succeeded: bool = False,
                     limited: bool = False) -> None:
        d = reservation.deployment
        if not reservation.handles:  # unmetered
            if succeeded:
                await self.record_success(d)
            return
        t = reservation.handles[0]
        assert isinstance(t, Ticket)
        await self._settle(keys=[t.inflight, t.tokens, t.day, self._scope_key(d.scope, "meta"),
                                 self._dep_key(d.id, "fail")],
                           args=[t.member, _num(tokens), _num(reservation.tokens), self.channel,
                                 "1" if succeeded else "0", "1" if limited else "0"])

    # -- state changes ---------------------------------------------------------------------
    async def park_scope(self, scope: str, park: Park) -> None:
        await self._park_scope(keys=[self._scope_key(scope, "meta")],
                               args=[_num(park.until), park.state.value, park.reason, self.channel])

    async def park_deployment(self, deployment_id: str, park: Park) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self._dep_key(deployment_id, "meta"),
                      mapping={"park_until": _num(park.until), "park_state": park.state.value,
                               "park_reason": park.reason})
            pipe.publish(self.channel, "park")
            await pipe.execute()

    async def disable_key(self, fingerprint: str, reason: str) -> None:
        await self.client.hset(self._disabled, fingerprint, reason)

    async def enable_key(self, fingerprint: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(self._disabled, fingerprint)
            pipe.publish(self.channel, "enable")
            await pipe.execute()

    async def reset_key(self, fingerprint: str, scopes: Sequence[str], deployment_ids: Sequence[str]) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            for scope in scopes:
                meta = self._scope_key(scope, "meta")
                pipe.hdel(meta, "park_until", "park_state", "park_reason")
                pipe.hset(meta, "backoff", 0)
            for deployment_id in deployment_ids:
                pipe.delete(self._dep_key(deployment_id, "meta"), self._dep_key(deployment_id, "fail"))
            pipe.publish(self.channel, "reset")
            await pipe.execute()
        for deployment_id in deployment_ids:
            self._views.pop(deployment_id, None)

    async def record_failure(self, deployment_id: str, now: float, window: float = MINUTE) -> int:
        member = f"{self._replica}:{next(self._seq)}"
        return int(await self._record_failure(keys=[self._dep_key(deployment_id, "fail")],
                                              args=[_num(now), member, _num(window)]))

    async def record_success(self, deployment: Deployment) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self._scope_key(deployment.scope, "meta"), "backoff", 0)
            pipe.delete(self._dep_key(deployment.id, "fail"))
            await pipe.execute()

    async def next_backoff(self, scope: str) -> int:
        return int(await self.client.hincrby(self._scope_key(scope, "meta"), "backoff", 1))

    async def learn_limit(self, scope: str, name: str, value: int) -> None:
        await self.client.hset(self._scope_key(scope, "meta"), f"l:{name}", value)

    # -- views -----------------------------------------------------------------------------
    async def refresh(self, deployments: Sequence[Deployment], now: float) -> None:
        """Load the views of these deployments in one round trip."""
        unique = list({d.id: d for d in deployments}.values())
        if not unique:
            return
        keys, args = self._layout(unique, now, 0, True, "")
        rows = await self._view(keys=keys, args=args)
        for d, row in zip(unique, rows):
            state, until, reason, rpm, tpm, rpd, tpd, flying, learned = row
            pairs = (item.split("=", 1) for item in learned.split(",") if item)
            self._views[d.id] = (now, ScopeView(
                state=State(state), until=float(until) if until else None, reason=reason,
                rpm_used=float(rpm), tpm_used=float(tpm), rpd_used=int(rpd), tpd_used=float(tpd),
                in_flight=int(flying), learned={k: int(v) for k, v in pairs}))

    def view(self, d: Deployment, now: float) -> ScopeView:
        _, view = self._views.get(d.id, (now, _BLANK))
        if view.until is not None and view.until <= now and view.state is not State.DISABLED:
            view = replace(view, state=State.READY, until=None, reason="")
        return view

    # -- plumbing --------------------------------------------------------------------------
    # Pins use Redis's own expiry (its clock): a resource's lifetime is wall time on every replica.
    # Each owner's pins of a counted kind are also in <ns>:pinned:<kind>:<owner> (zset resource -> expiry), and the
    # owners in <ns>:pinned, so the dashboard counts them in one round trip, whatever the number of pins.
    async def pin(self, resource: str, owner: str, ttl: float, now: float) -> None:
        await self.client.set(f"{self.ns}:pin:{resource}", owner, px=max(1, int(ttl * 1000)))
        kind = pinned_kind(resource)
        if kind is not None:
            index = f"{self.ns}:pinned:{kind}:{owner}"
            async with self.client.pipeline(transaction=False) as p:
                p.zadd(index, {resource: now + ttl})
                p.zremrangebyscore(index, "-inf", now)  # what expired meanwhile
                p.sadd(f"{self.ns}:pinned", owner)
                await p.execute()

    async def owner(self, resource: str, now: float) -> str | None:
        found = await self.client.get(f"{self.ns}:pin:{resource}")
        return found.decode() if isinstance(found, bytes) else found

    async def unpin(self, resource: str) -> None:
        kind = pinned_kind(resource)
        if kind is not None:
            owner = await self.owner(resource, 0.0)
            if owner is not None:
                await self.client.zrem(f"{self.ns}:pinned:{kind}:{owner}", resource)
        await self.client.delete(f"{self.ns}:pin:{resource}")

    async def pin_counts(self, now: float) -> dict[str, dict[str, int]]:
        owners = sorted(_text(o) for o in await self.client.smembers(f"{self.ns}:pinned"))
        async with self.client.pipeline(transaction=False) as p:
            for owner in owners:
                for kind in PINNED_KINDS:
                    p.zcount(f"{self.ns}:pinned:{kind}:{owner}", f"({now}", "+inf")
            found = iter(await p.execute())
        counts: dict[str, dict[str, int]] = {}
        for owner in owners:
            per = {kind: int(next(found)) for kind in PINNED_KINDS}
            if any(per.values()):
                counts[owner] = {k: n for k, n in per.items() if n}
        return counts

    async def track_job(self, name: str, info: str) -> None:
        await self.client.hset(f"{self.ns}:jobs", name, info)

    async def tracked_jobs(self) -> dict[str, str]:
        found = await self.client.hgetall(f"{self.ns}:jobs")
        return {_text(k): _text(v) for k, v in found.items()}

    async def untrack_job(self, name: str) -> str | None:
        async with self.client.pipeline(transaction=True) as tx:  # read and delete at once: one claimant
            tx.hget(f"{self.ns}:jobs", name)
            tx.hdel(f"{self.ns}:jobs", name)
            info, removed = await tx.execute()
        return _text(info) if removed and info is not None else None

    async def ping(self) -> None:
        await self.client.ping()

    async def watch(self, wake: Callable[[], None]) -> None:
        """Call `wake` whenever any replica frees capacity. Returns only by raising (connection lost)."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            async for message in pubsub.listen():
                if message is not None and message.get("type") == "message":
                    wake()
        finally:
            await pubsub.aclose()

    async def close(self) -> None:
        await self.client.aclose()

    async def clear(self) -> int:
        """Delete every key of this namespace (tests, `keymux` admin reset). Returns how many."""
        n = 0
        async for key in self.client.scan_iter(match=f"{self.ns}:*", count=500):
            n += await self.client.delete(key)
        return n


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
