"""Where cached responses live: this process (LRU bounded in bytes) or Redis (shared by replicas).

Expiry is judged by the injectable clock (`now` is passed in), so a FakeClock drives TTL tests;
Redis also gets a real expiry, so abandoned entries do not pile up.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis


class Backend(Protocol):
    async def get(self, key: str, now: float) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float, now: float) -> None: ...

    async def close(self) -> None: ...


class LocalCache:
    """Least recently used entries are dropped once the values add up to more than `max_bytes`."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str, now: float) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= now:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float, now: float) -> None:
        if len(value) > self.max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (now + ttl, value)
        self.size += len(value)
        while self.size > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self.size -= len(value)

    async def close(self) -> None:
        self._entries.clear()
        self.size = 0


class RedisCache:
    """Values are stored as `<expires at>\\n<body>`; keys are `<namespace>:cache:<hash>`."""

    def __init__(self, client: Redis, namespace: str = "keymux") -> None:
        self.client = client
        self.prefix = f"{namespace}:cache:"

    async def get(self, key: str, now: float) -> bytes | None:
        raw = await self.client.get(self.prefix + key)
        if raw is None:
            return None
        head, _, value = (raw if isinstance(raw, bytes) else raw.encode()).partition(b"\n")
        return value if float(head) > now else None

    async def set(self, key: str, value: bytes, ttl: float, now: float) -> None:
        await self.client.set(self.prefix + key, b"%.3f\n" % (now + ttl) + value, px=max(1, math.ceil(ttl * 1000)))

    async def close(self) -> None:
        await self.client.aclose()
