"""The dashboard at `/ui`: static files shipped in `keymux/ui/`, no auth (the data behind it is the admin API's).

Only the files listed in `FILES` are served (no path is ever built from the URL). `index.html` names each
asset with `?v=<content hash>`: an asset asked for with its current hash may be cached for a year, anything
else (the page itself, a stale hash) is revalidated with its ETag on every load.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8"}
ASSETS = ("app.js", "style.css", "favicon.svg", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css",
          "vendor/uPlot.LICENSE.txt")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# The page runs only its own script; it talks only to this origin; nobody may frame it.
SECURITY = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def _read(name: str) -> bytes:
    return resources.files("keymux").joinpath("ui", *name.split("/")).read_bytes()


def _asset(name: str, body: bytes) -> Asset:
    suffix = name[name.rfind("."):]
    return Asset(body, TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:16] + '"')


def load() -> dict[str, Asset]:
    """Every file, read once; `index.html` with each `{{v:name}}` replaced by that asset's hash."""
    files = {name: _asset(name, _read(name)) for name in ASSETS}
    page = _read("index.html").decode()
    for name, asset in files.items():
        page = page.replace("{{v:" + name + "}}", asset.etag.strip('"'))
    files["index.html"] = _asset("index.html", page.encode())
    return files


UI_FILES = web.AppKey("keymux_ui_files", dict)


def _serve(request: web.Request, name: str) -> web.Response:
    files: dict[str, Asset] = request.app[UI_FILES]
    asset = files[name]
    current = request.query.get("v") == asset.etag.strip('"')
    headers = {"etag": asset.etag, "cache-control": IMMUTABLE if current else REVALIDATE, **SECURITY}
    if asset.etag in request.headers.get("if-none-match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, headers={**headers, "content-type": asset.content_type})


async def index(request: web.Request) -> web.Response:
    return _serve(request, "index.html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return _serve(request, name)


def add_routes(app: web.Application) -> None:
    app[UI_FILES] = load()
    r = app.router
    r.add_get("/ui", index)
    r.add_get("/ui/", index)
    r.add_get("/ui/{name:.+}", asset)
