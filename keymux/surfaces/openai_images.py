"""POST /v1/images/generations (also without /v1).

Gemini's image models make one image per generateContent call: for `n` > 1 on such a group, keymux makes `n`
pipeline calls (each admitted, retried and recorded on its own) and answers all images in one body. Imagen
(`:predict`) and OpenAI keys take `n` in one call.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from keymux.live import Snapshot
from keymux.request import Reply
from keymux.surfaces.common import CLIENT_API, check_auth, read_json
from keymux.surfaces.openai_ops import call, group_of, respond
from keymux.translate import images as I
from keymux.translate.model_kinds import is_imagen


def one_image_per_call(snapshot: Snapshot, group: str) -> bool:
    return any(d.cfg.provider == "gemini" and not is_imagen(d.model) for d in snapshot.groups.get(group, ()))


async def generations(request: web.Request) -> web.StreamResponse:
    snapshot = request.app[CLIENT_API].live.snapshot
    client = check_auth(request, snapshot.config.master_key)
    body, raw = await read_json(request, snapshot.config.max_request_bytes)
    model, group = group_of(snapshot, body)
    I.check(body)
    n = I.count(body)
    if n == 1 or not one_image_per_call(snapshot, group):
        return respond(await call(request, client, "images", body, raw, model, group))
    single: dict[str, Any] = {**body, "n": 1}
    data = orjson.dumps(single)
    results = await asyncio.gather(*(call(request, client, "images", single, data, model, group) for _ in range(n)))
    for result in results:
        if result.status != 200:
            return respond(result)
    merged = I.merge([orjson.loads(r.body) for r in results])
    return respond(Reply(200, merged, dict(results[-1].headers)))


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/images/generations", generations)
