"""The admin API (`/admin/...`, JSON, master key required) and Prometheus `/metrics`.

Keys appear only as fingerprints. Errors use the OpenAI error shape (app.py's middleware renders them).
Without a master key configured, the admin API and /metrics are off (403) unless
`general_settings.allow_unauthenticated_admin: loopback` opens them to clients on this machine; behind a
reverse proxy on the same host, list it in `trusted_proxies` so its X-Forwarded-For names the real client.
`api_base` in POST /admin/keys must be a base the config file already uses or one in
`general_settings.admin_api_base_allowlist`: admin input never chooses where prompts go.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from keymux.clock import Clock
from keymux.config.access import normal_base
from keymux.config.schema import Config
from keymux.errors import BadRequest, ConfigRejected, Forbidden, NotFound, Unauthorized, Unavailable
from keymux.ledger import Ledger, LedgerUnavailable
from keymux.ledger.sql import BUCKETS, DIMENSIONS, LATENCY_NAMES
from keymux.live import Live
from keymux.metrics import Metrics
from keymux.pin_waits import PinWaits
from keymux.pool import Pool
from keymux.pool.deployment import Deployment
from keymux.pool.limits import pacific_day_start
from keymux.pool.store import PINNED_KINDS
from keymux.reload import Changes
from keymux.surfaces.client_ip import is_loopback
from keymux.surfaces.common import JSON, check_master, read_json

log = logging.getLogger("keymux.admin")

DEFAULT_WINDOW = 24 * 3600.0
METRICS = ("outcomes", "latency")  # /admin/usage?metrics=: extra columns beside the sums
MAX_ROWS = 1000
_REL = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LIMITS = (("rpm", "rpm", "rpm_used"), ("tpm", "tpm", "tpm_used"), ("rpd", "rpd", "rpd_used"),
           ("tpd", "tpd", "tpd_used"), ("max_parallel_requests", "max_parallel", "in_flight"))




@dataclass(frozen=True)
class Operator:
    """What the admin API and /metrics work on."""

    live: Live
    pool: Pool
    ledger: Ledger
    changes: Changes  # reload, keys added or removed at run time
    metrics: Metrics
    clock: Clock
    pin_waits: PinWaits

    @property
    def config(self) -> Config:
        return self.live.snapshot.config

    def group_names(self) -> tuple[str, ...]:
        return self.live.snapshot.names


ADMIN = web.AppKey("keymux.admin", Operator)


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS), content_type=JSON)


def _open_without_key(request: web.Request, gw: Operator, what: str) -> None:
    """No master key: refuse unless the operator opened `what` to this machine and the client is on it."""
    access = gw.config.access
    if access.allow_unauthenticated_admin != "loopback":
        raise Forbidden(f"{what} is off: set general_settings.master_key (or allow_unauthenticated_admin: "
                        "loopback for clients on this machine)")
    if not is_loopback(request, access.trusted_proxies):
        raise Forbidden(f"{what} needs general_settings.master_key when reached from another machine")


def _admin(request: web.Request) -> Operator:
    gw = request.app[ADMIN]
    if gw.config.master_key is None:
        _open_without_key(request, gw, "the admin API")
        return gw
    check_master(request, gw.config.master_key, read=request.method in ("GET", "HEAD"))
    return gw


def parse_time(value: str | None, now: float, default: float, name: str) -> float:
    """`24h` / `30m` / `7d` ago, epoch seconds, or ISO 8601 (UTC unless it says otherwise)."""
    if value is None or value == "":
        return default
    text = value.strip()
    m = _REL.match(text)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"`{name}` must be like 24h, 30m, 7d, epoch seconds or ISO 8601; got {text!r}",
                         param=name) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


async def _ledger_call(coro: Any) -> Any:
    try:
        return await coro
    except LedgerUnavailable as e:
        raise Unavailable(f"the usage ledger is unavailable: {e}") from None


# -- keys --------------------------------------------------------------------------------------
def _unique(gw: Operator) -> list[tuple[Deployment, list[str]]]:
    """Each deployment once, with the groups (not the model-id aliases) it serves."""
    out: dict[str, tuple[Deployment, list[str]]] = {}
    for name in gw.group_names():
        for d in gw.pool.groups.get(name, ()):
            out.setdefault(d.id, (d, []))[1].append(name)
    return list(out.values())


def _limits(d: Deployment, view: Any) -> dict[str, Any]:
    out = {}
    for name, attr, used_attr in _LIMITS:
        declared = getattr(d.limits, attr)
        learned = view.learned.get(attr) if attr != "max_parallel" else None
        limit = min(x for x in (declared, learned) if x is not None) if declared or learned else None
        used = getattr(view, used_attr)
        out[name] = {"used": round(used) if isinstance(used, float) else used, "limit": limit,
                     "declared": declared, "learned": learned}
    return out


def keys_doc(gw: Operator, today: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    now = gw.clock.time()
    runtime = {d.fingerprint for d in gw.live.snapshot.runtime}
    keys: dict[str, dict[str, Any]] = {}
    for d, groups in _unique(gw):
        cfg = d.cfg
        k = keys.get(d.fingerprint)
        if k is None:
            k = keys[d.fingerprint] = {
                "key": d.fingerprint, "provider": cfg.provider, "groups": [], "project": cfg.project,
                "bucket": cfg.bucket, "added_at_run_time": d.fingerprint in runtime, "state": "ready", "models": [],
                "today": None if today is None else today.get(d.fingerprint, {
                    "requests": 0, "errors": 0, "tokens": 0, "cost": 0.0, "value": 0.0})}
        for g in groups:
            if g not in k["groups"]:
                k["groups"].append(g)
        view = gw.pool.store.view(d, now)
        k["models"].append({
            "deployment": d.id, "model": d.model, "groups": groups, "state": view.state.value,
            "until": view.until, "until_in": None if view.until is None else max(0.0, round(view.until - now, 1)),
            "why": view.reason or None, "limits": _limits(d, view), "in_flight": view.in_flight, "served": d.served})
    for k in keys.values():  # the key as a whole: ready if any model is, else its worst state
        states = {m["state"] for m in k["models"]}
        k["state"] = next(s for s in ("ready", "disabled", "exhausted", "cooling") if s in states)
    return list(keys.values())


async def list_keys(request: web.Request) -> web.Response:
    gw = _admin(request)
    today: dict[str, dict[str, Any]] | None
    error = None
    try:
        today = await gw.ledger.key_totals(pacific_day_start(gw.clock.time()))
    except LedgerUnavailable as e:
        today, error = None, str(e)
    return _json({"object": "list", "data": keys_doc(gw, today), "ledger_error": error,
                  "egress": gw.pool.egress_status(gw.clock.time())})


def _known(gw: Operator, fp: str) -> None:
    if not gw.pool.deployments_of(fp):
        raise NotFound(f"no key {fp}")


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _key_action(act: Callable[[Operator, str], Awaitable[None]], answer: dict[str, Any]) -> Handler:
    """POST /admin/keys/{fingerprint}/<verb>: act on a known key, answer what it is now."""

    async def handler(request: web.Request) -> web.Response:
        gw = _admin(request)
        fp = request.match_info["fingerprint"]
        _known(gw, fp)
        await act(gw, fp)
        return _json({"key": fp, **answer})

    return handler


OPERATOR_DISABLE = "disabled by an operator"


def _persisting(act: Callable[[Operator, str], Awaitable[None]], store: Callable[[Operator, str], Awaitable[None]],
                answer: dict[str, Any]) -> Handler:
    """A key action the ledger database remembers (so a restart keeps it). The action applies at once;
    if the database cannot take it, the answer says so (`persisted: false`) instead of failing."""

    async def handler(request: web.Request) -> web.Response:
        gw = _admin(request)
        fp = request.match_info["fingerprint"]
        _known(gw, fp)
        await act(gw, fp)
        try:
            await store(gw, fp)
        except LedgerUnavailable as e:
            log.error("key %s: %s, but not stored (it will not survive a restart): %s", fp,
                      next(iter(answer.items())), e)
            return _json({"key": fp, **answer, "persisted": False, "ledger_error": str(e)})
        return _json({"key": fp, **answer, "persisted": True})

    return handler


disable_key = _persisting(lambda gw, fp: gw.pool.disable_key(fp, OPERATOR_DISABLE),
                          lambda gw, fp: gw.ledger.set_disabled(fp, OPERATOR_DISABLE, gw.clock.time()),
                          {"state": "disabled"})
enable_key = _persisting(lambda gw, fp: gw.pool.enable_key(fp), lambda gw, fp: gw.ledger.clear_disabled(fp),
                         {"enabled": True})
reset_key = _key_action(lambda gw, fp: gw.pool.reset_key(fp), {"reset": True})


def _check_api_base(gw: Operator, api_base: Any) -> None:
    """An api_base from the body must be one the operator wrote down (config file or allow-list)."""
    if api_base is None:
        return
    if not isinstance(api_base, str):
        raise BadRequest("`api_base` must be a string", param="api_base")
    allowed = {normal_base(d.api_base) for d in gw.config.deployments if d.api_base}
    allowed.update(gw.config.access.admin_api_base_allowlist)
    if normal_base(api_base) not in allowed:  # not echoed: a URL can carry a credential
        raise BadRequest("`api_base` is not one the config file uses nor in general_settings."
                         "admin_api_base_allowlist; omit it to use the group's, or add it there", param="api_base")


async def add_key(request: web.Request) -> web.Response:
    gw = _admin(request)
    body, _ = await read_json(request, 64 * 1024)
    _check_api_base(gw, body.get("api_base"))
    d = await gw.changes.add_key(body)
    return _json({"key": d.fingerprint, "group": d.group, "deployment": d.id, "provider": d.provider,
                  "vendor": d.vendor, "model": d.model}, status=201)


async def delete_key(request: web.Request) -> web.Response:
    gw = _admin(request)
    fp = request.match_info["fingerprint"]
    gone = await gw.changes.remove_key(fp)
    return _json({"key": fp, "removed": [d.id for d in gone]})


async def pins(request: web.Request) -> web.Response:
    """Resources pinned to each key (interactions, files, caches, batches) and the requests that waited
    for a pinned key (this replica's)."""
    gw = _admin(request)
    counts = await gw.pool.pin_counts()
    waits = gw.pin_waits
    keys: list[dict[str, Any]] = []
    for d, _ in _unique(gw):
        if any(k["key"] == d.fingerprint for k in keys):
            continue
        per = counts.get(d.fingerprint, {})
        keys.append({"key": d.fingerprint, "provider": d.cfg.provider,
                     "pinned": {kind: per.get(kind, 0) for kind in PINNED_KINDS}, "total": sum(per.values()),
                     "waits": waits.counts.get(d.fingerprint, 0)})
    running = len(await gw.pool.store.tracked_jobs())
    return _json({"object": "pins", "kinds": list(PINNED_KINDS), "data": keys, "recent_waits": list(waits.recent),
                  "batches_running": running})


# -- usage and requests ------------------------------------------------------------------------
async def usage(request: web.Request) -> web.Response:
    gw = _admin(request)
    q = request.query
    by = q.get("by") or None
    if by is not None and by not in DIMENSIONS:
        raise BadRequest(f"`by` must be one of {', '.join(DIMENSIONS)}", param="by")
    bucket = q.get("bucket") or None
    if bucket is not None and bucket not in BUCKETS:
        raise BadRequest(f"`bucket` must be one of {', '.join(BUCKETS)}", param="bucket")
    now = gw.clock.time()
    metrics = frozenset(m.strip() for m in (q.get("metrics") or "").split(",") if m.strip())
    if metrics - set(METRICS):
        raise BadRequest(f"`metrics` must be a comma-separated list of {', '.join(METRICS)}", param="metrics")
    since = parse_time(q.get("since"), now, now - DEFAULT_WINDOW, "since")
    until = parse_time(q.get("until"), now, now + 1, "until")
    rows = await _ledger_call(gw.ledger.usage(by, since, until, bucket, metrics))
    total: dict[str, Any] = {}
    for r in rows:
        for k in ("requests", "errors", "prompt_tokens", "completion_tokens", "reasoning_tokens", "total_tokens",
                  "cost", "value"):
            total[k] = total.get(k, 0) + r[k]
        for k, n in r.get("outcomes", {}).items():
            total.setdefault("outcomes", {})[k] = total.get("outcomes", {}).get(k, 0) + n
    if "latency" in metrics:  # percentiles do not add up: ask for the whole range
        whole = rows if by is None and bucket is None else await _ledger_call(
            gw.ledger.usage(None, since, until, None, frozenset({"latency"})))
        total.update({k: whole[0][k] if whole else None for k in LATENCY_NAMES})
    return _json({"object": "list", "by": by, "bucket": bucket, "metrics": sorted(metrics), "since": since,
                  "until": until, "data": rows, "total": total})


async def requests(request: web.Request) -> web.Response:
    gw = _admin(request)
    q = request.query
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        raise BadRequest("`limit` must be an integer", param="limit") from None
    if not 1 <= limit <= MAX_ROWS:
        raise BadRequest(f"`limit` must be between 1 and {MAX_ROWS}", param="limit")
    before = parse_time(q.get("before"), gw.clock.time(), math.inf, "before")
    rows = await _ledger_call(gw.ledger.recent(limit, min(before, 1e18)))
    return _json({"object": "list", "data": rows,
                  "next_before": rows[-1]["at"] if len(rows) == limit else None})


async def reload(request: web.Request) -> web.Response:
    gw = _admin(request)
    outcome = await gw.changes.reload()
    if not outcome.ok:
        raise ConfigRejected(outcome.message)
    return _json({"ok": True, "message": outcome.message, "changes": outcome.changes})


async def metrics(request: web.Request) -> web.Response:
    gw = request.app[ADMIN]
    master = gw.config.master_key
    if gw.config.metrics_auth and master is None:
        _open_without_key(request, gw, "/metrics")
    elif gw.config.metrics_auth and master is not None:
        try:
            check_master(request, master, read=True)
        except Unauthorized as e:
            e.message += " (or set general_settings.metrics_auth: false)"
            raise
    text = gw.metrics.render(gw.pool, gw.ledger, gw.clock.time())
    return web.Response(body=text.encode(), headers={"content-type": "text/plain; version=0.0.4; charset=utf-8"})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/keys", list_keys)
    r.add_post("/admin/keys", add_key)
    r.add_delete("/admin/keys/{fingerprint}", delete_key)
    r.add_post("/admin/keys/{fingerprint}/disable", disable_key)
    r.add_post("/admin/keys/{fingerprint}/enable", enable_key)
    r.add_post("/admin/keys/{fingerprint}/reset", reset_key)
    r.add_get("/admin/pins", pins)
    r.add_get("/admin/usage", usage)
    r.add_get("/admin/requests", requests)
    r.add_post("/admin/reload", reload)
    r.add_get("/metrics", metrics)
