"""The gate around the handler chain for gateway keys: scope, rate limits and budget are checked before
a key is leased (a refused request spends no upstream quota), and what the request used is settled once
its trace is finished.

    ClientGate(inner, registry, clock)         a Handler (keymux/request.py)
    gate.settle                                 a pipeline observer: tokens and USD per finished request

Requests of the master key (client "master") or of an open gateway (client "open") pass straight through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from keymux.clients.model import GatewayClient
from keymux.clients.refusals import ClientLimited
from keymux.clients.registry import Registry
from keymux.clock import Clock
from keymux.errors import Forbidden, Unauthorized, Unavailable
from keymux.request import Handler, Reply, Request, StreamReply, Trace

log = logging.getLogger("keymux.clients")


class ClientGate:
    def __init__(self, inner: Handler, registry: Registry, clock: Clock) -> None:
        self.inner = inner
        self.registry = registry
        self.clock = clock
        self._held: dict[int, str] = {}  # id(trace) -> client name, while the request holds a slot
        self._alerted: dict[str, float] = {}  # client -> budget period start its soft-budget alert was for
        self._pending: set[asyncio.Task[None]] = set()

    def __call__(self, request: Request, trace: Trace) -> Coroutine[Any, Any, Reply | StreamReply]:
        """Not a coroutine itself: the master key's request is the inner handler's own (no layer added), and
        a refusal is raised before anything is awaited."""
        client = self.registry.by_name.get(request.client)
        if client is None:
            return self.inner(request, trace)
        now = self.clock.time()
        why = client.unusable(now) if client.disabled or client.expires is not None else None
        if why is not None:  # disabled or expired since the surface authenticated it
            trace.finish(401, "refused", why)
            raise Unauthorized(why)
        if not client.allows(request.group):
            message = (f"gateway key '{client.name}' may not use model group '{request.group}'; "
                       f"it may use: {', '.join(client.models)}")
            trace.finish(403, "refused", message)
            raise Forbidden(message)
        try:
            admitted = self.registry.counters.admit_local(client, now)  # in memory, or on a Redis lease
        except ClientLimited as e:
            trace.finish(429, "refused", e.message)
            raise
        if not admitted:
            return self._admit(client, now, request, trace)
        self._held[id(trace)] = client.name
        return self._run(request, trace)

    async def _admit(self, client: GatewayClient, now: float, request: Request, trace: Trace) -> Reply | StreamReply:
        """Admitted by the shared counters (one round trip)."""
        try:
            await self.registry.counters.admit(client, now)
        except ClientLimited as e:
            trace.finish(429, "refused", e.message)
            raise
        except self._outages() as e:  # limits that cannot be checked are not waived: refuse, say why
            message = f"gateway key limits cannot be checked (shared counters unreachable: {type(e).__name__})"
            trace.finish(503, "refused", message)
            raise Unavailable(message) from None
        self._held[id(trace)] = client.name
        return await self._run(request, trace)

    async def _run(self, request: Request, trace: Trace) -> Reply | StreamReply:
        try:
            return await self.inner(request, trace)
        except BaseException:
            if not trace.finished:  # an error no one will finish the trace for: free the slot now
                self._free(trace, 0, 0.0)
            raise

    # -- settling, told by the pipeline once per finished request ------------------------------
    def settle(self, trace: Trace) -> None:
        if id(trace) not in self._held:
            return
        # What the ledger charged (its recorder is told first and prices every request; None: it failed, and
        # logged why).
        cost = trace.cost or 0.0
        self._free(trace, trace.usage.total if trace.usage else 0, cost)

    def _free(self, trace: Trace, tokens: int, cost: float) -> None:
        name = self._held.pop(id(trace), None)
        client = self.registry.by_name.get(name) if name else None
        if client is None:
            return
        counters = self.registry.counters
        used = counters.settle_local(client, tokens, cost, self.clock.time())  # before the client's next request
        if used is not None:
            if client.soft_budget is not None and used.spent >= client.soft_budget:
                self._soft_alert(client, used.spent, used.period)
            return
        task = asyncio.ensure_future(self._settle(client.name, tokens, cost))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _settle(self, name: str, tokens: int, cost: float) -> None:
        client = self.registry.by_name.get(name)
        if client is None:
            return
        now = self.clock.time()
        try:
            await self.registry.counters.settle(client, tokens, cost, now)
            if client.soft_budget is not None:
                used = await self.registry.counters.used(client, now)
                self._soft_alert(client, used.spent, used.period)
        except self._outages() as e:  # the shared counter store is unreachable: the request has been answered
            log.error("could not settle usage of gateway key '%s': %s", name, e)

    def _outages(self) -> tuple[type[BaseException], ...]:
        return getattr(self.registry.counters, "outage_errors", (OSError,))

    def _soft_alert(self, client: GatewayClient, spent: float, period: float) -> None:
        """Once per budget period: a log line when a key passes its soft budget (the admin API flags it too)."""
        if client.soft_budget is None or spent < client.soft_budget or self._alerted.get(client.name) == period:
            return
        self._alerted[client.name] = period
        log.warning("gateway key '%s' passed its soft budget of $%.2f: $%.4f spent this period",
                    client.name, client.soft_budget, spent)

    async def drain(self) -> None:
        """Wait for settlements still being written (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
