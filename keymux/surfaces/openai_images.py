"""POST /v1/images/generations and /v1/images/edits (multipart, bounded by the body limit), also without /v1.

Gemini's image models make one image per generateContent call: for `n` > 1 on such a group, keymux makes `n`
pipeline calls (each admitted, retried and recorded on its own) and answers all images in one body. Imagen
(`:predict`) and OpenAI keys take `n` in one call.
"""

from __future__ import annotations

import asyncio
import base64
import mimetypes
from typing import Any

import orjson
from aiohttp import web

from keymux.errors import BadRequest
from keymux.live import Snapshot
from keymux.request import Reply
from keymux.surfaces.common import CLIENT_API, check_auth, read_json
from keymux.surfaces.multipart_form import Upload, read_form
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
    return await _serve(request, client, "images", body, raw, model, group, snapshot)


async def edits(request: web.Request) -> web.StreamResponse:
    """multipart: `image` (or `image[]`, several), `prompt`, `mask`, `n`, `size`, `response_format`, `model`."""
    snapshot = request.app[CLIENT_API].live.snapshot
    client = check_auth(request, snapshot.config.master_key)
    fields, files = await read_form(request, snapshot.config.max_request_bytes)
    model, group = group_of(snapshot, dict(fields))
    body: dict[str, Any] = dict(fields)
    if "n" in body:
        if not body["n"].isdigit():
            raise BadRequest("'n' must be an integer from 1 to 10", param="n")
        body["n"] = int(body["n"])
    images = [_upload(f) for f in files if f.field in ("image", "image[]")]
    if not images:
        raise BadRequest("'image' is required: the image (or images, as image[]) to edit", param="image")
    body["images"] = images
    mask = next((f for f in files if f.field == "mask"), None)
    if mask is not None:
        body["mask"] = _upload(mask)
    I.check(body)
    return await _serve(request, client, "image_edits", body, b"", model, group, snapshot)


def _upload(f: Upload) -> dict[str, str]:
    mime = f.mime or mimetypes.guess_type(f.filename)[0] or ""
    if mime not in I.INPUT_TYPES:
        raise BadRequest(f"'{f.field}' must be a PNG, JPEG or WebP image; got '{f.filename}'", param=f.field)
    return {"filename": f.filename, "mime": mime, "data": base64.b64encode(f.data).decode()}


async def _serve(request: web.Request, client: str, operation: str, body: dict[str, Any], raw: bytes, model: str,
                 group: str, snapshot: Snapshot) -> web.Response:
    n = I.count(body)
    if n == 1 or not one_image_per_call(snapshot, group):
        return respond(await call(request, client, operation, body, raw, model, group))
    single: dict[str, Any] = {**body, "n": 1}
    data = orjson.dumps(single) if raw else b""
    results = await asyncio.gather(*(call(request, client, operation, single, data, model, group) for _ in range(n)))
    for result in results:
        if result.status != 200:
            return respond(result)
    merged = I.merge([orjson.loads(r.body) for r in results])
    return respond(Reply(200, merged, dict(results[-1].headers)))


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/images/generations", generations)
        app.router.add_post(f"{prefix}/images/edits", edits)
