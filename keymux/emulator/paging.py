"""Google's list paging, as the emulator serves it: `pageSize` (a default when absent, capped at a maximum),
an opaque `nextPageToken` while more remain, and 400 INVALID_ARGUMENT for a token it never gave out."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from keymux.emulator import gemini_wire as W


def page(items: list[Any], field: str, request: web.Request, default: int, maximum: int) -> tuple[dict[str, Any], int]:
    """(body, status) of one page of `items` under `field` (Google leaves out an empty list)."""
    size_text = request.query.get("pageSize", "")
    token = request.query.get("pageToken", "")
    try:
        size = int(size_text) if size_text else default
        start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("emu:")) if token else 0
    except ValueError:
        return W.bad_request("Invalid page token." if token else f"Invalid pageSize '{size_text}'.",
                             violation=False), 400
    if size < 0 or start < 0:
        return W.bad_request("pageSize and the page token must not be negative.", violation=False), 400
    size = min(size or default, maximum)
    chunk = items[start:start + size]
    out: dict[str, Any] = {field: chunk} if chunk else {}
    if start + size < len(items):
        out["nextPageToken"] = base64.urlsafe_b64encode(f"emu:{start + size}".encode()).decode()
    return out, 200
