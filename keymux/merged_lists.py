"""Gemini lists (files, cachedContents, batches) merged across every Gemini key of the pool, page by page.

The keys are walked one after another in one fixed order (by fingerprint, so every replica agrees), each
key's own pages followed with its upstream `nextPageToken`, until the client's `pageSize` is filled. The
`nextPageToken` keymux hands out is its own: it names the list, the key being walked and that key's upstream
token, with a MAC over them, so any replica can go on and an altered token is a 400, never a 500. Each item
is tagged `keymuxKey` (its key's fingerprint) and pinned to that key: what a key lists is that key's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from keymux.errors import BadRequest
from keymux.exchange.gemini_resources import LIFETIMES
from keymux.live import Live
from keymux.pool import Pool
from keymux.pool.deployment import Deployment
from keymux.providers import gemini

# Google's page sizes per list: (default, maximum).
PAGE_SIZES = {"files": (10, 100), "cachedContents": (50, 1000), "batches": (50, 1000), "operations": (50, 1000)}
_VERSION = 1


def page_size(collection: str, given: str | None) -> int:
    """The client's `pageSize`: absent -> Google's default, above the maximum -> the maximum, else a 400."""
    default, maximum = PAGE_SIZES.get(collection, (50, 1000))
    if given is None or given == "":
        return default
    if not given.isdigit():
        raise BadRequest(f"pageSize must be a non-negative whole number, got '{given}'")
    return min(int(given), maximum) or default


class MergedLists:
    def __init__(self, live: Live, pool: Pool, http: Callable[[], aiohttp.ClientSession]) -> None:
        self.live = live
        self.pool = pool
        self._http = http

    def _keys(self) -> dict[str, Deployment]:
        """Every Gemini key once (its first deployment), in fingerprint order."""
        found: dict[str, Deployment] = {}
        for deployments in self.live.snapshot.groups.values():
            for d in deployments:
                if d.cfg.provider == "gemini":
                    found.setdefault(d.fingerprint, d)
        return dict(sorted(found.items()))

    async def page(self, collection: str, field: str, size: int, token: str) -> bytes:
        keys = self._keys()
        order = list(keys)
        at, upstream = (0, "") if not token else self._read_token(collection, token, order)
        merged: list[dict[str, Any]] = []
        while at < len(order) and len(merged) < size:
            fp = order[at]
            doc = await self._fetch(keys[fp], collection, size - len(merged), upstream)
            for item in doc.get(field) or ():
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    await self.pool.pin(item["name"], fp, LIFETIMES.get(collection, LIFETIMES["files"]))
                    merged.append({**item, "keymuxKey": fp})
            upstream = doc.get("nextPageToken") or ""
            if not isinstance(upstream, str) or not upstream:
                at, upstream = at + 1, ""
        out: dict[str, Any] = {field: merged} if merged else {}
        if at < len(order):
            out["nextPageToken"] = self._token(collection, order[at], upstream)
        return orjson.dumps(out)

    async def _fetch(self, d: Deployment, collection: str, size: int, upstream: str) -> dict[str, Any]:
        """One upstream page of one key; a key that cannot list (disabled, cooling, unreachable) lists nothing."""
        params = {"pageSize": str(size), **({"pageToken": upstream} if upstream else {})}
        url = f"{gemini.base_url(d.cfg.api_base)}/{collection}"
        try:
            async with self._http().get(url, params=params, headers=gemini.auth_headers(d.cfg.api_key)) as resp:
                if resp.status != 200:
                    return {}
                doc = orjson.loads(await resp.read() or b"{}")
        except (aiohttp.ClientError, orjson.JSONDecodeError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def _mac(self, payload: bytes) -> bytes:
        secret = (self.live.snapshot.config.master_key or "keymux").encode()
        return hmac.new(secret, payload, hashlib.sha256).digest()[:12]

    def _token(self, collection: str, fp: str, upstream: str) -> str:
        payload = orjson.dumps([_VERSION, collection, fp, upstream])
        return base64.urlsafe_b64encode(self._mac(payload) + payload).decode().rstrip("=")

    def _read_token(self, collection: str, token: str, order: list[str]) -> tuple[int, str]:
        bad = BadRequest("pageToken is not a page token this list gave out (altered, or from another list)")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, payload = raw[:12], raw[12:]
            if not hmac.compare_digest(mac, self._mac(payload)):
                raise bad
            version, listed, fp, upstream = orjson.loads(payload)
        except (binascii.Error, ValueError, TypeError):
            raise bad from None
        if version != _VERSION or listed != collection or not isinstance(upstream, str):
            raise bad
        if fp not in order:
            raise BadRequest(f"pageToken continues the list of key {fp}, which is not configured any more; "
                             "list again from the first page")
        return order.index(fp), upstream
