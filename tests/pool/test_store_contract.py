"""One suite, every StateStore: MemoryStore (the reference) and RedisStore (real Redis on 127.0.0.1:6379,
each test in its own namespace, deleted after). The same rules must hold in both, driven by a FakeClock."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest

from keymux.clock import FakeClock
from keymux.config.schema import (
    Config,
    DeploymentConfig,
    Limits,
    RedisSettings,
    RouterSettings,
)
from keymux.errors import NoCapacity
from keymux.fingerprint import fingerprint
from keymux.live import Live, build_snapshot
from keymux.pool import Pool
from keymux.pool.deployment import Deployment, build_deployments
from keymux.pool.limits import next_pacific_midnight
from keymux.pool.memory import MemoryStore
from keymux.pool.store import Blocked, Park, Reservation, ScopeView, State, StateStore
from keymux.providers.base import Outcome, Verdict

from ..redis_service import NO_REDIS, redis_up

OK = Verdict(Outcome.OK)
T0 = datetime(2026, 11, 26, 18, 0, tzinfo=UTC).timestamp()  # 10:00 Pacific
REDIS = RedisSettings(host="127.0.0.1", port=6379)

StoreFactory = Callable[[], Awaitable[StateStore]]


@pytest.fixture(params=["memory", "redis", "shared"])
async def new_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """memory: MemoryStore. redis: RedisStore. shared: what replicas run (RedisStore behind the failover)."""
    made = []

    async def factory() -> StateStore:
        if request.param == "memory":
            return MemoryStore()
        from keymux.pool.failover import SharedStore
        from keymux.pool.redis import RedisStore, make_client

        store = RedisStore(make_client(REDIS), f"kmx-test-{uuid.uuid4().hex[:12]}")
        made.append(store)
        return store if request.param == "redis" else SharedStore(REDIS, redis=store)

    if request.param != "memory" and not await redis_up():
        pytest.fail(NO_REDIS)
    yield factory
    for store in made:
        await store.clear()
        await store.close()


def dep(key: str, group: str = "chat", model: str = "gemini-2.5-pro", project: str | None = None,
        **limits: int) -> DeploymentConfig:
    return DeploymentConfig(id=f"{group}/{key}", group=group, provider="gemini", model=model, api_key=key,
                            fingerprint=fingerprint(key), project=project, limits=Limits(**limits))


async def make_pool(new_store: StoreFactory, *deps: DeploymentConfig, strategy: str = "round-robin",
                    **router: object) -> tuple[Pool, FakeClock]:
    clock = FakeClock(T0)
    config = Config(deployments=deps, router=RouterSettings(routing_strategy=strategy, **router))  # type: ignore[arg-type]
    return Pool(Live(build_snapshot(config, clock)), await new_store(), clock), clock


async def view(pool: Pool, d: Deployment, now: float) -> ScopeView:
    await pool.store.refresh([d], now)
    return pool.store.view(d, now)


async def settle_loop() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def until_done(task: asyncio.Task, seconds: float = 5.0) -> None:
    """Run the loop until `task` is done: in memory a few iterations, with Redis a few round trips, whose real
    I/O a busy machine can slow past any fixed count of iterations (the bound is real time, for I/O only; quota
    time is the FakeClock's)."""
    deadline = time.monotonic() + seconds
    while not task.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.001)


# --- admission --------------------------------------------------------------------------------

async def test_declared_rpm_admits_exactly_that_many_then_refuses_with_honest_retry_after(new_store) -> None:
    pool, _ = await make_pool(new_store, dep("k1", rpm=2), dep("k2", rpm=2), dep("k3", rpm=2))
    leases = [await pool.acquire("chat", 10) for _ in range(6)]
    assert sorted(lease.deployment.fingerprint for lease in leases) == \
        sorted([fingerprint(k) for k in ("k1", "k2", "k3")] * 2)
    with pytest.raises(NoCapacity) as err:
        await pool.acquire("chat", 10, wait=30)
    assert err.value.retry_after == pytest.approx(60.0)
    assert "all 3 keys for chat are busy" in err.value.message and "rpm 2 reached" in err.value.message


