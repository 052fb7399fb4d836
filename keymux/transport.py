"""The seam between keymux and its upstreams: one method to send, one answer shape to read.

`keymux.upstream.Client` is the real transport (HTTP/1.1 over TCP/TLS). `MemoryTransport` is its in-memory
twin: a function answers each call, so the relay, the attempt logic and the exchanges can be tested without
sockets, byte for byte as the real client would hand them the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from multidict import CIMultiDict, CIMultiDictProxy

from keymux.upstream import UpstreamError

__all__ = ["Answer", "MemoryTransport", "Sent", "Transport", "UpstreamAnswer", "UpstreamError"]


class UpstreamAnswer(Protocol):
    """An answer whose status and headers are in; the body is read with `read`, `readany` or `iter_any`."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def read(self) -> bytes: ...

    async def readany(self) -> bytes: ...

    def iter_any(self) -> AsyncIterator[bytes]: ...

    def release(self) -> None:
        """Done with it: the connection may be reused if the body was read to its end."""

    def close(self) -> None:
        """Abandon it (the connection is closed)."""


class Transport(Protocol):
    async def post(self, url: str, data: bytes, headers: Mapping[str, str], *, timeout: float,
                   stream: bool = False, method: str = "POST") -> UpstreamAnswer:
        """`method`: POST, or GET / DELETE for a resource (Gemini's interactions, files...). Raises UpstreamError (or asyncio.TimeoutError) when no answer could be had."""
        ...

    async def close(self) -> None: ...


# -- the in-memory twin ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Sent:
    """One call as the transport received it."""

    url: str
    data: bytes
    headers: Mapping[str, str]
    stream: bool
    timeout: float


@dataclass
class Answer:
    """What the twin answers: a status, headers and the body in the pieces it arrives in.

    A piece that is an exception is raised when the reader gets to it (a connection that breaks mid-body).
    """

    status: int = 200
    body: Iterable[bytes | BaseException] = (b"",)
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Answer:
        return cls(status, (body,), {"content-type": "application/json", **(headers or {})})

    @classmethod
    def sse(cls, events: Iterable[bytes | BaseException]) -> Answer:
        return cls(200, tuple(events), {"content-type": "text/event-stream"})


class _MemoryAnswer:
    def __init__(self, answer: Answer) -> None:
        self.status = answer.status
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(answer.headers))
        self._pieces = iter(answer.body)
        self.released = False
        self.closed = False

    async def readany(self) -> bytes:
        await asyncio.sleep(0)  # an answer arrives from the event loop, never synchronously
        for piece in self._pieces:
            if isinstance(piece, BaseException):
                raise piece
            if piece:
                return piece
        return b""

    async def read(self) -> bytes:
        return b"".join([part async for part in self.iter_any()])

    async def iter_any(self) -> AsyncIterator[bytes]:
        while part := await self.readany():
            yield part

    def release(self) -> None:
        self.released = True

    def close(self) -> None:
        self.closed = True


Responder = Callable[[Sent], Answer | BaseException | Awaitable[Answer | BaseException]]


class MemoryTransport:
    """Answers each call with `respond(sent)`: an Answer, or an exception to raise (UpstreamError, timeout)."""

    def __init__(self, respond: Responder) -> None:
        self._respond = respond
        self.sent: list[Sent] = []
        self.answers: list[_MemoryAnswer] = []

    async def post(self, url: str, data: bytes, headers: Mapping[str, str], *, timeout: float,
                   stream: bool = False, method: str = "POST") -> _MemoryAnswer:
        sent = Sent(url, data, dict(headers), stream, timeout)
        self.sent.append(sent)
        answer = self._respond(sent)
        if isinstance(answer, Awaitable):
            answer = await answer
        if isinstance(answer, BaseException):
            raise answer
        got = _MemoryAnswer(answer)
        self.answers.append(got)
        return got

    async def close(self) -> None:
        return None
