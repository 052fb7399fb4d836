"""`/ui` and its files: served from the package without auth, with content types, cache headers and a CSP."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from keymux.surfaces import ui

from ..conftest import OpsFactory, group


async def get(stack: Any, path: str, **headers: str) -> tuple[int, Any, bytes]:
    async with aiohttp.ClientSession() as s, s.get(f"{stack.base}{path}", headers=headers) as r:
        return r.status, r.headers.copy(), await r.read()


async def test_the_page_and_its_assets(ops_stack: OpsFactory, tmp_path: Any) -> None:
    stack = await ops_stack({"model_list": group("chat", ["k1"]),
                             "general_settings": {"database_url": f"sqlite:///{tmp_path / 's.db'}"}})
    for path in ("/ui", "/ui/"):
        status, headers, body = await get(stack, path)
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["Cache-Control"] == "no-cache" and headers["ETag"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert b"{{v:" not in body and b"http://" not in body and b"https://" not in body  # no CDN
    page = body.decode()
    assets = re.findall(r'(?:src|href)="(/ui/[^"?]+)\?v=([0-9a-f]+)"', page)
    assert {a for a, _ in assets} == {f"/ui/{n}" for n in ui.ASSETS if not n.endswith(".txt")}
    kinds = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
    for path, version in assets:
        status, headers, body = await get(stack, f"{path}?v={version}")
        assert status == 200 and body, path
        assert headers["Content-Type"] == kinds[path[path.rfind("."):]]
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        status, headers, _ = await get(stack, path)  # no or stale version: revalidate
        assert headers["Cache-Control"] == "no-cache"
        status, _, body = await get(stack, path, **{"If-None-Match": headers["ETag"]})
        assert status == 304 and body == b""
    status, headers, body = await get(stack, "/ui/vendor/uPlot.LICENSE.txt")
    assert status == 200 and b"MIT License" in body and headers["Content-Type"].startswith("text/plain")
    for path in ("/ui/nope.js", "/ui/../keymux.yaml", "/ui/%2e%2e/app.py", "/ui/vendor/"):
        status, _, _ = await get(stack, path)
        assert status == 404, path
    status, _, _ = await get(stack, "/admin/keys")  # the page is open, the data is not
    assert status == 401


def test_every_asset_ships_in_the_package() -> None:
    files = ui.load()
    assert set(files) == {*ui.ASSETS, "index.html"}
    assert 40_000 < len(files["vendor/uPlot.iife.min.js"].body) < 60_000
