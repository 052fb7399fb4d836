"""The Gemini native API surface: /v1beta/models/{model}:{method} and the model list.

`{model}` is a model group, or an upstream model id (then every deployment serving it is in the pool).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from keymux.attempt import Reply
from keymux.errors import BadRequest, NotFound
from keymux.relay import Call
from keymux.surfaces.common import JSON, check_auth, gateway, read_json, request_id
from keymux.surfaces.streaming import send_stream

if TYPE_CHECKING:
    from keymux.app import Gateway

_METHODS = {"generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"}
_UNMETERED = {"countTokens"}  # Google does not count these against the generate quota


async def model_method(request: web.Request) -> web.StreamResponse:
    gw: Gateway = gateway(request)
    client = check_auth(request, gw.config.master_key)
    name, sep, method = request.match_info["tail"].rpartition(":")
    if not sep or method not in _METHODS:
        raise NotFound(f"unknown method '{method}'; supported: {', '.join(sorted(_METHODS))}")
    body, raw = await read_json(request, gw.config.max_request_bytes)
    if method in ("generateContent", "streamGenerateContent", "countTokens") and "contents" not in body \
            and "generateContentRequest" not in body:
        raise BadRequest("'contents' is required")
    group = gw.resolve(name)
    if group is None:
        raise NotFound(f"models/{name} is not a model group here; available: {', '.join(gw.group_names())}")
    stream = method == "streamGenerateContent"
    sse = request.query.get("alt") == "sse"
    call = Call(surface="gemini", group=group, model=name, body=body, raw=raw, stream=stream and sse,
                method="generateContent" if stream else method, request_id=request_id(request),
                metered=method not in _UNMETERED, client=client,
                cache_control=request.headers.get("Cache-Control", ""))
    result = await gw.relay.handle(call)
    if isinstance(result, Reply):
        body_out = result.body
        if stream and not sse and result.status == 200:
            body_out = b"[" + body_out + b"]"  # without alt=sse Google answers a JSON array of chunks
        return web.Response(status=result.status, body=body_out, content_type=JSON, headers=result.headers)
    return await send_stream(request, result)


def _model(name: str, gw: Gateway) -> dict[str, Any]:
    upstream = sorted({d.model for d in gw.pool.groups.get(name, ())})
    return {"name": f"models/{name}", "displayName": name, "version": "keymux",
            "description": f"keymux model group serving {', '.join(upstream)}",
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]}


async def list_models(request: web.Request) -> web.Response:
    gw: Gateway = gateway(request)
    check_auth(request, gw.config.master_key)
    return web.Response(body=orjson.dumps({"models": [_model(n, gw) for n in gw.group_names()]}), content_type=JSON)


async def get_model(request: web.Request) -> web.Response:
    gw: Gateway = gateway(request)
    check_auth(request, gw.config.master_key)
    name = request.match_info["name"]
    group = gw.resolve(name)
    if group is None:
        raise NotFound(f"models/{name} is not found")
    return web.Response(body=orjson.dumps(_model(group, gw)), content_type=JSON)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1beta/models", list_models)
    app.router.add_get("/v1beta/models/{name:[^:]+}", get_model)
    app.router.add_post("/v1beta/models/{tail:.+}", model_method)
