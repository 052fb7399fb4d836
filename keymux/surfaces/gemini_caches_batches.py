"""Gemini context caches (`cachedContents` create / get / list / patch / delete) and Batch mode
(`models/{m}:batchGenerateContent`, `batches` get / list / cancel / delete): created on a key the pool
admits, every later call on the resource pinned to that key; lists merged across keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from keymux.errors import BadRequest, NotFound
from keymux.request import Reply, Request
from keymux.surfaces.common import CLIENT_API, JSON, check_auth, read_json, request_id
from keymux.surfaces.gemini_files import merged_list
from keymux.surfaces.gemini_named import generate_resources


def _send(result: Reply) -> web.Response:
    return web.Response(status=result.status, body=result.body, content_type=JSON, headers=result.headers)


def _resolve(request: web.Request, name: str) -> str:
    snapshot = request.app[CLIENT_API].live.snapshot
    group = snapshot.resolve(name.removeprefix("models/"))
    if group is None:
        raise NotFound(f"models/{name} is not a model group here; available: {', '.join(snapshot.names)}")
    return group


async def create_cache(request: web.Request) -> web.Response:
    api = request.app[CLIENT_API]
    snapshot = api.live.snapshot
    client = check_auth(request, snapshot.config.master_key)
    body, raw = await read_json(request, snapshot.config.max_request_bytes)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required (models/{model})")
    call = Request(surface="gemini", operation="cachedContents.create", group=_resolve(request, model),
                   model=model.removeprefix("models/"), body=body, raw=raw, stream=False,
                   request_id=request_id(request), client=client, path="cachedContents",
                   resources=generate_resources(body, raw))
    result = await api.handle(call)
    assert isinstance(result, Reply)
    return _send(result)


async def create_batch(request: web.Request, model: str) -> web.Response:
    """POST /v1beta/models/{model}:batchGenerateContent (reached through the model-method route)."""
    api = request.app[CLIENT_API]
    snapshot = api.live.snapshot
    client = check_auth(request, snapshot.config.master_key)
    body, raw = await read_json(request, snapshot.config.max_request_bytes)
    call = Request(surface="gemini", operation="batchGenerateContent", group=_resolve(request, model), model=model,
                   body=body, raw=raw, stream=False, request_id=request_id(request), client=client,
                   path="models/{model}:batchGenerateContent", resources=generate_resources(body, raw))
    result = await api.handle(call)
    assert isinstance(result, Reply)
    return _send(result)


async def _on_one(request: web.Request, collection: str, method: str, suffix: str = "") -> web.Response:
    api = request.app[CLIENT_API]
    client = check_auth(request, api.live.snapshot.config.master_key)
    rid = request.match_info["id"]
    name = f"{collection}/{rid}"
    raw = await request.read() if method in ("POST", "PATCH") else b""
    query = f"?{request.query_string}" if request.query_string else ""
    call = Request(surface="gemini", operation=f"{collection}.{method.lower()}{suffix}", group="", model="",
                   body={}, raw=raw or (b"{}" if method in ("POST", "PATCH") else b""), stream=False,
                   request_id=request_id(request), client=client, metered=False,
                   path=f"{name}{suffix}{query}", http_method=method, resources=(name,))
    result = await api.handle(call)
    assert isinstance(result, Reply)
    return _send(result)


def _one(collection: str, method: str, suffix: str = "") -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await _on_one(request, collection, method, suffix)
    return handler


def _merged(collection: str, field: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await merged_list(request, collection, field)
    return handler


def add_routes(app: web.Application) -> None:
    one = "{id:[^:/]+}"
    app.router.add_post("/v1beta/cachedContents", create_cache)
    app.router.add_get("/v1beta/cachedContents", _merged("cachedContents", "cachedContents"))
    app.router.add_get(f"/v1beta/cachedContents/{one}", _one("cachedContents", "GET"))
    app.router.add_patch(f"/v1beta/cachedContents/{one}", _one("cachedContents", "PATCH"))
    app.router.add_delete(f"/v1beta/cachedContents/{one}", _one("cachedContents", "DELETE"))
    app.router.add_get("/v1beta/batches", _merged("batches", "operations"))
    app.router.add_get(f"/v1beta/batches/{one}", _one("batches", "GET"))
    app.router.add_post(f"/v1beta/batches/{one}:cancel", _one("batches", "POST", ":cancel"))
    app.router.add_delete(f"/v1beta/batches/{one}", _one("batches", "DELETE"))