async def test_the_minute_window_slides(new_store) -> None:
    pool, clock = await make_pool(new_store, dep("k1", rpm=2))
    await pool.acquire("chat", 1)
    clock.advance(30)
    await pool.acquire("chat", 1)
    with pytest.raises(NoCapacity) as err:
        await pool.acquire("chat", 1, wait=0)
    assert err.value.retry_after == pytest.approx(30.0)
    clock.advance(30.001)
    await pool.acquire("chat", 1, wait=0)
    with pytest.raises(NoCapacity):
        await pool.acquire("chat", 1, wait=0)


async def test_a_request_waits_for_the_window_and_is_admitted_when_it_frees(new_store) -> None:
    pool, clock = await make_pool(new_store, dep("k1", rpm=1))
    await pool.acquire("chat", 1)
    waiter = asyncio.create_task(pool.acquire("chat", 1, wait=90))
    await settle_loop()
    assert not waiter.done()
    clock.advance(59)
    await settle_loop()
    assert not waiter.done()
    clock.advance(1.01)
    await until_done(waiter)
    assert waiter.done() and waiter.result().deployment.fingerprint == fingerprint("k1")


async def test_max_parallel_admits_the_next_request_when_one_finishes(new_store) -> None:
    pool, _ = await make_pool(new_store, dep("k1", max_parallel=1))
    lease = await pool.acquire("chat", 1)
    waiter = asyncio.create_task(pool.acquire("chat", 1, wait=30))
    await settle_loop()
    assert not waiter.done()
    await lease.release(OK)
    await until_done(waiter)
    assert waiter.done() and waiter.result()


async def test_tokens_per_minute_are_settled_with_real_usage(new_store) -> None:
    pool, _ = await make_pool(new_store, dep("k1", tpm=1000))
    lease = await pool.acquire("chat", 900)
    with pytest.raises(NoCapacity, match="tpm 1000"):
        await pool.acquire("chat", 200, wait=0)
    await lease.release(OK, tokens=100)  # the real answer was much smaller than the estimate
    await pool.acquire("chat", 200, wait=0)


async def test_a_request_larger_than_any_tpm_is_refused_without_a_false_retry_after(new_store) -> None:
    pool, _ = await make_pool(new_store, dep("k1", tpm=100))
    with pytest.raises(NoCapacity) as err:
        await pool.acquire("chat", 500, wait=30)
    assert err.value.retry_after is None and "exceeds tpm 100" in err.value.message


async def test_declared_rpd_blocks_until_midnight(new_store) -> None:
    pool, clock = await make_pool(new_store, dep("k1", rpd=2))
    for _ in range(2):
        await (await pool.acquire("chat", 1)).release(OK)
    with pytest.raises(NoCapacity, match="rpd 2 reached"):
        await pool.acquire("chat", 1, wait=3600)
    clock.set(next_pacific_midnight(clock.time()) + 1)
    await pool.acquire("chat", 1, wait=0)


async def test_declared_tpd_counts_settled_tokens(new_store) -> None:
    pool, clock = await make_pool(new_store, dep("k1", tpd=1000))
    await (await pool.acquire("chat", 500)).release(OK, tokens=900)
    with pytest.raises(NoCapacity, match="tpd 1000 reached"):
        await pool.acquire("chat", 200, wait=0)
    await (await pool.acquire("chat", 100, wait=0)).release(OK)
    clock.set(next_pacific_midnight(clock.time()) + 1)
    await pool.acquire("chat", 900, wait=0)


async def test_keys_of_one_project_share_one_quota(new_store) -> None:
    pool, _ = await make_pool(new_store, dep("a", project="p1", rpm=2), dep("b", project="p1", rpm=2),
                              dep("c", project="p2", rpm=2))
    leases = [await pool.acquire("chat", 1) for _ in range(4)]
    projects = [lease.deployment.cfg.project for lease in leases]
    assert projects.count("p1") == 2 and projects.count("p2") == 2
    with pytest.raises(NoCapacity):
        await pool.acquire("chat", 1, wait=0)


