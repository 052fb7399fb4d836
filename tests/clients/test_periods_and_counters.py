"""Budget periods and limit windows on the injectable clock: when each resets, in the stated time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from keymux.clients.counters import MemoryCounters
from keymux.clients.model import Budget, GatewayClient
from keymux.clients.periods import period_bounds
from keymux.clients.refusals import BudgetSpent, ClientLimited
from keymux.clock import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, tz: ZoneInfo = BERLIN) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def client(**kw: object) -> GatewayClient:
    return GatewayClient(name="job", secret_hash="0" * 64, fingerprint="key:00000000", **kw)  # type: ignore[arg-type]


def test_day_week_month_start_and_reset_at_local_midnight() -> None:
    now = at("2026-03-18T15:30:00")  # a Wednesday
    assert period_bounds("day", now, BERLIN) == (at("2026-03-18T00:00:00"), at("2026-03-19T00:00:00"))
    assert period_bounds("week", now, BERLIN) == (at("2026-03-16T00:00:00"), at("2026-03-23T00:00:00"))
    assert period_bounds("month", now, BERLIN) == (at("2026-03-01T00:00:00"), at("2026-04-01T00:00:00"))
    assert period_bounds("total", now, BERLIN) == (0.0, None)
    december = at("2026-12-31T23:59:00")
    assert period_bounds("month", december, BERLIN)[1] == at("2027-01-01T00:00:00")


def test_a_period_across_a_daylight_saving_change_keeps_local_midnight() -> None:
    # Berlin moves to summer time on 2026-03-29: that day has 23 hours.
    start, end = period_bounds("day", at("2026-03-29T12:00:00"), BERLIN)
    assert end - start == 23 * 3600
    assert datetime.fromtimestamp(end, BERLIN).hour == 0


async def test_budget_resets_at_the_stated_zones_midnight_not_utcs() -> None:
    clock = FakeClock(at("2026-03-18T23:30:00"))  # 22:30 UTC: still the 18th in UTC too
    counters = MemoryCounters()
    job = client(budget=Budget(1.0, "day"), timezone="Europe/Berlin")
    await counters.admit(job, clock.time())
    await counters.settle(job, 100, 1.0, clock.time())
    with pytest.raises(BudgetSpent) as e:
        await counters.admit(job, clock.time())
    assert e.value.retry_after == pytest.approx(1800)  # Berlin midnight is 30 minutes away
    assert "$1.00/day" in e.value.message and "$1.0000 spent" in e.value.message
    assert "resets 2026-03-18T23:00:00Z (Europe/Berlin)" in e.value.message
    clock.advance(1800)
    await counters.admit(job, clock.time())  # a new Berlin day, though UTC is still on the 18th
    assert (await counters.used(job, clock.time())).spent == 0


async def test_rpm_window_tpm_and_parallel_limits() -> None:
    clock = FakeClock(1_800_000_000.0)  # :00 of a minute
    counters = MemoryCounters()
    job = client(rpm=2, tpm=100, max_parallel=3)
    await counters.admit(job, clock.time())
    await counters.admit(job, clock.time())
    clock.advance(15)
    with pytest.raises(ClientLimited) as e:
        await counters.admit(job, clock.time())
    assert e.value.limit == "rpm" and e.value.retry_after == pytest.approx(45)
    clock.advance(45)  # the next minute
    await counters.admit(job, clock.time())
    with pytest.raises(ClientLimited) as p:
        await counters.admit(job, clock.time())  # 3 in flight (none settled yet)
    assert p.value.limit == "max_parallel"
    for _ in range(3):
        await counters.settle(job, 50, 0.0, clock.time())
    clock.advance(59)
    with pytest.raises(ClientLimited) as t:
        await counters.admit(job, clock.time())
    assert t.value.limit == "tpm" and t.value.retry_after == pytest.approx(1)


async def test_rpd_counts_the_clients_day_and_total_budget_never_resets() -> None:
    clock = FakeClock(at("2026-05-01T10:00:00", ZoneInfo("UTC")))
    counters = MemoryCounters()
    job = client(rpd=1, budget=Budget(0.5, "total"))
    await counters.admit(job, clock.time())
    await counters.settle(job, 10, 0.6, clock.time())
    with pytest.raises(ClientLimited) as e:
        await counters.admit(job, clock.time())
    assert e.value.limit == "rpd" and e.value.retry_after == pytest.approx(14 * 3600)
    clock.advance(14 * 3600)
    with pytest.raises(BudgetSpent) as b:
        await counters.admit(job, clock.time())
    assert b.value.retry_after is None and "never resets" in b.value.message
    clock.advance(400 * 86400)
    with pytest.raises(BudgetSpent):
        await counters.admit(job, clock.time())
