"""Several gateways sharing one Redis (127.0.0.1:6379), one Gemini emulator and one FakeClock.

Each test gets its own Redis namespace, deleted afterwards. Tests fail when no Redis answers: .ci/run starts it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from keymux.app import create_app
from keymux.clock import FakeClock
from keymux.config.load import parse_config
from keymux.config.schema import Config
from keymux.emulator import EmuKey, GeminiEmulator

from ..redis_service import NO_REDIS, REDIS_HOST, REDIS_PORT, delete_namespace, redis_up
from ..served import Served

T0 = 1_795_716_000.0  # 2026-11-26 10:00 Pacific
@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    if not await redis_up():
        pytest.fail(NO_REDIS)
    ns = f"kmx-test-{uuid.uuid4().hex[:12]}"
    yield ns
    await delete_namespace(ns)


@dataclass
class Replica(Served):
    server: TestServer


@dataclass
class Cluster:
    clock: FakeClock
    gemini: GeminiEmulator
    replicas: list[Replica]
    config: Config


ClusterFactory = Callable[..., Awaitable[Cluster]]


def redis_settings(namespace: str, port: int = REDIS_PORT, **extra: Any) -> dict[str, Any]:
    return {"redis_host": REDIS_HOST, "redis_port": port, "redis_namespace": namespace, **extra}


@pytest.fixture
async def make_cluster(namespace: str) -> AsyncIterator[ClusterFactory]:
    made: list[Cluster] = []

    async def factory(doc: dict[str, Any], gemini_keys: dict[str, EmuKey], replicas: int = 2,
                      router: dict[str, Any] | None = None, litellm: dict[str, Any] | None = None,
                      port: int = REDIS_PORT) -> Cluster:
        clock = FakeClock(T0)
        gemini = GeminiEmulator(gemini_keys, clock=clock)
        url = await gemini.serve()
        doc = {**doc, "router_settings": {**redis_settings(namespace, port), **(router or {})},
               "general_settings": {"master_key": "sk-master"}}
        if litellm:
            doc["litellm_settings"] = litellm
        config = parse_config(doc, env={"KEYMUX_GEMINI_API_BASE": url})
        servers = []
        for _ in range(replicas):
            server = TestServer(create_app(config, clock=clock))
            await server.start_server()
            servers.append(Replica(server))
        cluster = Cluster(clock, gemini, servers, config)
        made.append(cluster)
        return cluster

    yield factory
    for cluster in made:
        for replica in cluster.replicas:
            await replica.server.close()
        await cluster.gemini.close()


def gemini_group(name: str, keys: list[str], model: str = "gemini-2.5-flash", **params: Any) -> list[dict[str, Any]]:
    return [{"model_name": name, "litellm_params": {"model": f"gemini/{model}", "api_key": k, **params}} for k in keys]
