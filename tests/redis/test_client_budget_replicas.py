"""Two replicas on one Redis spend one gateway key's budget and rate limit together: the rpm holds exactly,
and the budget is overspent by no more than the requests in flight when it was crossed (the stated bound:
max_parallel x the cost of one request). Small limits are checked per request; large ones are leased to each
replica (keymux/clients/leases.py), within the bounds the README states."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from keymux.app import GATEWAY, create_app
from keymux.clients.leases import BACK
from keymux.clients.periods import day_bounds, zone
from keymux.clock import FakeClock
from keymux.config.load import parse_config
from keymux.emulator import EmuKey, GeminiEmulator

from ..redis_service import REDIS_HOST, REDIS_PORT
from ..served import Served
from .conftest import T0, gemini_group, redis_settings

MSG = [{"role": "user", "content": "hi"}]
KEY = "sk-shared-budget-0123456789abcdef"
PRICE = 0.0005  # USD per token, in and out


@pytest.fixture
async def replicas(namespace: str) -> AsyncIterator[Any]:
    made: list[TestServer] = []
    emulators: list[GeminiEmulator] = []

    async def factory(key_fields: dict[str, Any], n: int = 2) -> tuple[list[Served], FakeClock]:
        """`n` replicas sharing one Redis namespace, one emulator (the last in `emulators`) and one clock."""
        clock = FakeClock(T0)
        gemini = GeminiEmulator({"AIzaSyShared1": EmuKey(), "AIzaSyShared2": EmuKey()}, clock=clock)
        emulators.append(gemini)
        url = await gemini.serve()
        # Declared key limits: no slow start in the pool (these tests are about the gateway key's limits).
        models = gemini_group("chat", ["AIzaSyShared1", "AIzaSyShared2"], input_cost_per_token=PRICE,
                              output_cost_per_token=PRICE, rpm=100_000)
        for m in models:
            m["model_info"] = {"tier": "paid"}
        doc = {"model_list": models, "router_settings": {**redis_settings(namespace), "num_retries": 0},
               "general_settings": {"master_key": "sk-master",
                                    "virtual_keys": [{"name": "shared", "key": KEY, **key_fields}]}}
        config = parse_config(doc, env={"KEYMUX_GEMINI_API_BASE": url})
        out = []
        for _ in range(n):
            server = TestServer(create_app(config, clock=clock))
            await server.start_server()
            made.append(server)
            replica = Served()
            replica.server = server
            out.append(replica)
        return out, clock

    factory.emulators = emulators  # type: ignore[attr-defined]
    yield factory
    for server in made:
        await server.close()
    for emu in emulators:
        await emu.close()


async def test_rpm_holds_exactly_across_two_replicas(replicas: Any) -> None:
    servers, _ = await replicas({"rpm": 3})
    clients = [s.openai(KEY) for s in servers]
    asks = [c.chat.completions.create(model="chat", messages=MSG) for c, _ in zip(itertools.cycle(clients), range(10))]
    results = await asyncio.gather(*asks, return_exceptions=True)
    served = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(served) == 3 and len(refused) == 7
    assert all("its own rate limit of 3 requests per minute" in r.message for r in refused)


async def test_two_replicas_spend_one_budget_within_the_in_flight_bound(replicas: Any) -> None:
    parallel, budget = 4, 0.2
    servers, _ = await replicas({"budget": f"{budget}/total", "max_parallel": parallel})
    clients = [s.openai(KEY) for s in servers]
    crossed = False
    costs: list[float] = []
    for _ in range(200):
        asks = [c.chat.completions.create(model="chat", messages=MSG)
                for c, _ in zip(itertools.cycle(clients), range(2 * parallel))]
        results = await asyncio.gather(*asks, return_exceptions=True)
        for r in results:
            if isinstance(r, openai.RateLimitError) and "budget" in r.message:
                crossed = True
            elif not isinstance(r, Exception):
                costs.append((r.usage.prompt_tokens + r.usage.completion_tokens) * PRICE)
        if crossed:
            break
    assert crossed
    for s in servers:
        await s.gateway.gate.drain()
    spent = sum(costs)
    # What the ledgers of both replicas charged is what the shared counter holds.
    charged = 0.0
    for s in servers:
        rows = await s.server.app[GATEWAY].ledger.usage("client", 0, 1e18, None)
        charged += sum(r["cost"] for r in rows if r["client"] == "shared")
    assert charged == pytest.approx(spent)
    registry = servers[0].gateway.clients
    used = await registry.counters.used(registry.get("shared"), servers[0].gateway.clock.time())
    assert used.spent == pytest.approx(spent) and used.in_flight == 0
    # The bound: at most `parallel` requests were admitted before the crossing was known.
    assert budget <= spent <= budget + parallel * max(costs) + 1e-9
    # And after the crossing, every replica refuses.
    for c in clients:
        with pytest.raises(openai.RateLimitError) as e:
            await c.chat.completions.create(model="chat", messages=MSG)
        assert "has spent its budget of $0.20/total" in e.value.message


# -- leases: limits large enough to share out ------------------------------------------------------------


async def redis_int(namespace: str, name: str, clock: FakeClock, window: str = "m") -> int:
    """A counter of the key 'shared' in Redis (m: this minute's requests, d: today's)."""
    now = clock.time()
    start = now - now % 60 if window == "m" else day_bounds(now, zone("UTC"))[0]
    r = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        return int(await r.get(f"{namespace}:client:{name}:{window}:{int(start)}") or 0)
    finally:
        await r.aclose()


async def settle_leases(servers: list[Served], clock: FakeClock) -> None:
    """Every lease ends (its time is up) and gives back what it did not use."""
    for s in servers:
        await s.gateway.gate.drain()
    clock.advance(BACK)
    for _ in range(3):
        for s in servers:
            await s.gateway.clients.counters.leases.drain()
        await asyncio.sleep(0)


async def test_a_leased_key_takes_its_slots_at_once_and_gives_back_the_unused(replicas: Any, namespace: str) -> None:
    servers, clock = await replicas({"rpm": 10_000, "rpd": 100_000}, n=1)
    client = servers[0].openai(KEY)
    for _ in range(7):
        await client.chat.completions.create(model="chat", messages=MSG)
    # One lease of 100 slots was taken in one call: Redis counts it, the admin API counts what was used.
    assert await redis_int(namespace, "shared", clock) == 100
    doc = await servers[0].admin_json("/admin/clients/shared")
    assert doc["usage"]["requests_this_minute"] == 7 and doc["usage"]["requests_today"] == 7
    await settle_leases(servers, clock)
    assert await redis_int(namespace, "shared", clock, "d") == 7  # the 93 unused slots went back


async def test_small_limits_are_checked_per_request_not_leased(replicas: Any, namespace: str) -> None:
    servers, clock = await replicas({"rpm": 10}, n=1)  # a tenth of 10 is one slot: nothing to share out
    client = servers[0].openai(KEY)
    await client.chat.completions.create(model="chat", messages=MSG)
    assert await redis_int(namespace, "shared", clock) == 1


async def test_a_leased_rpm_holds_across_two_replicas_with_an_honest_retry_after(replicas: Any) -> None:
    rpm = 60  # leases of 6 slots
    servers, clock = await replicas({"rpm": rpm})
    clients = [s.openai(KEY).with_raw_response for s in servers]
    asks = [c.chat.completions.create(model="chat", messages=MSG)
            for c, _ in zip(itertools.cycle(clients), range(90))]
    results = await asyncio.gather(*asks, return_exceptions=True)
    served = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(served) + len(refused) == 90, [r for r in results if isinstance(r, Exception)][:1]
    # Never more than the limit; fewer by at most one lease another replica held unused at the end.
    assert rpm - rpm // 10 <= len(served) <= rpm
    assert all("its own rate limit of 60 requests per minute" in r.message for r in refused)
    assert {r.response.headers["retry-after"] for r in refused} == {"60"}  # T0 is :00 of a minute
    await settle_leases(servers, clock)
    # Unused slots came back: the rest of the minute's limit is usable, and not one more.
    rest = rpm - len(served)
    more = await asyncio.gather(*[c.chat.completions.create(model="chat", messages=MSG)
                                  for c, _ in zip(itertools.cycle(clients), range(rest + 4))],
                                return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in more) == rest
    clock.advance(60)  # the next minute
    await clients[0].chat.completions.create(model="chat", messages=MSG)


async def test_leased_max_parallel_stays_exact_across_two_replicas(replicas: Any) -> None:
    servers, clock = await replicas({"max_parallel": 20})  # leases of 2 parallel slots
    gemini = replicas.emulators[-1]
    gemini.hold()
    clients = [s.openai(KEY) for s in servers]
    tasks = [asyncio.ensure_future(c.chat.completions.create(model="chat", messages=MSG))
             for c, _ in zip(itertools.cycle(clients), range(40))]

    async def twenty_refused() -> None:
        while sum(t.done() for t in tasks) < 20:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(twenty_refused(), 10)  # refused at once; the admitted ones wait upstream
    gemini.release()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 20 and all(isinstance(e, openai.RateLimitError) for e in refused)
    assert all("limit of 20 parallel requests" in e.message for e in refused)  # type: ignore[attr-defined]
    await settle_leases(servers, clock)
    registry = servers[0].gateway.clients
    used = await registry.counters.used(registry.get("shared"), clock.time())
    assert used.in_flight == 0 and used.minute_requests == 20


async def test_two_replicas_on_leases_spend_one_budget_within_the_stated_bound(replicas: Any) -> None:
    budget, batch = 0.5, 8  # slices of $0.05; no max_parallel: the bound is the requests in flight
    servers, clock = await replicas({"budget": f"{budget}/total", "rpm": 100_000})
    clients = [s.openai(KEY) for s in servers]
    costs: list[float] = []
    crossed = False
    for _ in range(200):
        results = await asyncio.gather(*[c.chat.completions.create(model="chat", messages=MSG)
                                         for c, _ in zip(itertools.cycle(clients), range(batch))],
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, openai.RateLimitError):
                # Near the end, the rest may be held by the other replica's lease (back within LIFE).
                assert "has spent its budget" in r.message or "held by other replicas" in r.message
                crossed = crossed or "has spent its budget" in r.message
            elif not isinstance(r, Exception):
                costs.append((r.usage.prompt_tokens + r.usage.completion_tokens) * PRICE)
        if crossed:
            break
    assert crossed
    await settle_leases(servers, clock)
    spent = sum(costs)
    # The bound of the README: per replica, its requests in flight when the budget ran out (here at most
    # the batch, all replicas together), each at most one request's cost.
    assert budget <= spent <= budget + batch * max(costs) + 1e-9
    # Settlement stays exact: the shared counter holds what both ledgers charged, nothing is reserved.
    charged = 0.0
    for s in servers:
        rows = await s.server.app[GATEWAY].ledger.usage("client", 0, 1e18, None)
        charged += sum(r["cost"] for r in rows if r["client"] == "shared")
    registry = servers[0].gateway.clients
    used = await registry.counters.used(registry.get("shared"), clock.time())
    assert charged == pytest.approx(spent) and used.spent == pytest.approx(spent)
    for c in clients:
        with pytest.raises(openai.RateLimitError) as e:
            await c.chat.completions.create(model="chat", messages=MSG)
        assert "has spent its budget of $0.50/total" in e.value.message


async def test_leases_renewed_under_concurrent_requests_count_each_request_once(replicas: Any, namespace: str) -> None:
    servers, clock = await replicas({"rpm": 10_000, "max_parallel": 1000}, n=1)  # leases of 100 slots
    client = servers[0].openai(KEY)

    async def worker() -> None:
        for _ in range(15):
            await client.chat.completions.create(model="chat", messages=MSG)

    await asyncio.gather(*[worker() for _ in range(16)])  # 240 requests: leases end and renew while busy
    await settle_leases(servers, clock)
    assert await redis_int(namespace, "shared", clock, "d") == 240  # no slot lost with a lease
    registry = servers[0].gateway.clients
    used = await registry.counters.used(registry.get("shared"), clock.time())
    assert used.in_flight == 0 and used.minute_requests == 240
    assert not registry.counters.leases.held  # every lease given back
