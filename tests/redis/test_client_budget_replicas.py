"""Two replicas on one Redis spend one gateway key's budget and rate limit together: the rpm holds exactly,
and the budget is overspent by no more than the requests in flight when it was crossed (the stated bound:
max_parallel x the cost of one request)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestServer

from keymux.app import GATEWAY, create_app
from keymux.clock import FakeClock
from keymux.config.load import parse_config
from keymux.emulator import EmuKey, GeminiEmulator

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
        clock = FakeClock(T0)
        gemini = GeminiEmulator({"AIzaSyShared1": EmuKey(), "AIzaSyShared2": EmuKey()}, clock=clock)
        emulators.append(gemini)
        url = await gemini.serve()
        models = gemini_group("chat", ["AIzaSyShared1", "AIzaSyShared2"], input_cost_per_token=PRICE,
                              output_cost_per_token=PRICE)
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
