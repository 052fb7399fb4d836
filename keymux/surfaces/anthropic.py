"""The Anthropic Messages surface: POST /v1/messages, /v1/messages/count_tokens, and /v1/models in
Anthropic's shape when the client sends `anthropic-version` (the OpenAI surface asks `wants_models`).

The gateway key comes in `x-api-key` (what Anthropic SDKs and Claude Code send) or `Authorization: Bearer`.
keymux's own errors render as `{"type": "error", "error": {"type", "message"}}`; 503 is Anthropic's 529.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from aiohttp import web

from keymux.errors import BadRequest, KeymuxError, NotFound
from keymux.request import Reply, Request
from keymux.surfaces.common import (
    CLIENT_API,
    JSON,
    add_error_shape,
    check_auth,
    read_json,
    request_id,
    retry_headers,
    status_of,
)
from keymux.surfaces.streaming import send_stream
from keymux.translate.clients.anthropic import estimate_tokens
from keymux.translate.error_bodies import anthropic_error

OVERLOADED = 529  # Anthropic's status for "the service is overloaded": SDKs retry it


def anthropic_error_response(err: KeymuxError) -> web.Response:
    status = status_of(err)
    kind = "overloaded_error" if status == 503 else None
    if status == 503:
        status = OVERLOADED
    return web.Response(status=status, body=anthropic_error(status, err.message, kind=kind), content_type=JSON,
                        headers=retry_headers(err))


async def _parse(request: web.Request) -> tuple[Request, str]:
    api = request.app[CLIENT_API]
    snapshot = api.live.snapshot
    client = check_auth(request, snapshot.config.master_key)
    body, raw = await read_json(request, snapshot.config.max_request_bytes)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required (the name of a model group or a Claude model id mapped to one)")
    group = snapshot.resolve(model)
    if group is None:
        raise NotFound(f"model: '{model}' is not a model group here; available: {', '.join(snapshot.names)}")
    call = Request(surface="anthropic", operation="messages", group=group, model=model, body=body, raw=raw,
                   stream=body.get("stream") is True, request_id=request_id(request), client=client,
                   cache_control=request.headers.get("Cache-Control", ""))
    return call, model


async def messages(request: web.Request) -> web.StreamResponse:
    call, _ = await _parse(request)
    if not isinstance(call.body.get("messages"), list) or not call.body["messages"]:
        raise BadRequest("messages: Field required (a non-empty array of messages)")
    result = await request.app[CLIENT_API].handle(call)
    if isinstance(result, Reply):
        return web.Response(status=result.status, body=result.body, content_type=JSON, headers=result.headers)
    return await send_stream(request, result)


async def count_tokens(request: web.Request) -> web.Response:
    """An estimate (keymux/translate/estimate.py rules), answered here: no key is spent on counting."""
    call, _ = await _parse(request)
    return web.Response(body=orjson.dumps({"input_tokens": estimate_tokens(call.body)}), content_type=JSON)


def wants_models(request: web.Request) -> bool:
    return "anthropic-version" in request.headers


async def list_models(request: web.Request) -> web.Response:
    api = request.app[CLIENT_API]
    snapshot = api.live.snapshot
    check_auth(request, snapshot.config.master_key)
    created = datetime.fromtimestamp(api.started, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = [{"type": "model", "id": name, "display_name": name, "created_at": created} for name in snapshot.names]
    doc = {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
           "last_id": data[-1]["id"] if data else None}
    return web.Response(body=orjson.dumps(doc), content_type=JSON)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    add_error_shape(app, "/v1/messages", anthropic_error_response)
