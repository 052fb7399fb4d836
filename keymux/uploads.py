"""Gemini file uploads and downloads through keymux (the lists merged across keys: keymux/merged_lists.py).

A resumable upload is started on one key (admitted by the pool like any call: rotation, no disabled key);
keymux keeps the upstream's upload URL and hands the client its own (`?upload_id=<token>`), so every chunk
comes back here and goes on to that key's project, streamed piece by piece (a file is never held whole).
When the last chunk is in, the new file is pinned to its key. Upload sessions live in the state store, so
any replica can take any chunk. A download goes to the file's key and its body is passed on piece by piece.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import orjson
from aiohttp import web

from keymux.attempt import Scrub
from keymux.errors import NotFound, PayloadTooLarge, UpstreamFailed
from keymux.exchange.gemini_resources import LIFETIMES
from keymux.live import Live
from keymux.merged_lists import MergedLists
from keymux.pool import Lease, Pool
from keymux.pool.deployment import Deployment
from keymux.providers import gemini
from keymux.providers.base import OK, Outcome, Verdict

SESSION_TTL = 7 * 86400.0  # Google's resumable sessions last about a week
_START_HEADERS = ("X-Goog-Upload-Protocol", "X-Goog-Upload-Command", "X-Goog-Upload-Header-Content-Length",
                  "X-Goog-Upload-Header-Content-Type", "Content-Type")
_ANSWER_HEADERS = ("X-Goog-Upload-Status", "X-Goog-Upload-Chunk-Granularity", "X-Goog-Upload-Size-Received",
                   "Content-Type")
PIECE = 256 * 1024  # what one read of a passed-through body hands on


@dataclass
class Passed:
    """What goes back to the client: status, the upload headers, the body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Download:
    """A download under way: the upstream's status and headers, then its body (`pieces`) or its error."""

    status: int
    headers: dict[str, str]
    error: bytes
    pieces: AsyncIterator[bytes] | None


def _root(dep: Deployment) -> str:
    return gemini.base_url(dep.cfg.api_base).rsplit("/", 1)[0]  # without /v1beta: uploads live at /upload/...


