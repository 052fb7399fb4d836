"""What one client connection may take from the server: time to send its request head and body, time
idle between requests (aiohttp's keepalive_timeout), and a cap on open connections.

Without these a client that trickles a request head holds a file descriptor forever, and ~1,000 of them
left a 1,024-fd process unable to accept anyone. Over the cap, a new connection gets one 503 (Retry-After)
and is closed at once: its descriptor is free again, the client learns why, and one log line says the cap
was reached (not one per connection).

    LimitedSite(runner, limits, host, port)   a TCPSite whose connections are guarded as above
"""

from __future__ import annotations

import asyncio
import logging
import resource

import orjson
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from keymux.config.schema import ServerLimits

log = logging.getLogger("keymux")

LINGER = 1.0  # seconds a refused connection may stay open to take the client's request bytes
FD_RESERVE = 64  # descriptors kept for the listening socket, the ledger, Redis, logs
_REFUSAL_BODY = orjson.dumps({"error": {"message": "keymux has too many open connections; retry shortly",
                                        "type": "server_overloaded", "code": "too_many_connections"}})
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
           b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY))


def connection_cap(limits: ServerLimits) -> int:
    """The configured cap, else half of what the open-file limit leaves: every client request being
    answered holds an upstream connection too."""
    if limits.max_connections is not None:
        return limits.max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 10_000
    return max(16, (soft - FD_RESERVE) // 2)


class _Refused(asyncio.Protocol):
    """Answer 503 and hang up. What the client sent meanwhile is read and dropped, for at most LINGER
    seconds: closing with it unread would reset the connection before the client reads the answer."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport.write(REFUSAL)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(LINGER, self.transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the client is done too: close

    def connection_lost(self, exc: BaseException | None) -> None:
        self._timer.cancel()


class _Guarded(RequestHandler):
    """aiohttp's handler, with a deadline for each request head and body.

    A deadline is a number moved forward as requests come and go; one timer per connection checks it when
    it fires and re-arms for what is left. Arming and cancelling a timer for every request cost more than
    the rest of this class together (two timers per request where a client sends head and body apart)."""

    __slots__ = ("_body", "_body_due", "_body_timer", "_head_due", "_head_timer", "_limits")

    def __init__(self, manager: web.Server, limits: ServerLimits, **kwargs: object) -> None:
        super().__init__(manager, **kwargs)  # type: ignore[arg-type]
        self._limits = limits
        self._head_due: float | None = None  # when the head now being received is overdue
        self._head_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None
        self._body_due: float | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._expect_head()  # a connection that sends nothing at all is a head that never comes

    def _expect_head(self) -> None:
        self._head_due = self._loop.time() + self._limits.header_timeout
        if self._head_timer is None:
            self._head_timer = self._loop.call_at(self._head_due, self._check_head)

    def data_received(self, data: bytes) -> None:
        count = self._request_count
        super().data_received(data)
        if self._request_count != count:  # a whole head arrived (usually in one read)
            self._head_due = None
            body = self._messages[-1][1] if self._messages else None
            if isinstance(body, StreamReader) and not body.is_eof():  # now its body has a deadline
                self._body = body
                self._body_due = self._loop.time() + self._limits.body_timeout
                if self._body_timer is None:
                    self._body_timer = self._loop.call_at(self._body_due, self._check_body)
        elif self._head_due is None and (self._body is None or self._body.is_eof()):
            self._expect_head()  # part of the next request's head on a kept-alive connection

    def _check_head(self) -> None:
        self._head_timer = None
        due = self._head_due
        if due is None:
            return
        if self._loop.time() < due:
            self._head_timer = self._loop.call_at(due, self._check_head)
            return
        log.debug("closing a connection from %s: no whole request head in %g s", self._peer(),
                  self._limits.header_timeout)
        self.force_close()

    def _check_body(self) -> None:
        self._body_timer = None
        body, due = self._body, self._body_due
        if body is None or due is None or body.is_eof():
            return
        if self._loop.time() < due:
            self._body_timer = self._loop.call_at(due, self._check_body)
            return
        log.debug("closing a connection from %s: request body not received in %g s", self._peer(),
                  self._limits.body_timeout)
        self.force_close()

    def _peer(self) -> object:
        return self.transport.get_extra_info("peername") if self.transport is not None else None

    def connection_lost(self, exc: BaseException | None) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None
        super().connection_lost(exc)


class _Gate:
    """The protocol factory: a guarded handler while under the cap, a refusal over it."""

    def __init__(self, server: web.Server, limits: ServerLimits) -> None:
        self.server, self.limits = server, limits
        self.cap = connection_cap(limits)
        self.full = False
        self.refused = 0

    def __call__(self) -> asyncio.Protocol:
        open_now = len(self.server.connections)
        if open_now >= self.cap:
            self.refused += 1
            if not self.full:
                self.full = True
                log.warning("connection cap reached: %d client connections open (general_settings."
                            "max_connections); new ones are answered 503 until some close", open_now)
            return _Refused()
        if self.full and open_now < self.cap * 9 // 10:
            self.full = False
            log.info("client connections below the cap again (%d open; %d refused meanwhile)", open_now,
                     self.refused)
            self.refused = 0
        # aiohttp's own Server makes handlers this way (web_server.Server.__call__), with its settings.
        return _Guarded(self.server, self.limits, loop=asyncio.get_running_loop(), **self.server._kwargs)


class LimitedSite(web.TCPSite):
    def __init__(self, runner: web.AppRunner, limits: ServerLimits, host: str, port: int, **kwargs: object) -> None:
        super().__init__(runner, host, port, **kwargs)  # type: ignore[arg-type]
        self.limits = limits
        self.gate: _Gate | None = None

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self.gate = _Gate(server, self.limits)
        self._server = await asyncio.get_running_loop().create_server(
            self.gate, self._host, self._port, backlog=self._backlog, reuse_address=self._reuse_address,
            reuse_port=self._reuse_port)
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port
