"""The entry every surface calls: open a `Trace` for the request, run the handler chain (the cache around
the relay), and make sure the trace is finished once whatever happens, so the ledger, metrics and the access
log see every request that reached a key or was refused for want of one."""

from __future__ import annotations

import asyncio
import logging

from keymux.clock import Clock
from keymux.errors import NoCapacity, UpstreamFailed
from keymux.logsetup import access
from keymux.request import Handler, Observer, Reply, Request, StreamReply, Trace

log = logging.getLogger("keymux.relay")


class Pipeline:
    def __init__(self, handler: Handler, clock: Clock, observers: list[Observer] | None = None) -> None:
        self.handler = handler
        self.clock = clock
        self.observers: list[Observer] = [access_line] if observers is None else observers

    async def handle(self, request: Request) -> Reply | StreamReply:
        trace = Trace(request, self.clock.time(), self.observers)
        try:
            return await self.handler(request, trace)
        except NoCapacity as e:
            trace.finish(e.status if e.retry_after is not None else 503, "refused", e.message)
            raise
        except UpstreamFailed as e:
            trace.finish(e.status, "failed", e.message)
            raise
        except asyncio.CancelledError:  # the client went away while its request waited or ran
            trace.finish(499, "cancelled", "the client went away")
            raise


def access_line(trace: Trace) -> None:
    """One log line per finished request."""
    r = trace.request
    tokens = f" tokens={trace.usage.total}" if trace.usage else ""
    extra = f" ({trace.detail})" if trace.detail else ""
    latency = (trace.latency or 0.0) * 1000
    access(log, f"{r.request_id} {r.surface} group={r.group} key={trace.key or '-'} status={trace.status} "
                f"{latency:.0f}ms attempts={max(1, len(trace.attempts))}{' stream' if r.stream else ''}"
                f"{tokens}{extra}")
