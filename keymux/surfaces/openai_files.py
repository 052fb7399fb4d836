"""OpenAI's Files API: POST /v1/files (multipart `file` + `purpose`, streamed to the key the pool chooses),
GET /v1/files, GET / DELETE /v1/files/{id}, GET /v1/files/{id}/content (also without /v1). The service is
keymux/openai_files.py; chat and Responses bodies naming a file are rewritten through it (`file_refs`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from keymux.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from keymux.openai_files import OPENAI_FILES
from keymux.surfaces.common import CLIENT_API, JSON, check_auth
from keymux.translate.media import guess_mime
from keymux.uploads import PIECE

_FIELD_MAX = 64 * 1024
_FORM_SLACK = 64 * 1024  # the form's boundaries and small fields, beyond the file itself


def _json(doc: Any) -> web.Response:
    return web.Response(body=orjson.dumps(doc), content_type=JSON)


async def _pieces(part: BodyPartReader) -> AsyncIterator[bytes]:
    while piece := await part.read_chunk(PIECE):
        yield piece


async def create_file(request: web.Request) -> web.Response:
    snapshot = request.app[CLIENT_API].live.snapshot
    check_auth(request, snapshot.config.master_key)
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(f"expected Content-Type: multipart/form-data, got {request.content_type}")
    limit = snapshot.config.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + _FORM_SLACK:
        raise PayloadTooLarge(f"the upload is {request.content_length} bytes; files are limited to {limit}")
    files = request.app[OPENAI_FILES]
    fields: dict[str, str] = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart bodies are not accepted")
            if part.name == "file" and part.filename is not None:
                purpose = fields.get("purpose")
                if not purpose:
                    raise BadRequest("'purpose' is required, as a form field sent before the file", param="purpose")
                group = files.group(fields.get("model") or request.headers.get("x-keymux-model"))
                labelled = part.headers.get("Content-Type", "")
                mime = labelled if labelled and labelled != "application/octet-stream" else \
                    guess_mime(part.filename, "application/octet-stream")
                return _json(await files.create(group, part.filename, mime, purpose, _pieces(part)))
            value = b""
            async for piece in _pieces(part):  # a field may arrive in several reads
                value += piece
                if len(value) > _FIELD_MAX:
                    raise BadRequest(f"form field '{part.name}' is over {_FIELD_MAX} bytes", param=part.name)
            fields[part.name or ""] = value.decode("utf-8", "replace").strip()
    except ValueError as e:  # aiohttp's word for a malformed multipart body
        raise BadRequest(f"malformed multipart body: {e}") from None
    raise BadRequest("'file' is required: a form field with a filename", param="file")


async def list_files(request: web.Request) -> web.Response:
    check_auth(request, request.app[CLIENT_API].live.snapshot.config.master_key)
    limit = request.query.get("limit", "10000")
    if not limit.isdigit() or not 1 <= int(limit) <= 10_000:
        raise BadRequest(f"'limit' must be a whole number from 1 to 10000, got '{limit}'", param="limit")
    return _json(await request.app[OPENAI_FILES].list_all(request.query.get("purpose"), int(limit)))


async def get_file(request: web.Request) -> web.Response:
    check_auth(request, request.app[CLIENT_API].live.snapshot.config.master_key)
    return _json(await request.app[OPENAI_FILES].get(request.match_info["id"]))


async def delete_file(request: web.Request) -> web.Response:
    check_auth(request, request.app[CLIENT_API].live.snapshot.config.master_key)
    return _json(await request.app[OPENAI_FILES].delete(request.match_info["id"]))


async def file_content(request: web.Request) -> web.StreamResponse:
    check_auth(request, request.app[CLIENT_API].live.snapshot.config.master_key)
    async with request.app[OPENAI_FILES].content(request.match_info["id"]) as pieces:
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        async for piece in pieces:
            await resp.write(piece)
        await resp.write_eof()
        return resp


async def file_refs(request: web.Request, group: str, body: dict[str, Any],
                    raw: bytes) -> tuple[bytes, tuple[str, ...]]:
    """A chat or Responses body with its uploaded files resolved (see OpenAIFiles.resolve)."""
    files = request.app.get(OPENAI_FILES)
    return (raw, ()) if files is None else await files.resolve(group, body, raw)


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/files", create_file)
        app.router.add_get(f"{prefix}/files", list_files)
        app.router.add_get(f"{prefix}/files/{{id}}", get_file)
        app.router.add_delete(f"{prefix}/files/{{id}}", delete_file)
        app.router.add_get(f"{prefix}/files/{{id}}/content", file_content)
