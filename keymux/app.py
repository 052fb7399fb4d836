"""Assembly: config -> live snapshot, pool, relay (and the cache around it), ledger, surfaces, in one
aiohttp application. Wiring only: each component is handed the narrow objects it uses.

Middleware order (outermost first): errors (render every failure in the client's API shape).
Auth is checked by each surface handler, since health probes must stay open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from keymux.batch_usage import BatchUsage
from keymux.cache import CachedHandler, ResponseCache, make_cache
from keymux.clients import ClientGate, Registry, make_counters
from keymux.clients.gauges import budget_gauges
from keymux.clock import Clock, SystemClock
from keymux.config.schema import Config
from keymux.errors import KeymuxError, NotFound
from keymux.ledger import LedgerUnavailable, open_ledger
from keymux.ledger.recorder import Recorder
from keymux.live import Live, build_snapshot
from keymux.metrics import Metrics
from keymux.openai_files import OPENAI_FILES, OpenAIFiles
from keymux.pin_waits import PinWaits
from keymux.pipeline import Pipeline, access_line
from keymux.pool import Pool
from keymux.pool.memory import MemoryStore
from keymux.pool.store import StateStore
from keymux.relay import Relay
from keymux.reload import Changes, restore_disables
from keymux.request import Reply, Request, StreamReply
from keymux.surfaces import admin as admin_surface
from keymux.surfaces import anthropic as anthropic_surface
from keymux.surfaces import clients as clients_surface
from keymux.surfaces import gemini as gemini_surface
from keymux.surfaces import (
    gemini_caches_batches,
    gemini_files,
    gemini_interactions,
    gemini_operations,
    openai_audio,
    openai_embeddings,
    openai_files,
    openai_images,
    openai_models,
)
from keymux.surfaces import health as health_surface
from keymux.surfaces import openai as openai_surface
from keymux.surfaces import openai_responses as responses_surface
from keymux.surfaces import ui as ui_surface
from keymux.surfaces.common import CLIENT_API, GATEWAY_KEYS, ClientAPI, render_error, request_id
from keymux.uploads import UPLOADS, Uploads
from keymux.upstream import Client

log = logging.getLogger("keymux")


class Gateway:
    """The assembled parts and their lifecycle (start inside the event loop, stop after the last request).

    Nothing is handed this object: tests and the CLI hold it to reach the parts."""

    def __init__(self, config: Config, *, clock: Clock | None = None, store: StateStore | None = None) -> None:
        self.clock = clock or SystemClock()
        self.live = Live(build_snapshot(config, self.clock))
        self._shared = None  # the Redis-backed store, when config asks for one (it has a lifecycle)
        if store is None and config.router.redis is not None:
            from keymux.pool.failover import SharedStore  # imports redis: only when configured

            store = self._shared = SharedStore(config.router.redis)
        self.pool = Pool(self.live, store or MemoryStore(), self.clock)
        self.live.on_swap.append(self.pool.swapped)
        self.started = time.time()
        # keymux's own client (keymux/upstream.py): no cookie jar either, so a cookie an upstream set for
        # one key's request never rides along on another's.
        self.client = Client(keepalive=30.0, max_answer_bytes=config.max_upstream_response_bytes)
        self.relay = Relay(self.live, self.pool, self.client, self.clock)
        self.cache: ResponseCache | None = None  # made at start (a Redis client belongs to the running loop)
        self.ledger = open_ledger(config)
        self.metrics = Metrics()
        self.pool.wait_observers.append(self.metrics.observe_wait)
        # Gateway keys per client (keymux/clients): the gate is outermost, so scope holds for cache hits too.
        self.clients = Registry(self.ledger, make_counters(config, self.clock), self.clock)
        self.clients.load_config(config.virtual_keys, self.clock.time())
        self.live.on_swap.append(self.clients.swapped)
        self.gate = ClientGate(self.relay, self.clients, self.clock)
        self.metrics.extra.append(budget_gauges(self.clients))
        # Told once per finished request: the access log line, then the ledger row and metrics, then the
        # gateway key's tokens and spend.
        self.pin_waits = PinWaits()
        self.pipeline = Pipeline(self.gate, self.clock,
                                 [access_line, Recorder(self.live, self.ledger, self.metrics), self.gate.settle,
                                  self.pin_waits])
        # A batch's usage is written when it ends (a client's poll, or this watcher's)
        self.batches = BatchUsage(self.pool, self.relay, self.pipeline.observers, self.clock)
        self.relay.resource_observers.append(self.batches.observe)
        self.changes = Changes(self.live, self.ledger, self.clock)

    @property
    def config(self) -> Config:
        return self.live.snapshot.config

    @property
    def observers(self) -> list[Callable[..., None]]:
        return self.pipeline.observers

    def state_store(self) -> str:
        """Where key state lives, for /health/readiness: memory | redis | redis (degraded: local)."""
        return "memory" if self._shared is None else self._shared.status

    async def handle(self, request: Request) -> Reply | StreamReply:
        return await self.pipeline.handle(request)

    async def start(self) -> None:
        if self._shared is not None:
            await self._shared.start(self.pool.wake)
        self.cache = make_cache(self.config.cache, self.clock)
        if self.cache is not None:
            self.gate.inner = CachedHandler(self.relay, self.cache)
        await self.ledger.start()
        await self.clients.start()
        try:
            await self.clients.load_stored(self.clock.time())
        except LedgerUnavailable as e:  # keys from the config file still work; run-time keys come back with it
            log.error("gateway keys made at run time are not loaded: %s", e)
        await self.changes.load()
        await restore_disables(self.ledger, self.pool)  # the deployments are known by now
        self.batches.start()

    async def stop(self) -> None:
        self.batches.stop()
        await self.changes.stop()
        await self.client.close()
        if self._shared is not None:
            await self._shared.stop()
        if self.cache is not None:
            await self.cache.close()
        await self.gate.drain()
        await self.clients.stop()
        await self.ledger.close()  # after the last request: every row is written


GATEWAY = web.AppKey("keymux.gateway", Gateway)  # for tests and the CLI; components get narrow objects

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except KeymuxError as e:
        return render_error(request, e)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        err = NotFound(f"no route {request.method} {request.path}") if e.status in (404, 405) else KeymuxError(e.reason)
        err.status = e.status
        return render_error(request, err)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - last line of defence: the client gets an error in its shape, never a trace
        log.exception("internal error in request %s", request_id(request))
        return render_error(request, KeymuxError(f"internal error (request id {request_id(request)})"))


def create_app(config: Config, *, clock: Clock | None = None, store: StateStore | None = None) -> web.Application:
    app = web.Application(client_max_size=config.max_request_bytes, middlewares=[errors_middleware])
    gw = Gateway(config, clock=clock, store=store)
    app[GATEWAY] = gw
    uploads = app[UPLOADS] = Uploads(gw.live, gw.pool)
    app[OPENAI_FILES] = OpenAIFiles(uploads)
    app[CLIENT_API] = ClientAPI(gw.live, gw.pipeline.handle, gw.started)
    app[GATEWAY_KEYS] = gw.clients
    app[health_surface.HEALTH] = health_surface.HealthView(gw.live, gw.pool, gw.clock, gw.state_store)
    app[admin_surface.ADMIN] = admin_surface.Operator(gw.live, gw.pool, gw.ledger, gw.changes, gw.metrics,
                                                      gw.clock, gw.pin_waits)

    async def on_startup(_: web.Application) -> None:
        await gw.start()

    async def on_cleanup(_: web.Application) -> None:
        await uploads.close()
        await gw.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    openai_surface.add_routes(app)
    responses_surface.add_routes(app)
    openai_embeddings.add_routes(app)
    openai_models.add_routes(app)
    openai_images.add_routes(app)
    openai_audio.add_routes(app)
    openai_files.add_routes(app)
    anthropic_surface.add_routes(app)
    gemini_operations.add_routes(app)  # before the Gemini surface's GET /v1beta/models/{name}
    gemini_surface.add_routes(app)
    gemini_interactions.add_routes(app)
    gemini_files.add_routes(app)
    gemini_caches_batches.add_routes(app)
    health_surface.add_routes(app)
    admin_surface.add_routes(app)
    clients_surface.add_routes(app)
    ui_surface.add_routes(app)
    return app
