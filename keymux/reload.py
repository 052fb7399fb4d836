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

from keymux.clock import Clock
from keymux.config.deployment import from_admin, from_record, no_effect, to_record
from keymux.config.load import ConfigError, load_config
from keymux.config.schema import Config, DeploymentConfig
from keymux.errors import Conflict, NotFound, Unavailable
from keymux.ledger import Ledger, LedgerUnavailable
from keymux.live import Live, build_snapshot
from keymux.pool import Pool

log = logging.getLogger("keymux.reload")


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
                keys.append(from_record(r))
            except (ValueError, TypeError, KeyError) as e:
                log.error("stored run-time key %s ignored: %s", r.get("fingerprint"), e)
        if keys:
            self.apply(self.config, tuple(keys))
            log.info("%d key(s) added at run time restored from the database", len(keys))

    async def add_key(self, spec: dict[str, Any]) -> DeploymentConfig:
        async with self.lock:
            d = self._new_deployment(spec)
            record = to_record(d, self.clock.time())
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
        d = from_admin(spec, self.config.deployments + self.runtime, os.environ)
        for text in no_effect(d, self.config.router):
            log.warning("key %s added at run time: %s", d.fingerprint, text)
        return d


async def restore_disables(ledger: Ledger, pool: Pool) -> None:
    """Start-up: keys an operator disabled before the restart are disabled again. Call it after the
    deployments are known (runtime keys loaded); a key no longer configured keeps its record."""
    try:
        stored = await ledger.disabled_keys()
    except LedgerUnavailable as e:
        log.error("keys disabled by an operator could not be re-applied (database unavailable): %s", e)
        return
    restored = [fp for fp in stored if pool.deployments_of(fp)]
    for fp in restored:
        await pool.disable_key(fp, stored[fp])
    if restored:
        log.info("%d key(s) disabled by an operator stay disabled: %s", len(restored), ", ".join(restored))


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


__all__ = ["Changes", "Outcome", "restore_disables"]
