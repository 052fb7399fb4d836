"""Gemini's Interactions API: POST /v1beta/interactions, GET/DELETE /v1beta/interactions/{id},
POST /v1beta/interactions/{id}/cancel.

A first turn is admitted like any request of its model group (quota, rotation); a follow-up
(`previous_interaction_id`) and every call on an interaction id go to the key that created it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from keymux.errors import BadRequest, NotFound
from keymux.live import Snapshot
from keymux.request import Reply, Request
from keymux.surfaces.common import CLIENT_API, JSON, check_auth, read_json, request_id
from keymux.surfaces.gemini_named import named_resources
from keymux.surfaces.streaming import send_stream


def _reply(request: web.Request, result: Reply) -> web.Response:
    return web.Response(status=result.status, body=result.body, content_type=JSON, headers=result.headers)


def _group(snapshot: Snapshot, body: dict[str, Any]) -> tuple[str, str]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        if "agent" in body:
            raise BadRequest("agent interactions are not served here yet; name a 'model'")
        raise BadRequest("'model' is required")
    name = model.removeprefix("models/")
    group = snapshot.resolve(name)
    if group is None:
        raise NotFound(f"models/{name} is not a model group here; available: {', '.join(snapshot.names)}")
    return group, name


async def create(request: web.Request) -> web.StreamResponse:
    api = request.app[CLIENT_API]
    snapshot = api.live.snapshot
    client = check_auth(request, snapshot.config.master_key)
    body, raw = await read_json(request, snapshot.config.max_request_bytes)
    if "input" not in body:
        raise BadRequest("'input' is required")
    group, name = _group(snapshot, body)
    stream = body.get("stream") is True
    call = Request(surface="gemini", operation="interactions.create", group=group, model=name, body=body, raw=raw,
                   stream=stream, request_id=request_id(request), client=client, path="interactions",
                   resources=named_resources(body))
    result = await api.handle(call)
    if isinstance(result, Reply):
        return _reply(request, result)
    return await send_stream(request, result)


def _id(request: web.Request) -> str:
    rid = request.match_info["id"]
    if not rid or "/" in rid:
        raise BadRequest(f"'{rid}' is not an interaction id")
    return rid


async def _on_one(request: web.Request, method: str, suffix: str = "") -> web.StreamResponse:
    api = request.app[CLIENT_API]
    client = check_auth(request, api.live.snapshot.config.master_key)
    rid = _id(request)
    stream = method == "GET" and request.query.get("stream") == "true"
    query = f"?{request.query_string}" if request.query_string and method == "GET" else ""
    raw = b""
    if method == "POST":
        raw = await request.read() or b"{}"
    call = Request(surface="gemini", operation=f"interactions.{method.lower()}{suffix}", group="", model="",
                   body={}, raw=raw, stream=stream, request_id=request_id(request), client=client, metered=False,
                   path=f"interactions/{rid}{'/' + suffix if suffix else ''}{query}", http_method=method,
                   resources=(f"interactions/{rid}",))
    result = await api.handle(call)
    if isinstance(result, Reply):
        return _reply(request, result)
    return await send_stream(request, result)


async def get(request: web.Request) -> web.StreamResponse:
    return await _on_one(request, "GET")


async def delete(request: web.Request) -> web.StreamResponse:
    return await _on_one(request, "DELETE")


async def cancel(request: web.Request) -> web.StreamResponse:
    return await _on_one(request, "POST", "cancel")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1beta/interactions", create)
    app.router.add_get("/v1beta/interactions/{id}", get)
    app.router.add_delete("/v1beta/interactions/{id}", delete)
    app.router.add_post("/v1beta/interactions/{id}/cancel", cancel)
