"""The client for upstream calls: HTTP/1.1 POSTs over kept-alive connections, plain or TLS.

Why not aiohttp's ClientSession: it costs ~75-100 us of CPU per call where this costs ~35 us (measured in
one process against the emulator), and the gateway's throughput is CPU-bound. keymux needs little of what a
general client does: POST with a bytes body, answers framed by Content-Length, chunked or the connection's
end, TLS, timeouts, and a pool of idle connections per origin. No cookies, redirects, proxies or compression
(no Accept-Encoding is sent, so none comes back).

Errors: `UpstreamError` (connect failed, connection lost, malformed answer) and `asyncio.TimeoutError`.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from multidict import CIMultiDict, CIMultiDictProxy

MAX_HEAD = 64 * 1024  # bytes of status line + headers an answer may have
HIGH_WATER, LOW_WATER = 1 << 20, 1 << 18  # unread bytes at which reading pauses / resumes
MAX_ANSWER = 64 * 1024 * 1024  # body bytes one answer may have, streams included (general_settings)


class UpstreamError(Exception):
    """The upstream could not be reached, or its connection broke, or its answer was not HTTP/1.x."""


def too_large(limit: int) -> UpstreamError:
    shown = f"{limit / 1048576:g} MB" if limit >= 1048576 else f"{limit} bytes"
    return UpstreamError(f"upstream answer larger than the limit of {shown} "
                         "(general_settings.max_upstream_response_mb)")


class _Origin(NamedTuple):
    tls: bool
    host: str
    port: int
    host_header: str


class _Target(NamedTuple):
    origin: _Origin
    prefix: bytes  # request line and Host header


@functools.lru_cache(maxsize=256)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamError(f"unsupported upstream URL scheme or host: {parts.scheme}://{parts.hostname or ''}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == (443 if tls else 80) else f"{shown}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(c in path or c in host_header for c in "\r\n "):
        raise UpstreamError("upstream URL holds a space or line break")
    return _Target(_Origin(tls, host, port, host_header),
                   f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\n".encode("latin-1"))


def _length(value: str) -> int:
    if not value.isdigit():  # also refuses a sign, spaces inside, and "5, 5"
        raise UpstreamError(f"malformed Content-Length in the answer: {value[:20]!r}")
    return int(value)


def _header_block(headers: Mapping[str, str]) -> bytes:
    lines = []
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise UpstreamError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: received bytes in a buffer, one waiter for more of them."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.ended = False  # the peer closed its side, or the connection is gone
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.idle_since = 0.0  # loop time it went back to the pool
        self.received = 0  # bytes received since the current request was sent
        self.deadline_timer: asyncio.TimerHandle | None = None  # non-streaming: one timer for the whole call
        self.timed_out = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self.buf += data
        if len(self.buf) > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: BaseException | None) -> None:
        self.ended = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def consumed(self) -> None:
        if self._paused and len(self.buf) < LOW_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    async def more(self, timeout: float | None = None) -> None:
        """Wait until more bytes arrive; UpstreamError if the connection ends first. `timeout`: the longest
        wait (streams); a call under a deadline timer (`expire`) passes none."""
        if self.timed_out:
            raise TimeoutError()
        if self.ended:
            raise UpstreamError(f"connection closed by the upstream ({self.error or 'end of stream'})")
        loop = asyncio.get_running_loop()
        fut = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, fut) if timeout is not None else None
        try:
            await fut
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if not self.buf and self.ended:
            raise UpstreamError(f"connection closed by the upstream ({self.error or 'end of stream'})")

    def expire(self) -> None:
        """The whole call's deadline passed: fail the wait in progress, and every later one."""
        self.deadline_timer = None
        self.timed_out = True
        w = self._waiter
        if w is not None and not w.done():
            w.set_exception(TimeoutError())

    def stop_deadline(self) -> None:
        if self.deadline_timer is not None:
            self.deadline_timer.cancel()
            self.deadline_timer = None

    def close(self) -> None:
        self.ended = True
        self.stop_deadline()
        if self.transport is not None:
            self.transport.close()


