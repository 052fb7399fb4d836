"""Redis stopped mid-run (a redis-server this test starts itself): traffic keeps flowing on local
state, readiness says so, and what changed meanwhile is pushed to Redis when it is back."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable

import pytest
from openai import APIStatusError

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from .conftest import REDIS_HOST, ClusterFactory, Replica, gemini_group

MSG = [{"role": "user", "content": "hi"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnRedis:
    def __init__(self) -> None:
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", REDIS_HOST, "--save", "",
                                      "--appendonly", "no", "--daemonize", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection((REDIS_HOST, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
async def own_redis() -> AsyncIterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server): the outage test starts its own")
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


async def _ask(replica: Replica) -> str:
    answer = await replica.openai().chat.completions.create(model="chat", messages=MSG)
    return answer.choices[0].message.content or ""


async def _readiness(replica: Replica) -> tuple[int, dict]:
    async with replica.openai()._client as http:
        resp = await http.get(f"{replica.base}/health/readiness")
        return resp.status_code, resp.json()


async def _eventually(check: Callable[[], object], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():  # type: ignore[misc]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_traffic_continues_without_redis_and_state_resyncs_when_it_returns(
        make_cluster: ClusterFactory, own_redis: OwnRedis, namespace: str) -> None:
    cluster = await make_cluster(
        {"model_list": [*gemini_group("chat", ["bad"], order=1), *gemini_group("chat", ["good"], order=2)]},
        {"bad": EmuKey(status="invalid"), "good": EmuKey()}, replicas=2, port=own_redis.port)
    a, b = cluster.replicas
    assert (await _readiness(a))[1]["state_store"] == "redis"

    own_redis.stop()
    assert await _ask(a)  # served on local state; "bad" is disabled locally on the way
    assert cluster.gemini.count(key="bad") == 1
    status, body = await _readiness(a)
    assert (status, body["state_store"]) == (200, "redis (degraded: local)")
    for _ in range(3):
        assert await _ask(a)
    assert cluster.gemini.count(key="bad") == 1

    own_redis.start()  # an empty Redis: what a lost one looks like when it comes back

    async def a_is_back() -> bool:
        return (await _readiness(a))[1]["state_store"] == "redis"

    await _eventually(a_is_back)
    from redis.asyncio import Redis

    client = Redis(host=REDIS_HOST, port=own_redis.port, decode_responses=True)
    try:
        reason = await client.hget(f"{namespace}:disabled", fingerprint("bad", "gemini"))
    finally:
        await client.aclose()
    assert reason  # pushed by a when it resynced
    await _ask(b)  # b learns it from Redis (it may still be reconnecting itself: then it asks locally)

    async def b_is_back() -> bool:
        return (await _readiness(b))[1]["state_store"] == "redis"

    await _eventually(b_is_back)
    before = cluster.gemini.count(key="bad")
    for _ in range(3):
        assert await _ask(b)
    assert cluster.gemini.count(key="bad") == before  # b skips it: the state came from Redis


async def test_fail_closed_refuses_with_503_while_redis_is_away(make_cluster: ClusterFactory,
                                                               own_redis: OwnRedis) -> None:
    cluster = await make_cluster({"model_list": gemini_group("chat", ["k1"])}, {"k1": EmuKey()}, replicas=1,
                                 router={"redis_fail_closed": True}, port=own_redis.port)
    replica = cluster.replicas[0]
    assert await _ask(replica)
    own_redis.stop()
    with pytest.raises(APIStatusError) as err:
        await _ask(replica)
    assert err.value.status_code == 503 and "redis_fail_closed" in err.value.message
    status, body = await _readiness(replica)
    assert (status, body["state_store"]) == (503, "redis (unavailable: refusing)")
    own_redis.start()

    async def back() -> bool:
        return (await _readiness(replica))[0] == 200

    await _eventually(back)
    assert await _ask(replica)
