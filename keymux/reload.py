"""Live changes to what the gateway serves: config reload, keys added or removed at run time.

Every change ends in one place, `Changes.apply`: the config plus the keys added at run time become a
new snapshot (keymux/live.py `build_snapshot`), swapped in at once. Requests in flight keep the snapshot
they started with and their own lease on their own deployment, and are not affected.

Keys added at run time are stored in the ledger database (with their api key: see README) so that
they survive a restart; the config file is never written.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any

import orjson

from keymux.config.litellm import SUPPORTED_PROVIDERS, split_model
from keymux.config.load import DEFAULT_BASE_ENV, ConfigError, load_config
from keymux.config.schema import Config, DeploymentConfig, Limits
from keymux.errors import BadRequest, Conflict, NotFound, Unavailable
from keymux.fingerprint import fingerprint
from keymux.clock import Clock
from keymux.ledger import Ledger, LedgerUnavailable
from keymux.live import Live, build_snapshot

log = logging.getLogger("keymux.reload")

LIMIT_FIELDS = (("rpm", "rpm"), ("tpm", "tpm"), ("rpd", "rpd"), ("tpd", "tpd"),
                ("max_parallel_requests", "max_parallel"))
_NUMBERS = ("weight", "timeout", "input_cost_per_token", "output_cost_per_token")
_ALLOWED = frozenset(("group", "api_key", "model", "provider", "api_base", "project", "order", "tier", "id")
                     + tuple(k for k, _ in LIMIT_FIELDS) + _NUMBERS)




@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    changes: dict[str, list[str]]


class Changes:
    """Config reloads and keys added or removed at run time, each ending in a new live snapshot."""

    def __init__(self, live: Live, ledger: Ledger, clock: Clock) -> None:
        self.live = live
        self.ledger = ledger
        self.clock = clock
        self.runtime: tuple[DeploymentConfig, ...] = ()  # every key added at run time (the config's ids win)
        self.lock = asyncio.Lock()
        self.last_reload: dict[str, Any] | None = None
        self._watch: asyncio.Task[None] | None = None

    @property
    def config(self) -> Config:
        return self.live.snapshot.config

    def apply(self, config: Config, runtime: tuple[DeploymentConfig, ...] | None = None) -> None:
        if runtime is not None:
            self.runtime = runtime
        self.live.swap(build_snapshot(config, self.clock, self.runtime, previous=self.live.snapshot))

    # -- reload ----------------------------------------------------------------------------
    async def reload(self) -> Outcome:
        """Read the config file again; a broken one is rejected and the one in force stays."""
        source = self.config.source
        if source is None:
            return self._done(False, "this gateway was not started from a config file: nothing to reload", {})
        async with self.lock:
            try:
                new = await asyncio.get_running_loop().run_in_executor(None, load_config, source)
            except ConfigError as e:
                log.error("config reload rejected, the previous config stays in force: %s", e)
                return self._done(False, f"config rejected, the previous config stays in force: {e}", {})
            except OSError as e:
                return self._done(False, f"cannot read {source}: {e.strerror}; the previous config stays in force", {})
            old = self.config
            notes = []
            if new.max_request_bytes != old.max_request_bytes:
                notes.append("max_request_size_mb takes effect at the next restart")
            if new.database_url != old.database_url:
                notes.append("database_url takes effect at the next restart")
            changes = _diff(old.deployments, new.deployments)
            self.apply(new)
            for w in new.warnings:
                log.warning("config: %s", w)
            summary = ", ".join(f"{len(v)} {k}" for k, v in changes.items() if v) or "no deployment changed"
            message = f"config reloaded from {source}: {summary}" + (f" ({'; '.join(notes)})" if notes else "")
            log.info("%s", message)
            return self._done(True, message, changes)

    def _done(self, ok: bool, message: str, changes: dict[str, list[str]]) -> Outcome:
        self.last_reload = {"ok": ok, "message": message, "at": self.clock.time()}
        return Outcome(ok, message, changes)

    def watch(self, interval: float = 2.0) -> None:
        """Reload whenever the config file's modification time changes (polling; opt-in `--watch`)."""
        source = self.config.source
        if source is None or self._watch is not None:
            return

        last = _mtime(source)

        async def loop() -> None:
            nonlocal last
            while True:
                await asyncio.sleep(interval)
                now = _mtime(source)
                if now != last:
                    last = now
                    await self.reload()

        self._watch = asyncio.get_running_loop().create_task(loop(), name="keymux-config-watch")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            try:
                await self._watch
            except asyncio.CancelledError:
                pass
            self._watch = None

    # -- keys added at run time --------------------------------------------------------------
    async def load(self) -> None:
        try:
            records = await self.ledger.runtime_keys()
        except LedgerUnavailable as e:
            log.error("keys added at run time could not be loaded (database unavailable): %s", e)
            return
        keys = []
        for r in records:
            try:
                keys.append(_from_record(r))
            except (ValueError, TypeError, KeyError) as e:
                log.error("stored run-time key %s ignored: %s", r.get("fingerprint"), e)
        if keys:
            self.apply(self.config, tuple(keys))
            log.info("%d key(s) added at run time restored from the database", len(keys))

    async def add_key(self, spec: dict[str, Any]) -> DeploymentConfig:
        async with self.lock:
            d = self._new_deployment(spec)
            record = _to_record(d, self.clock.time())
            try:
                await self.ledger.add_runtime_key(record)
            except LedgerUnavailable as e:
                raise Unavailable(f"cannot store the key, the database is unavailable: {e}") from None
            self.apply(self.config, self.runtime + (d,))
            log.info("key %s added to %s at run time", d.fingerprint, d.group)
            return d

    async def remove_key(self, fp: str) -> list[DeploymentConfig]:
        async with self.lock:
            gone = [d for d in self.runtime if d.fingerprint == fp]
            if not gone:
                if any(d.fingerprint == fp for d in self.config.deployments):
                    raise Conflict(f"key {fp} is defined in the config file: remove it there and reload, "
                                   "or disable it")
                raise NotFound(f"no key {fp}")
            try:
                await self.ledger.remove_runtime_key(fp)
            except LedgerUnavailable as e:
                raise Unavailable(f"cannot remove the key, the database is unavailable: {e}") from None
            self.apply(self.config, tuple(d for d in self.runtime if d.fingerprint != fp))
            log.info("key %s removed at run time", fp)
            return gone

    def _new_deployment(self, spec: dict[str, Any]) -> DeploymentConfig:
        unknown = sorted(set(spec) - _ALLOWED)
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(unknown)}", param=unknown[0])
        group = spec.get("group")
        api_key = spec.get("api_key")
        if not isinstance(group, str) or not group:
            raise BadRequest("`group` (the model group name) is required", param="group")
        if not isinstance(api_key, str) or not api_key.strip():
            raise BadRequest("`api_key` is required", param="api_key")
        api_key = api_key.strip()
        existing = [d for d in self.config.deployments + self.runtime if d.group == group]
        template = existing[0] if existing else None
        if "model" in spec:
            model = _text(spec, "model")
            api_base = _text(spec, "api_base") if "api_base" in spec else None
            provider, upstream = split_model(model, api_base, spec.get("provider"))
        elif template is not None:
            provider, upstream = template.provider, template.model
            api_base = _text(spec, "api_base") if "api_base" in spec else template.api_base
        else:
            raise BadRequest(f"group {group!r} does not exist: give `model` (e.g. gemini/gemini-2.5-flash)",
                             param="model")
        if provider not in SUPPORTED_PROVIDERS:
            raise BadRequest(f"provider {provider or '?'} is not supported (use {', '.join(SUPPORTED_PROVIDERS)})",
                             param="model")
        if api_base is None and template is None:
            api_base = os.environ.get(DEFAULT_BASE_ENV[provider])
        fp = fingerprint(api_key, provider)
        if any(d.fingerprint == fp for d in existing):
            raise Conflict(f"key {fp} is already in group {group}")
        inherit = template.limits if template is not None and template.model == upstream else Limits()
        limits = {attr: _int(spec, name) if name in spec else getattr(inherit, attr) for name, attr in LIMIT_FIELDS}
        nums = {k: _float(spec, k) for k in _NUMBERS if k in spec}
        tier = spec.get("tier")
        if tier not in (None, "free", "paid"):
            raise BadRequest("`tier` must be free or paid", param="tier")
        return DeploymentConfig(
            id=_text(spec, "id") if "id" in spec else f"{group}/runtime:{fp}", group=group, provider=provider,
            model=upstream, api_key=api_key, fingerprint=fp, api_base=api_base,
            project=_text(spec, "project") if "project" in spec else None, limits=Limits(**limits),
            weight=nums.get("weight", 1.0), order=_int(spec, "order") if "order" in spec else None,
            timeout=nums.get("timeout"), input_cost_per_token=nums.get("input_cost_per_token"),
            output_cost_per_token=nums.get("output_cost_per_token"), tier=tier)


