"""The OpenAI API surface: /v1/chat/completions (also without the /v1 prefix); models: openai_models.py."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from keymux.errors import BadRequest, NotFound
from keymux.request import Reply, Request
from keymux.surfaces.common import (
    CLIENT_API,
    JSON,
    add_error_shape,
    check_auth,
    openai_error_response,
    read_json,
    request_id,
)
from keymux.surfaces.openai_files import file_refs
from keymux.surfaces.streaming import send_stream


def cache_controls(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """LiteLLM's per-request `cache: {...}` field comes out of the body (upstream APIs reject it)."""
    if "cache" not in body:
        return body, None
    controls = body["cache"]
    return {k: v for k, v in body.items() if k != "cache"}, controls if isinstance(controls, dict) else {}


async def chat_completions(request: web.Request) -> web.StreamResponse:
    api = request.app[CLIENT_API]
    snapshot = api.live.snapshot
    client = check_auth(request, snapshot.config.master_key)
    body, raw = await read_json(request, snapshot.config.max_request_bytes)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required: the name of a model group", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' is required: a non-empty list of messages", param="messages")
    group = snapshot.resolve(model)
    if group is None:
        raise NotFound(f"model '{model}' is not a model group here; available: {', '.join(snapshot.names)}")
    stream = bool(body.get("stream"))
    options = body.get("stream_options")
    include_usage = bool(stream and isinstance(options, dict) and options.get("include_usage"))
    controls = None
    if "cache" in body:
        body, controls = cache_controls(body)
        raw = orjson.dumps(body)
    raw, files = await file_refs(request, group, body, raw)
    call = Request(surface="openai", operation="chat", group=group, model=model, body=body, raw=raw, stream=stream,
                   include_usage=include_usage, request_id=request_id(request), client=client,
                   cache_control=request.headers.get("Cache-Control", ""), controls=controls, resources=files)
    result = await api.handle(call)
    if isinstance(result, Reply):
        return web.Response(status=result.status, body=result.body, content_type=JSON, headers=result.headers)
    return await send_stream(request, result)


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
    add_error_shape(app, "/", openai_error_response)
