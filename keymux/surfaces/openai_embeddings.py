"""POST /v1/embeddings (also without /v1).

A batch larger than Gemini's limit (100 inputs per batchEmbedContents) is split into consecutive slices, each
its own pipeline call (admission, retries on another key, a ledger row), answered in one body in input order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from keymux.request import Reply
from keymux.surfaces.common import CLIENT_API, check_auth, read_json
from keymux.surfaces.openai_ops import call, group_of, respond
from keymux.translate import embeddings as E


async def embeddings(request: web.Request) -> web.StreamResponse:
    snapshot = request.app[CLIENT_API].live.snapshot
    client = check_auth(request, snapshot.config.master_key)
    body, raw = await read_json(request, snapshot.config.max_request_bytes)
    model, group = group_of(snapshot, body)
    items = E.inputs(body)
    E.check_options(body)
    if len(items) <= E.GEMINI_BATCH_LIMIT:
        return respond(await call(request, client, "embeddings", body, raw, model, group))
    slices: list[dict[str, Any]] = [{**body, "input": items[i:i + E.GEMINI_BATCH_LIMIT]}
                                    for i in range(0, len(items), E.GEMINI_BATCH_LIMIT)]
    results = await asyncio.gather(*(call(request, client, "embeddings", s, orjson.dumps(s), model, group)
                                     for s in slices))
    for result in results:
        if result.status != 200:
            return respond(result)
    merged = E.merge([orjson.loads(r.body) for r in results], model)
    return respond(Reply(200, merged, {**results[-1].headers, "x-keymux-slices": str(len(slices))}))


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/embeddings", embeddings)