async def test_unknown_limits_start_with_one_request_at_a_time_until_probed(new_store) -> None:
    store = await new_store()
    d = build_deployments(Config(deployments=(dep("k1"),)))["chat"][0]
    first = await store.reserve([d], 1, T0)
    assert isinstance(first, Reservation)
    blocked = await store.reserve([d], 1, T0)
    assert isinstance(blocked, Blocked) and blocked.waiting_on_parallel
    assert blocked.reasons == {d.id: "limit unknown yet: slow start, 1 at a time"}
    await store.settle(first, 1, T0 + 1)  # answered, not a success: the window stays at 1
    second = await store.reserve([d], 1, T0 + 1)
    assert isinstance(second, Reservation)
    assert isinstance(await store.reserve([d], 1, T0 + 2), Blocked)
    third = await store.reserve([d], 1, T0 + 61)  # a minute without a 429: no more caution
    assert isinstance(third, Reservation) and isinstance(await store.reserve([d], 1, T0 + 61), Reservation)
    await store.park_scope(d.scope, Park(T0 + 70, State.COOLING, "429"))  # a 429: caution again after the park
    r = await store.reserve([d], 1, T0 + 71)
    assert isinstance(r, Blocked) and r.waiting_on_parallel


async def _round(store: StateStore, d: Deployment, now: float) -> list[Reservation]:
    """Reserve until the store says wait; the reservations of this slow-start round."""
    got: list[Reservation] = []
    while isinstance(r := await store.reserve([d], 1, now), Reservation):
        got.append(r)
        assert len(got) <= 64
    return got


async def test_slow_start_doubles_after_a_good_round_and_halves_on_a_429(new_store) -> None:
    store = await new_store()
    d = build_deployments(Config(deployments=(dep("k1"),)))["chat"][0]
    sizes = []
    for i in range(4):  # 1, 2, 4, 8 in flight, each round answered with successes
        now = T0 + i
        batch = await _round(store, d, now)
        sizes.append(len(batch))
        for r in batch[:-1]:
            await store.settle(r, 1, now, succeeded=True)
            assert isinstance(await store.reserve([d], 1, now), Blocked)  # the round is not over yet
        await store.settle(batch[-1], 1, now, succeeded=True)
    assert sizes == [1, 2, 4, 8]
    batch = await _round(store, d, T0 + 5)
    assert len(batch) == 16
    blocked = await store.reserve([d], 1, T0 + 5)
    assert isinstance(blocked, Blocked) and "slow start, 16 at a time" in blocked.reasons[d.id]
    await store.settle(batch[0], 1, T0 + 5, limited=True)  # a 429: half the window, a new round
    assert len(await _round(store, d, T0 + 6)) == 8


async def test_slow_start_lets_a_burst_through_quickly_and_a_declared_rpm_skips_it(new_store) -> None:
    pool, clock = await make_pool(new_store, dep("k1"), dep("k2"), dep("k3"))
    served = 0
    for _ in range(6):  # six round trips: 3 keys x (1 + 2 + 4 + 8 + 16 + 32)
        leases = []
        while True:
            try:
                leases.append(await pool.acquire("chat", 1, wait=0))
            except NoCapacity:
                break
        served += len(leases)
        for lease in leases:
            await lease.release(OK)
        clock.advance(0.02)
    assert served == 3 * 63
    declared, _ = await make_pool(new_store, dep("k1", rpm=1000))
    leases = [await declared.acquire("chat", 1, wait=0) for _ in range(50)]
    assert len({lease.deployment.id for lease in leases}) == 1


# --- key state --------------------------------------------------------------------------------

async def test_retry_delay_is_honoured_exactly_plus_a_small_margin(new_store) -> None:
    pool, clock = await make_pool(new_store, dep("k1"))
    lease = await pool.acquire("chat", 1)
    await lease.release(Verdict(Outcome.RATE_LIMITED, reason="per-minute", retry_after=26.0))
    v = await view(pool, pool.groups["chat"][0], clock.time())
    assert v.state is State.COOLING and v.until == pytest.approx(clock.time() + 26.5)
    assert v.reason == "per-minute"
    clock.advance(26.6)
    await pool.acquire("chat", 1, wait=0)


async def test_a_park_is_never_shortened(new_store) -> None:
    store = await new_store()
    d = build_deployments(Config(deployments=(dep("k1"),)))["chat"][0]
    await store.park_scope(d.scope, Park(T0 + 100, State.COOLING, "long"))
    await store.park_scope(d.scope, Park(T0 + 10, State.COOLING, "short"))
    await store.refresh([d], T0)
    v = store.view(d, T0)
    assert (v.until, v.reason) == (pytest.approx(T0 + 100), "long")
    result = await store.reserve([d], 1, T0 + 50)
    assert isinstance(result, Blocked) and result.earliest == pytest.approx(T0 + 100)


