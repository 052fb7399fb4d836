"""Assembly: config -> pool + relay + surfaces, in one aiohttp application.

Middleware order (outermost first): errors (render every failure in the client's API shape).
Auth is checked by each surface handler, since health probes must stay open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from aiohttp import web

from keymux.cache import ResponseCache, make_cache
from keymux.clock import Clock, SystemClock
from keymux.config.schema import Config
from keymux.errors import KeymuxError, NotFound
from keymux.ledger import open_ledger
from keymux.ledger.recorder import Recorder
from keymux.metrics import Metrics
from keymux.pool import Pool
from keymux.pool.deployment import Deployment, build_deployments
from keymux.pool.memory import MemoryStore
from keymux.pool.store import StateStore
from keymux.relay import Relay, RequestObserver
from keymux.reload import Live
from keymux.surfaces import admin as admin_surface
from keymux.surfaces import gemini as gemini_surface
from keymux.surfaces import health as health_surface
from keymux.surfaces import openai as openai_surface
from keymux.surfaces import ui as ui_surface
from keymux.surfaces.common import GATEWAY, gemini_error_response, openai_error_response, request_id
from keymux.upstream import Client

log = logging.getLogger("keymux")


def _aliases(groups: dict[str, list[Deployment]]) -> dict[str, list[Deployment]]:
    """Upstream model ids as extra pools: every deployment serving that model, one per key."""
    out: dict[str, list[Deployment]] = {}
    seen: set[tuple[str, str]] = set()
    for deployments in groups.values():
        for d in deployments:
            if d.model in groups or (d.model, d.fingerprint) in seen:
                continue
            seen.add((d.model, d.fingerprint))
            out.setdefault(d.model, []).append(d)
    return out


class Gateway:
    def __init__(self, config: Config, *, clock: Clock | None = None, store: StateStore | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        groups = build_deployments(config)
        self._group_names = list(groups)
        self.cache: ResponseCache | None = None  # made at start (a Redis client belongs to the running loop)
        self._shared = None  # the Redis-backed store, when config asks for one (it has a lifecycle)
        if store is None and config.router.redis is not None:
            from keymux.pool.failover import SharedStore  # imports redis: only when configured

            store = self._shared = SharedStore(config.router.redis)
        self.pool = Pool({**_aliases(groups), **groups}, config.router, store or MemoryStore(), self.clock)
        self.started = time.time()
        self.client: Client | None = None  # upstream calls
        self._relay: Relay | None = None
        self.ledger = open_ledger(config)
        self.metrics = Metrics()
        self.pool.wait_observers.append(self.metrics.observe_wait)
        self.observers: list[RequestObserver] = [Recorder(self)]  # ledger row + metrics, once per request
        self.live = Live(self)  # reload, keys added at run time

    @property
    def relay(self) -> Relay:
        assert self._relay is not None, "gateway not started"
        return self._relay

    def group_names(self) -> list[str]:
        return self._group_names

    @property
    def state_store(self) -> str:
        """Where key state lives, for /health/readiness: memory | redis | redis (degraded: local)."""
        return "memory" if self._shared is None else self._shared.status

    def set_groups(self, groups: dict[str, list[Deployment]]) -> None:
        self._group_names = list(groups)
        self.pool.set_groups({**_aliases(groups), **groups})

    def resolve(self, name: str) -> str | None:
        """A model group, or an upstream model id, as clients spell them ("models/x", "gemini/x")."""
        groups = self.pool.groups
        if name in groups:
            return name
        for candidate in (name.removeprefix("models/"), name.partition("/")[2]):
            if candidate and candidate in groups:
                return candidate
        return None

    async def start(self) -> None:
        # keymux's own client (keymux/upstream.py): no cookie jar either, so a cookie an upstream set for
        # one key's request never rides along on another's.
        self.client = Client(keepalive=30.0, max_answer_bytes=self.config.max_upstream_response_bytes)
        if self._shared is not None:
            await self._shared.start(self.pool.wake)
        self.cache = make_cache(self.config.cache, self.clock)
        self._relay = Relay(self.config, self.pool, self.client, self.clock, self.observers, cache=self.cache)
        await self.ledger.start()
        await self.live.load()

    async def stop(self) -> None:
        await self.live.stop()
        if self.client is not None:
            await self.client.close()
        if self._shared is not None:
            await self._shared.stop()
        if self.cache is not None:
            await self.cache.close()
        await self.ledger.close()  # after the last request: every row is written


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _render(request: web.Request, err: KeymuxError) -> web.Response:
    if request.path.startswith("/v1beta"):
        return gemini_error_response(err)
    return openai_error_response(err)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except KeymuxError as e:
        return _render(request, e)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        err = NotFound(f"no route {request.method} {request.path}") if e.status in (404, 405) else KeymuxError(e.reason)
        err.status = e.status
        return _render(request, err)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - last line of defence: the client gets an error in its shape, never a trace
        log.exception("internal error in request %s", request_id(request))
        return _render(request, KeymuxError(f"internal error (request id {request_id(request)})"))


def create_app(config: Config, *, clock: Clock | None = None, store: StateStore | None = None) -> web.Application:
    app = web.Application(client_max_size=config.max_request_bytes, middlewares=[errors_middleware])
    gateway = Gateway(config, clock=clock, store=store)
    app[GATEWAY] = gateway

    async def on_startup(_: web.Application) -> None:
        await gateway.start()

    async def on_cleanup(_: web.Application) -> None:
        await gateway.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    openai_surface.add_routes(app)
    gemini_surface.add_routes(app)
    health_surface.add_routes(app)
    admin_surface.add_routes(app)
    ui_surface.add_routes(app)
    return app
