"""Egress back-off on the pool itself, driven by a FakeClock: exponential, capped, ended by a success,
never triggered by 429s that name a key's own quota."""

from __future__ import annotations

import pytest

from keymux.clock import FakeClock
from keymux.config.schema import Config, RouterSettings
from keymux.errors import NoCapacity
from keymux.live import Live, build_snapshot
from keymux.pool import Pool
from keymux.pool.egress import CAP
from keymux.pool.memory import MemoryStore
from keymux.pool.store import State
from keymux.providers.base import Outcome, Verdict

from .test_store_contract import T0, dep

BARE = Verdict(Outcome.BACKOFF, reason="429 without details", cause="no_details")
QUOTA = Verdict(Outcome.RATE_LIMITED, reason="per-minute quota", retry_after=20.0, learned_limit=("rpm", 5))
OK = Verdict(Outcome.OK)


def make_pool(n: int = 4) -> tuple[Pool, FakeClock]:
    clock = FakeClock(T0)
    config = Config(deployments=tuple(dep(f"k{i}", rpm=100) for i in range(n)),
                    router=RouterSettings(routing_strategy="round-robin", queue_timeout=0))
    return Pool(Live(build_snapshot(config, clock)), MemoryStore(), clock), clock


async def _all_429(pool: Pool, verdict: Verdict, n: int = 3) -> None:
    leases = [await pool.acquire("chat", 1) for _ in range(n)]
    assert len({lease.deployment.fingerprint for lease in leases}) == n
    for lease in leases:
        await lease.release(verdict)


async def test_most_keys_429ing_together_back_the_provider_off_exponentially_up_to_a_cap() -> None:
    pool, clock = make_pool()
    waits = []
    for _ in range(8):
        await _all_429(pool, BARE)
        for d in pool.groups["chat"]:  # no key is blamed for the address's limit
            assert pool.store.view(d, clock.time()).state is State.READY
        with pytest.raises(NoCapacity) as err:
            await pool.acquire("chat", 1)
        assert "likely this host's IP (egress)" in str(err.value)
        waits.append(err.value.retry_after)
        clock.advance(err.value.retry_after + 0.01)
    assert waits == pytest.approx([5, 10, 20, 40, 80, 160, CAP, CAP], abs=0.02)
    lease = await pool.acquire("chat", 1)
    await lease.release(OK)  # accepted again: the next episode starts from 5 s
    await _all_429(pool, BARE)
    with pytest.raises(NoCapacity) as err:
        await pool.acquire("chat", 1)
    assert err.value.retry_after == pytest.approx(5, abs=0.02)


async def test_429s_naming_each_key_quota_are_about_the_keys_not_the_address() -> None:
    pool, clock = make_pool()
    await _all_429(pool, QUOTA, n=4)
    assert pool.egress_status(clock.time()) == {}
    assert {pool.store.view(d, clock.time()).state for d in pool.groups["chat"]} == {State.COOLING}


async def test_a_few_keys_429ing_or_slowly_is_not_egress() -> None:
    pool, clock = make_pool(n=8)
    await _all_429(pool, BARE, n=5)  # 5 of 8 < 75 %
    assert pool.egress_status(clock.time()) == {}
    clock.advance(11)  # the earlier 429s left the 10 s window
    await _all_429(pool, BARE, n=3)
    assert pool.egress_status(clock.time()) == {}
