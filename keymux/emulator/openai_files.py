"""The OpenAI emulator's Files API: `POST /v1/files` (multipart `file` + `purpose`), list, get, delete,
`GET /v1/files/{id}/content`. A file belongs to the key that uploaded it: any other key gets OpenAI's 404
"No such File object", on the file and on a chat completion that names it in a `file` part."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from keymux.emulator import openai_wire as O

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")


def _missing(file_id: str) -> web.Response:
    return _json(O.error_body(f"No such File object: {file_id}", "invalid_request_error", "id"), 404)


class OpenAIFiles:
    def __init__(self, auth: Callable[[web.Request], tuple[str, tuple[int, dict[str, Any], str] | None]],
                 log: Callable[[str, str, int, str, bool, str], None], now: Callable[[], float]) -> None:
        self._auth, self._log, self._now = auth, log, now
        self.files: dict[str, tuple[str, dict[str, Any], bytes]] = {}  # id -> (owner key, File, bytes)
        self._ids = itertools.count(1)

    def owned_by(self, key: str) -> list[str]:
        return [fid for fid, (owner, _, _) in self.files.items() if owner == key]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/files", self._create)
        app.router.add_get("/v1/files", self._list)
        app.router.add_get("/v1/files/{id}", self._get)
        app.router.add_delete("/v1/files/{id}", self._delete)
        app.router.add_get("/v1/files/{id}/content", self._content)

    def refused(self, body: Any, key: str) -> web.Response | None:
        """A chat body naming a file this key does not own (`file.file_id`) is refused, as OpenAI does."""
        todo = [body]
        while todo:
            node = todo.pop()
            if isinstance(node, dict):
                file = node.get("file") if node.get("type") == "file" else None
                fid = file.get("file_id") if isinstance(file, dict) else None
                if isinstance(fid, str) and (fid not in self.files or self.files[fid][0] != key):
                    return _json(O.error_body(f"Invalid file id '{fid}': no such file.", "invalid_request_error",
                                              "messages", "invalid_value"), 400)
                todo.extend(v for v in node.values() if isinstance(v, (dict, list)))
            elif isinstance(node, list):
                todo.extend(node)
        return None

    def _who(self, request: web.Request, what: str) -> str | web.Response:
        key, denied = self._auth(request)
        if denied:
            self._log(key, "", denied[0], denied[2], False, what)
            return _json(denied[1], denied[0])
        return key

    async def _create(self, request: web.Request) -> web.Response:
        key = self._who(request, "files.create")
        if isinstance(key, web.Response):
            return key
        fields: dict[str, str] = {}
        data, filename = b"", ""
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            if part.name == "file":
                filename, data = part.filename or "file", await part.read()
            elif part.name:
                fields[part.name] = await part.text()
        purpose = fields.get("purpose", "")
        if purpose not in PURPOSES:
            self._log(key, "", 400, "bad_request", False, "files.create")
            return _json(O.error_body(f"'{purpose}' is not one of {list(PURPOSES)} - 'purpose'",
                                      "invalid_request_error", "purpose"), 400)
        fid = f"file-emu{next(self._ids):020d}"
        doc = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(self._now()),
               "filename": filename, "purpose": purpose, "status": "processed", "status_details": None,
               "expires_at": None}
        self.files[fid] = (key, doc, data)
        self._log(key, "", 200, "ok", False, "files.create")
        return _json(doc)

    def _mine(self, request: web.Request, what: str) -> tuple[str, dict[str, Any], bytes] | web.Response:
        key = self._who(request, what)
        if isinstance(key, web.Response):
            return key
        fid = request.match_info["id"]
        found = self.files.get(fid)
        if found is None or found[0] != key:
            self._log(key, "", 404, "not_found", False, what)
            return _missing(fid)
        self._log(key, "", 200, "ok", False, what)
        return fid, found[1], found[2]

    async def _get(self, request: web.Request) -> web.Response:
        mine = self._mine(request, "files.get")
        return mine if isinstance(mine, web.Response) else _json(mine[1])

    async def _delete(self, request: web.Request) -> web.Response:
        mine = self._mine(request, "files.delete")
        if isinstance(mine, web.Response):
            return mine
        del self.files[mine[0]]
        return _json({"id": mine[0], "object": "file", "deleted": True})

    async def _content(self, request: web.Request) -> web.Response:
        mine = self._mine(request, "files.content")
        if isinstance(mine, web.Response):
            return mine
        return web.Response(body=mine[2], content_type="application/octet-stream")

    async def _list(self, request: web.Request) -> web.Response:
        key = self._who(request, "files.list")
        if isinstance(key, web.Response):
            return key
        self._log(key, "", 200, "ok", False, "files.list")
        mine = [doc for owner, doc, _ in self.files.values() if owner == key]
        return _json({"object": "list", "data": mine, "has_more": False,
                      "first_id": mine[0]["id"] if mine else None, "last_id": mine[-1]["id"] if mine else None})
