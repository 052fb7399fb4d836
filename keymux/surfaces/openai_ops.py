"""What the OpenAI endpoints that are not chat share: the model group from the body, one pipeline call as a
`Request` of its operation, and the reply as an aiohttp response."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from keymux.errors import BadRequest, NotFound
from keymux.live import Snapshot
from keymux.request import Reply, Request, StreamReply
from keymux.surfaces.common import CLIENT_API, JSON, ClientAPI, request_id


def group_of(snapshot: Snapshot, body: dict[str, Any]) -> tuple[str, str]:
    """(model as asked, model group) or a 400 / 404 in OpenAI's shape."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required: the name of a model group", param="model")
    group = snapshot.resolve(model)
    if group is None:
        raise NotFound(f"model '{model}' is not a model group here; available: {', '.join(snapshot.names)}")
    return model, group


async def call(request: web.Request, client: str, operation: str, body: dict[str, Any], raw: bytes,
               model: str, group: str) -> Reply:
    api: ClientAPI = request.app[CLIENT_API]
    req = Request(surface="openai", operation=operation, group=group, model=model, body=body, raw=raw,
                  stream=False, request_id=request_id(request), client=client,
                  cache_control=request.headers.get("Cache-Control", ""))
    result = await api.handle(req)
    if isinstance(result, StreamReply):  # pragma: no cover - these operations never stream
        await result.end(False)
        raise BadRequest(f"{operation} does not stream")
    return result


def respond(result: Reply, content_type: str = JSON) -> web.Response:
    ctype = content_type if result.status == 200 else JSON
    return web.Response(status=result.status, body=result.body, content_type=ctype, headers=result.headers)
