"""The pool's admission, queue and key-state rules, driven by a FakeClock (no sleeping)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from keymux.clock import FakeClock
from keymux.config.schema import Config, DeploymentConfig, Limits, RouterSettings
from keymux.errors import NoCapacity
from keymux.fingerprint import fingerprint
from keymux.pool import Pool
from keymux.pool.deployment import build_deployments
from keymux.pool.limits import next_pacific_midnight
from keymux.pool.memory import MemoryStore
from keymux.pool.store import State
from keymux.providers.base import Outcome, Verdict

OK = Verdict(Outcome.OK)
# 2026-11-26 10:00 Pacific (18:00 UTC)
T0 = datetime(2026, 11, 26, 18, 0, tzinfo=timezone.utc).timestamp()


def dep(key: str, group: str = "chat", model: str = "gemini-2.5-pro", project: str | None = None,
        order: int | None = None, **limits: int) -> DeploymentConfig:
    return DeploymentConfig(id=f"{group}/{key}", group=group, provider="gemini", model=model, api_key=key,
                            fingerprint=fingerprint(key), project=project, limits=Limits(**limits), order=order)


def make_pool(*deps: DeploymentConfig, strategy: str = "round-robin", **router: object) -> tuple[Pool, FakeClock]:
    clock = FakeClock(T0)
    config = Config(deployments=deps, router=RouterSettings(routing_strategy=strategy, **router))  # type: ignore[arg-type]
    return Pool(build_deployments(config), config.router, MemoryStore(), clock), clock


async def settle_loop() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_declared_rpm_admits_exactly_that_many_then_refuses_with_honest_retry_after() -> None:
    pool, _ = make_pool(dep("k1", rpm=2), dep("k2", rpm=2), dep("k3", rpm=2))
    leases = [await pool.acquire("chat", 10) for _ in range(6)]
    assert sorted(lease.deployment.fingerprint for lease in leases) == sorted([fingerprint(k) for k in ("k1", "k2", "k3")] * 2)
    with pytest.raises(NoCapacity) as err:
        await pool.acquire("chat", 10, wait=30)
    assert err.value.retry_after == pytest.approx(60.0)
    assert "all 3 keys for chat are busy" in err.value.message and "rpm 2 reached" in err.value.message


async def test_a_request_waits_for_the_window_and_is_admitted_when_it_frees() -> None:
    pool, clock = make_pool(dep("k1", rpm=1))
    await pool.acquire("chat", 1)
    waiter = asyncio.create_task(pool.acquire("chat", 1, wait=90))
    await settle_loop()
    assert not waiter.done()
    clock.advance(59)
    await settle_loop()
    assert not waiter.done()
    clock.advance(1.01)
    await settle_loop()
    assert waiter.done() and waiter.result().deployment.fingerprint == fingerprint("k1")


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


async def test_per_day_quota_parks_until_pacific_midnight_not_for_a_minute() -> None:
    pool, clock = make_pool(dep("k1"))
    lease = await pool.acquire("chat", 1)
    midnight = next_pacific_midnight(clock.time())
    await lease.release(Verdict(Outcome.DAILY_EXHAUSTED, reason="daily quota", until=midnight))
    with pytest.raises(NoCapacity) as err:
        await pool.acquire("chat", 1, wait=30)
    assert err.value.retry_after == pytest.approx(midnight - clock.time())
    assert datetime.fromtimestamp(midnight, timezone.utc).hour == 8  # 00:00 PST
    clock.set(midnight - 1)
    with pytest.raises(NoCapacity):
        await pool.acquire("chat", 1, wait=0)
    clock.set(midnight + 0.001)
    assert (await pool.acquire("chat", 1, wait=0)).deployment.fingerprint == fingerprint("k1")


async def test_declared_rpd_blocks_until_midnight() -> None:
    pool, clock = make_pool(dep("k1", rpd=2))
    for _ in range(2):
        await (await pool.acquire("chat", 1)).release(OK)
    with pytest.raises(NoCapacity, match="rpd 2 reached"):
        await pool.acquire("chat", 1, wait=3600)
    clock.set(next_pacific_midnight(clock.time()) + 1)
    await pool.acquire("chat", 1, wait=0)


async def test_retry_delay_is_honoured_exactly_plus_a_small_margin() -> None:
    pool, clock = make_pool(dep("k1"))
    lease = await pool.acquire("chat", 1)
    await lease.release(Verdict(Outcome.RATE_LIMITED, reason="per-minute", retry_after=26.0))
    view = pool.store.view(pool.groups["chat"][0], clock.time())
    assert view.state is State.COOLING and view.until == pytest.approx(clock.time() + 26.5)
    clock.advance(26.6)
    await pool.acquire("chat", 1, wait=0)


async def test_invalid_key_is_disabled_after_one_answer_and_never_chosen_again() -> None:
    pool, _ = make_pool(dep("bad"), dep("good"))
    bad = next(d for d in pool.groups["chat"] if d.fingerprint == fingerprint("bad"))
    await pool.report(bad, Verdict(Outcome.INVALID_KEY, reason="invalid key"), 0)
    for _ in range(10):
        lease = await pool.acquire("chat", 1)
        assert lease.deployment.fingerprint == fingerprint("good")
        await lease.release(OK)


async def test_every_key_disabled_is_refused_without_a_retry_after() -> None:
    pool, _ = make_pool(dep("bad"))
    await pool.report(pool.groups["chat"][0], Verdict(Outcome.INVALID_KEY, reason="invalid key"), 0)
    with pytest.raises(NoCapacity) as err:
        await pool.acquire("chat", 1, wait=30)
    assert err.value.retry_after is None and "disabled (invalid key)" in err.value.message


async def test_keys_of_one_project_share_one_quota() -> None:
    pool, _ = make_pool(dep("a", project="p1", rpm=2), dep("b", project="p1", rpm=2), dep("c", project="p2", rpm=2))
    leases = [await pool.acquire("chat", 1) for _ in range(4)]
    projects = [lease.deployment.cfg.project for lease in leases]
    assert projects.count("p1") == 2 and projects.count("p2") == 2
    with pytest.raises(NoCapacity):
        await pool.acquire("chat", 1, wait=0)


async def test_a_429_on_one_key_parks_its_whole_project() -> None:
    pool, _ = make_pool(dep("a", project="p1"), dep("b", project="p1"), dep("c", project="p2"))
    a = pool.groups["chat"][0]
    await pool.report(a, Verdict(Outcome.RATE_LIMITED, reason="per-minute", retry_after=30), T0)
    for _ in range(4):
        lease = await pool.acquire("chat", 1)
        assert lease.deployment.cfg.project == "p2"
        await lease.release(OK)


async def test_failures_count_toward_allowed_fails_then_cool_for_cooldown_time() -> None:
    pool, clock = make_pool(dep("k1"), allowed_fails=2, cooldown_time=120)
    d = pool.groups["chat"][0]
    boom = Verdict(Outcome.UPSTREAM_ERROR, reason="503 overloaded")
    await pool.report(d, boom, clock.time())
    assert pool.store.view(d, clock.time()).state is State.READY  # one failure never disables or parks
    await pool.report(d, boom, clock.time())
    view = pool.store.view(d, clock.time())
    assert view.state is State.COOLING and view.until == pytest.approx(clock.time() + 120)
    clock.advance(121)
    await pool.acquire("chat", 1, wait=0)


async def test_bare_429_backs_off_exponentially() -> None:
    pool, clock = make_pool(dep("k1"))
    d = pool.groups["chat"][0]
    bare = Verdict(Outcome.BACKOFF, reason="429 without details")
    await pool.report(d, bare, clock.time())
    first = pool.store.view(d, clock.time()).until
    clock.advance(6)
    await pool.report(d, bare, clock.time())
    second = pool.store.view(d, clock.time()).until
    assert first == pytest.approx(T0 + 5) and second == pytest.approx(clock.time() + 10)


async def test_retries_exclude_keys_that_already_failed() -> None:
    pool, _ = make_pool(dep("k1"), dep("k2"))
    first = await pool.acquire("chat", 1)
    second = await pool.acquire("chat", 1, exclude=[first.deployment.fingerprint])
    assert second.deployment.fingerprint != first.deployment.fingerprint
    with pytest.raises(NoCapacity, match="no key left"):
        await pool.acquire("chat", 1, exclude=[fingerprint("k1"), fingerprint("k2")])


async def test_tokens_per_minute_are_settled_with_real_usage() -> None:
    pool, _ = make_pool(dep("k1", tpm=1000))
    lease = await pool.acquire("chat", 900)
    with pytest.raises(NoCapacity, match="tpm 1000"):
        await pool.acquire("chat", 200, wait=0)
    await lease.release(OK, tokens=100)  # the real answer was much smaller than the estimate
    await pool.acquire("chat", 200, wait=0)


async def test_a_request_larger_than_any_tpm_is_refused_without_a_false_retry_after() -> None:
    pool, _ = make_pool(dep("k1", tpm=100))
    with pytest.raises(NoCapacity) as err:
        await pool.acquire("chat", 500, wait=30)
    assert err.value.retry_after is None and "exceeds tpm 100" in err.value.message


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


async def test_unmetered_calls_skip_quota_windows_but_not_disabled_keys() -> None:
    pool, _ = make_pool(dep("k1", rpm=1), dep("bad", rpm=1))
    bad = next(d for d in pool.groups["chat"] if d.fingerprint == fingerprint("bad"))
    await pool.report(bad, Verdict(Outcome.INVALID_KEY, reason="invalid key"), 0)
    await pool.acquire("chat", 1)
    for _ in range(3):
        lease = await pool.acquire("chat", 0, metered=False)
        assert lease.deployment.fingerprint == fingerprint("k1")