class Uploads:
    def __init__(self, live: Live, pool: Pool) -> None:
        self.live = live
        self.pool = pool
        self._session: aiohttp.ClientSession | None = None
        self.lists = MergedLists(live, pool, self.http)

    def http(self) -> aiohttp.ClientSession:
        if self._session is None:  # made in the running loop, on first use (no network at start-up)
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def group(self, asked: str | None, providers: tuple[str, ...] = ("gemini",)) -> str:
        """Where an upload goes: the model group the client names (`x-keymux-model`), else the first group
        served by keys of the first of `providers` that has one."""
        snapshot = self.live.snapshot
        if asked:
            group = snapshot.resolve(asked.removeprefix("models/"))
            if group is None:
                raise NotFound(f"model '{asked}' is not a model group here; available: {', '.join(snapshot.names)}")
            return group
        for provider in providers:
            for name in snapshot.names:  # the configured groups in config order, not the pools by model id
                if provider in snapshot.providers(name):
                    return name
        raise NotFound(f"no model group here is served by {' or '.join(providers)} keys: files need one")

    def _deployment(self, fingerprint: str) -> Deployment:
        for d in self.pool.deployments_of(fingerprint):
            if d.cfg.provider == "gemini":
                return d
        raise NotFound(f"the key {fingerprint} that holds this upload is not configured any more")

    async def start(self, headers: Mapping[str, str], raw: bytes, public_base: str) -> Passed:
        limit = self.live.snapshot.config.max_upload_bytes
        declared = headers.get("X-Goog-Upload-Header-Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"the file is {declared} bytes; uploads through keymux are limited to {limit}")
        lease = await self.pool.acquire(self.group(headers.get("x-keymux-model")), 0, metered=False)
        passed, token = await self.open(lease, headers, raw)
        if token is not None:
            passed.headers["X-Goog-Upload-URL"] = f"{public_base}/upload/v1beta/files?upload_id={token}" \
                                                  "&upload_protocol=resumable"
        return passed

    async def open(self, lease: Lease, headers: Mapping[str, str], raw: bytes) -> tuple[Passed, str | None]:
        """Start a resumable upload on the leased key: what it answered, and the session's token (None: refused)."""
        dep = lease.deployment
        sent = {**gemini.auth_headers(dep.cfg.api_key),
                **{h: headers[h] for h in _START_HEADERS if h in headers}}
        try:
            async with self.http().post(f"{_root(dep)}/upload/v1beta/files", data=raw, headers=sent) as resp:
                body = await resp.read()
                upstream_url = resp.headers.get("X-Goog-Upload-URL")
                status, answer_headers = resp.status, _answer_headers(resp.headers)
        except aiohttp.ClientError as e:
            await lease.release(Verdict(Outcome.UPSTREAM_ERROR, reason=f"connection error: {e}"))
            raise UpstreamFailed(f"the upload could not be started on key {dep.fingerprint}: {e}", status=502) from None
        await lease.release(gemini.classify(status, body, self.pool.clock.time()))
        answer_headers["x-keymux-key"] = dep.fingerprint
        if status != 200 or not upstream_url:
            return Passed(status, answer_headers, Scrub(dep.cfg.api_key, dep.fingerprint)(body)), None
        token = secrets.token_urlsafe(24)
        await self.pool.pin(f"uploads/{token}", dep.fingerprint, SESSION_TTL)
        await self.pool.pin(f"uploads/{token}/url", upstream_url, SESSION_TTL)
        await self.pool.pin(f"uploads/{token}/size", headers.get("X-Goog-Upload-Header-Content-Length") or "0",
                            SESSION_TTL)
        return Passed(status, answer_headers, body), token

    async def chunk(self, token: str, headers: Mapping[str, str], length: int | None,
                    body: AsyncIterator[bytes]) -> Passed:
        owner = await self.pool.owner(f"uploads/{token}")
        upstream_url = await self.pool.owner(f"uploads/{token}/url")
        if owner is None or upstream_url is None:
            raise NotFound("upload session not found (it finished, expired, or never started here)")
        limit = self.live.snapshot.config.max_upload_bytes
        offset = headers.get("X-Goog-Upload-Offset", "0")
        if offset.isdigit() and length is not None and int(offset) + length > limit:
            raise PayloadTooLarge(f"the upload passes the limit of {limit} bytes")
        dep = self._deployment(owner)
        sent = {**gemini.auth_headers(dep.cfg.api_key), "Content-Type": "application/octet-stream"}
        for header in ("X-Goog-Upload-Command", "X-Goog-Upload-Offset"):
            if header in headers:
                sent[header] = headers[header]
        if length is not None:
            sent["Content-Length"] = str(length)
        capped = Capped(body, limit, int(offset) if offset.isdigit() else 0)  # a chunk of unknown length is counted
        try:
            async with self.http().post(upstream_url, data=capped.pieces(), headers=sent) as resp:
                answer = await resp.read()
                status, answer_headers = resp.status, _answer_headers(resp.headers)
        except (aiohttp.ClientError, PayloadTooLarge) as e:
            if capped.over:  # the HTTP client may report the cut-off body as its own failure
                raise PayloadTooLarge(f"the upload passes the limit of {limit} bytes") from None
            raise UpstreamFailed(f"the chunk could not reach key {dep.fingerprint}: {e}", status=502) from None
        answer_headers["x-keymux-key"] = dep.fingerprint
        if status == 200 and answer_headers.get("X-Goog-Upload-Status") == "final":
            doc = orjson.loads(answer) if answer else {}
            name = (doc.get("file") or {}).get("name") if isinstance(doc, dict) else None
            if isinstance(name, str):
                await self.pool.pin(name, dep.fingerprint, LIFETIMES["files"])
            for part in ("", "/url", "/size"):
                await self.pool.unpin(f"uploads/{token}{part}")
        return Passed(status, answer_headers, answer)

    async def list_merged(self, collection: str, field: str, page_size: int, page_token: str = "") -> bytes:
        return await self.lists.page(collection, field, page_size, page_token)

    @asynccontextmanager
    async def download(self, name: str) -> AsyncIterator[Download]:
        """`files/{id}:download?alt=media` on the key that owns the file, waiting for it like any pinned call."""
        owner = await self.pool.owner(name)
        if owner is None:
            raise NotFound(f"{name} is not known here (it expired, was deleted, or was created through another "
                           "gateway); list the files once to let keymux learn their keys")
        lease = await self.pool.acquire("", 0, metered=False, pinned=owner)
        dep = lease.deployment
        url = f"{gemini.base_url(dep.cfg.api_base)}/{name}:download"
        try:
            resp = await self.http().get(url, params={"alt": "media"}, headers=gemini.auth_headers(dep.cfg.api_key))
        except aiohttp.ClientError as e:
            await lease.release(Verdict(Outcome.UPSTREAM_ERROR, reason=f"connection error: {e}"))
            raise UpstreamFailed(f"the download could not reach key {dep.fingerprint}: {e}", status=502) from None
        try:
            headers = {h: resp.headers[h] for h in ("Content-Type", "Content-Length", "Content-Disposition")
                       if h in resp.headers}
            headers["x-keymux-key"] = dep.fingerprint
            if resp.status != 200:
                error = Scrub(dep.cfg.api_key, dep.fingerprint)(await resp.read())
                await lease.release(gemini.classify(resp.status, error, self.pool.clock.time()))
                headers.pop("Content-Length", None)
                yield Download(resp.status, headers, error, None)
            else:
                yield Download(200, headers, b"", resp.content.iter_chunked(PIECE))
                await lease.release(OK)
        finally:
            resp.release()
            await lease.release(Verdict(Outcome.CLIENT_ERROR, reason="download abandoned"))  # no-op once released

class Capped:
    """The upload's pieces, cut off (and marked `over`) once they pass the limit."""

    def __init__(self, pieces: AsyncIterator[bytes], limit: int, seen: int = 0) -> None:
        self._pieces, self.limit, self.over, self._seen = pieces, limit, False, seen

    async def pieces(self) -> AsyncIterator[bytes]:
        seen = self._seen
        async for piece in self._pieces:
            seen += len(piece)
            if seen > self.limit:
                self.over = True
                raise PayloadTooLarge(f"the file passes the upload limit of {self.limit} bytes")
            yield piece


def _answer_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {h: headers[h] for h in _ANSWER_HEADERS if h in headers}


UPLOADS = web.AppKey("keymux.uploads", Uploads)
