"""OpenAI's /v1/files through keymux, for clients that upload a file and then name it in chat
(`{"type": "file", "file": {"file_id": ...}}`) or in a Responses `input_file`.

An upload goes to the model group the client names (a `model` form field sent before the file, or the
`x-keymux-model` header), else to the first group served by Gemini keys, else the first served by OpenAI
keys; the pool admits one of its keys like any call. On a Gemini key the file goes to the Gemini Files API
(the resumable upload of keymux/uploads.py, streamed) and the client gets an OpenAI file object whose id,
`file-<Gemini file id>`, stands for the Gemini file. On an OpenAI key the upload passes through to that key's
/v1/files. Either way the file is pinned to its key, and its record (`openai-files/<id>`: the key, the file
object, and for Gemini the file's uri and MIME type) is kept in the state store, so any replica can rewrite a
chat that names it into Gemini `fileData` and send it to that key only.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from keymux.attempt import Scrub
from keymux.errors import BadRequest, KeymuxError, NotFound, PayloadTooLarge, UpstreamFailed
from keymux.exchange.gemini_resources import LIFETIMES
from keymux.pool import Lease
from keymux.providers import gemini, openai
from keymux.providers.base import OK, Outcome, Verdict
from keymux.uploads import PIECE, Capped, Uploads

RECORD = "openai-files/"
OPENAI_LIFETIME = 90 * 86400.0  # OpenAI keeps a file until it is deleted: the record outlives most
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
_LIST_CAP = 10_000  # OpenAI's largest `limit`


def _openai_resource(file_id: str) -> str:
    return f"openai/files/{file_id}"


class OpenAIFiles:
    def __init__(self, uploads: Uploads) -> None:
        self.uploads = uploads
        self.live = uploads.live
        self.pool = uploads.pool

    def group(self, asked: str | None) -> str:
        return self.uploads.group(asked, ("gemini", "openai"))

    # -- create --------------------------------------------------------------------------------
    async def create(self, group: str, filename: str, mime: str, purpose: str,
                     pieces: AsyncIterator[bytes]) -> dict[str, Any]:
        if purpose not in PURPOSES:
            raise BadRequest(f"'purpose' must be one of {', '.join(PURPOSES)}; got '{purpose}'", param="purpose")
        lease = await self.pool.acquire(group, 0, metered=False)
        provider = lease.deployment.cfg.provider
        if provider == "gemini":  # uploads.chunk counts the file against the limit
            return await self._to_gemini(lease, filename, mime, purpose, pieces)
        if provider == "openai":
            capped = Capped(pieces, self.live.snapshot.config.max_upload_bytes)
            try:
                return await self._to_openai(lease, filename, mime, purpose, capped.pieces())
            except UpstreamFailed:
                if capped.over:  # the HTTP client reports the cut-off upload as its own failure
                    raise PayloadTooLarge(f"the file passes the upload limit of {capped.limit} bytes") from None
                raise
        await lease.release(Verdict(Outcome.CLIENT_ERROR, reason="no files on this provider"))
        raise BadRequest(f"model group '{group}' is served by {provider} keys, which keep no files")

    async def _to_gemini(self, lease: Lease, filename: str, mime: str, purpose: str,
                         pieces: AsyncIterator[bytes]) -> dict[str, Any]:
        fp = lease.deployment.fingerprint
        start = {"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
                 "X-Goog-Upload-Header-Content-Type": mime, "Content-Type": "application/json"}
        passed, token = await self.uploads.open(lease, start, orjson.dumps({"file": {"displayName": filename}}))
        if token is None:
            raise _gemini_failed(passed.status, passed.body)
        done = await self.uploads.chunk(token, {"X-Goog-Upload-Command": "upload, finalize",
                                                "X-Goog-Upload-Offset": "0"}, None, pieces)
        doc = orjson.loads(done.body) if done.status == 200 and done.body else {}
        made = doc.get("file") if isinstance(doc, dict) else None
        if not isinstance(made, dict) or not isinstance(made.get("name"), str):
            raise _gemini_failed(done.status, done.body)
        name = made["name"]
        now = int(time.time())
        obj = {"id": "file-" + name.removeprefix("files/"), "object": "file",
               "bytes": int(made.get("sizeBytes") or 0), "created_at": now, "filename": filename,
               "purpose": purpose, "status": "processed", "status_details": None,
               "expires_at": now + int(LIFETIMES["files"])}
        record = {"provider": "gemini", "key": fp, "name": name, "uri": made.get("uri"),
                  "mime": made.get("mimeType") or mime, "file": obj}
        await self.pool.pin(RECORD + obj["id"], orjson.dumps(record).decode(), LIFETIMES["files"])
        return obj

    async def _to_openai(self, lease: Lease, filename: str, mime: str, purpose: str,
                         pieces: AsyncIterator[bytes]) -> dict[str, Any]:
        dep = lease.deployment
        with aiohttp.MultipartWriter("form-data") as form:
            form.append(purpose).set_content_disposition("form-data", name="purpose")
            form.append(pieces, {"Content-Type": mime}).set_content_disposition(
                "form-data", name="file", filename=filename)
        async with self._call(lease, "POST", "files", data=form) as (status, body):
            pass
        if status != 200:
            raise _openai_failed(status, body)
        obj = orjson.loads(body)
        record = {"provider": "openai", "key": dep.fingerprint, "file": obj}
        await self.pool.pin(RECORD + obj["id"], orjson.dumps(record).decode(), OPENAI_LIFETIME)
        await self.pool.pin(_openai_resource(obj["id"]), dep.fingerprint, OPENAI_LIFETIME)
        return dict(obj)

    # -- one file ------------------------------------------------------------------------------
    async def record(self, file_id: str) -> dict[str, Any] | None:
        found = await self.pool.owner(RECORD + file_id)
        return orjson.loads(found) if found else None

    async def _known(self, file_id: str) -> dict[str, Any]:
        found = await self.record(file_id)
        if found is None:
            raise NotFound(f"No such File object: {file_id} (not uploaded through keymux, deleted, or expired)")
        return found

    async def get(self, file_id: str) -> dict[str, Any]:
        found = await self._known(file_id)
        if found["provider"] == "openai":
            lease = await self.pool.acquire("", 0, metered=False, pinned=found["key"])
            async with self._call(lease, "GET", f"files/{file_id}") as (status, body):
                pass
            if status != 200:
                raise _openai_failed(status, body)
            return dict(orjson.loads(body))
        return dict(found["file"])

    async def delete(self, file_id: str) -> dict[str, Any]:
        found = await self._known(file_id)
        lease = await self.pool.acquire("", 0, metered=False, pinned=found["key"])
        if found["provider"] == "openai":
            async with self._call(lease, "DELETE", f"files/{file_id}") as (status, body):
                pass
            if status not in (200, 404):
                raise _openai_failed(status, body)
            await self.pool.unpin(_openai_resource(file_id))
        else:
            async with self._call(lease, "DELETE", found["name"]) as (status, body):
                pass
            if status not in (200, 403, 404):  # 403/404: Google has already forgotten it
                raise _gemini_failed(status, body)
            await self.pool.unpin(found["name"])
        await self.pool.unpin(RECORD + file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    @asynccontextmanager
    async def content(self, file_id: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """The file's bytes, streamed from its OpenAI key (Google lets no uploaded file be read back)."""
        found = await self._known(file_id)
        if found["provider"] != "openai":
            raise BadRequest(f"{file_id} is kept by Gemini's Files API, which does not let uploaded files be "
                             "downloaded; keep a copy on the client")
        lease = await self.pool.acquire("", 0, metered=False, pinned=found["key"])
        async with self._call(lease, "GET", f"files/{file_id}/content", stream=True) as (status, body):
            if status != 200:
                raise _openai_failed(status, await _read(body))
            assert not isinstance(body, bytes)
            yield body

    async def list_all(self, purpose: str | None, limit: int) -> dict[str, Any]:
        """Every key's files: Gemini's through the merged list (as OpenAI file objects), OpenAI keys' own."""
        out: list[dict[str, Any]] = []
        token = ""
        while len(out) < min(limit, _LIST_CAP):
            page = orjson.loads(await self.uploads.list_merged("files", "files", 100, token))
            for f in page.get("files") or ():
                out.append(await self._as_openai(f))
            token = page.get("nextPageToken") or ""
            if not token:
                break
        for fp, lease_group in self._openai_keys():
            lease = await self.pool.acquire(lease_group, 0, metered=False, pinned=fp)
            async with self._call(lease, "GET", "files") as (status, body):
                pass
            if status == 200:
                for f in orjson.loads(body).get("data") or ():
                    await self.pool.pin(_openai_resource(f["id"]), fp, OPENAI_LIFETIME)
                    out.append({**f, "keymux_key": fp})
        chosen = [f for f in out if purpose is None or f.get("purpose") == purpose][:limit]
        return {"object": "list", "data": chosen, "has_more": False,
                "first_id": chosen[0]["id"] if chosen else None, "last_id": chosen[-1]["id"] if chosen else None}

    async def _as_openai(self, f: dict[str, Any]) -> dict[str, Any]:
        file_id = "file-" + str(f.get("name", "")).removeprefix("files/")
        found = await self.record(file_id)
        if found is not None:
            return {**found["file"], "keymux_key": f.get("keymuxKey")}
        return {"id": file_id, "object": "file", "bytes": int(f.get("sizeBytes") or 0), "created_at": 0,
                "filename": f.get("displayName") or file_id, "purpose": "user_data", "status": "processed",
                "status_details": None, "keymux_key": f.get("keymuxKey")}

    def _openai_keys(self) -> list[tuple[str, str]]:
        found: dict[str, str] = {}
        for group, deployments in self.live.snapshot.groups.items():
            for d in deployments:
                if d.cfg.provider == "openai":
                    found.setdefault(d.fingerprint, group)
        return sorted(found.items())

    # -- a chat that names files ---------------------------------------------------------------
    async def resolve(self, group: str, body: dict[str, Any], raw: bytes) -> tuple[bytes, tuple[str, ...]]:
        """Rewrite each `file_id` of a Gemini-kept file to its uri and MIME type (the codecs make `fileData` of
        it), in place; return the body to send and the resources it names (its keys' pins)."""
        if raw.find(b"file_id") < 0:  # the common body names no file: one byte search
            return raw, ()
        resources: list[str] = []
        changed = False
        served = {d.fingerprint for d in self.live.snapshot.groups.get(group, ())}
        for holder in _file_refs(body):
            file_id = holder["file_id"]
            found = await self.record(file_id)
            if found is None:
                continue
            if found["key"] not in served:
                raise BadRequest(f"{file_id} is kept by key {found['key']}, which does not serve model group "
                                 f"'{group}'; use a group with that key, or upload the file with model '{group}'",
                                 param="file_id")
            if found["provider"] == "gemini":
                holder["file_id"] = found["uri"]
                holder.setdefault("format", found["mime"])
                holder.setdefault("filename", found["file"]["filename"])
                resources.append(found["name"])
                changed = True
            else:
                resources.append(_openai_resource(file_id))
        return (orjson.dumps(body) if changed else raw), tuple(resources)

    # -- one upstream call on a leased key -----------------------------------------------------
    @asynccontextmanager
    async def _call(self, lease: Lease, method: str, path: str, data: Any = None,
                    stream: bool = False) -> AsyncIterator[tuple[int, Any]]:
        dep = lease.deployment
        if dep.cfg.provider == "gemini":
            url, headers = f"{gemini.base_url(dep.cfg.api_base)}/{path}", dict(gemini.auth_headers(dep.cfg.api_key))
        else:
            url = openai.endpoint_url(dep.cfg.api_base, path)
            headers = {k: v for k, v in openai.auth_headers(dep.cfg.api_key).items() if k != "content-type"}
        scrub = Scrub(dep.cfg.api_key, dep.fingerprint)
        try:
            async with self.uploads.http().request(method, url, data=data, headers=headers) as resp:
                if stream and resp.status == 200:
                    await lease.release(OK)
                    yield resp.status, resp.content.iter_chunked(PIECE)
                    return
                body = scrub(await resp.read())
                if dep.cfg.provider == "gemini":
                    verdict = gemini.classify(resp.status, body, self.pool.clock.time())
                else:
                    verdict = openai.classify(resp.status, resp.headers, body, self.pool.clock.time())
                await lease.release(verdict)
                yield resp.status, body
        except aiohttp.ClientError as e:
            await lease.release(Verdict(Outcome.UPSTREAM_ERROR, reason=f"connection error: {e}"))
            raise UpstreamFailed(f"key {dep.fingerprint} could not be reached: {scrub.text(str(e))}",
                                 status=502) from None
        finally:
            await lease.release(Verdict(Outcome.CLIENT_ERROR, reason="call abandoned"))  # no-op once released


def _file_refs(body: Any) -> list[dict[str, Any]]:
    """The objects holding a `file_id`: chat's `{"type": "file", "file": {...}}`, Responses' `input_file`."""
    found: list[dict[str, Any]] = []
    todo = [body]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            kind = node.get("type")
            holder = node.get("file") if kind == "file" else node if kind == "input_file" else None
            if isinstance(holder, dict) and isinstance(holder.get("file_id"), str):
                found.append(holder)
            todo.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            todo.extend(node)
    return found


async def _read(body: Any) -> bytes:
    return body if isinstance(body, bytes) else b"".join([piece async for piece in body])


def _gemini_failed(status: int, body: bytes) -> KeymuxError:
    message = str(gemini.error_object(body).get("message") or f"Gemini answered {status}")
    return UpstreamFailed(f"Gemini's Files API refused the file: {message}", status=status if status >= 400 else 502)


def _openai_failed(status: int, body: bytes) -> KeymuxError:
    err = openai.error_object(body)
    message = str(err.get("message") or f"the upstream answered {status}")
    if status == 404:
        return NotFound(message)
    return UpstreamFailed(message, status=status if status >= 400 else 502)


OPENAI_FILES = web.AppKey("keymux.openai_files", OpenAIFiles)
