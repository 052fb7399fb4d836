"""Wire faults: the broken answers real upstreams give, on demand, for both emulators.

    emu.wire.inject("k1", "cut200")      # the next request with key k1 (None: any key), once
    emu.wire.always("k1", "hang")        # every request with k1 until always("k1", None)
    header  x-emulator-fault: reset      # this request only (a test calling the emulator directly)

Modes (each answers a generate / chat request in the emulator's own wire format):
  key5xx         500 whose message quotes the key, as Google's "Consumer 'api_key:...'" messages do
  key_midstream  a stream: one good event, then an error event quoting the key, then the connection closes
                 (a non-streaming request gets key5xx)
  cut200         200 with the answer cut short: half the JSON bytes (well framed), or a stream that ends
                 cleanly before its last event (no finishReason / finish_reason, no `[` closed, no [DONE])
  empty200       200 with a zero-length body
  empty_stream   a well-formed answer with nothing in it: `[]`, no SSE events, or only `data: [DONE]`
                 (a non-streaming request gets `{}`)
  hang           the request is read and never answered (until the client gives up or the emulator closes)
  reset          the connection is reset (TCP RST) before any byte of an answer
  huge           a well-formed 200 whose text is `huge_bytes` long (a stream: many events adding up to it)

Requests a fault does not apply to (model listing, countTokens, embeddings, a body that is not a JSON object)
are served normally and do not consume a fault.
"""

from __future__ import annotations

import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from aiohttp import web

from keymux.emulator import gemini_wire as W
from keymux.emulator import openai_wire as O
from keymux.emulator.gemini_answer import RequestError, build_answer, full_response, stream_responses

WIRE_FAULTS = ("key5xx", "key_midstream", "cut200", "empty200", "empty_stream", "hang", "reset", "huge")
HEADER = "x-emulator-fault"
HUGE_BYTES = 8 * 1024 * 1024
HUGE_PIECE = 64 * 1024  # text per stream event of a "huge" stream
GEMINI_METHODS = ("generateContent", "streamGenerateContent")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EmulatorBase(Protocol):
    """What a fault needs of the emulator it is installed in (keymux/emulator/base.py)."""

    wire: WireFaults

    def _log(self, key: str, model: str, status: int, kind: str, stream: bool, endpoint: str) -> None: ...

    async def _hang(self) -> None: ...


def _check(mode: str) -> str:
    if mode not in WIRE_FAULTS:
        raise ValueError(f"unknown wire fault {mode!r}; one of {', '.join(WIRE_FAULTS)}")
    return mode


class WireFaults:
    """Which fault the next request gets: its header, then one-shot faults (key first), then standing ones."""

    def __init__(self) -> None:
        self.huge_bytes = HUGE_BYTES
        self._once: dict[str | None, deque[str]] = {}
        self._always: dict[str | None, str] = {}

    def inject(self, key: str | None, *modes: str) -> None:
        self._once.setdefault(key, deque()).extend(_check(m) for m in modes)

    def always(self, key: str | None, mode: str | None) -> None:
        if mode is None:
            self._always.pop(key, None)
        else:
            self._always[key] = _check(mode)

    def clear(self) -> None:
        self._once.clear()
        self._always.clear()

    def pending(self) -> int:
        return sum(len(q) for q in self._once.values())

    def take(self, key: str, header: str | None) -> str | None:
        if header:
            return header if header in WIRE_FAULTS else None
        for k in (key, None):
            q = self._once.get(k)
            if q:
                mode = q.popleft()
                if not q:
                    del self._once[k]
                return mode
        return self._always.get(key) or self._always.get(None)


def install(app: web.Application, emu: EmulatorBase) -> None:
    """Put the wire-fault middleware in front of the emulator's own handlers."""

    @web.middleware
    async def wire_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        call = await _call_of(request)
        if call is None:
            return await handler(request)
        mode = emu.wire.take(call.key, request.headers.get(HEADER))
        if mode is None:
            return await handler(request)
        emu._log(call.key, call.model, _status(mode, call), f"wire_{mode}", call.stream, call.endpoint)
        return await _answer(request, emu, call, mode)

    app.middlewares.append(wire_faults)


def _status(mode: str, call: _Call) -> int:
    """The HTTP status the call log records (0: nothing was answered)."""
    if mode in ("hang", "reset"):
        return 0
    return 500 if mode == "key5xx" or (mode == "key_midstream" and not call.stream) else 200


class _Call:
    def __init__(self, dialect: str, key: str, model: str, stream: bool, sse: bool, endpoint: str,
                 body: dict[str, Any]) -> None:
        self.dialect, self.key, self.model, self.stream, self.sse = dialect, key, model, stream, sse
        self.endpoint, self.body = endpoint, body


async def _call_of(request: web.Request) -> _Call | None:
    if request.method != "POST":
        return None
    path = request.path
    if path == "/v1/chat/completions":
        dialect = "openai"
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip() if scheme.lower() == "bearer" else ""
    elif path.startswith(("/v1beta/models/", "/v1/models/")) and path.endswith(GEMINI_METHODS):
        dialect = "gemini"
        key = request.headers.get("x-goog-api-key") or request.query.get("key") or ""
    else:
        return None
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    if dialect == "openai":
        model = body.get("model")
        return _Call(dialect, key, model if isinstance(model, str) else "", bool(body.get("stream")), True, "chat.completions", body)
    model, _, method = path.rpartition("/")[2].rpartition(":")
    stream = method == "streamGenerateContent"
    return _Call(dialect, key, model, stream, stream and request.query.get("alt") == "sse", method, body)


