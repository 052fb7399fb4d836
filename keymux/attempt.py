"""One upstream attempt on one leased key: send, classify, and (for streams) hold the answer
back until its first event has been read, so failover stays possible until then.

Every upstream error (an error body, an error inside a 200, an error event in a stream) passes `Scrub`
here, once, before anything reads it: an upstream error can quote the key ("Consumer 'api_key:...' has
been suspended"), and what it says reaches the client, the log, the ledger and metrics only through what
this module hands on. Answers are not scrubbed: a short placeholder key ("sk-1234") could match their text.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

import orjson

from keymux.exchange import Exchange, StreamBroken, StreamTranslator
from keymux.pool import Lease
from keymux.providers import vertex_auth
from keymux.providers.base import OK, Outcome, Verdict
from keymux.request import Reply, StreamReply, Trace
from keymux.translate.sse import SSEDecoder
from keymux.transport import Transport, UpstreamAnswer, UpstreamError

log = logging.getLogger("keymux.relay")
CANCELLED = Verdict(Outcome.CLIENT_ERROR, reason="the client went away")  # frees the key, blames nobody
INCOMPLETE = "the upstream stream ended before its last event"
_UNREADABLE = (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, IndexError)


@dataclass
class Failure:
    status: int
    raw: bytes  # scrubbed
    verdict: Verdict


class Scrub:
    """Replaces the attempt's key with its fingerprint in upstream error text.

    Keys shorter than MIN_SECRET are placeholders (a local server's "none"), not secrets: replacing them
    would garble the message and protect nothing."""

    MIN_SECRET = 8
    __slots__ = ("_key", "_fp", "_text", "_fp_text")

    def __init__(self, api_key: str, fingerprint: str) -> None:
        self._text = api_key if len(api_key) >= self.MIN_SECRET else ""
        self._fp_text = fingerprint
        self._key = self._text.encode()
        self._fp = fingerprint.encode()

    def __call__(self, data: bytes) -> bytes:
        key = self._key
        return data.replace(key, self._fp) if key and key in data else data

    def text(self, message: str) -> str:
        key = self._text
        return message.replace(key, self._fp_text) if key and key in message else message

    def verdict(self, verdict: Verdict) -> Verdict:
        reason = self.text(verdict.reason)
        return verdict if reason is verdict.reason else replace(verdict, reason=reason)

    def broken(self, e: StreamBroken) -> StreamBroken:
        message = self.text(e.message)
        return e if message is e.message else StreamBroken(e.status, message)


@functools.lru_cache(maxsize=4096)
def _scrubber(api_key: str, fingerprint: str) -> Scrub:
    return Scrub(api_key, fingerprint)  # one per key, not one per attempt


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


def _failure_status(verdict: Verdict) -> int:
    return 504 if verdict.outcome is Outcome.TIMEOUT else 502


async def attempt(transport: Transport, ex: Exchange, lease: Lease, *, stream: bool, timeout: float,
                  now: Callable[[], float], trace: Trace) -> Reply | StreamReply | Failure:
    dep = lease.deployment.cfg
    credentials = None
    if dep.provider == "vertex_ai":  # the key is a service account: the call carries a token minted from it
        credentials = dep.api_key
        try:
            dep = replace(dep, api_key=await vertex_auth.ACCOUNTS.token(credentials, transport, now()))
        except vertex_auth.TokenError as e:
            return await _failed(lease, e.verdict)
    url, headers, data = ex.request(dep, stream)
    if log.isEnabledFor(logging.DEBUG):  # the URL never holds the key: it travels in a header
        log.debug("attempt key=%s model=%s url=%s stream=%s bytes=%d", dep.fingerprint, dep.model, url, stream, len(data))
    scrub = _scrubber(dep.api_key, dep.fingerprint)
    try:
        # A stream may run long; what must not happen is silence longer than the timeout.
        method = getattr(ex, "http_method", "POST")  # resource exchanges GET and DELETE too
        resp = await (transport.post(url, data, headers, timeout=timeout, stream=stream) if method == "POST"
                      else transport.post(url, data, headers, timeout=timeout, stream=stream, method=method))
    except (TimeoutError, UpstreamError) as e:
        return await _failed(lease, _transport_verdict(e))
    if credentials is not None and resp.status == 401:
        vertex_auth.ACCOUNTS.forget(credentials, dep.api_key)  # refused: the next call mints a new token
    if not stream or resp.status != 200:
        return await _whole(ex, lease, resp, scrub, now, trace)
    return await _first_events(ex, lease, resp, scrub, now, trace)


async def _failed(lease: Lease, verdict: Verdict, status: int | None = None) -> Failure:
    await lease.release(verdict)
    return Failure(status or _failure_status(verdict), b"", verdict)


async def _whole(ex: Exchange, lease: Lease, resp: UpstreamAnswer, scrub: Scrub, now: Callable[[], float],
                 trace: Trace) -> Reply | Failure:
    try:
        raw = await resp.read()
    except (TimeoutError, UpstreamError) as e:
        return await _failed(lease, _transport_verdict(e))
    finally:
        resp.release()
    if resp.status != 200:
        raw = scrub(raw)
    verdict = ex.classify(resp.status, resp.headers, raw, now())
    if not verdict.ok:
        if resp.status == 200:  # an error inside a 200: its text is scrubbed as any error's
            raw, verdict = scrub(raw), scrub.verdict(verdict)
        await lease.release(verdict)
        return Failure(resp.status, raw, verdict)
    if not raw.strip():  # a 200 with nothing in it is the upstream's failure, not an answer
        return await _failed(lease, Verdict(Outcome.UPSTREAM_ERROR, reason="empty upstream answer"))
    if not ex.answered(raw):
        return await _failed(lease, Verdict(Outcome.UPSTREAM_ERROR, reason="upstream answer holds no answer"))
    try:
        body, usage = ex.response(raw)
    except _UNREADABLE as e:  # a body cut short, or not the API's shape
        return await _failed(lease, Verdict(Outcome.UPSTREAM_ERROR,
                                            reason=f"unreadable upstream answer ({type(e).__name__})"))
    await lease.release(verdict, usage.total if usage else None)
    d = lease.deployment
    trace.attempts.append((d.fingerprint, verdict.outcome.value))
    trace.usage = usage
    trace.answered_by(d.fingerprint, d.model)
    trace.finish(200, "ok")
    return Reply(200, body)


async def _first_events(ex: Exchange, lease: Lease, resp: UpstreamAnswer, scrub: Scrub,
                        now: Callable[[], float], trace: Trace) -> StreamReply | Failure:
    decoder = SSEDecoder()
    st = ex.stream()
    first: list[bytes] = []
    ended = False
    events = 0
    try:
        while not first:
            chunk = await resp.readany()
            if not chunk:
                ended = True
                for payload in decoder.flush():
                    events += 1
                    first += st.feed(payload)
                if st.complete:
                    first += st.finish()
                break
            for payload in decoder.feed(chunk):
                events += 1
                first += st.feed(payload)
    except StreamBroken as broken:
        resp.close()
        e = scrub.broken(broken)
        verdict = _broken_verdict(ex, e, now())
        return await _failed(lease, verdict, e.status if e.status >= 400 else 502)
    except (TimeoutError, UpstreamError) as e:
        resp.close()
        return await _failed(lease, _transport_verdict(e))
    except _UNREADABLE:
        resp.close()
        return await _failed(lease, Verdict(Outcome.UPSTREAM_ERROR, reason="unreadable stream event"))
    if ended and not st.complete:  # nothing sent yet: another key may still answer
        resp.close()
        return await _failed(lease, Verdict(Outcome.UPSTREAM_ERROR,
                                            reason=INCOMPLETE if events else "empty stream"))
    reply = StreamReply(first, _empty())
    ending = _Ending(lease, resp, st, trace, reply)
    reply.rest, reply.end = _rest(ex, resp, decoder, st, scrub, ended, now, ending), ending
    return reply


class _Ending:
    """Closes the upstream response, releases the lease and finishes the trace: exactly once."""

    def __init__(self, lease: Lease, resp: UpstreamAnswer, st: StreamTranslator, trace: Trace,
                 reply: StreamReply) -> None:
        self._lease, self._resp, self._st, self._trace, self._reply = lease, resp, st, trace, reply
        self._done = False

    async def __call__(self, ok: bool | None = None, verdict: Verdict = OK) -> None:
        """`ok=False`: the client went away before the end (the upstream call is abandoned, nobody blamed)."""
        if self._done:
            return
        self._done = True
        if ok is False:
            verdict = CANCELLED
            self._resp.close()
        else:
            self._resp.release()  # back to the pool when the stream was read to its end, else closed
        usage = self._st.usage
        await self._lease.release(verdict, usage.total if usage else None)
        d, trace = self._lease.deployment, self._trace
        trace.attempts.append((d.fingerprint, verdict.outcome.value))
        trace.usage = usage
        trace.answered_by(d.fingerprint, d.model)
        self._reply.ended_ok = verdict.ok
        # The reply holds this ending (reply.end) and this ending the reply: let go, so that refcounting frees
        # the stream's objects now, not the garbage collector later (a collection per few hundred streams).
        self._reply = self._st = None  # type: ignore[assignment]
        if verdict is CANCELLED:
            trace.finish(499, "cancelled", verdict.reason)
        elif verdict.ok:
            trace.finish(200, "ok")
        else:
            trace.finish(200, "broken", verdict.reason)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover - makes this an async generator


async def _rest(ex: Exchange, resp: UpstreamAnswer, decoder: SSEDecoder, st: StreamTranslator, scrub: Scrub,
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
                if st.complete:
                    yield b"".join(outs + st.finish())
                else:  # the upstream stopped before its last event: the client must not take it for a whole answer
                    verdict = Verdict(Outcome.UPSTREAM_ERROR, reason=INCOMPLETE)
                    yield b"".join(outs) + st.error(502, f"upstream stream broke: {INCOMPLETE}")
            except StreamBroken as broken:
                e = scrub.broken(broken)
                verdict = _broken_verdict(ex, e, now())
                yield st.error(e.status if e.status >= 400 else 502, e.message)
            except (TimeoutError, UpstreamError) as e:
                verdict = _transport_verdict(e)
                yield st.error(_failure_status(verdict), f"upstream stream broke: {verdict.reason}")
            except _UNREADABLE:
                verdict = Verdict(Outcome.UPSTREAM_ERROR, reason="unreadable stream event")
                yield st.error(502, "upstream stream broke: unreadable stream event")
    finally:
        await ending(verdict=verdict)
