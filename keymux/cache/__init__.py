"""Exact-match response cache, checked before a key is leased (a hit spends no quota).

    make_cache(settings, clock) -> ResponseCache | None
    CachedHandler(inner, cache): a Handler (keymux/request.py) around the relay: plan, lookup, keep

What matches: the same surface, model group and method, and the same request body except `user`,
`stream`, `stream_options` (and `cache`). So a streamed request can be answered from a non-streamed
answer and the other way round: what is stored is always the whole client body; a streamed answer is
assembled into one (cache/replay.py), and a streamed request is answered by replaying the body as
events. Only successful answers are stored. `x-keymux-cache: hit | miss` tells the client which it got.
Per request: `cache: {"no-cache": true, "no-store": true, "ttl": N}` in the body, or
`Cache-Control: no-cache / no-store`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson

from keymux.cache.backends import Backend, LocalCache, RedisCache
from keymux.cache.replay import assemble, stream_events
from keymux.clock import Clock
from keymux.config.schema import CacheSettings
from keymux.request import Handler, Reply, Request, StreamReply, Trace

log = logging.getLogger("keymux.cache")

__all__ = ["Backend", "CachedHandler", "LocalCache", "Plan", "RedisCache", "ResponseCache", "make_cache"]

_NOT_IN_KEY = ("user", "stream", "stream_options")
CACHED_OPERATIONS = ("chat", "generateContent", "embeddings")  # deterministic enough to answer again
HEADER = "x-keymux-cache"


@dataclass(frozen=True)
class Plan:
    key: str
    read: bool
    write: bool
    ttl: float


class ResponseCache:
    def __init__(self, settings: CacheSettings, backend: Backend, clock: Clock) -> None:
        self.settings = settings
        self.backend = backend
        self.clock = clock
        self._errors: tuple[type[BaseException], ...] = (OSError,)
        if isinstance(backend, RedisCache):
            from keymux.pool.redis import outage_errors

            self._errors = outage_errors()
        self._failing = False

    def plan(self, request: Request) -> Plan | None:
        if not request.metered or request.operation not in CACHED_OPERATIONS:
            return None
        controls = request.controls or {}
        header = {d.strip().lower() for d in request.cache_control.split(",")} if request.cache_control else ()
        read = not (controls.get("no-cache") is True or "no-cache" in header)
        write = not (controls.get("no-store") is True or "no-store" in header)
        ttl = self.settings.ttl
        asked = controls.get("ttl")
        if isinstance(asked, (int, float)) and not isinstance(asked, bool) and asked > 0:
            ttl = float(asked)
        body = {k: v for k, v in request.body.items() if k not in _NOT_IN_KEY}
        doc = {"surface": request.surface, "operation": request.operation, "group": request.group, "body": body}
        key = hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return Plan(key=key, read=read, write=write, ttl=ttl)

    async def lookup(self, plan: Plan, request: Request) -> Reply | StreamReply | None:
        if not plan.read:
            return None
        try:
            body = await self.backend.get(plan.key, self.clock.time())
        except self._errors as e:
            self._failed(e)
            return None
        if body is None:
            return None
        headers = {HEADER: "hit"}
        if not request.stream:
            return Reply(200, body, headers)
        return StreamReply(stream_events(request.surface, body, request.include_usage), _empty(), headers,
                           ended_ok=True)

    async def keep(self, plan: Plan, request: Request, trace: Trace,
                   result: Reply | StreamReply) -> Reply | StreamReply:
        """Mark the answer a miss and store it (a stream: once the client has received all of it)."""
        result.headers[HEADER] = "miss"
        if not plan.write:
            return result
        if isinstance(result, Reply):
            if result.status == 200:
                await self._store(plan, result.body)
            return result
        kept = StreamReply(result.first, _empty(), result.headers, end=result.end)
        kept.rest = self._tee(plan, request, trace, result, kept)
        return kept

    async def _tee(self, plan: Plan, request: Request, trace: Trace, reply: StreamReply,
                   kept: StreamReply) -> AsyncIterator[bytes]:
        seen = list(reply.first)
        try:
            async for chunk in reply.rest:
                seen.append(chunk)
                yield chunk
        finally:
            await reply.rest.aclose()  # type: ignore[attr-defined]
        await reply.end()  # a no-op when `rest` ended it; then `ended_ok` says how the stream ended
        kept.ended_ok = reply.ended_ok
        if reply.ended_ok:
            body = assemble(request.surface, seen, trace.usage)
            if body is not None:
                await self._store(plan, body)

    async def _store(self, plan: Plan, body: bytes) -> None:
        try:
            await self.backend.set(plan.key, body, plan.ttl, self.clock.time())
        except self._errors as e:
            self._failed(e)

    def _failed(self, error: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.error("response cache unreachable (%s: %s); answering without it", type(error).__name__, error)

    async def close(self) -> None:
        await self.backend.close()


class CachedHandler:
    """The cache around the one handle seam: a hit is answered before any key is leased (it spends no quota)."""

    def __init__(self, inner: Handler, cache: ResponseCache) -> None:
        self.inner = inner
        self.cache = cache

    async def __call__(self, request: Request, trace: Trace) -> Reply | StreamReply:
        plan = self.cache.plan(request)
        if plan is None:
            return await self.inner(request, trace)
        hit = await self.cache.lookup(plan, request)
        if hit is not None:
            trace.finish(200, "cache_hit")
            return hit
        result = await self.inner(request, trace)
        return await self.cache.keep(plan, request, trace, result)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover - makes this an async generator


def make_cache(settings: CacheSettings | None, clock: Clock) -> ResponseCache | None:
    """Call from the running loop: a Redis client belongs to the loop it was made in."""
    if settings is None:
        return None
    if settings.type == "redis" and settings.redis is not None:
        from keymux.pool.redis import make_client  # imports redis: only when configured

        return ResponseCache(settings, RedisCache(make_client(settings.redis, decode=False), settings.namespace),
                             clock)
    return ResponseCache(settings, LocalCache(settings.max_bytes), clock)
