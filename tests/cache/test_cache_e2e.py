"""The response cache through the gateway: hits spend no quota, streams replay, per-request controls,
TTL by the FakeClock, and a Redis cache shared by two replicas."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from keymux.app import GATEWAY, create_app
from keymux.clock import FakeClock
from keymux.config.load import parse_config
from keymux.emulator import EmuKey, GeminiEmulator
from keymux.request import Trace

from ..redis_service import NO_REDIS, redis_up

T0 = 1_795_716_000.0
AUTH = {"Authorization": "Bearer sk-master"}
MSG = [{"role": "user", "content": "hi"}]


class Gw:
    def __init__(self, server: TestServer, clock: FakeClock, gemini: GeminiEmulator) -> None:
        self.server, self.clock, self.gemini = server, clock, gemini
        self.calls: list[Trace] = []
        server.app[GATEWAY].observers.append(self.calls.append)

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def chat(self, headers: dict[str, str] | None = None, **body: Any) -> tuple[int, dict[str, str], Any]:
        doc = {"model": "chat", "messages": MSG, **body}
        async with aiohttp.ClientSession() as http, \
                http.post(f"{self.base}/v1/chat/completions", json=doc, headers={**AUTH, **(headers or {})}) as r:
            raw = await r.read()
            if body.get("stream"):
                events = [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]
                assert events[-1] == "[DONE]"
                chunks = [orjson.loads(e) for e in events[:-1]]
                text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
                return r.status, dict(r.headers), text
            doc = orjson.loads(raw)
            text = doc["choices"][0]["message"]["content"] if r.status == 200 else doc
            return r.status, dict(r.headers), text

    def upstream(self) -> int:
        return self.gemini.count(endpoint="generateContent") + self.gemini.count(endpoint="streamGenerateContent")


Factory = Callable[..., Awaitable[list[Gw]]]


@pytest.fixture
async def make_gateways() -> AsyncIterator[Factory]:
    made: list[tuple[list[Gw], GeminiEmulator]] = []

    async def factory(cache_params: dict[str, Any] | None = None, replicas: int = 1, rpm: int | None = None
                      ) -> list[Gw]:
        clock = FakeClock(T0)
        gemini = GeminiEmulator({"k1": EmuKey()}, clock=clock)
        url = await gemini.serve()
        params = {"rpm": rpm} if rpm else {}
        doc = {"model_list": [{"model_name": "chat", "litellm_params": {"model": "gemini/gemini-2.5-flash",
                                                                         "api_key": "k1", **params}}],
               "litellm_settings": {"cache": True, "cache_params": cache_params or {}},
               "general_settings": {"master_key": "sk-master"}}
        config = parse_config(doc, env={"KEYMUX_GEMINI_API_BASE": url})
        gws = []
        for _ in range(replicas):
            server = TestServer(create_app(config, clock=clock))
            await server.start_server()
            gws.append(Gw(server, clock, gemini))
        made.append((gws, gemini))
        return gws

    yield factory
    for gws, gemini in made:
        for gw in gws:
            await gw.server.close()
        await gemini.close()


async def test_a_repeated_request_is_a_hit_that_spends_no_quota(make_gateways: Factory) -> None:
    (gw,) = await make_gateways(rpm=1)
    status, headers, first = await gw.chat(temperature=0.9)
    assert (status, headers["x-keymux-cache"]) == (200, "miss")
    status, headers, again = await gw.chat(temperature=0.9, user="someone-else")
    assert (status, headers["x-keymux-cache"], again) == (200, "hit", first)  # rpm 1 is spent: only a hit can answer
    assert gw.upstream() == 1
    assert [(c.outcome, c.cache_hit, c.key) for c in gw.calls] == [("ok", False, gw.calls[0].key),
                                                                    ("cache_hit", True, None)]
    status, _, _ = await gw.chat(temperature=0.1)  # another request: a miss, and no quota left for it
    assert status == 429


async def test_entries_expire_after_their_ttl(make_gateways: Factory) -> None:
    (gw,) = await make_gateways({"ttl": 60})
    await gw.chat()
    gw.clock.advance(59)
    assert (await gw.chat())[1]["x-keymux-cache"] == "hit"
    gw.clock.advance(1.5)
    assert (await gw.chat())[1]["x-keymux-cache"] == "miss"
    assert gw.upstream() == 2
    await gw.chat(cache={"ttl": 5}, temperature=0.3)  # a per-request ttl
    gw.clock.advance(6)
    assert (await gw.chat(temperature=0.3))[1]["x-keymux-cache"] == "miss"


async def test_a_stream_is_answered_from_a_cached_answer_and_the_other_way_round(make_gateways: Factory) -> None:
    (gw,) = await make_gateways()
    _, _, text = await gw.chat()
    status, headers, streamed = await gw.chat(stream=True, stream_options={"include_usage": True})
    assert (status, headers["x-keymux-cache"], streamed) == (200, "hit", text)
    assert headers["Content-Type"].startswith("text/event-stream")
    assert gw.upstream() == 1
    _, headers, streamed = await gw.chat(stream=True, temperature=0.5)  # a streamed miss is stored too
    assert headers["x-keymux-cache"] == "miss"
    _, headers, whole = await gw.chat(temperature=0.5)
    assert (headers["x-keymux-cache"], whole) == ("hit", streamed)
    assert gw.upstream() == 2


async def test_no_cache_and_no_store_per_request(make_gateways: Factory) -> None:
    (gw,) = await make_gateways()
    await gw.chat()
    status, headers, _ = await gw.chat(cache={"no-cache": True})  # stripped before upstream: no 400 for it
    assert (status, headers["x-keymux-cache"]) == (200, "miss") and gw.upstream() == 2
    assert (await gw.chat(headers={"Cache-Control": "no-cache"}))[1]["x-keymux-cache"] == "miss"
    await gw.chat(cache={"no-store": True}, temperature=0.4)
    await gw.chat(headers={"Cache-Control": "no-store"}, temperature=0.4)
    assert (await gw.chat(temperature=0.4))[1]["x-keymux-cache"] == "miss"  # nothing was stored
    assert (await gw.chat(temperature=0.4))[1]["x-keymux-cache"] == "hit"
    assert gw.upstream() == 6


async def test_gemini_clients_are_cached_too(make_gateways: Factory) -> None:
    (gw,) = await make_gateways()
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with aiohttp.ClientSession() as http:
        url = f"{gw.base}/v1beta/models/chat"
        async with http.post(f"{url}:generateContent", json=body, headers=AUTH) as r:
            first = await r.json()
            assert r.headers["x-keymux-cache"] == "miss"
        async with http.post(f"{url}:streamGenerateContent?alt=sse", json=body, headers=AUTH) as r:
            raw = await r.read()
            assert r.headers["x-keymux-cache"] == "hit"
    event = orjson.loads(raw.decode().split("data: ", 1)[1])
    assert event["candidates"][0]["content"] == first["candidates"][0]["content"]
    assert gw.upstream() == 1


async def test_a_response_cached_by_one_replica_is_a_hit_on_another(make_gateways: Factory) -> None:
    if not await redis_up():
        pytest.fail(NO_REDIS)
    namespace = f"kmx-test-{uuid.uuid4().hex[:12]}"
    a, b = await make_gateways({"type": "redis", "host": "127.0.0.1", "port": 6379, "namespace": namespace,
                                "ttl": 30}, replicas=2)
    try:
        _, headers, text = await a.chat()
        assert headers["x-keymux-cache"] == "miss"
        _, headers, again = await b.chat(stream=True)
        assert (headers["x-keymux-cache"], again) == ("hit", text)
        assert a.upstream() == 1
        a.clock.advance(31)  # expiry is judged by the gateway's clock, not only Redis's
        assert (await b.chat())[1]["x-keymux-cache"] == "miss"
    finally:
        from redis.asyncio import Redis

        client = Redis(host="127.0.0.1", port=6379)
        async for key in client.scan_iter(match=f"{namespace}:*"):
            await client.delete(key)
        await client.aclose()
