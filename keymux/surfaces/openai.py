"""The OpenAI API surface: /v1/chat/completions and /v1/models."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from keymux.attempt import Reply
from keymux.errors import BadRequest, NotFound
from keymux.relay import Call
from keymux.surfaces.common import JSON, check_auth, gateway, read_json, request_id
from keymux.surfaces.streaming import send_stream

if TYPE_CHECKING:
    from keymux.app import Gateway


async def chat_completions(request: web.Request) -> web.StreamResponse:
    gw: Gateway = gateway(request)
    client = check_auth(request, gw.config.master_key)
    body, raw = await read_json(request, gw.config.max_request_bytes)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required: the name of a model group", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' is required: a non-empty list of messages", param="messages")
    group = gw.resolve(model)
    if group is None:
        raise NotFound(f"model '{model}' is not a model group here; available: {', '.join(gw.group_names())}")
    stream = bool(body.get("stream"))
    options = body.get("stream_options")
    include_usage = bool(stream and isinstance(options, dict) and options.get("include_usage"))
    call = Call(surface="openai", group=group, model=model, body=body, raw=raw, stream=stream,
                include_usage=include_usage, request_id=request_id(request), client=client,
                cache_control=request.headers.get("Cache-Control", ""))
    result = await gw.relay.handle(call)
    if isinstance(result, Reply):
        return web.Response(status=result.status, body=result.body, content_type=JSON, headers=result.headers)
    return await send_stream(request, result)


async def list_models(request: web.Request) -> web.Response:
    gw: Gateway = gateway(request)
    check_auth(request, gw.config.master_key)
    created = int(gw.started)
    data = [{"id": name, "object": "model", "created": created, "owned_by": "keymux"} for name in gw.group_names()]
    return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type=JSON)


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
        app.router.add_get(f"{prefix}/models", list_models)

