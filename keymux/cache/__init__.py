"""Exact-match response cache, checked before a key is leased (a hit spends no quota).

    strip_controls(call)     LiteLLM's per-request `cache: {...}` body field -> controls (never sent upstream)
    make_cache(settings, clock) -> ResponseCache | None
    ResponseCache.plan / lookup / keep

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
from typing import TYPE_CHECKING, Any

import orjson

from keymux.attempt import Reply, StreamReply
from keymux.cache.backends import Backend, LocalCache, RedisCache
from keymux.cache.replay import assemble, stream_events
from keymux.clock import Clock
from keymux.config.schema import CacheSettings

if TYPE_CHECKING:
    from keymux.relay import Call

log = logging.getLogger("keymux.cache")

__all__ = ["Backend", "LocalCache", "Plan", "RedisCache", "ResponseCache", "make_cache", "strip_controls"]

_NOT_IN_KEY = ("user", "stream", "stream_options", "cache")
HEADER = "x-keymux-cache"


def strip_controls(call: Call) -> dict[str, Any]:
    """Take LiteLLM's `cache` field out of the request body (upstream APIs reject it); return it."""
    controls = call.body.get("cache")
    if "cache" not in call.body:
        return {}
    call.body = {k: v for k, v in call.body.items() if k != "cache"}
    call.raw = orjson.dumps(call.body)
    return controls if isinstance(controls, dict) else {}


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

    def plan(self, call: Call, controls: dict[str, Any]) -> Plan | None:
        if not call.metered or call.method != "generateContent":
            return None
        header = {d.strip().lower() for d in call.cache_control.split(",")}
        read = not (controls.get("no-cache") is True or "no-cache" in header)
        write = not (controls.get("no-store") is True or "no-store" in header)
        ttl = self.settings.ttl
        asked = controls.get("ttl")
        if isinstance(asked, (int, float)) and not isinstance(asked, bool) and asked > 0:
            ttl = float(asked)
        body = {k: v for k, v in call.body.items() if k not in _NOT_IN_KEY}
        doc = {"surface": call.surface, "group": call.group, "method": call.method, "body": body}
        key = hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return Plan(key=key, read=read, write=write, ttl=ttl)

    async def lookup(self, plan: Plan, call: Call) -> Reply | StreamReply | None:
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
        if not call.stream:
            return Reply(200, body, headers)
        return StreamReply(stream_events(call.surface, body, call.include_usage), _empty(), headers)

    async def keep(self, plan: Plan, call: Call, result: Reply | StreamReply) -> Reply | StreamReply:
        """Mark the answer a miss and store it (a stream: once it has ended cleanly)."""
        result.headers[HEADER] = "miss"
        if not plan.write:
            return result
        if isinstance(result, Reply):
            if result.status == 200:
                await self._store(plan, result.body)
            return result
        return StreamReply(result.first, self._tee(plan, call, result), result.headers, end=result.end)

    async def _tee(self, plan: Plan, call: Call, reply: StreamReply) -> AsyncIterator[bytes]:
        seen = list(reply.first)
        try:
            async for chunk in reply.rest:
                seen.append(chunk)
                yield chunk
        finally:
            await reply.rest.aclose()  # type: ignore[attr-defined]
        if call.outcome == "ok":
            body = assemble(call.surface, seen, call.usage)
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


async def _empty() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover - makes this an async generator


def make_cache(settings: CacheSettings | None, clock: Clock) -> ResponseCache | None:
    if settings is None:
        return None
    if settings.type == "redis" and settings.redis is not None:
        from keymux.pool.redis import make_client  # imports redis: only when configured

        return ResponseCache(settings, RedisCache(make_client(settings.redis, decode=False), settings.namespace),
                             clock)
    return ResponseCache(settings, LocalCache(settings.max_bytes), clock)
