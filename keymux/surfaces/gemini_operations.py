"""Gemini long-running operations under a model: `models/{m}:predictLongRunning` (Veo) starts one on a key
the pool admits; `GET models/{m}/operations/{id}` polls it on that key only (another key's project answers
404); `GET models/{m}/operations` lists every key's, merged, each tagged with its key's fingerprint.

A batch is its own operation (`batches/{id}`: gemini_caches_batches.py). Google's Developer API has no
top-level `operations` collection and no cancel or delete for a model's operations: keymux answers those
paths with a 404 in Google's shape that says where operations live.
"""

from __future__ import annotations

from aiohttp import web

from keymux.errors import NotFound
from keymux.request import Reply, Request
from keymux.surfaces.common import CLIENT_API, JSON, check_auth, read_json, request_id
from keymux.surfaces.gemini_files import merged_list

WHERE = ("a batch is its own operation (GET /v1beta/batches/{id}, :cancel, DELETE); a model's long-running "
         "operations are at GET /v1beta/models/{model}/operations/{id}")


def _send(result: Reply) -> web.Response:
    return web.Response(status=result.status, body=result.body, content_type=JSON, headers=result.headers)


async def start(request: web.Request, model: str) -> web.Response:
    """POST /v1beta/models/{model}:predictLongRunning (reached through the model-method route)."""
    api = request.app[CLIENT_API]
    snapshot = api.live.snapshot
    client = check_auth(request, snapshot.config.master_key)
    body, raw = await read_json(request, snapshot.config.max_request_bytes)
    group = snapshot.resolve(model.removeprefix("models/"))
    if group is None:
        raise NotFound(f"models/{model} is not a model group here; available: {', '.join(snapshot.names)}")
    call = Request(surface="gemini", operation="predictLongRunning", group=group, model=model, body=body, raw=raw,
                   stream=False, request_id=request_id(request), client=client,
                   path="models/{model}:predictLongRunning")
    result = await api.handle(call)
    assert isinstance(result, Reply)
    return _send(result)


async def get_operation(request: web.Request) -> web.Response:
    api = request.app[CLIENT_API]
    client = check_auth(request, api.live.snapshot.config.master_key)
    name = f"models/{request.match_info['model']}/operations/{request.match_info['id']}"
    call = Request(surface="gemini", operation="operations.get", group="", model="", body={}, raw=b"",
                   stream=False, request_id=request_id(request), client=client, metered=False, path=name,
                   http_method="GET", resources=(name,))
    result = await api.handle(call)
    assert isinstance(result, Reply)
    return _send(result)


async def list_operations(request: web.Request) -> web.Response:
    return await merged_list(request, f"models/{request.match_info['model']}/operations", "operations")


async def nowhere(request: web.Request) -> web.Response:
    check_auth(request, request.app[CLIENT_API].live.snapshot.config.master_key)
    raise NotFound(f"Gemini has no {request.method} {request.path}: {WHERE}")


def add_routes(app: web.Application) -> None:
    """Before the Gemini surface's routes: its GET /v1beta/models/{name} would take these paths."""
    one = "/v1beta/models/{model:[^/:]+}/operations/{id:[^/:]+}"
    app.router.add_get(one, get_operation)
    app.router.add_get("/v1beta/models/{model:[^/:]+}/operations", list_operations)
    app.router.add_route("*", "/v1beta/operations", nowhere)
    app.router.add_route("*", "/v1beta/operations/{tail:.*}", nowhere)
    app.router.add_route("*", one + ":cancel", nowhere)
    app.router.add_delete(one, nowhere)