def _text(spec: dict[str, Any], name: str) -> str:
    v = spec[name]
    if not isinstance(v, str) or not v:
        raise BadRequest(f"`{name}` must be a non-empty string", param=name)
    return v


def _int(spec: dict[str, Any], name: str) -> int | None:
    v = spec[name]
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise BadRequest(f"`{name}` must be a non-negative integer", param=name)
    return v


def _float(spec: dict[str, Any], name: str) -> float:
    v = spec[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise BadRequest(f"`{name}` must be a non-negative number", param=name)
    return float(v)


def _to_record(d: DeploymentConfig, now: float) -> dict[str, Any]:
    params = {attr: getattr(d.limits, attr) for _, attr in LIMIT_FIELDS}
    params.update(weight=d.weight, order=d.order, timeout=d.timeout, tier=d.tier,
                  input_cost_per_token=d.input_cost_per_token, output_cost_per_token=d.output_cost_per_token)
    return {"id": d.id, "grp": d.group, "fingerprint": d.fingerprint, "provider": d.provider, "model": d.model,
            "api_key": d.api_key, "api_base": d.api_base, "project": d.project,
            "params": orjson.dumps(params).decode(), "created": now}


def _from_record(r: dict[str, Any]) -> DeploymentConfig:
    p = orjson.loads(r["params"])
    limits = Limits(**{attr: p.get(attr) for _, attr in LIMIT_FIELDS})
    return DeploymentConfig(
        id=r["id"], group=r["grp"], provider=r["provider"], model=r["model"], api_key=r["api_key"],
        fingerprint=r["fingerprint"], api_base=r["api_base"], project=r["project"], limits=limits,
        weight=p.get("weight", 1.0), order=p.get("order"), timeout=p.get("timeout"), tier=p.get("tier"),
        input_cost_per_token=p.get("input_cost_per_token"), output_cost_per_token=p.get("output_cost_per_token"))


def _diff(old: tuple[DeploymentConfig, ...], new: tuple[DeploymentConfig, ...]) -> dict[str, list[str]]:
    before, after = {d.id: d for d in old}, {d.id: d for d in new}
    return {"added": [i for i in after if i not in before],
            "removed": [i for i in before if i not in after],
            "changed": [i for i in after if i in before and after[i] != before[i]]}


def _mtime(path: os.PathLike[str] | str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return -1.0


__all__ = ["Changes", "Outcome"]
