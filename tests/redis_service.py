"""The Redis the suite talks to (127.0.0.1:6379; .ci/run starts it): is it there, and clearing a test's keys."""

from __future__ import annotations

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
NO_REDIS = "no Redis on 127.0.0.1:6379: start it (.ci/run does)"


async def redis_up(port: int = REDIS_PORT) -> bool:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis(host=REDIS_HOST, port=port, socket_connect_timeout=0.5)
    try:
        await client.ping()
        return True
    except (OSError, RedisError):  # refused, timed out, not a Redis: nothing to test against
        return False
    finally:
        await client.aclose()


async def delete_namespace(namespace: str, port: int = REDIS_PORT) -> None:
    from redis.asyncio import Redis

    client = Redis(host=REDIS_HOST, port=port, socket_connect_timeout=0.5)
    try:
        async for key in client.scan_iter(match=f"{namespace}:*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()
