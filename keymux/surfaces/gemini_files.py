"""Gemini's Files API through keymux: resumable upload (start, then chunks at the upload URL keymux hands
out), get / delete / download on the key that owns the file, and one list merged across keys."""

from __future__ import annotations

from aiohttp import web

from keymux.errors import BadRequest
from keymux.merged_lists import page_size
from keymux.request import Reply, Request
from keymux.surfaces.common import CLIENT_API, JSON, add_error_shape, check_auth, gemini_error_response, request_id
from keymux.uploads import UPLOADS, Passed


def _send(passed: Passed) -> web.Response:
    return web.Response(status=passed.status, body=passed.body, headers=passed.headers)


async def upload(request: web.Request) -> web.StreamResponse:
    uploads = request.app[UPLOADS]
    token = request.query.get("upload_id")
    if token is not None:  # a chunk: the unguessable upload id is the capability, as at Google
        return _send(await uploads.chunk(token, request.headers, request.content_length,
                                         request.content.iter_chunked(256 * 1024)))
    check_auth(request, request.app[CLIENT_API].live.snapshot.config.master_key)
    if request.headers.get("X-Goog-Upload-Protocol") != "resumable":
        raise BadRequest("only resumable uploads are supported: send X-Goog-Upload-Protocol: resumable")
    raw = await request.read()
    return _send(await uploads.start(request.headers, raw, f"{request.scheme}://{request.host}"))


def _file_id(request: web.Request) -> str:
    fid = request.match_info["id"]
    if not fid or "/" in fid or ":" in fid:
        raise BadRequest(f"'{fid}' is not a file id")
    return fid


async def _on_file(request: web.Request, method: str) -> web.Response:
    api = request.app[CLIENT_API]
    client = check_auth(request, api.live.snapshot.config.master_key)
    name = f"files/{_file_id(request)}"
    call = Request(surface="gemini", operation=f"files.{method.lower()}", group="", model="", body={}, raw=b"",
                   stream=False, request_id=request_id(request), client=client, metered=False, path=name,
                   http_method=method, resources=(name,))
    result = await api.handle(call)
    assert isinstance(result, Reply)
    return web.Response(status=result.status, body=result.body, content_type=JSON, headers=result.headers)


async def get_file(request: web.Request) -> web.Response:
    return await _on_file(request, "GET")


async def delete_file(request: web.Request) -> web.Response:
    return await _on_file(request, "DELETE")


async def list_files(request: web.Request) -> web.Response:
    return await merged_list(request, "files", "files")


async def merged_list(request: web.Request, collection: str, field: str) -> web.Response:
    """GET /v1beta/{collection}: every key's, a page at a time (`pageSize`, `pageToken` as Google's)."""
    check_auth(request, request.app[CLIENT_API].live.snapshot.config.master_key)
    size = page_size(collection, request.query.get("pageSize"))
    body = await request.app[UPLOADS].list_merged(collection, field, size, request.query.get("pageToken", ""))
    return web.Response(body=body, content_type=JSON)


async def download_file(request: web.Request) -> web.StreamResponse:
    """`files/{id}:download?alt=media` (google-genai's `files.download`): streamed from the owning key."""
    check_auth(request, request.app[CLIENT_API].live.snapshot.config.master_key)
    if request.query.get("alt") != "media":
        raise BadRequest("a file download needs the query parameter alt=media")
    async with request.app[UPLOADS].download(f"files/{_file_id(request)}") as got:
        if got.pieces is None:
            return web.Response(status=got.status, body=got.error, headers=got.headers)
        resp = web.StreamResponse(status=got.status, headers=got.headers)
        await resp.prepare(request)
        async for piece in got.pieces:
            await resp.write(piece)
        await resp.write_eof()
        return resp


def add_routes(app: web.Application) -> None:
    app.router.add_post("/upload/v1beta/files", upload)
    app.router.add_get("/v1beta/files", list_files)
    for prefix in ("/download/v1beta", "/v1beta"):  # a file's downloadUri names the first; google-genai the second
        app.router.add_get(prefix + "/files/{id:[^:/]+}:download", download_file)
    add_error_shape(app, "/download", gemini_error_response)
    app.router.add_get("/v1beta/files/{id}", get_file)
    app.router.add_delete("/v1beta/files/{id}", delete_file)
