"""The relay observer: each finished request becomes one ledger row and the metrics it counts for."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from keymux.config.schema import DeploymentConfig
from keymux.ledger.row import Row
from keymux.pricing import cost_of
from keymux.relay import Call

if TYPE_CHECKING:
    from keymux.app import Gateway

log = logging.getLogger("keymux.ledger")


class Recorder:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self._indexed: object = None
        self._by_key: dict[tuple[str, str], DeploymentConfig] = {}
        self._secrets: list[tuple[str, str]] = []

    def _index(self) -> None:
        groups = self.gw.pool.groups
        if groups is self._indexed:
            return
        self._by_key = {(d.fingerprint, d.model): d.cfg for ds in groups.values() for d in ds}
        self._secrets = sorted({(d.cfg.api_key, d.fingerprint) for ds in groups.values() for d in ds
                                if d.cfg.api_key}, key=lambda kv: -len(kv[0]))
        self._indexed = groups

    def scrub(self, text: str) -> str:
        for key, fp in self._secrets:
            if key in text:
                text = text.replace(key, fp)
        return text

    def model_of(self, group: str, fp: str) -> str:
        groups = self.gw.pool.groups
        for name in (group, *self.gw.config.router.fallbacks.get(group, ())):
            for d in groups.get(name, ()):
                if d.fingerprint == fp:
                    return d.model
        return next((m for f, m in self._by_key if f == fp), "")

    def __call__(self, call: Call) -> None:
        try:
            self._index()
            cfg = self._by_key.get((call.key, call.upstream_model or "")) if call.key else None
            row = Row.from_call(call, cost_of(cfg, call.upstream_model, call.usage), self.scrub)
            self.gw.ledger.append(row)
            self.gw.metrics.observe(row, self.model_of)
        except Exception:  # noqa: BLE001 - the client already has its answer: a ledger bug must not reach it
            log.exception("could not record request %s", call.request_id)
