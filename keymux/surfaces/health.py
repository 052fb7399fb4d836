"""Health endpoints. None of them spends quota: they read the pool's state, they never call upstream."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from keymux.clock import Clock
from keymux.config.schema import Config
from keymux.live import Live
from keymux.pool import Pool
from keymux.pool.store import State
from keymux.surfaces.common import JSON, check_master


@dataclass(frozen=True)
class HealthView:
    """What the health endpoints read: the live config, the pool's key state, where that state lives."""

    live: Live
    pool: Pool
    clock: Clock
    store_status: Callable[[], str]  # memory | redis | redis (degraded: local) | redis (unavailable: refusing)

    @property
    def config(self) -> Config:
        return self.live.snapshot.config

    @property
    def state_store(self) -> str:
        return self.store_status()

    def group_names(self) -> tuple[str, ...]:
        return self.live.snapshot.names


HEALTH = web.AppKey("keymux.health", HealthView)


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(doc), content_type=JSON)


async def liveness(request: web.Request) -> web.Response:
    return _json({"status": "alive"})


async def readiness(request: web.Request) -> web.Response:
    """503 only when this replica cannot admit anything (Redis down with redis_fail_closed). A group with no
    ready key answers 200 "degraded": the replica still queues requests and answers with an honest
    Retry-After, which another replica sharing the same keys could not do better."""
    gw = request.app[HEALTH]
    store = gw.state_store
    refusing = "refusing" in store
    doc: dict[str, Any] = {"status": "not ready" if refusing else "ready", "groups": len(gw.group_names()),
                           "deployments": len(gw.config.deployments), "state_store": store}
    if not refusing:
        now = gw.clock.time()
        await gw.pool.store.refresh([d for name in gw.group_names() for d in gw.pool.groups[name]], now)
        empty = {name: g for name, g in group_summary(gw, now).items() if not g["ready"]}
        if empty:
            doc["status"] = "degraded"
            doc["no_ready_key"] = {name: {"total": g["total"], "next_free_at": g["next_free_at"],
                                          "next_free_in": g["next_free_in"]} for name, g in empty.items()}
    return _json(doc, 503 if refusing else 200)


def group_summary(gw: HealthView, now: float) -> dict[str, Any]:
    groups: dict[str, Any] = {}
    for name in gw.group_names():
        counts = {s.value: 0 for s in State}
        keys = []
        next_free: float | None = None
        for d in gw.pool.groups[name]:
            view = gw.pool.store.view(d, now)
            counts[view.state.value] += 1
            if view.state is not State.READY and view.until is not None:
                next_free = view.until if next_free is None else min(next_free, view.until)
            keys.append({"key": d.fingerprint, "model": d.model, "state": view.state.value,
                         "until": view.until, "reason": view.reason or None,
                         "rpm_used": view.rpm_used, "rpd_used": view.rpd_used, "in_flight": view.in_flight,
                         "served": d.served})
        waiting = next_free is not None and not counts["ready"]
        groups[name] = {**counts, "total": len(keys), "ready_of_total": f"{counts['ready']}/{len(keys)}",
                        "keys": keys,
                        "next_free_at": _iso(next_free) if waiting else None,  # type: ignore[arg-type]
                        "next_free_in": round(next_free - now, 1) if waiting else None}  # type: ignore[operator]
    return groups


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def health(request: web.Request) -> web.Response:
    gw = request.app[HEALTH]
    if gw.config.master_key is not None:
        check_master(request, gw.config.master_key, read=True)
    now = gw.clock.time()
    await gw.pool.store.refresh([d for name in gw.group_names() for d in gw.pool.groups[name]], now)
    groups = group_summary(gw, now)
    # degraded: some group has no key that can take a request now (still 200: the gateway itself is up)
    healthy = all(g["ready"] for g in groups.values())
    return _json({"status": "healthy" if healthy else "degraded", "groups": groups,
                  "egress": gw.pool.egress_status(now)})


def add_routes(app: web.Application) -> None:
    for path in ("/health/liveliness", "/health/liveness"):
        app.router.add_get(path, liveness)
    app.router.add_get("/health/readiness", readiness)
    app.router.add_get("/health", health)
