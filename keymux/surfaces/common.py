"""What every client surface needs: its narrow context, reading a JSON body safely, gateway auth, error shapes.

Each surface renders keymux's own errors (keymux/errors.py) in its API's shape; it registers that renderer
for its path prefixes (`ERROR_SHAPES`), and the app's error middleware picks by path.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from keymux.clients.registry import Registry
from keymux.errors import (
    BadRequest,
    Forbidden,
    KeymuxError,
    NoCapacity,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from keymux.exchange.shapes import gemini_error, openai_error
from keymux.ids import new_id
from keymux.live import Live
from keymux.request import Reply, Request, StreamReply

JSON = "application/json"
MAX_JSON_DEPTH = 64  # deeper nesting is refused with a 400 (JSON schemas in real tools stay far below)
_REQUEST_ID = web.RequestKey("keymux_request_id", str)

Renderer = Callable[[KeymuxError], web.Response]
ERROR_SHAPES = web.AppKey("keymux.error_shapes", list)  # [(path prefix, renderer)], longest prefix first


@dataclass(frozen=True)
class ClientAPI:
    """What a client API surface needs: the live config, the pipeline's entry, when keymux started."""

    live: Live
    handle: Callable[[Request], Awaitable[Reply | StreamReply]]
    started: float

    @property
    def max_request_bytes(self) -> int:
        return self.live.snapshot.config.max_request_bytes


CLIENT_API = web.AppKey("keymux.client_api", ClientAPI)
GATEWAY_KEYS = web.AppKey("keymux.gateway_keys", Registry)  # per-client keys (keymux/clients)


def add_error_shape(app: web.Application, prefix: str, render: Renderer) -> None:
    shapes = app.setdefault(ERROR_SHAPES, [])
    shapes.append((prefix, render))
    shapes.sort(key=lambda pr: -len(pr[0]))


def render_error(request: web.Request, err: KeymuxError) -> web.Response:
    for prefix, render in request.app.get(ERROR_SHAPES, ()):
        if request.path.startswith(prefix):
            return render(err)
    return openai_error_response(err)


def request_id(request: web.Request) -> str:
    """The client's x-request-id, else a new id; the same one for the rest of this request."""
    state = request._state  # a plain dict: web.Request.get is Mapping.get, which raises and catches KeyError
    rid = state.get(_REQUEST_ID)
    if rid is None:
        rid = state[_REQUEST_ID] = request.headers.get("x-request-id") or new_id()
    return rid


def client_key(request: web.Request) -> str | None:
    """The gateway key in any of the places clients of the three APIs send it."""
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else auth.strip()
    for header in ("x-api-key", "x-goog-api-key"):
        found = request.headers.get(header)
        if found:
            return found.strip()
    return request.query.get("key")


def check_auth(request: web.Request, master_key: str | None) -> str:
    """Raise Unauthorized unless the request carries the master key or a usable gateway key; return who the
    client is: "master", "open" (no master key configured), or the gateway key's name."""
    if master_key is None:
        return _gateway_client(request, client_key(request)) or "open"
    given = _given(request)
    # A header with odd bytes arrives with surrogates in it: compare it as bytes, never raise.
    if hmac.compare_digest(given.encode("utf-8", "surrogatepass"), master_key.encode()):
        return "master"
    name = _gateway_client(request, given)
    if name is None:
        raise Unauthorized("invalid gateway key")
    return name


def check_master(request: web.Request, master_key: str, *, read: bool) -> None:
    """The admin API, /metrics and /health: the master key, or (`read`) a gateway key with admin scope
    "read". Any other gateway key is refused: it can never reach another key's data."""
    given = _given(request)
    if hmac.compare_digest(given.encode("utf-8", "surrogatepass"), master_key.encode()):
        return
    keys = request.app.get(GATEWAY_KEYS)
    client = keys.authenticate(given, keys.clock.time()) if keys else None
    if client is None:
        raise Unauthorized("invalid gateway key")
    if client.admin == "read" and read:
        return
    if client.admin == "read":
        raise Forbidden(f"gateway key '{client.name}' is read-only: changes need the master key")
    raise Forbidden(f"gateway key '{client.name}' may not use {request.path}: that needs the master key")


def _given(request: web.Request) -> str:
    given = client_key(request)
    if given is None:
        raise Unauthorized("missing gateway key: send it as 'Authorization: Bearer <key>', 'x-api-key', "
                           "'x-goog-api-key' or '?key='")
    return given


def _gateway_client(request: web.Request, given: str | None) -> str | None:
    keys = request.app.get(GATEWAY_KEYS)
    if keys is None or not keys.by_name or given is None:  # no gateway keys: no hash of every open request's key
        return None
    client = keys.authenticate(given, keys.clock.time())
    return None if client is None else client.name


async def read_json(request: web.Request, max_bytes: int) -> tuple[dict[str, Any], bytes]:
    given = request.headers.get("content-type")
    if given is not None and given != JSON:  # the exact common value needs no parsing
        ctype = request.content_type
        if not (ctype == JSON or ctype.endswith("+json") or ctype == "text/plain"):
            raise UnsupportedMediaType(f"expected Content-Type: application/json, got {ctype}")
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"request body is {length} bytes; the limit is {max_bytes}")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"request body is over the limit of {max_bytes} bytes") from None
    if not raw:
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(body).__name__}")
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH and _depth(body) > MAX_JSON_DEPTH:
        raise BadRequest(f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    return body, raw


def _depth(doc: Any) -> int:
    """How deeply objects and arrays nest (iteratively: a hostile body cannot exhaust the stack)."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(doc, 1)]
    while todo:
        node, depth = todo.pop()
        if depth > deepest:
            deepest = depth
            if deepest > MAX_JSON_DEPTH:
                return deepest
        children = node.values() if isinstance(node, dict) else node
        todo.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def retry_headers(err: KeymuxError) -> dict[str, str]:
    if isinstance(err, NoCapacity) and err.retry_after is not None:
        return {"retry-after": str(max(1, math.ceil(err.retry_after))),
                "retry-after-ms": str(max(1, math.ceil(err.retry_after * 1000)))}
    retry = getattr(err, "retry_after", None)
    return {"retry-after": str(max(1, math.ceil(retry)))} if retry else {}


def status_of(err: KeymuxError) -> int:
    if isinstance(err, NoCapacity) and err.retry_after is None:
        return 503  # nothing will free up by itself (e.g. every key disabled): not a rate limit
    return err.status


def openai_error_response(err: KeymuxError) -> web.Response:
    status = status_of(err)
    body = openai_error(status, err.message, kind=err.kind if status == err.status else "api_error",
                        param=getattr(err, "param", None))
    return web.Response(status=status, body=body, content_type=JSON, headers=retry_headers(err))


def gemini_error_response(err: KeymuxError) -> web.Response:
    status = status_of(err)
    body = gemini_error(status, err.message, google_status=err.google_status if status == err.status else None)
    return web.Response(status=status, body=body, content_type=JSON, headers=retry_headers(err))