async def test_per_day_quota_parks_until_pacific_midnight_not_for_a_minute(new_store) -> None:
    pool, clock = await make_pool(new_store, dep("k1"))
    lease = await pool.acquire("chat", 1)
    midnight = next_pacific_midnight(clock.time())
    await lease.release(Verdict(Outcome.DAILY_EXHAUSTED, reason="daily quota", until=midnight))
    v = await view(pool, pool.groups["chat"][0], clock.time())
    assert v.state is State.EXHAUSTED and v.until == pytest.approx(midnight)
    with pytest.raises(NoCapacity) as err:
        await pool.acquire("chat", 1, wait=30)
    assert err.value.retry_after == pytest.approx(midnight - clock.time())
    clock.set(midnight - 1)
    with pytest.raises(NoCapacity):
        await pool.acquire("chat", 1, wait=0)
    clock.set(midnight + 0.001)
    assert (await pool.acquire("chat", 1, wait=0)).deployment.fingerprint == fingerprint("k1")


async def test_invalid_key_is_disabled_and_never_chosen_again(new_store) -> None:
    pool, clock = await make_pool(new_store, dep("bad"), dep("good"))
    bad = next(d for d in pool.groups["chat"] if d.fingerprint == fingerprint("bad"))
    await pool.report(bad, Verdict(Outcome.INVALID_KEY, reason="invalid key"), 0)
    for _ in range(5):
        lease = await pool.acquire("chat", 1)
        assert lease.deployment.fingerprint == fingerprint("good")
        await lease.release(OK)
    v = await view(pool, bad, clock.time())
    assert (v.state, v.reason) == (State.DISABLED, "invalid key")
    await pool.store.enable_key(bad.fingerprint)
    assert (await view(pool, bad, clock.time())).state is State.READY


async def test_every_key_disabled_is_refused_without_a_retry_after(new_store) -> None:
    pool, _ = await make_pool(new_store, dep("bad"))
    await pool.report(pool.groups["chat"][0], Verdict(Outcome.INVALID_KEY, reason="invalid key"), 0)
    with pytest.raises(NoCapacity) as err:
        await pool.acquire("chat", 1, wait=30)
    assert err.value.retry_after is None and "disabled (invalid key)" in err.value.message


async def test_a_429_on_one_key_parks_its_whole_project(new_store) -> None:
    pool, _ = await make_pool(new_store, dep("a", project="p1"), dep("b", project="p1"), dep("c", project="p2"))
    a = pool.groups["chat"][0]
    await pool.report(a, Verdict(Outcome.RATE_LIMITED, reason="per-minute", retry_after=30), T0)
    for _ in range(4):
        lease = await pool.acquire("chat", 1)
        assert lease.deployment.cfg.project == "p2"
        await lease.release(OK)


async def test_failures_count_toward_allowed_fails_then_cool_for_cooldown_time(new_store) -> None:
    pool, clock = await make_pool(new_store, dep("k1"), allowed_fails=2, cooldown_time=120)
    d = pool.groups["chat"][0]
    boom = Verdict(Outcome.UPSTREAM_ERROR, reason="503 overloaded")
    await pool.report(d, boom, clock.time())
    assert (await view(pool, d, clock.time())).state is State.READY
    await pool.report(d, boom, clock.time())
    v = await view(pool, d, clock.time())
    assert v.state is State.COOLING and v.until == pytest.approx(clock.time() + 120)
    clock.advance(121)
    await pool.acquire("chat", 1, wait=0)


async def test_failures_outside_the_window_do_not_count(new_store) -> None:
    store = await new_store()
    assert await store.record_failure("d1", T0, 60) == 1
    assert await store.record_failure("d1", T0 + 30, 60) == 2
    assert await store.record_failure("d1", T0 + 61, 60) == 2
    d = build_deployments(Config(deployments=(dep("k1"),)))["chat"][0]
    await store.record_success(d)
    assert await store.record_failure(d.id, T0 + 62, 60) == 1


async def test_a_successful_attempt_clears_backoff_and_failure_count_as_it_frees_the_key(new_store) -> None:
    pool, clock = await make_pool(new_store, dep("k1"), allowed_fails=3)
    d = pool.groups["chat"][0]
    for _ in range(2):
        await pool.report(d, Verdict(Outcome.UPSTREAM_ERROR, reason="503 overloaded"), clock.time())
    assert await pool.store.next_backoff(d.scope) == 1
    lease = await pool.acquire("chat", 1, wait=0)
    await lease.release(OK)
    assert await pool.store.next_backoff(d.scope) == 1  # back to level 0 first
    assert await pool.store.record_failure(d.id, clock.time(), 60) == 1  # the two before are forgotten


