"""Gateway keys through the admin API (`/admin/clients`) and LiteLLM's key management routes (`/key/*`).

    GET    /admin/clients                      every key: limits, usage against them (never the key or its hash)
    POST   /admin/clients                      create; the answer holds the key, shown this once
    GET    /admin/clients/{name}
    PATCH  /admin/clients/{name}               change limits, models, budget, expiry, ...
    POST   /admin/clients/{name}/rotate        a new key, same identity (usage and budget carry on)
    POST   /admin/clients/{name}/disable | /enable | /expire
    DELETE /admin/clients/{name}

    POST /key/generate, GET /key/info, POST /key/update, POST /key/delete, GET /key/list: LiteLLM's fields
    and answers, so scripts written for LiteLLM keep working. A key is named by itself or by its `token`
    (SHA-256 hex, as LiteLLM names it).

The master key may do everything; a read-only admin key may read; any other gateway key may read only its
own `/key/info`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from keymux.clients.counters import used_doc
from keymux.clients.model import GatewayClient, from_litellm, iso
from keymux.clients.registry import Registry
from keymux.errors import BadRequest, Forbidden, NotFound, Unavailable
from keymux.ledger import LedgerUnavailable
from keymux.surfaces.admin import ADMIN
from keymux.surfaces.common import GATEWAY_KEYS, JSON, check_auth, check_master, client_key, read_json

MAX_BODY = 64 * 1024


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(doc), content_type=JSON)


def _registry(request: web.Request, *, write: bool) -> Registry:
    master = request.app[ADMIN].config.master_key
    if master is None:
        raise Forbidden("gateway keys need general_settings.master_key (without it the gateway is open to all)")
    check_master(request, master, read=not write)
    return request.app[GATEWAY_KEYS]


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body, _ = await read_json(request, MAX_BODY)
    return body


async def _view(registry: Registry, client: GatewayClient) -> dict[str, Any]:
    now = registry.clock.time()
    return {**client.public(), "usage": used_doc(client, await registry.counters.used(client, now), now)}


# -- /admin/clients ------------------------------------------------------------------------------
async def list_clients(request: web.Request) -> web.Response:
    registry = _registry(request, write=False)
    data = [await _view(registry, c) for c in sorted(registry.by_name.values(), key=lambda c: c.name)]
    return _json({"object": "list", "data": data})


async def create_client(request: web.Request) -> web.Response:
    registry = _registry(request, write=True)
    client, secret = await registry.create(await _body(request), registry.clock.time())
    return _json({**await _view(registry, client), "key": secret,
                  "note": "the key is shown this once: keymux keeps only its hash"}, 201)


async def get_client(request: web.Request) -> web.Response:
    registry = _registry(request, write=False)
    return _json(await _view(registry, registry.get(request.match_info["name"])))


async def update_client(request: web.Request) -> web.Response:
    registry = _registry(request, write=True)
    client = await registry.update(request.match_info["name"], await _body(request), registry.clock.time())
    return _json(await _view(registry, client))


async def rotate_client(request: web.Request) -> web.Response:
    registry = _registry(request, write=True)
    client, secret = await registry.rotate(request.match_info["name"], registry.clock.time())
    return _json({**await _view(registry, client), "key": secret,
                  "note": "the new key is shown this once; the old one no longer works"})


def _setter(fields: dict[str, Any] | None):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.Response:
        registry = _registry(request, write=True)
        now = registry.clock.time()
        doc = fields if fields is not None else {"expires": now}
        client = await registry.update(request.match_info["name"], doc, now)
        return _json(await _view(registry, client))
    return handler


async def delete_client(request: web.Request) -> web.Response:
    registry = _registry(request, write=True)
    client = await registry.delete(request.match_info["name"])
    return _json({"deleted": client.name, "fingerprint": client.fingerprint})


# -- LiteLLM's /key/* ----------------------------------------------------------------------------
def _period_duration(client: GatewayClient) -> str | None:
    if client.budget is None or client.budget.period == "total":
        return None
    return {"day": "1d", "week": "7d", "month": "1mo"}[client.budget.period]


async def _litellm(registry: Registry, client: GatewayClient) -> dict[str, Any]:
    now = registry.clock.time()
    used = await registry.counters.used(client, now)
    usage = used_doc(client, used, now)
    return {"token": client.secret_hash, "key_name": f"sk-...{client.fingerprint[-4:]}", "key_alias": client.name,
            "spend": usage["spent"], "max_budget": client.budget.usd if client.budget else None,
            "budget_duration": _period_duration(client), "budget_reset_at": usage.get("budget_resets"),
            "soft_budget": client.soft_budget, "models": list(client.models), "rpm_limit": client.rpm,
            "tpm_limit": client.tpm, "max_parallel_requests": client.max_parallel,
            "expires": iso(client.expires) if client.expires is not None else None, "blocked": client.disabled,
            "metadata": client.metadata, "created_at": iso(client.created) if client.created else None,
            "user_id": None, "team_id": None, "fingerprint": client.fingerprint}


def _find(registry: Registry, given: Any) -> GatewayClient:
    if not isinstance(given, str) or not given:
        raise BadRequest("`key` is required: the key itself or its token", param="key")
    client = registry.find(given)
    if client is None:
        raise NotFound("no such key")
    return client


async def key_generate(request: web.Request) -> web.Response:
    registry = _registry(request, write=True)
    doc = from_litellm(await _body(request))
    chosen = doc.pop("key", None)
    if chosen is not None and not isinstance(chosen, str):
        raise BadRequest("`key` must be a string", param="key")
    now = registry.clock.time()
    if not doc.get("name"):
        doc["name"] = f"key-{int(now * 1000) % 10**10}"
    client, secret = await registry.create(doc, now, secret=chosen)
    return _json({**await _litellm(registry, client), "key": secret})


async def key_info(request: web.Request) -> web.Response:
    registry = request.app[GATEWAY_KEYS]
    asked = request.query.get("key")
    master = request.app[ADMIN].config.master_key
    caller = check_auth(request, master)
    if caller not in ("master", "open"):  # a gateway key: its own info, and read-only admin keys any
        own = registry.get(caller)
        if asked and registry.find(asked) is not own and own.admin != "read":
            raise Forbidden("a gateway key may read only its own /key/info")
        client = own if not asked else _find(registry, asked)
    else:
        _registry(request, write=False)
        client = _find(registry, asked or client_key(request))
    return _json({"key": client.secret_hash, "info": await _litellm(registry, client)})


async def key_update(request: web.Request) -> web.Response:
    registry = _registry(request, write=True)
    body = await _body(request)
    client = _find(registry, body.get("key"))
    doc = from_litellm({k: v for k, v in body.items() if k != "key"})
    doc.pop("name", None)
    updated = await registry.update(client.name, doc, registry.clock.time())
    return _json(await _litellm(registry, updated))


async def key_delete(request: web.Request) -> web.Response:
    registry = _registry(request, write=True)
    body = await _body(request)
    keys, aliases = body.get("keys") or [], body.get("key_aliases") or []
    if not isinstance(keys, list) or not isinstance(aliases, list) or not (keys or aliases):
        raise BadRequest("`keys` (keys or tokens) or `key_aliases` must be a non-empty list", param="keys")
    targets = [_find(registry, k) for k in keys] + [registry.get(str(a)) for a in aliases]
    for client in targets:
        await registry.delete(client.name)
    return _json({"deleted_keys": list(keys) + list(aliases)})


async def key_list(request: web.Request) -> web.Response:
    registry = _registry(request, write=False)
    q = request.query
    try:
        page, size = int(q.get("page", "1")), int(q.get("size", "10"))
    except ValueError:
        raise BadRequest("`page` and `size` must be whole numbers", param="page") from None
    if page < 1 or not 1 <= size <= 100:
        raise BadRequest("`page` must be >= 1 and `size` between 1 and 100", param="size")
    clients = sorted(registry.by_name.values(), key=lambda c: c.created)
    if q.get("key_alias"):
        clients = [c for c in clients if c.name == q["key_alias"]]
    chunk = clients[(page - 1) * size: page * size]
    full = q.get("return_full_object", "").lower() == "true"
    keys = [await _litellm(registry, c) for c in chunk] if full else [c.secret_hash for c in chunk]
    return _json({"keys": keys, "total_count": len(clients), "current_page": page,
                  "total_pages": max(1, -(-len(clients) // size))})


Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _db(handler: Route) -> Route:
    """A database that is down answers 503 in the admin API's shape (a change is not half made: the store
    is written before memory)."""
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except LedgerUnavailable as e:
            raise Unavailable(f"the ledger database, where gateway keys are kept, is unavailable: {e}") from None
    return run


def add_routes(app: web.Application) -> None:
    r = _Router(app.router)
    r.add_get("/admin/clients", list_clients)
    r.add_post("/admin/clients", create_client)
    r.add_get("/admin/clients/{name}", get_client)
    r.add_patch("/admin/clients/{name}", update_client)
    r.add_post("/admin/clients/{name}/rotate", rotate_client)
    r.add_post("/admin/clients/{name}/disable", _setter({"disabled": True}))
    r.add_post("/admin/clients/{name}/enable", _setter({"disabled": False}))
    r.add_post("/admin/clients/{name}/expire", _setter(None))
    r.add_delete("/admin/clients/{name}", delete_client)
    r.add_post("/key/generate", key_generate)
    r.add_get("/key/info", key_info)
    r.add_post("/key/update", key_update)
    r.add_post("/key/delete", key_delete)
    r.add_get("/key/list", key_list)


class _Router:
    """Every route through `_db`."""

    def __init__(self, router: web.UrlDispatcher) -> None:
        self.router = router

    def add_get(self, path: str, handler: Route) -> None:
        self.router.add_get(path, _db(handler))

    def add_post(self, path: str, handler: Route) -> None:
        self.router.add_post(path, _db(handler))

    def add_patch(self, path: str, handler: Route) -> None:
        self.router.add_patch(path, _db(handler))

    def add_delete(self, path: str, handler: Route) -> None:
        self.router.add_delete(path, _db(handler))
