"""The OpenAI Responses surface: POST /v1/responses, GET/DELETE /v1/responses/{id} (also without /v1).

keymux keeps no responses (stateless, like `store: false`): a request that needs an earlier one
(`previous_response_id`, `conversation`, `background`) is a 400, and looking one up or deleting it is a 404
that says so. Clients send the whole conversation in `input`, as Codex CLI does.
"""

from __future__ import annotations

from aiohttp import web

from keymux.errors import BadRequest, NotFound
from keymux.request import Reply, Request
from keymux.surfaces.common import CLIENT_API, JSON, check_auth, read_json, request_id
from keymux.surfaces.openai import cache_controls
from keymux.surfaces.openai_files import file_refs
from keymux.surfaces.streaming import send_stream
from keymux.translate.clients.openai_responses import stateless_refusal


async def create_response(request: web.Request) -> web.StreamResponse:
    api = request.app[CLIENT_API]
    snapshot = api.live.snapshot
    client = check_auth(request, snapshot.config.master_key)
    body, raw = await read_json(request, snapshot.config.max_request_bytes)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required: the name of a model group", param="model")
    if body.get("input") is None:
        raise BadRequest("'input' is required: a string or an array of input items", param="input")
    refusal = stateless_refusal(body)
    if refusal is not None:
        raise refusal
    group = snapshot.resolve(model)
    if group is None:
        raise NotFound(f"model '{model}' is not a model group here; available: {', '.join(snapshot.names)}")
    body, controls = cache_controls(body)
    raw, files = await file_refs(request, group, body, raw)
    call = Request(surface="openai_responses", operation="responses", group=group, model=model, body=body, raw=raw,
                   stream=bool(body.get("stream")), include_usage=True, request_id=request_id(request),
                   client=client, cache_control=request.headers.get("Cache-Control", ""), controls=controls,
                   resources=files)
    result = await api.handle(call)
    if isinstance(result, Reply):
        return web.Response(status=result.status, body=result.body, content_type=JSON, headers=result.headers)
    return await send_stream(request, result)


async def stored_response(request: web.Request) -> web.Response:
    check_auth(request, request.app[CLIENT_API].live.snapshot.config.master_key)
    raise NotFound(f"response '{request.match_info['id']}' is not stored: keymux keeps no responses; "
                   "keep the output on the client and send it back in 'input'")


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/responses", create_response)
        app.router.add_get(f"{prefix}/responses/{{id}}", stored_response)
        app.router.add_delete(f"{prefix}/responses/{{id}}", stored_response)