# ---------------------------------------------------------------- answers


def _key_error(call: _Call) -> dict[str, Any]:
    text = f"Internal error encountered for Consumer 'api_key:{call.key}'."
    if call.dialect == "gemini":
        return W.status_body(500, "INTERNAL", text)
    return O.error_body(f"The server had an error processing your request (api_key:{call.key}).", "server_error")


def _events(call: _Call, huge: int | None = None) -> tuple[Any, list[Any]]:
    """(non-streaming answer, stream events) in the dialect's format; `huge`: a text of that many bytes."""
    if call.dialect == "gemini":
        answer = build_answer(call.body, call.model)
        whole, chunks = full_response(answer, call.model, "emu-fault"), stream_responses(answer, call.model, "emu-fault")
        if huge is not None:  # one piece repeated: the emulator's own memory stays small under a slow reader
            if not call.stream:
                whole["candidates"][0]["content"]["parts"] = [{"text": "x" * huge}]
            piece = _with_gemini_text(chunks[0], "x" * HUGE_PIECE)
            chunks = [piece] * max(1, huge // HUGE_PIECE) + chunks[-1:]
        return whole, chunks
    chat = O.ChatAnswer(call.body)
    whole = chat.completion_obj("chatcmpl-emufault", 0, call.model, "call_emufault")
    chunks = chat.chunks("chatcmpl-emufault", 0, call.model, "call_emufault", False)
    if huge is not None:
        if not call.stream:
            whole["choices"][0]["message"]["content"] = "x" * huge
        piece = orjson.loads(orjson.dumps(chunks[1]))
        piece["choices"][0]["delta"] = {"content": "x" * HUGE_PIECE}
        chunks = chunks[:1] + [piece] * max(1, huge // HUGE_PIECE) + chunks[-1:]
    return whole, chunks


def _with_gemini_text(chunk: dict[str, Any], text: str) -> dict[str, Any]:
    out = orjson.loads(orjson.dumps(chunk))
    out["candidates"][0]["content"]["parts"] = [{"text": text}]
    out["candidates"][0].pop("finishReason", None)  # only the last event finishes
    return out


def _cut(events: list[Any]) -> list[Any]:
    """All but the last event; a one-event Gemini stream keeps its event without the finishReason."""
    if len(events) > 1:
        return events[:-1]
    first = orjson.loads(orjson.dumps(events[0]))
    first["candidates"][0].pop("finishReason", None)
    return [first]


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(obj), content_type="application/json")


async def _stream(request: web.Request, call: _Call, events: list[Any], *, done: bool, close: bool) -> web.StreamResponse:
    """Write `events` in the call's stream framing; `done`: end it as a complete stream would."""
    sse = call.sse
    ctype = "text/event-stream" if sse else "application/json"
    resp = web.StreamResponse(status=200, headers={"Content-Type": ctype})
    if close:
        resp.force_close()
    await resp.prepare(request)
    if sse:
        for e in events:
            await resp.write(b"data: " + orjson.dumps(e) + b"\n\n")
        if done and call.dialect == "openai":
            await resp.write(b"data: [DONE]\n\n")
    else:
        for i, e in enumerate(events):
            await resp.write((b"[" if i == 0 else b",\r\n") + orjson.dumps(e))
        if done:
            await resp.write(b"]" if events else b"[]")
    await resp.write_eof()
    return resp


def _reset(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:  # linger 0: close() sends RST instead of FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _answer(request: web.Request, emu: EmulatorBase, call: _Call, mode: str) -> web.StreamResponse:
    if mode == "hang":
        await emu._hang()
        return _json({}, 504)
    if mode == "reset":
        _reset(request)
        await emu._hang()  # the handler is cancelled when aiohttp sees the connection gone
        return _json({}, 502)
    if mode == "key5xx" or (mode == "key_midstream" and not call.stream):
        return _json(_key_error(call), 500)
    if mode == "empty200":
        return web.Response(status=200, body=b"", content_type="text/event-stream" if call.sse else "application/json")
    try:
        whole, events = _events(call, emu.wire.huge_bytes if mode == "huge" else None)
    except (RequestError, KeyError, IndexError, TypeError, AttributeError, ValueError):
        return _json(_key_error(call) if mode.startswith("key") else {}, 500 if mode.startswith("key") else 200)
    if mode == "empty_stream":
        return await _stream(request, call, [], done=True, close=False) if call.stream else _json({})
    if mode == "key_midstream":
        return await _stream(request, call, events[:1] + [_key_error(call)], done=False, close=True)
    if mode == "cut200":
        if not call.stream:
            raw = orjson.dumps(whole)
            return web.Response(status=200, body=raw[: len(raw) // 2], content_type="application/json")
        return await _stream(request, call, _cut(events), done=False, close=False)
    # huge
    if not call.stream:
        return _json(whole)
    return await _stream(request, call, events, done=True, close=False)
