"""The pool's queue and routing rules, driven by a FakeClock (no sleeping).

Quota and key-state rules, which live in the store, are in test_store_contract.py (every store)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from keymux.clock import FakeClock
from keymux.config.schema import Config, DeploymentConfig, Limits, RouterSettings
from keymux.errors import NoCapacity
from keymux.fingerprint import fingerprint
from keymux.live import Live, build_snapshot
from keymux.pool import Pool
from keymux.pool.memory import MemoryStore
from keymux.providers.base import Outcome, Verdict

OK = Verdict(Outcome.OK)
# 2026-11-26 10:00 Pacific (18:00 UTC)
T0 = datetime(2026, 11, 26, 18, 0, tzinfo=UTC).timestamp()


def dep(key: str, group: str = "chat", model: str = "gemini-2.5-pro", project: str | None = None,
        order: int | None = None, **limits: int) -> DeploymentConfig:
    return DeploymentConfig(id=f"{group}/{key}", group=group, provider="gemini", model=model, api_key=key,
                            fingerprint=fingerprint(key), project=project, limits=Limits(**limits), order=order)


def make_pool(*deps: DeploymentConfig, strategy: str = "round-robin", **router: object) -> tuple[Pool, FakeClock]:
    clock = FakeClock(T0)
    config = Config(deployments=deps, router=RouterSettings(routing_strategy=strategy, **router))  # type: ignore[arg-type]
    return Pool(Live(build_snapshot(config, clock)), MemoryStore(), clock), clock


async def settle_loop() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_waiters_are_served_first_come_first_served() -> None:
    pool, clock = make_pool(dep("k1", rpm=1))
    await pool.acquire("chat", 1)
    order: list[str] = []

    async def wait(name: str) -> None:
        await pool.acquire("chat", 1, wait=500)
        order.append(name)

    tasks = [asyncio.create_task(wait(n)) for n in ("first", "second", "third")]
    for _ in range(3):
        await settle_loop()
        clock.advance(60.01)
        await settle_loop()
    await asyncio.gather(*tasks)
    assert order == ["first", "second", "third"]


async def test_queue_timeout_refuses_with_the_time_capacity_returns() -> None:
    pool, clock = make_pool(dep("k1", max_parallel=1))
    lease = await pool.acquire("chat", 1)
    waiter = asyncio.create_task(pool.acquire("chat", 1, wait=5))
    await settle_loop()
    clock.advance(5)
    await settle_loop()
    with pytest.raises(NoCapacity, match="none freed up in time"):
        waiter.result()
    await lease.release(OK)


async def test_max_parallel_admits_the_next_request_when_one_finishes() -> None:
    pool, _ = make_pool(dep("k1", max_parallel=1))
    lease = await pool.acquire("chat", 1)
    waiter = asyncio.create_task(pool.acquire("chat", 1, wait=30))
    await settle_loop()
    assert not waiter.done()
    await lease.release(OK)
    await settle_loop()
    assert waiter.done() and waiter.result()


async def test_retries_exclude_keys_that_already_failed() -> None:
    pool, _ = make_pool(dep("k1"), dep("k2"))
    first = await pool.acquire("chat", 1)
    second = await pool.acquire("chat", 1, exclude=[first.deployment.fingerprint])
    assert second.deployment.fingerprint != first.deployment.fingerprint
    with pytest.raises(NoCapacity, match="no key left"):
        await pool.acquire("chat", 1, exclude=[fingerprint("k1"), fingerprint("k2")])


async def test_order_prefers_lower_order_deployments() -> None:
    pool, _ = make_pool(dep("backup", order=2), dep("primary", order=1), strategy="simple-shuffle")
    for _ in range(5):
        lease = await pool.acquire("chat", 1)
        assert lease.deployment.fingerprint == fingerprint("primary")
        await lease.release(OK)


async def test_round_robin_rotates() -> None:
    pool, _ = make_pool(dep("k1"), dep("k2"), dep("k3"))
    seen = []
    for _ in range(6):
        lease = await pool.acquire("chat", 1)
        seen.append(lease.deployment.fingerprint)
        await lease.release(OK)
    assert seen[:3] == seen[3:] and len(set(seen)) == 3


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    pool, clock = make_pool(dep("k1", rpm=1))
    await pool.acquire("chat", 1)
    waiter = asyncio.create_task(pool.acquire("chat", 1, wait=100))
    await settle_loop()
    waiter.cancel()
    await settle_loop()
    assert pool._waiters == []
    clock.advance(61)
    await pool.acquire("chat", 1, wait=0)  # capacity was not swallowed by the cancelled waiter




def test_busy_windows_stay_bounded_and_never_admit_early() -> None:
    from keymux.pool.limits import COALESCE_AFTER, SlidingWindow

    window = SlidingWindow(60.0)
    t = 1000.0
    for i in range(20_000):  # 20k requests over 20 s: far more than the exact part keeps
        window.add(t + i * 0.001, 1)
    assert window.total(t + 20) == 20_000
    assert len(window) <= COALESCE_AFTER + 25  # ~1 merged entry per second after the exact part
    # Nothing expires before its newest member does: at t+60+10 the requests of the first 10 s are not
    # all out yet if they were merged with later ones, so the count can only be higher than exact.
    exact_left = sum(1 for i in range(20_000) if t + i * 0.001 > t + 70 - 60)
    assert window.total(t + 70) >= exact_left
    assert window.total(t + 81) == 0
    # free_at stays honest: with a limit of 20_000 nothing more fits until the first entries leave.
    full = SlidingWindow(60.0)
    for i in range(20_000):
        full.add(t + i * 0.001, 1)
    assert t + 60 <= full.free_at(t + 20, 1, 20_000) <= t + 61


def test_settling_a_merged_entry_moves_the_total_by_the_difference() -> None:
    from keymux.pool.limits import COALESCE_AFTER, SlidingWindow

    window = SlidingWindow(60.0)
    handles = [window.add(1000.0 + i * 0.0001, 100) for i in range(COALESCE_AFTER + 10)]
    assert handles[-1] is handles[-2]  # merged
    window.settle(handles[-1], 100, 30, 1000.1)
    assert window.total(1000.1) == (COALESCE_AFTER + 10) * 100 - 70


async def test_usage_based_routing_prefers_the_key_with_the_most_room_this_minute() -> None:
    pool, clock = make_pool(dep("big", rpm=10), dep("small", rpm=2), strategy="usage-based-routing")
    picks = []
    for _ in range(6):
        lease = await pool.acquire("chat", 1)
        picks.append(lease.deployment.fingerprint)
        await lease.release(OK)
    # big fills to 5/10 while small goes 1/2: shares stay balanced instead of alternating blindly
    assert picks.count(fingerprint("big")) == 5 and picks.count(fingerprint("small")) == 1
    clock.advance(61)  # a new minute: last minute's traffic no longer counts against either key
    lease = await pool.acquire("chat", 1)
    assert lease.deployment.recent.total(clock.time()) == 1