class Response:
    """An answer whose status line and headers are read; the body is read with `read` or `iter_any`.

    `release()` gives the connection back for reuse once the body was read to its end (else closes it)."""

    def __init__(self, client: Client, origin: _Origin, conn: _Connection, status: int,
                 headers: CIMultiDictProxy[str], read_timeout: float | None, keep_alive: bool = True,
                 max_bytes: int = MAX_ANSWER) -> None:
        self._client, self._origin, self._conn = client, origin, conn
        self.status = status
        self.headers = headers
        self._read_timeout = read_timeout  # streams: the longest silence (a whole answer has a deadline timer)
        te = headers.get("transfer-encoding", "")
        length = headers.get("content-length")
        self._chunked = "chunked" in te.lower()
        if status in (204, 304):  # no body, whatever the headers say
            self._chunked, length = False, "0"
        self._left = -1 if self._chunked or length is None else _length(length)  # -1: unknown
        if self._left > max_bytes:  # said up front: refused before a byte of it is read
            raise too_large(max_bytes)
        self._max_bytes = max_bytes
        self._body_bytes = 0  # read so far: the limit also holds for chunked and streamed answers
        self._until_close = not self._chunked and length is None
        self._done = self._left == 0
        self._chunk_left = 0  # chunked: bytes left in the current chunk
        self._need_crlf = False  # chunked: a chunk's data ended; its CRLF comes next
        self._in_trailers = False  # chunked: the last chunk came; trailer lines until an empty one
        conn_header = headers.get("connection", "").lower()
        self._reusable = keep_alive and not self._until_close and "close" not in conn_header
        self._closed = False

    async def read(self) -> bytes:
        conn = self._conn
        if 0 < self._left <= len(conn.buf):  # the common case: a Content-Length body, all arrived
            body = bytes(conn.buf[:self._left])
            del conn.buf[:self._left]
            self._left = 0
            self._done = True
            conn.consumed()
            return body
        # Piece by piece, so that a body larger than the pause threshold keeps the connection reading.
        parts = [part async for part in self.iter_any()]
        return b"".join(parts)

    async def readany(self) -> bytes:
        """The next bytes of the body as they arrive; b"" at its end."""
        try:
            part = await self._next()
            self._body_bytes += len(part)
            if self._body_bytes > self._max_bytes:
                raise too_large(self._max_bytes)
            return part
        except BaseException:
            self.close()
            raise

    async def iter_any(self) -> AsyncIterator[bytes]:
        while True:
            part = await self.readany()
            if not part:
                return
            yield part

    async def _next(self) -> bytes:
        if self._done:
            return b""
        conn = self._conn
        if self._until_close:
            while not conn.buf:
                if conn.ended:
                    self._done = True
                    return b""
                try:
                    await conn.more(self._read_timeout)
                except UpstreamError:
                    self._done = True
                    return b""
            return self._take(len(conn.buf))
        if not self._chunked:
            while not conn.buf:
                await conn.more(self._read_timeout)
            part = self._take(min(self._left, len(conn.buf)))
            self._left -= len(part)
            self._done = self._left == 0
            return part
        while True:  # chunked: whatever the buffer completes, in one piece
            part = self._unchunk()
            if part or self._done:
                return part
            await conn.more(self._read_timeout)

    def _unchunk(self) -> bytes:
        """Decode the chunked framing in the buffer as far as it goes: the data found (maybe b"")."""
        buf = self._conn.buf
        out: list[bytes] = []
        pos, end = 0, len(buf)
        while pos < end:
            if self._chunk_left:
                take = min(self._chunk_left, end - pos)
                out.append(bytes(buf[pos:pos + take]))
                pos += take
                self._chunk_left -= take
                if self._chunk_left:
                    break
                self._need_crlf = True
                continue
            i = buf.find(b"\r\n", pos)
            if i < 0:
                if end - pos > MAX_HEAD:
                    raise UpstreamError("malformed chunked answer: line too long")
                break
            line = bytes(buf[pos:i])
            pos = i + 2
            if self._need_crlf:  # the CRLF that ends a chunk's data
                if line:
                    raise UpstreamError("malformed chunked answer: chunk not followed by CRLF")
                self._need_crlf = False
            elif self._in_trailers:
                if not line:  # the empty line after the trailers: the answer is complete
                    self._done = True
                    break
            else:
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise UpstreamError("malformed chunked answer: bad chunk size") from None
                if not size:
                    self._in_trailers = True
                elif pos + size + 2 <= end:  # the whole chunk is here (the common case): its data and CRLF at once
                    stop = pos + size
                    if buf[stop:stop + 2] != b"\r\n":
                        raise UpstreamError("malformed chunked answer: chunk not followed by CRLF")
                    out.append(bytes(buf[pos:stop]))
                    pos = stop + 2
                else:
                    self._chunk_left = size
        del buf[:pos]
        self._conn.consumed()
        return b"".join(out)

    def _take(self, n: int) -> bytes:
        buf = self._conn.buf
        part = bytes(buf[:n])
        del buf[:n]
        self._conn.consumed()
        return part

    def release(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._conn.stop_deadline()
        if self._done and self._reusable and not self._conn.ended and not self._conn.timed_out:
            self._client._give_back(self._origin, self._conn)
        else:
            self._conn.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._conn.close()


class Client:
    def __init__(self, *, keepalive: float = 30.0, ssl_context: ssl.SSLContext | None = None,
                 max_answer_bytes: int = MAX_ANSWER) -> None:
        self._idle: dict[_Origin, list[_Connection]] = {}
        self.max_answer_bytes = max_answer_bytes
        self._blocks: dict[int, tuple[Mapping[str, str], bytes]] = {}
        self._keepalive = keepalive
        self._sweeper: asyncio.TimerHandle | None = None
        self._ssl = ssl_context
        self._closed = False

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def _connect(self, origin: _Origin, timeout: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(
                _Connection, origin.host, origin.port, ssl=self._ssl_context() if origin.tls else None,
                server_hostname=origin.host if origin.tls else None), timeout)
        except TimeoutError:
            raise
        except OSError as e:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise UpstreamError(f"cannot connect to {origin.host_header}: {e}") from None
        return conn

    def _reuse(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        stale = asyncio.get_running_loop().time() - self._keepalive
        while idle:
            conn = idle.pop()  # the most recently used first: the likeliest to be alive
            if not conn.ended and not conn.buf and conn.idle_since > stale:
                return conn
            conn.close()
        return None

    def _give_back(self, origin: _Origin, conn: _Connection) -> None:
        if self._closed or conn.buf:  # bytes beyond the answer: the connection is out of step
            conn.close()
            return
        loop = asyncio.get_running_loop()
        conn.idle_since = loop.time()
        self._idle.setdefault(origin, []).append(conn)
        if self._sweeper is None:  # one timer for all idle connections, not one per request
            self._sweeper = loop.call_later(self._keepalive / 2, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle longer than `keepalive` (the upstream may drop them any time after)."""
        self._sweeper = None
        stale = asyncio.get_running_loop().time() - self._keepalive
        for origin, idle in list(self._idle.items()):
            keep = [c for c in idle if not c.ended and c.idle_since > stale]
            for c in idle:
                if c not in keep:
                    c.close()
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]
        if self._idle and not self._closed:
            self._sweeper = asyncio.get_running_loop().call_later(self._keepalive / 2, self._sweep)

    async def post(self, url: str, data: bytes, headers: Mapping[str, str], *, timeout: float,
                   stream: bool = False, connect_timeout: float = 10.0, method: str = "POST") -> Response:
        """Send; return once the status line and headers are in. Non-streaming: `timeout` bounds the whole
        call, body included. Streaming: it bounds each silence (no byte for that long)."""
        if self._closed:
            raise UpstreamError("client closed")
        target = _target(url)
        origin = target.origin
        # Header mappings are taken as immutable (the providers build one per key): encoded once, kept by
        # identity (holding the mapping keeps its id from being reused).
        cached = self._blocks.get(id(headers))
        if cached is None or cached[0] is not headers:
            if len(self._blocks) >= 1024:
                self._blocks.clear()
            cached = self._blocks[id(headers)] = (headers, _header_block(headers))
        prefix = target.prefix if method == "POST" else method.encode("ascii") + target.prefix[4:]  # GET, DELETE
        head = b"%sContent-Length: %d\r\n%s\r\n" % (prefix, len(data), cached[1])
        loop = asyncio.get_running_loop()
        deadline = None if stream else loop.time() + timeout
        read_timeout = timeout if stream else None
        for fresh in (False, True):
            conn = None if fresh else self._reuse(origin)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin, min(connect_timeout, timeout))
            try:
                if deadline is not None:  # one timer for the whole call, body included
                    conn.deadline_timer = loop.call_at(deadline, conn.expire)
                assert conn.transport is not None
                conn.received = 0
                conn.transport.write(head + data)
                status, response_headers, keep_alive = await self._head(conn, read_timeout)
                return Response(self, origin, conn, status, response_headers, read_timeout, keep_alive,
                                self.max_answer_bytes)
            except UpstreamError:
                conn.close()
                if reused and not conn.received:  # an idle connection the upstream had closed: once more, fresh
                    continue
                raise
            except BaseException:
                conn.close()
                raise
        raise UpstreamError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _head(self, conn: _Connection, read_timeout: float | None) -> tuple[int, CIMultiDictProxy[str], bool]:
        """Status, headers, and whether the connection may stay open (HTTP/1.0: only if it says keep-alive)."""
        while True:
            buf = conn.buf
            i = buf.find(b"\r\n\r\n")
            while i < 0:
                if len(buf) > MAX_HEAD:
                    raise UpstreamError("answer headers too large")
                await conn.more(read_timeout)
                i = buf.find(b"\r\n\r\n")
            head = bytes(buf[:i]).decode("latin-1")
            del buf[:i + 4]
            status_line, _, rest = head.partition("\r\n")
            version, _, code = status_line.partition(" ")
            if not version.startswith("HTTP/1."):
                raise UpstreamError(f"not an HTTP/1.x answer: {status_line[:40]!r}")
            try:
                status = int(code[:3])
            except ValueError:
                raise UpstreamError(f"malformed status line: {status_line[:40]!r}") from None
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            pairs = [line.partition(":") for line in rest.split("\r\n")] if rest else []
            for _, sep, _ in pairs:  # a loop, not any(<generator>): this runs for every answer
                if not sep:
                    raise UpstreamError("malformed header line in the answer")
            headers = CIMultiDict([(name.strip(), value.strip()) for name, _, value in pairs])
            keep_alive = version != "HTTP/1.0" or "keep-alive" in headers.get("connection", "").lower()
            return status, CIMultiDictProxy(headers), keep_alive

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
