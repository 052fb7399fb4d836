"""The emulator's Files API: resumable upload (`POST /upload/v1beta/files`, start then chunks at the
`x-goog-upload-url` it returns), get / list / delete, and Google's ownership rule: a file belongs to the
project of the key that started its upload; any other project's key gets 403 PERMISSION_DENIED, on the
file itself and on a generateContent that names it in `fileData.fileUri`. Bytes are counted, never kept.

Lists page like Google's (`pageSize` default 10, at most 100, `nextPageToken`). Only generated files (Google
makes them, e.g. Veo videos; a test adds one with `add_generated`) have a `downloadUri` and can be fetched at
`files/{id}:download?alt=media`; an uploaded file answers 400 INVALID_ARGUMENT there, as Google does.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from keymux.emulator import gemini_wire as W
from keymux.emulator.paging import page

JSON_CT = "application/json; charset=UTF-8"
LIFETIME = 48 * 3600
DOWNLOAD_PIECE = 64 * 1024


@dataclass
class _Upload:
    owner: str
    size: int | None  # None: not declared at the start; the upload's size is what arrives
    meta: dict[str, Any]
    received: int = 0


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, headers={"Content-Type": JSON_CT, **(headers or {})})


def _denied(name: str) -> web.Response:
    short = name.removeprefix("files/")
    return _json(W.status_body(403, "PERMISSION_DENIED",
                               f"You do not have permission to access the File {short} or it may not exist."), 403)


class Files:
    def __init__(self, auth: Callable[[web.Request], tuple[str, str] | web.Response],
                 log: Callable[[str, str, int, str, bool, str], None], now: Callable[[], float],
                 base: Callable[[], str]) -> None:
        self._auth, self._log, self._now, self._base = auth, log, now, base
        self.files: dict[str, tuple[str, dict[str, Any]]] = {}  # name -> (owner, File)
        self._uploads: dict[str, _Upload] = {}
        self._ids = itertools.count(1)
        self._generated: dict[str, bytes] = {}  # the bytes of generated files (the only ones kept)
        self.used: list[tuple[str, str, str]] = []  # (file, its mimeType as sent, project) per accepted fileData
        self.largest_chunk = 0  # the biggest piece one read handed over (streamed answers stay small)

    def owned_by(self, owner: str) -> list[str]:
        return [name for name, (o, _) in self.files.items() if o == owner]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/upload/v1beta/files", self._upload)
        app.router.add_get("/v1beta/files", self._list)
        for prefix in ("/download/v1beta", "/v1beta"):  # downloadUri uses the first; google-genai the second
            app.router.add_get(prefix + "/files/{id:[^:/]+}:download", self._download)
        app.router.add_get("/v1beta/files/{id}", self._get)
        app.router.add_delete("/v1beta/files/{id}", self._delete)

    def refused(self, request_body: Any, owner: str) -> web.Response | None:
        """A generateContent naming another project's file (or an unknown one) is refused, as Google does."""
        todo = [request_body]
        while todo:
            node = todo.pop()
            if isinstance(node, dict):
                data = node.get("fileData") or node.get("file_data")
                uri = (data.get("fileUri") or data.get("file_uri")) if isinstance(data, dict) else None
                if isinstance(data, dict) and isinstance(uri, str) and "/files/" in uri:  # either spelling
                    name = "files/" + uri.rsplit("/files/", 1)[1]
                    found = self.files.get(name)
                    if found is None or found[0] != owner:
                        return _denied(name)
                    self.used.append((name, str(data.get("mimeType") or data.get("mime_type")), owner))
                todo.extend(v for v in node.values() if isinstance(v, (dict, list)))
            elif isinstance(node, list):
                todo.extend(node)
        return None

    def _stamp(self, t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("upload_id")
        if token is None:
            return await self._start(request)
        up = self._uploads.get(token)
        if up is None:
            return _json(W.status_body(404, "NOT_FOUND", "Upload session not found."), 404)
        command = request.headers.get("X-Goog-Upload-Command", "")
        offset = int(request.headers.get("X-Goog-Upload-Offset", "-1"))
        if offset != up.received:
            return _json(W.bad_request(f"Invalid upload offset {offset}; expected {up.received}."), 400)
        async for piece in request.content.iter_any():
            up.received += len(piece)
            self.largest_chunk = max(self.largest_chunk, len(piece))
        if "finalize" not in command:
            return web.Response(status=200, headers={"X-Goog-Upload-Status": "active"})
        del self._uploads[token]
        if up.size is not None and up.received != up.size:
            return _json(W.bad_request(f"Uploaded {up.received} bytes; the upload declared {up.size}."), 400)
        doc = self._add(up.owner, up.received, up.meta, "UPLOADED")
        return _json({"file": doc}, headers={"X-Goog-Upload-Status": "final"})

    def _add(self, owner: str, size: int, meta: dict[str, Any], source: str) -> dict[str, Any]:
        file_id = f"emu{next(self._ids):06d}"
        name = f"files/{file_id}"
        now = self._now()
        doc = {"name": name, "displayName": meta.get("displayName", file_id),
               "mimeType": meta.get("mimeType", "application/octet-stream"), "sizeBytes": str(size),
               "createTime": self._stamp(now), "updateTime": self._stamp(now),
               "expirationTime": self._stamp(now + LIFETIME),
               "sha256Hash": hashlib.sha256(name.encode()).hexdigest(),
               "uri": f"{self._base()}/v1beta/{name}", "state": "ACTIVE", "source": source}
        if source == "GENERATED":
            doc["downloadUri"] = f"{self._base()}/download/v1beta/{name}:download?alt=media"
        self.files[name] = (owner, doc)
        return doc

    def add_generated(self, owner: str, data: bytes, mime: str = "video/mp4") -> dict[str, Any]:
        """A file Google made for the project `owner` (a Veo video, say): the kind that can be downloaded."""
        doc = self._add(owner, len(data), {"mimeType": mime}, "GENERATED")
        self._generated[doc["name"]] = data
        return doc

    async def _start(self, request: web.Request) -> web.Response:
        who = self._auth(request)
        if isinstance(who, web.Response):
            return who
        key, owner = who
        if request.headers.get("X-Goog-Upload-Command") != "start":
            return _json(W.bad_request("Missing X-Goog-Upload-Command: start."), 400)
        raw = await request.read()
        meta = (orjson.loads(raw) if raw else {}).get("file") or {}
        declared = request.headers.get("X-Goog-Upload-Header-Content-Length")
        size = int(declared) if declared is not None else None
        token = f"emu-up-{next(self._ids)}"
        self._uploads[token] = _Upload(owner, size, {**meta, "mimeType": request.headers.get(
            "X-Goog-Upload-Header-Content-Type", meta.get("mimeType", "application/octet-stream"))})
        self._log(key, "", 200, "ok", False, "files.upload")
        url = f"{self._base()}/upload/v1beta/files?upload_id={token}&upload_protocol=resumable"
        return web.Response(status=200, headers={"X-Goog-Upload-Status": "active", "X-Goog-Upload-URL": url,
                                                 "X-Goog-Upload-Chunk-Granularity": "262144",
                                                 "Content-Type": JSON_CT})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        mine = self._mine(request, "files.download")
        if isinstance(mine, web.Response):
            return mine
        name, doc = mine
        if request.query.get("alt") != "media":
            return _json(W.bad_request("Downloading a File needs the query parameter alt=media.",
                                       violation=False), 400)
        data = self._generated.get(name)
        if data is None:
            return _json(W.bad_request(f"Only generated files can be downloaded; File {name} was uploaded.",
                                       violation=False), 400)
        resp = web.StreamResponse(headers={"Content-Type": doc["mimeType"], "Content-Length": str(len(data))})
        await resp.prepare(request)
        for at in range(0, len(data), DOWNLOAD_PIECE):
            await resp.write(data[at:at + DOWNLOAD_PIECE])
        await resp.write_eof()
        return resp

    def _mine(self, request: web.Request, what: str) -> tuple[str, dict[str, Any]] | web.Response:
        who = self._auth(request)
        if isinstance(who, web.Response):
            return who
        key, owner = who
        name = f"files/{request.match_info['id']}"
        found = self.files.get(name)
        if found is None or found[0] != owner:
            self._log(key, "", 403, "denied", False, what)
            return _denied(name)
        self._log(key, "", 200, "ok", False, what)
        return name, found[1]

    async def _get(self, request: web.Request) -> web.Response:
        mine = self._mine(request, "files.get")
        return mine if isinstance(mine, web.Response) else _json(mine[1])

    async def _delete(self, request: web.Request) -> web.Response:
        mine = self._mine(request, "files.delete")
        if isinstance(mine, web.Response):
            return mine
        del self.files[mine[0]]
        return _json({})

    async def _list(self, request: web.Request) -> web.Response:
        who = self._auth(request)
        if isinstance(who, web.Response):
            return who
        key, owner = who
        body, status = page([doc for o, doc in self.files.values() if o == owner], "files", request, 10, 100)
        self._log(key, "", status, "ok" if status == 200 else "bad_request", False, "files.list")
        return _json(body, status)
