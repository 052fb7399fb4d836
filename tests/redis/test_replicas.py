"""Several replicas as one: declared limits hold across them exactly, and key state is shared."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from openai import RateLimitError

from keymux.clock import FakeClock
from keymux.config.schema import (
    Config,
    DeploymentConfig,
    Limits,
    RedisSettings,
    RouterSettings,
)
from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint
from keymux.live import Live, build_snapshot
from keymux.pool import Pool
from keymux.pool.failover import SharedStore
from keymux.pool.limits import next_pacific_midnight
from keymux.providers.base import Outcome, Verdict

from .conftest import REDIS_HOST, T0, ClusterFactory, gemini_group

MSG = [{"role": "user", "content": "hi"}]


async def _ask(client, model: str = "chat"):  # type: ignore[no-untyped-def]
    return await client.chat.completions.create(model=model, messages=MSG)


@pytest.mark.parametrize("n", [2, 3])
async def test_declared_limits_hold_across_replicas_exactly(make_cluster: ClusterFactory, n: int) -> None:
    keys = ["k1", "k2", "k3"]
    cluster = await make_cluster({"model_list": gemini_group("chat", keys, rpm=2)},
                                 {k: EmuKey(rpm=2) for k in keys}, replicas=n)
    clients = [r.openai() for r in cluster.replicas]
    for minute in range(2):
        asks = [_ask(c) for c, _ in zip(itertools.cycle(clients), range(5 * n))]
        results = await asyncio.gather(*asks, return_exceptions=True)
        served = [r for r in results if not isinstance(r, Exception)]
        refused = [r for r in results if isinstance(r, RateLimitError)]
        assert len(served) == 6 and len(refused) == 5 * n - 6, results
        assert cluster.gemini.count(endpoint="generateContent") == 6 * (minute + 1)
        assert cluster.gemini.count(status=429) == 0
        for err in refused:
            assert 59 <= int(err.response.headers["retry-after"]) <= 60
        cluster.clock.advance(60.01)


async def test_an_invalid_key_seen_by_one_replica_is_skipped_by_all(make_cluster: ClusterFactory) -> None:
    cluster = await make_cluster(
        {"model_list": [*gemini_group("chat", ["bad"], order=1), *gemini_group("chat", ["good"], order=2)]},
        {"bad": EmuKey(status="invalid"), "good": EmuKey()}, replicas=3)
    a, b, c = cluster.replicas
    await _ask(a.openai())  # tries "bad" first, then "good"
    assert cluster.gemini.count(key="bad") == 1
    for replica in (b, c, a):
        for _ in range(3):
            answer = await _ask(replica.openai())
            assert answer.choices[0].message.content
    assert cluster.gemini.count(key="bad") == 1 and cluster.gemini.count(key="good") == 10
    async with b.openai()._client as http:
        health = (await http.get(f"{b.base}/health", headers={"Authorization": "Bearer sk-master"})).json()
    keys = {k["key"]: k for k in health["groups"]["chat"]["keys"]}
    assert keys[fingerprint("bad", "gemini")]["state"] == "disabled"


async def test_a_key_parked_until_pacific_midnight_by_one_replica_is_parked_for_all(
        make_cluster: ClusterFactory) -> None:
    cluster = await make_cluster({"model_list": gemini_group("chat", ["k1"])}, {"k1": EmuKey(rpd=1)}, replicas=2)
    a, b = cluster.replicas
    await _ask(a.openai())
    with pytest.raises(RateLimitError):
        await _ask(a.openai())  # the per-day 429: k1 is out until midnight Pacific
    assert cluster.gemini.count(status=429) == 1
    midnight = next_pacific_midnight(cluster.clock.time())
    with pytest.raises(RateLimitError) as err:
        await _ask(b.openai())
    assert cluster.gemini.count(status=429) == 1  # b never asked upstream
    wait = int(err.value.response.headers["retry-after"])
    assert abs(wait - (midnight - cluster.clock.time())) <= 2
    cluster.clock.set(midnight + 1)
    assert (await _ask(b.openai())).choices[0].message.content


async def test_readiness_reports_the_shared_store(make_cluster: ClusterFactory) -> None:
    cluster = await make_cluster({"model_list": gemini_group("chat", ["k1"])}, {"k1": EmuKey()}, replicas=1)
    replica = cluster.replicas[0]
    async with replica.openai()._client as http:
        body = (await http.get(f"{replica.base}/health/readiness")).json()
    assert body["state_store"] == "redis"


# --- pool level: the queue of one replica wakes when another frees capacity --------------------

def _pools(namespace: str, n: int, **limits: int) -> tuple[list[Pool], list[SharedStore], FakeClock]:
    clock = FakeClock(T0)
    cfg = DeploymentConfig(id="chat/k1", group="chat", provider="gemini", model="gemini-2.5-pro", api_key="k1",
                           fingerprint=fingerprint("k1"), limits=Limits(**limits))
    config = Config(deployments=(cfg,), router=RouterSettings(routing_strategy="simple-shuffle"))
    stores = [SharedStore(RedisSettings(host=REDIS_HOST, namespace=namespace)) for _ in range(n)]
    pools = [Pool(Live(build_snapshot(config, clock)), s, clock) for s in stores]
    return pools, stores, clock


async def test_a_request_queued_on_one_replica_is_admitted_when_another_frees_capacity(namespace: str) -> None:
    (a, b), stores, _ = _pools(namespace, 2, max_parallel=1)
    for pool, store in zip((a, b), stores):
        await store.start(pool.wake)
    try:
        await asyncio.sleep(0.05)  # subscriptions in place
        lease = await a.acquire("chat", 1)
        waiter = asyncio.create_task(b.acquire("chat", 1, wait=30))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await lease.release(Verdict(Outcome.OK))  # settles in Redis and publishes on the capacity channel
        admitted = await asyncio.wait_for(waiter, 2)
        assert admitted.deployment.fingerprint == fingerprint("k1")
    finally:
        for store in stores:
            await store.stop()


async def test_many_replicas_never_admit_more_than_the_limit_together(namespace: str) -> None:
    pools, stores, _ = _pools(namespace, 4, rpm=5)
    results = await asyncio.gather(*[p.acquire("chat", 1, wait=0) for p in pools for _ in range(5)],
                                   return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, Exception)) == 5
    for store in stores:
        await store.stop()
