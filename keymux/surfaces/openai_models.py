"""GET /v1/models and /v1/models/{id} (also without /v1): the model groups, each saying which endpoints it serves
(from its deployments' upstream models, keymux/translate/model_kinds.py)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from keymux.errors import NotFound
from keymux.live import Snapshot
from keymux.surfaces import anthropic
from keymux.surfaces.common import CLIENT_API, JSON, check_auth
from keymux.translate.model_kinds import PATHS, operations


def model_object(snapshot: Snapshot, name: str, group: str, created: int) -> dict[str, Any]:
    served: list[str] = []
    upstream: list[str] = []
    for d in snapshot.groups.get(group, ()):
        if d.model not in upstream:
            upstream.append(d.model)
        served += [op for op in operations(d.cfg.provider, d.model) if op not in served]
    order = list(PATHS)
    served.sort(key=order.index)
    return {"id": name, "object": "model", "created": created, "owned_by": "keymux",
            "endpoints": [path for op in served for path in PATHS[op]], "upstream_models": upstream}


async def list_models(request: web.Request) -> web.Response:
    if anthropic.wants_models(request):  # Anthropic's SDK and Claude Code ask for the list in their own shape
        return await anthropic.list_models(request)
    api = request.app[CLIENT_API]
    snapshot = api.live.snapshot
    check_auth(request, snapshot.config.master_key)
    created = int(api.started)
    data = [model_object(snapshot, name, name, created) for name in snapshot.listed]
    return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type=JSON)


async def get_model(request: web.Request) -> web.Response:
    api = request.app[CLIENT_API]
    snapshot = api.live.snapshot
    check_auth(request, snapshot.config.master_key)
    name = request.match_info["model"]
    group = snapshot.resolve(name)
    if group is None:
        raise NotFound(f"The model '{name}' does not exist; available: {', '.join(snapshot.names)}")
    body = model_object(snapshot, name, group, int(api.started))
    return web.Response(body=orjson.dumps(body), content_type=JSON)


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_get(f"{prefix}/models", list_models)
        app.router.add_get(f"{prefix}/models/{{model:.+}}", get_model)