async def test_bare_429_backs_off_exponentially_and_success_resets_it(new_store) -> None:
    pool, clock = await make_pool(new_store, dep("k1"))
    d = pool.groups["chat"][0]
    bare = Verdict(Outcome.BACKOFF, reason="429 without details")
    await pool.report(d, bare, clock.time())
    first = (await view(pool, d, clock.time())).until
    clock.advance(6)
    await pool.report(d, bare, clock.time())
    second = (await view(pool, d, clock.time())).until
    assert first == pytest.approx(T0 + 5) and second == pytest.approx(clock.time() + 10)
    await pool.store.record_success(d)
    assert await pool.store.next_backoff(d.scope) == 1


async def test_learned_limits_apply_and_show(new_store) -> None:
    pool, clock = await make_pool(new_store, dep("k1"))
    d = pool.groups["chat"][0]
    await pool.store.learn_limit(d.scope, "rpm", 2)
    await pool.acquire("chat", 1)
    await pool.acquire("chat", 1)  # a known limit: no one-at-a-time caution
    with pytest.raises(NoCapacity, match="rpm 2 reached"):
        await pool.acquire("chat", 1, wait=0)
    v = await view(pool, d, clock.time())
    assert v.learned == {"rpm": 2} and v.rpm_used == 2 and v.in_flight == 2 and v.state is State.COOLING


async def test_view_counts_usage(new_store) -> None:
    pool, clock = await make_pool(new_store, dep("k1", rpm=10, tpm=10_000))
    d = pool.groups["chat"][0]
    lease = await pool.acquire("chat", 300)
    await (await pool.acquire("chat", 200)).release(OK, tokens=50)
    v = await view(pool, d, clock.time())
    assert (v.rpm_used, v.tpm_used, v.rpd_used, v.tpd_used, v.in_flight) == (2, 350, 2, 350, 1)
    await lease.release(OK, tokens=100)
    clock.advance(61)
    v = await view(pool, d, clock.time())
    assert (v.rpm_used, v.tpm_used, v.rpd_used, v.tpd_used, v.in_flight) == (0, 0, 2, 150, 0)


async def test_unmetered_calls_skip_quota_windows_but_not_disabled_keys(new_store) -> None:
    pool, _ = await make_pool(new_store, dep("k1", rpm=1), dep("bad", rpm=1))
    bad = next(d for d in pool.groups["chat"] if d.fingerprint == fingerprint("bad"))
    await pool.report(bad, Verdict(Outcome.INVALID_KEY, reason="invalid key"), 0)
    await pool.acquire("chat", 1)
    for _ in range(3):
        lease = await pool.acquire("chat", 0, metered=False)
        assert lease.deployment.fingerprint == fingerprint("k1")
        await lease.release(OK)


async def test_deployment_park_and_reset_key(new_store) -> None:
    store = await new_store()
    d = build_deployments(Config(deployments=(dep("k1"),)))["chat"][0]
    await store.park_deployment(d.id, Park(T0 + 60, State.COOLING, "3 failures"))
    await store.park_scope(d.scope, Park(T0 + 30, State.COOLING, "429"))
    result = await store.reserve([d], 1, T0)
    assert isinstance(result, Blocked) and result.earliest == pytest.approx(T0 + 60)
    assert result.reasons == {d.id: "3 failures"}
    await store.reset_key(d.fingerprint, [d.scope], [d.id])
    assert isinstance(await store.reserve([d], 1, T0), Reservation)


async def test_reserve_tries_candidates_in_the_order_given(new_store) -> None:
    store = await new_store()
    ds = build_deployments(Config(deployments=(dep("k1", rpm=1), dep("k2", rpm=1))))["chat"]
    first = await store.reserve(ds, 1, T0)
    second = await store.reserve(ds, 1, T0)
    assert isinstance(first, Reservation) and first.deployment is ds[0]
    assert isinstance(second, Reservation) and second.deployment is ds[1]
    third = await store.reserve(ds, 1, T0)
    assert isinstance(third, Blocked) and third.earliest == pytest.approx(T0 + 60)
    assert third.reasons == {ds[0].id: "rpm 1 reached", ds[1].id: "rpm 1 reached"}
