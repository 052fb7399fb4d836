"""What each gateway key has used: requests and tokens this minute, requests today, spend this budget
period, requests in flight. In this process (`MemoryCounters`) or shared by every replica through Redis
(keymux/clients/redis.py), behind one protocol.

`admit` checks every limit and reserves one request (minute, day, in flight) in one step; `settle` adds
what the finished request used (tokens, USD) and frees its in-flight slot.

Overspend bound: spend is known only once a request has finished, so a budget can be exceeded by at most
what the requests already admitted when it was crossed go on to cost: at most `max_parallel` (or, without
it, the key's requests in flight) times the cost of one request. No request is admitted once spend >= budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from keymux.clients.model import GatewayClient, iso
from keymux.clients.periods import day_bounds, period_bounds, zone
from keymux.clients.refusals import BudgetSpent, ClientLimited


@dataclass
class Used:
    minute: float = -1.0  # start of the minute the minute counts are for
    minute_requests: int = 0
    minute_tokens: int = 0
    day: float = -1.0
    day_requests: int = 0
    period: float = -1.0
    spent: float = 0.0
    in_flight: int = 0
    refused: int = 0
    # When each window ends: rolling is one comparison until then (no calendar arithmetic per request).
    day_end: float = -1.0
    period_end: float | None = -1.0
    budget_period: str = ""  # the period the period window is for (a changed budget recomputes it)
    until: float = -1.0  # the first window end: nothing to roll before it
    rolled_for: GatewayClient | None = None  # the client (and so the limits) last rolled for

    def roll(self, client: GatewayClient, now: float, tz: ZoneInfo | None = None) -> None:
        self.rolled_for = client
        if now >= self.minute + 60.0 or now < self.minute:
            self.minute, self.minute_requests, self.minute_tokens = now - now % 60.0, 0, 0
        if now >= self.day_end or now < self.day:
            tz = tz or zone(client.timezone)
            day, self.day_end = day_bounds(now, tz)
            if day != self.day:
                self.day, self.day_requests = day, 0
        budget = client.budget
        if budget is not None and (budget.period != self.budget_period or now < self.period
                                   or (self.period_end is not None and now >= self.period_end)):
            period, self.period_end = period_bounds(budget.period, now, tz or zone(client.timezone))
            self.budget_period = budget.period
            if period != self.period:
                self.period, self.spent = period, 0.0
        ends = min(self.minute + 60.0, self.day_end)
        self.until = ends if budget is None or self.period_end is None else min(ends, self.period_end)


class Counters(Protocol):
    def admit_local(self, client: GatewayClient, now: float) -> bool:
        """Reserve one request without I/O when this process can decide (may raise as `admit` does);
        False: call `admit`."""
        ...

    async def admit(self, client: GatewayClient, now: float) -> None:
        """Reserve one request, or raise ClientLimited / BudgetSpent (nothing reserved then)."""
        ...

    def settle_local(self, client: GatewayClient, tokens: int, cost: float, now: float) -> Used | None:
        """Settle without I/O when the request was admitted locally, and say what is used as far as this
        process knows; None: call `settle`."""
        ...

    async def settle(self, client: GatewayClient, tokens: int, cost: float, now: float) -> None: ...

    async def used(self, client: GatewayClient, now: float) -> Used: ...

    def last(self, name: str) -> Used | None:
        """What the key had used when last seen here, without a round trip (for /metrics)."""
        ...

    async def forget(self, name: str) -> None: ...


def refusal(client: GatewayClient, used: Used, now: float) -> ClientLimited | None:
    """The first limit this request would break, given what is used (already rolled to `now`)."""
    if not _over(client, used):
        return None
    who = f"gateway key '{client.name}'"
    minute_end = used.minute + 60.0
    if client.max_parallel is not None and used.in_flight >= client.max_parallel:
        return ClientLimited(f"{who} is at its own limit of {client.max_parallel} parallel requests "
                             "(this client's limit, not the pool's): retry when one of them ends", 1.0,
                             "max_parallel")
    if client.rpm is not None and used.minute_requests >= client.rpm:
        return ClientLimited(f"{who} is over its own rate limit of {client.rpm} requests per minute "
                             "(this client's limit, not the pool's)", minute_end - now, "rpm")
    if client.tpm is not None and used.minute_tokens >= client.tpm:
        return ClientLimited(f"{who} is over its own limit of {client.tpm} tokens per minute "
                             f"({used.minute_tokens} used; this client's limit, not the pool's)",
                             minute_end - now, "tpm")
    if client.rpd is not None and used.day_requests >= client.rpd:
        _, day_end = day_bounds(now, zone(client.timezone))
        return ClientLimited(f"{who} is over its own limit of {client.rpd} requests per day "
                             f"(resets {iso(day_end)}, {client.timezone}; this client's limit, not the pool's)",
                             day_end - now, "rpd")
    if client.budget is not None and used.spent >= client.budget.usd:
        _, reset = period_bounds(client.budget.period, now, zone(client.timezone))
        when = f"resets {iso(reset)} ({client.timezone})" if reset is not None else "a total budget never resets"
        return BudgetSpent(f"{who} has spent its budget of {client.budget}: ${used.spent:.4f} spent; {when}",
                           None if reset is None else reset - now)
    return None


def _over(client: GatewayClient, used: Used) -> bool:
    """Any limit reached (the common answer, no: checked without building a message)."""
    return ((client.max_parallel is not None and used.in_flight >= client.max_parallel)
            or (client.rpm is not None and used.minute_requests >= client.rpm)
            or (client.tpm is not None and used.minute_tokens >= client.tpm)
            or (client.rpd is not None and used.day_requests >= client.rpd)
            or (client.budget is not None and used.spent >= client.budget.usd))


class MemoryCounters:
    """Counts in this process: right for one replica (several replicas: RedisCounters)."""

    def __init__(self) -> None:
        self._used: dict[str, Used] = {}

    def _rolled(self, client: GatewayClient, now: float) -> Used:
        used = self._used.get(client.name)
        if used is None:
            used = self._used[client.name] = Used()
        if not used.minute <= now < used.until or used.rolled_for is not client:
            used.roll(client, now)
        return used

    def admit_local(self, client: GatewayClient, now: float) -> bool:
        used = self._rolled(client, now)
        if _over(client, used):
            refused = refusal(client, used, now)
            if refused is not None:
                used.refused += 1
                raise refused
        used.minute_requests += 1
        used.day_requests += 1
        used.in_flight += 1
        return True

    async def admit(self, client: GatewayClient, now: float) -> None:
        self.admit_local(client, now)

    async def settle(self, client: GatewayClient, tokens: int, cost: float, now: float) -> None:
        self.settle_local(client, tokens, cost, now)

    def settle_local(self, client: GatewayClient, tokens: int, cost: float, now: float) -> Used:
        used = self._rolled(client, now)
        used.in_flight = max(0, used.in_flight - 1)
        used.minute_tokens += tokens
        used.spent += cost
        return used

    async def used(self, client: GatewayClient, now: float) -> Used:
        return self._rolled(client, now)

    def last(self, name: str) -> Used | None:
        return self._used.get(name)

    async def restore(self, client: GatewayClient, spent: float, now: float) -> None:
        """Spend of this period so far, read back from the ledger at start (this process's counts are new)."""
        self._rolled(client, now).spent = spent

    async def forget(self, name: str) -> None:
        self._used.pop(name, None)


def used_doc(client: GatewayClient, used: Used, now: float) -> dict[str, Any]:
    """Usage against the limits, for the admin API and the dashboard."""
    doc: dict[str, Any] = {"requests_this_minute": used.minute_requests, "tokens_this_minute": used.minute_tokens,
                           "requests_today": used.day_requests, "in_flight": used.in_flight,
                           "refused": used.refused, "spent": round(used.spent, 6)}
    if client.budget is not None:
        _, reset = period_bounds(client.budget.period, now, zone(client.timezone))
        doc["budget_resets"] = None if reset is None else iso(reset)
        doc["over_soft_budget"] = client.soft_budget is not None and used.spent >= client.soft_budget
    elif client.soft_budget is not None:
        doc["over_soft_budget"] = used.spent >= client.soft_budget
    return doc
