"""The Gemini native API surface: /v1beta/models/{model}:{method} and the model list.

`{model}` is a model group, or an upstream model id (then every deployment serving it is in the pool).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from keymux.errors import BadRequest, NotFound
from keymux.live import Snapshot
from keymux.request import Reply, Request
from keymux.surfaces.common import (
    CLIENT_API,
    JSON,
    add_error_shape,
    check_auth,
    gemini_error_response,
    read_json,
    request_id,
)
from keymux.surfaces.gemini_caches_batches import create_batch
from keymux.surfaces.gemini_named import generate_resources
from keymux.surfaces.gemini_operations import start as start_operation
from keymux.surfaces.openai import cache_controls
from keymux.surfaces.streaming import send_stream

_METHODS = {"generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"}
_UNMETERED = {"countTokens"}  # Google does not count these against the generate quota


async def model_method(request: web.Request) -> web.StreamResponse:
    api = request.app[CLIENT_API]
    snapshot = api.live.snapshot
    client = check_auth(request, snapshot.config.master_key)
    name, sep, method = request.match_info["tail"].rpartition(":")
    if method == "batchGenerateContent":  # creates a batch: a stateful resource (gemini_caches_batches.py)
        return await create_batch(request, name)
    if method == "predictLongRunning":  # starts a long-running operation (gemini_operations.py)
        return await start_operation(request, name)
    if not sep or method not in _METHODS:
        raise NotFound(f"unknown method '{method}'; supported: {', '.join(sorted(_METHODS))}")
    body, raw = await read_json(request, snapshot.config.max_request_bytes)
    if method in ("generateContent", "streamGenerateContent", "countTokens") and "contents" not in body \
            and "generateContentRequest" not in body:
        raise BadRequest("'contents' is required")
    group = snapshot.resolve(name)
    if group is None:
        raise NotFound(f"models/{name} is not a model group here; available: {', '.join(snapshot.names)}")
    stream = method == "streamGenerateContent"
    sse = request.query.get("alt") == "sse"
    body, controls = cache_controls(body)
    if controls is not None:
        raw = orjson.dumps(body)
    call = Request(surface="gemini", operation="generateContent" if stream else method, group=group, model=name,
                   body=body, raw=raw, stream=stream and sse, request_id=request_id(request),
                   metered=method not in _UNMETERED, client=client,
                   cache_control=request.headers.get("Cache-Control", ""), controls=controls,
                   resources=generate_resources(body, raw))
    result = await api.handle(call)
    if isinstance(result, Reply):
        body_out = result.body
        if stream and not sse and result.status == 200:
            body_out = b"[" + body_out + b"]"  # without alt=sse Google answers a JSON array of chunks
        return web.Response(status=result.status, body=body_out, content_type=JSON, headers=result.headers)
    return await send_stream(request, result)


def _model(name: str, snapshot: Snapshot) -> dict[str, Any]:
    upstream = sorted({d.model for d in snapshot.groups.get(name, ())})
    return {"name": f"models/{name}", "displayName": name, "version": "keymux",
            "description": f"keymux model group serving {', '.join(upstream)}",
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]}


async def list_models(request: web.Request) -> web.Response:
    snapshot = request.app[CLIENT_API].live.snapshot
    check_auth(request, snapshot.config.master_key)
    return web.Response(body=orjson.dumps({"models": [_model(n, snapshot) for n in snapshot.names]}),
                        content_type=JSON)


async def get_model(request: web.Request) -> web.Response:
    snapshot = request.app[CLIENT_API].live.snapshot
    check_auth(request, snapshot.config.master_key)
    name = request.match_info["name"]
    group = snapshot.resolve(name)
    if group is None:
        raise NotFound(f"models/{name} is not found")
    return web.Response(body=orjson.dumps(_model(group, snapshot)), content_type=JSON)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1beta/models", list_models)
    app.router.add_get("/v1beta/models/{name:[^:]+}", get_model)
    app.router.add_post("/v1beta/models/{tail:.+}", model_method)
    add_error_shape(app, "/v1beta", gemini_error_response)
    add_error_shape(app, "/upload", gemini_error_response)
