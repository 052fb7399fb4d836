"""The store replicas use: Redis, with this process's own MemoryStore to fall back on.

While Redis answers, everything goes to Redis (pool/redis.py) and a pub/sub listener wakes this
replica's queue whenever any replica frees capacity. When Redis stops answering, the outage is
logged once, `status` says so (/health/readiness), and requests keep flowing on the local store,
each replica counting alone: or, with `redis_fail_closed: true`, admissions are refused with 503.
State changes made meanwhile (parks, disabled keys, learned limits, and settles of reservations
taken in Redis before the outage) are kept and pushed to Redis when it is back, then the replica
resumes on Redis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from keymux.config.schema import RedisSettings
from keymux.errors import UpstreamFailed
from keymux.pool.deployment import Deployment
from keymux.pool.memory import MemoryStore
from keymux.pool.redis import RedisStore, Ticket, make_client, outage_errors
from keymux.pool.store import Blocked, Park, Reservation, ScopeView

log = logging.getLogger("keymux.pool")

RECONNECT_EVERY = 1.0  # seconds between attempts to reach Redis again


class StoreUnavailable(UpstreamFailed):
    """Redis is unreachable and the config says to refuse rather than count alone."""

    def __init__(self) -> None:
        super().__init__("the shared state store (Redis) is unreachable and redis_fail_closed is set; "
                         "refusing rather than risking the keys' limits", status=503, retry_after=5.0)


class SharedStore:
    def __init__(self, settings: RedisSettings, *, redis: RedisStore | None = None,
                 reconnect_every: float = RECONNECT_EVERY) -> None:
        self.settings = settings
        self.redis = redis or RedisStore(make_client(settings), settings.namespace)
        self.local = MemoryStore()
        self.degraded = False
        self.reconnect_every = reconnect_every
        self._outage = outage_errors()
        self._pending: list[Callable[[], Awaitable[Any]]] = []  # replayed on Redis when it is back
        self._wake: Callable[[], None] = lambda: None
        self._tasks: set[asyncio.Task[None]] = set()
        self._reconnecting = False
        self.outages = 0  # how many times Redis was lost (a metric hook)

    @property
    def status(self) -> str:
        if not self.degraded:
            return "redis"
        return "redis (unavailable: refusing)" if self.settings.fail_closed else "redis (degraded: local)"

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        try:
            await self.redis.ping()
        except self._outage as e:
            self._degrade(e)
        self._spawn(self._listen())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.redis.close()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen(self) -> None:
        while True:
            try:
                await self.redis.watch(self._wake)
            except self._outage:
                pass
            await asyncio.sleep(self.reconnect_every)

    def _degrade(self, error: BaseException) -> None:
        if not self.degraded:
            self.degraded = True
            self.outages += 1
            mode = "refusing requests (redis_fail_closed)" if self.settings.fail_closed else \
                "counting on this replica alone until it is back"
            log.error("Redis unreachable (%s: %s); %s", type(error).__name__, error, mode)
        if not self._reconnecting:
            self._reconnecting = True
            self._spawn(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.reconnect_every)
                try:
                    await self.redis.ping()
                    while self._pending:
                        await self._pending[0]()
                        self._pending.pop(0)
                except self._outage:
                    continue
                self.degraded = False
                log.warning("Redis is back; shared state resynced, this replica counts in Redis again")
                self._wake()
                return
        finally:
            self._reconnecting = False

    # -- admission -------------------------------------------------------------------------
    async def reserve(self, ordered: Sequence[Deployment], tokens: float, now: float,
                      metered: bool = True) -> Reservation | Blocked:
        if not self.degraded:
            try:
                return await self.redis.reserve(ordered, tokens, now, metered)
            except self._outage as e:
                self._degrade(e)
        if self.settings.fail_closed:
            raise StoreUnavailable()
        return await self.local.reserve(ordered, tokens, now, metered)

    async def settle(self, reservation: Reservation, tokens: float, now: float, succeeded: bool = False,
                     limited: bool = False) -> None:
        if not (reservation.handles and isinstance(reservation.handles[0], Ticket)):
            await self.local.settle(reservation, tokens, now, succeeded, limited)
            if succeeded:
                await self.record_success(reservation.deployment)
            return
        if not self.degraded:
            try:
                await self.redis.settle(reservation, tokens, now, succeeded, limited)
                return
            except self._outage as e:
                self._degrade(e)
        self._pending.append(lambda: self.redis.settle(reservation, tokens, now, limited=limited))
        if succeeded:
            await self.local.record_success(reservation.deployment)

    # -- state changes: Redis, or locally and again in Redis once it is back ----------------
    async def _change(self, shared: Callable[[], Awaitable[Any]], local: Callable[[], Awaitable[Any]]) -> None:
        if not self.degraded:
            try:
                await shared()
                return
            except self._outage as e:
                self._degrade(e)
        await local()
        self._pending.append(shared)

    async def park_scope(self, scope: str, park: Park) -> None:
        await self._change(lambda: self.redis.park_scope(scope, park), lambda: self.local.park_scope(scope, park))

    async def park_deployment(self, deployment_id: str, park: Park) -> None:
        await self._change(lambda: self.redis.park_deployment(deployment_id, park),
                           lambda: self.local.park_deployment(deployment_id, park))

    async def disable_key(self, fingerprint: str, reason: str) -> None:
        await self._change(lambda: self.redis.disable_key(fingerprint, reason),
                           lambda: self.local.disable_key(fingerprint, reason))

    async def enable_key(self, fingerprint: str) -> None:
        await self._change(lambda: self.redis.enable_key(fingerprint), lambda: self.local.enable_key(fingerprint))

    async def reset_key(self, fingerprint: str, scopes: Sequence[str], deployment_ids: Sequence[str]) -> None:
        await self._change(lambda: self.redis.reset_key(fingerprint, scopes, deployment_ids),
                           lambda: self.local.reset_key(fingerprint, scopes, deployment_ids))

    async def learn_limit(self, scope: str, name: str, value: int) -> None:
        await self._change(lambda: self.redis.learn_limit(scope, name, value),
                           lambda: self.local.learn_limit(scope, name, value))

    async def pin(self, resource: str, owner: str, ttl: float, now: float) -> None:
        await self._change(lambda: self.redis.pin(resource, owner, ttl, now),
                           lambda: self.local.pin(resource, owner, ttl, now))

    async def unpin(self, resource: str) -> None:
        await self._change(lambda: self.redis.unpin(resource), lambda: self.local.unpin(resource))

    async def owner(self, resource: str, now: float) -> str | None:
        if not self.degraded:
            try:
                return await self.redis.owner(resource, now)
            except self._outage as e:
                self._degrade(e)
        return await self.local.owner(resource, now)

    async def pin_counts(self, now: float) -> dict[str, dict[str, int]]:
        if not self.degraded:
            try:
                return await self.redis.pin_counts(now)
            except self._outage as e:
                self._degrade(e)
        return await self.local.pin_counts(now)

    async def track_job(self, name: str, info: str) -> None:
        await self._change(lambda: self.redis.track_job(name, info), lambda: self.local.track_job(name, info))

    async def tracked_jobs(self) -> dict[str, str]:
        if not self.degraded:
            try:
                return await self.redis.tracked_jobs()
            except self._outage as e:
                self._degrade(e)
        return await self.local.tracked_jobs()

    async def untrack_job(self, name: str) -> str | None:
        """While Redis is away, a job is claimed locally: another replica may record it too, and the
        ledger keeps one row (the row's id is the job's)."""
        if not self.degraded:
            try:
                return await self.redis.untrack_job(name)
            except self._outage as e:
                self._degrade(e)
        self._pending.append(lambda: self.redis.untrack_job(name))
        return await self.local.untrack_job(name)

    # -- counters: transient, so local while Redis is away (not replayed) --------------------
    async def record_failure(self, deployment_id: str, now: float, window: float = 60.0) -> int:
        if not self.degraded:
            try:
                return await self.redis.record_failure(deployment_id, now, window)
            except self._outage as e:
                self._degrade(e)
        return await self.local.record_failure(deployment_id, now, window)

    async def record_success(self, deployment: Deployment) -> None:
        if not self.degraded:
            try:
                await self.redis.record_success(deployment)
                return
            except self._outage as e:
                self._degrade(e)
        await self.local.record_success(deployment)

    async def next_backoff(self, scope: str) -> int:
        if not self.degraded:
            try:
                return await self.redis.next_backoff(scope)
            except self._outage as e:
                self._degrade(e)
        return await self.local.next_backoff(scope)

    # -- views -----------------------------------------------------------------------------
    async def refresh(self, deployments: Sequence[Deployment], now: float) -> None:
        if not self.degraded:
            try:
                await self.redis.refresh(deployments, now)
            except self._outage as e:
                self._degrade(e)

    def view(self, deployment: Deployment, now: float) -> ScopeView:
        return self.local.view(deployment, now) if self.degraded else self.redis.view(deployment, now)
