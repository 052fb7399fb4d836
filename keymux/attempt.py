"""One upstream attempt on one leased key: send, classify, and (for streams) hold the answer
back until its first event has been read, so failover stays possible until then."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable

import orjson

from keymux.exchange import Exchange, StreamTranslator, Usage
from keymux.exchange.base import StreamBroken
from keymux.pool import Lease
from keymux.providers.base import Outcome, Verdict
from keymux.translate.sse import SSEDecoder
from keymux.upstream import Client, Response, UpstreamError

log = logging.getLogger("keymux.relay")
OK = Verdict(Outcome.OK)


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


async def _nothing() -> None:
    return None


@dataclass
class StreamReply:
    """A stream whose first events are already read; `rest` yields the remainder.

    `end()` closes the upstream call, frees the key and reports the request, once: `rest` calls it when it
    finishes, and whoever sends the stream must call it too, since a generator closed before it ever ran
    (the client left before the first write) runs no `finally`.
    """

    first: list[bytes]
    rest: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    end: Callable[[], Awaitable[None]] = _nothing


@dataclass
class Failure:
    status: int
    raw: bytes
    verdict: Verdict


def _broken_verdict(ex: Exchange, e: StreamBroken, now: float) -> Verdict:
    body = orjson.dumps({"error": {"code": e.status, "message": e.message}})
    verdict = ex.classify(e.status, {}, body, now)
    if verdict.outcome is Outcome.CLIENT_ERROR:  # an error inside a 200 stream is never the request's fault
        return Verdict(Outcome.UPSTREAM_ERROR, reason=f"error inside the stream: {e.message[:80]}")
    return verdict


def _transport_verdict(e: BaseException) -> Verdict:
    if isinstance(e, asyncio.TimeoutError):
        return Verdict(Outcome.TIMEOUT, reason="upstream timed out")
    return Verdict(Outcome.UPSTREAM_ERROR, reason=f"connection error: {str(e)[:120] or type(e).__name__}")


async def attempt(client: Client, ex: Exchange, lease: Lease, *, stream: bool, timeout: float,
                  now: Callable[[], float], on_done: Callable[[Verdict, Usage | None], None]
                  ) -> Reply | StreamReply | Failure:
    dep = lease.deployment.cfg
    url, headers, data = ex.request(dep, stream)
    if log.isEnabledFor(logging.DEBUG):  # the URL never holds the key: it travels in a header
        log.debug("attempt key=%s model=%s url=%s stream=%s bytes=%d", dep.fingerprint, dep.model, url, stream, len(data))
    try:
        # A stream may run long; what must not happen is silence longer than the timeout.
        resp = await client.post(url, data, headers, timeout=timeout, stream=stream)
    except (asyncio.TimeoutError, UpstreamError) as e:
        verdict = _transport_verdict(e)
        await lease.release(verdict)
        return Failure(504 if verdict.outcome is Outcome.TIMEOUT else 502, b"", verdict)
    if not stream or resp.status != 200:
        return await _whole(ex, lease, resp, now, on_done)
    return await _first_events(ex, lease, resp, now, on_done)


async def _whole(ex: Exchange, lease: Lease, resp: Response, now: Callable[[], float],
                 on_done: Callable[[Verdict, Usage | None], None]) -> Reply | Failure:
    try:
        raw = await resp.read()
    except (asyncio.TimeoutError, UpstreamError) as e:
        verdict = _transport_verdict(e)
        await lease.release(verdict)
        return Failure(504 if verdict.outcome is Outcome.TIMEOUT else 502, b"", verdict)
    finally:
        resp.release()
    verdict = ex.classify(resp.status, resp.headers, raw, now())
    if not verdict.ok:
        await lease.release(verdict)
        return Failure(resp.status, raw, verdict)
    try:
        body, usage = ex.response(raw)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
        verdict = Verdict(Outcome.UPSTREAM_ERROR, reason=f"unreadable upstream answer ({type(e).__name__})")
        await lease.release(verdict)
        return Failure(502, b"", verdict)
    await lease.release(verdict, usage.total if usage else None)
    on_done(verdict, usage)
    return Reply(200, body)


async def _first_events(ex: Exchange, lease: Lease, resp: Response, now: Callable[[], float],
                        on_done: Callable[[Verdict, Usage | None], None]) -> StreamReply | Failure:
    decoder = SSEDecoder()
    st = ex.stream()
    first: list[bytes] = []
    ended = False
    try:
        while not first:
            chunk = await resp.readany()
            if not chunk:
                ended = True
                for payload in decoder.flush():
                    first += st.feed(payload)
                first += st.finish()
                break
            for payload in decoder.feed(chunk):
                first += st.feed(payload)
    except StreamBroken as e:
        resp.close()
        verdict = _broken_verdict(ex, e, now())
        await lease.release(verdict)
        return Failure(e.status if e.status >= 400 else 502, b"", verdict)
    except (asyncio.TimeoutError, UpstreamError, orjson.JSONDecodeError) as e:
        resp.close()
        verdict = _transport_verdict(e) if not isinstance(e, orjson.JSONDecodeError) else Verdict(
            Outcome.UPSTREAM_ERROR, reason="unreadable stream event")
        await lease.release(verdict)
        return Failure(502, b"", verdict)
    if ended and not first:
        resp.close()
        verdict = Verdict(Outcome.UPSTREAM_ERROR, reason="empty stream")
        await lease.release(verdict)
        return Failure(502, b"", verdict)
    ending = _Ending(lease, resp, st, on_done)
    return StreamReply(first, _rest(ex, resp, decoder, st, ended, now, ending), end=ending)


class _Ending:
    """Closes the upstream response, releases the lease and reports the request: exactly once."""

    def __init__(self, lease: Lease, resp: Response, st: StreamTranslator,
                 on_done: Callable[[Verdict, Usage | None], None]) -> None:
        self._lease, self._resp, self._st, self._on_done = lease, resp, st, on_done
        self._done = False

    async def __call__(self, verdict: Verdict = OK) -> None:
        if self._done:
            return
        self._done = True
        self._resp.release()  # back to the pool when the stream was read to its end, else closed
        usage = self._st.usage
        await self._lease.release(verdict, usage.total if usage else None)
        self._on_done(verdict, usage)


async def _rest(ex: Exchange, resp: Response, decoder: SSEDecoder, st: StreamTranslator,
                ended: bool, now: Callable[[], float], ending: _Ending) -> AsyncIterator[bytes]:
    verdict = OK
    try:
        if not ended:
            try:
                # Whatever one upstream read completes goes out in one write: the same bytes, fewer sends.
                async for chunk in resp.iter_any():
                    outs = [out for payload in decoder.feed(chunk) for out in st.feed(payload)]
                    if outs:
                        yield b"".join(outs)
                outs = [out for payload in decoder.flush() for out in st.feed(payload)]
                yield b"".join(outs + st.finish())
            except StreamBroken as e:
                verdict = _broken_verdict(ex, e, now())
                yield st.error(e.status if e.status >= 400 else 502, e.message)
            except (asyncio.TimeoutError, UpstreamError, orjson.JSONDecodeError) as e:
                verdict = _transport_verdict(e)
                yield st.error(504 if verdict.outcome is Outcome.TIMEOUT else 502,
                               f"upstream stream broke: {verdict.reason}")
    finally:
        await ending(verdict)
