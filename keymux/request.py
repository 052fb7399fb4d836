"""What a client asked (`Request`, immutable), what happened to it (`Trace`, written by the pipeline), and
what goes back (`Reply` or `StreamReply`).

A surface parses its client's request into a `Request`; the pipeline (keymux/pipeline.py) opens a `Trace`
for it; the relay and the cache write into the trace; when the request has ended the trace is finished once,
and its observers (the access log, the ledger recorder, metrics) read it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from keymux.exchange import Usage


class Request(NamedTuple):
    """A client request, parsed just enough to route it (a NamedTuple: immutable, and cheap to make)."""

    surface: str  # the client API: "openai" | "gemini"
    operation: str  # "chat" (OpenAI chat completions) | a Gemini method: generateContent, countTokens, ...
    group: str  # resolved model group
    model: str  # the name the client asked for
    body: dict[str, Any]  # without LiteLLM's per-request `cache` field (see `controls`)
    raw: bytes  # the body as the client sent it (passthrough sends these bytes untouched)
    stream: bool
    request_id: str
    client: str = "open"  # who asked: a fingerprint of the gateway key they used, never the key
    include_usage: bool = False  # OpenAI stream_options.include_usage
    metered: bool = True  # False: counts against no quota window (countTokens)
    cache_control: str = ""  # the client's Cache-Control header (no-cache / no-store)
    controls: dict[str, Any] | None = None  # LiteLLM's per-request `cache: {...}` field, never sent upstream
    # A stateful Gemini resource call (interactions, files, caches, batches): the upstream path and method,
    # and the resources the request names (each must be served by the key that owns it).
    path: str = ""  # e.g. "interactions/abc" (relative to the key's /v1beta base); "" for model methods
    http_method: str = "POST"
    resources: tuple[str, ...] = ()


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


async def _nothing(ok: bool | None = None) -> None:
    return None


@dataclass
class StreamReply:
    """A stream whose first events are already read; `rest` yields the remainder.

    `end(ok)` closes the upstream call, frees the key and finishes the trace, once: `rest` calls it when it
    finishes, and whoever sends the stream must call it too (with ok=False when the client went away), since a
    generator closed before it ever ran (the client left before the first write) runs no `finally`.
    `ended_ok` says, once ended, whether the client received the whole answer.
    """

    first: list[bytes]
    rest: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    end: Callable[..., Awaitable[None]] = _nothing
    ended_ok: bool | None = None


Observer = Callable[["Trace"], None]  # told once per request, when it has ended; must not block


@dataclass(slots=True)
class Trace:
    """What happened to one request: written while it runs, read by observers once it is finished."""

    request: Request
    at: float  # clock time the request arrived
    observers: list[Observer] = field(default_factory=list, repr=False)
    started: float = field(default_factory=time.perf_counter)
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (key fingerprint, upstream outcome)
    usage: Usage | None = None
    key: str | None = None  # fingerprint of the key that answered
    upstream_model: str | None = None
    ttfb: float | None = None  # seconds to the first byte we could send
    queue_wait: float = 0.0  # clock seconds spent waiting in the pool's queue for a key (all attempts)
    pinned: str | None = None  # fingerprint of the key a resource the request names pinned it to
    row_id: str = ""  # the ledger row's id when it must be the same on every replica (a batch's usage)
    cost: float | None = None  # USD, priced once by the ledger's recorder (a gateway key is charged the same)
    # Set once, by finish():
    status: int = 0
    outcome: str = ""  # ok | client_error | refused | failed | broken | cancelled | cache_hit
    detail: str = ""  # why, for anything but ok
    latency: float | None = None
    finished: bool = False

    @property
    def cache_hit(self) -> bool:
        return self.outcome == "cache_hit"

    def answered_by(self, fingerprint: str, model: str) -> None:
        self.key, self.upstream_model = fingerprint, model
        if self.ttfb is None:
            self.ttfb = time.perf_counter() - self.started

    def finish(self, status: int, outcome: str, detail: str = "") -> None:
        if self.finished:
            return
        self.finished = True
        self.status, self.outcome, self.detail = status, outcome, detail
        self.latency = time.perf_counter() - self.started
        for observer in self.observers:
            observer(self)


class Handler(Protocol):
    """The one seam every surface's request goes through: the relay, and wrappers around it (the cache)."""

    async def __call__(self, request: Request, trace: Trace) -> Reply | StreamReply: ...
